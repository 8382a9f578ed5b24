"""The model manager: one load per key under concurrency, LRU unloading under a budget,
explicit unloads, and clear ModelErrors when a model cannot be had. No network: the hub
is offline (or pointed at a closed local port) and HF_HOME is a temporary folder."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch

from ocr_studio.models import (
    ModelError,
    ModelKey,
    ModelManager,
    estimate_weights_bytes,
    model_bytes,
    model_manager,
    resolve_model,
)
from ocr_studio.models import manager as manager_module
from ocr_studio.settings import Settings

LINEAR_BYTES = 256 * 256 * 4  # torch.nn.Linear(256, 256, bias=False) in float32


@pytest.fixture(autouse=True)
def offline_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)


def model_folder(root: Path, name: str, *, weights_bytes: int = 0, dtype: str = "bfloat16") -> Path:
    """A local model folder: config.json and, optionally, a weights file of a given size."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "test", "torch_dtype": dtype}), encoding="utf-8")
    if weights_bytes:
        (folder / "model.safetensors").write_bytes(b"\0" * weights_bytes)
    return folder


def key_for(folder: Path) -> ModelKey:
    return ModelKey(str(folder), None, "float32", "sdpa")


class CountingLoader:
    """Builds a small real module and counts calls; optionally slow."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[ModelKey] = []
        self.delay = delay
        self._lock = threading.Lock()

    def __call__(self, key: ModelKey, folder: Path) -> torch.nn.Module:
        with self._lock:
            self.calls.append(key)
        time.sleep(self.delay)
        return torch.nn.Linear(256, 256, bias=False)


def test_concurrent_requests_for_one_model_load_it_once(tmp_path):
    key = key_for(model_folder(tmp_path, "m"))
    manager = ModelManager(budget_bytes=None)
    loader = CountingLoader(delay=0.3)
    results: list[object] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            results.append(manager.get(key, loader))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not errors
    assert len(loader.calls) == 1
    assert len(results) == 10 and all(result is results[0] for result in results)
    assert manager.get(key, loader) is results[0] and len(loader.calls) == 1


def test_different_models_load_in_parallel(tmp_path):
    keys = [key_for(model_folder(tmp_path, name)) for name in ("a", "b")]
    both_loading = threading.Barrier(2, timeout=5)  # breaks if the second load waits for the first

    def loader(key: ModelKey, folder: Path) -> torch.nn.Module:
        both_loading.wait()
        return torch.nn.Linear(4, 4)

    manager = ModelManager()
    results: dict[ModelKey, object] = {}
    threads = [threading.Thread(target=lambda k=k: results.__setitem__(k, manager.get(k, loader))) for k in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert set(results) == set(keys)
    assert results[keys[0]] is not results[keys[1]]


@pytest.mark.parametrize("with_estimate", [True, False])
def test_least_recently_used_model_is_unloaded_when_the_budget_is_full(tmp_path, with_estimate):
    a, b, c = (key_for(model_folder(tmp_path, name)) for name in "abc")
    manager = ModelManager(budget_bytes=int(2.5 * LINEAR_BYTES))  # fits two
    loader = CountingLoader()
    estimate = LINEAR_BYTES if with_estimate else None

    model_a = manager.get(a, loader, estimate_bytes=estimate)
    manager.get(b, loader, estimate_bytes=estimate)
    assert manager.get(a, loader) is model_a  # touching A makes B the least recently used
    manager.get(c, loader, estimate_bytes=estimate)

    loaded = manager.loaded()
    assert [info.key for info in loaded] == [c, a]  # most recently used first; B was unloaded
    assert all(info.size_bytes == LINEAR_BYTES for info in loaded)
    assert loaded[0].last_used >= loaded[1].last_used
    assert manager.used_bytes() == 2 * LINEAR_BYTES

    manager.get(b, loader, estimate_bytes=estimate)  # B comes back by loading again; A is now the oldest
    assert [info.key for info in manager.loaded()] == [b, c]
    assert loader.calls == [a, b, c, b]


def test_a_model_larger_than_the_budget_still_loads_alone(tmp_path):
    a, b = (key_for(model_folder(tmp_path, name)) for name in "ab")
    manager = ModelManager(budget_bytes=LINEAR_BYTES // 2)
    loader = CountingLoader()
    manager.get(a, loader)
    manager.get(b, loader)
    assert [info.key for info in manager.loaded()] == [b]


def test_explicit_unload_and_unload_all(tmp_path):
    a, b = (key_for(model_folder(tmp_path, name)) for name in "ab")
    manager = ModelManager()
    loader = CountingLoader()
    first = manager.get(a, loader)
    manager.get(b, loader)

    assert manager.unload(a) is True
    assert manager.unload(a) is False
    assert [info.key for info in manager.loaded()] == [b]
    assert manager.get(a, loader) is not first  # loaded again after the unload
    assert len(loader.calls) == 3

    assert manager.unload_others(keep=a) == 1
    assert [info.key for info in manager.loaded()] == [a]
    assert manager.unload_all() == 1
    assert manager.loaded() == [] and manager.used_bytes() == 0


def test_weight_files_estimate_the_memory_before_loading(tmp_path):
    folder = model_folder(tmp_path, "w", weights_bytes=1000, dtype="bfloat16")
    assert estimate_weights_bytes(folder, "float32") == 2000
    assert estimate_weights_bytes(folder, "bfloat16") == 1000
    assert estimate_weights_bytes(model_folder(tmp_path, "empty"), "float32") is None

    # the estimate makes room before the load: the old model is gone before the new one is built
    small = key_for(model_folder(tmp_path, "small"))
    big = key_for(folder)
    manager = ModelManager(budget_bytes=LINEAR_BYTES + 1500)
    manager.get(small, CountingLoader())
    seen_during_load: list[list[ModelKey]] = []

    def loader(key: ModelKey, path: Path) -> torch.Tensor:
        seen_during_load.append([info.key for info in manager.loaded()])
        return torch.zeros(500, dtype=torch.float32)

    manager.get(big, loader)
    assert seen_during_load == [[]]


def test_model_bytes_counts_tied_weights_once_and_walks_bundles():
    class Tied(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(100, 8)
            self.head = torch.nn.Linear(8, 100, bias=False)
            self.head.weight = self.embed.weight
            self.register_buffer("scale", torch.ones(10, dtype=torch.float16))

    model = Tied()
    assert model_bytes(model) == 100 * 8 * 4 + 10 * 2
    assert model_bytes((model, "a processor")) == model_bytes(model)
    assert model_bytes({"model": model, "extra": torch.zeros(4, dtype=torch.bfloat16)}) == model_bytes(model) + 8
    assert model_bytes("not a model") == 0


def test_loader_failures_become_model_errors_naming_the_model(tmp_path):
    key = key_for(model_folder(tmp_path, "broken"))
    manager = ModelManager()

    def out_of_memory(key: ModelKey, folder: Path) -> object:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(ModelError, match="Not enough GPU memory to load .*broken"):
        manager.get(key, out_of_memory)

    def bad_weights(key: ModelKey, folder: Path) -> object:
        raise OSError("model.safetensors is truncated")

    with pytest.raises(ModelError, match="Loading .*broken.* failed: model.safetensors is truncated"):
        manager.get(key, bad_weights)
    assert manager.loaded() == []
    assert manager.get(key, CountingLoader()) is not None  # a failed load can be retried


def test_missing_model_offline_is_a_clear_error(tmp_path):
    loader = CountingLoader()
    with pytest.raises(ModelError) as caught:
        model_manager().get(ModelKey("Qwen/Qwen3-VL-2B-Instruct"), loader)
    message = str(caught.value)
    assert "Qwen/Qwen3-VL-2B-Instruct is not in the local cache" in message
    assert "offline" in message and "Connect once to download it" in message and "local folder" in message
    assert str(tmp_path / "hf-home") in message
    assert loader.calls == []


def test_unreachable_hub_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    messages: list[str] = []
    with pytest.raises(ModelError, match="rednote-hilab/dots.ocr .*cannot be reached.*internet connection"):
        resolve_model("rednote-hilab/dots.ocr", progress=lambda message, fraction: messages.append(message))
    assert messages and "Downloading rednote-hilab/dots.ocr" in messages[0]


def test_cached_model_resolves_offline(tmp_path):
    snapshot = tmp_path / "hf-home" / "hub" / "models--acme--tiny-ocr" / "snapshots" / ("0" * 40)
    model_folder(snapshot.parent, snapshot.name)
    refs = snapshot.parent.parent / "refs"
    refs.mkdir()
    (refs / "main").write_text("0" * 40, encoding="utf-8")
    assert resolve_model("acme/tiny-ocr") == snapshot


def test_local_folders(tmp_path):
    folder = model_folder(tmp_path, "qwen-local")
    assert resolve_model(str(folder)) == folder
    empty = tmp_path / "no-config"
    empty.mkdir()
    with pytest.raises(ModelError, match="has no config.json"):
        resolve_model(str(empty))
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(str(tmp_path / "missing" / "model"))
    with pytest.raises(ModelError, match="neither a local model folder nor a valid"):
        resolve_model("not a model id!")


def test_download_progress_is_forwarded_as_fractions():
    calls: list[tuple[str, float | None]] = []
    bar_class = manager_module._progress_tqdm(
        "acme/tiny-ocr", lambda message, fraction: calls.append((message, fraction))
    )
    bar = bar_class(total=4 * 1024**3, initial=0, unit="B", desc="Downloading bytes", name="ignored")
    bar.update(1024**3)
    assert calls == [("Downloading acme/tiny-ocr: 1.00 of 4.00 GB", 0.25)]
    bar.close()


def test_budget_comes_from_settings(tmp_path):
    manager = ModelManager()
    manager.configure(Settings(vram_budget_gb=1.5))
    assert manager.budget() == int(1.5 * 1024**3)
    manager.configure(Settings(vram_budget_gb=0))
    assert manager.budget() is None  # no GPU here: unlimited
    assert model_manager() is model_manager(Settings())
