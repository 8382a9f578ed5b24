"""The model manager: each model loaded once per process, kept while memory allows.

Engines ask ``model_manager().get(key, loader)``; the first caller loads, every other
caller (concurrent ones included) gets the same object. When a new model would not fit
the memory budget, the least recently used models are unloaded first. ``resolve_model``
turns a model id into a local folder (downloading it once, with progress) and turns every
way that can fail into a ModelError that says what to do.
"""

from __future__ import annotations

import errno
import gc
import json
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..i18n import LocalizedError, message, text
from ..settings import Settings

T = TypeVar("T")

# progress(message, fraction): fraction in 0..1, or None while it is unknown
Progress = Callable[[str, float | None], None]

DEFAULT_MARGIN_BYTES = int(1.5 * 1024**3)  # left free for activations, the KV cache and other programs
_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8, "int8": 1}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


class ModelError(LocalizedError):
    """A model cannot be had or loaded. The message names the model and what to do."""


@dataclass(frozen=True)
class ModelKey:
    """What makes two loads different: two callers with equal keys share one object."""

    model_id: str  # hub repo id ("Qwen/Qwen3-VL-2B-Instruct") or a local folder
    revision: str | None = None  # hub branch, tag or commit; None = the default branch
    dtype: str = "float32"
    attention: str = "sdpa"
    variant: str = ""  # anything else that changes the object ("processor", "compiled"...)

    def label(self) -> str:
        revision = f"@{self.revision}" if self.revision else ""
        variant = f", {self.variant}" if self.variant else ""
        return f"{self.model_id}{revision} ({self.dtype}, {self.attention}{variant})"


@dataclass(frozen=True)
class LoadedInfo:
    """One loaded model as the sidebar shows it."""

    key: ModelKey
    size_bytes: int
    last_used: float  # time.time()
    loaded_at: float
    load_seconds: float


@dataclass
class _Entry:
    obj: Any
    size_bytes: int
    last_used: float
    loaded_at: float
    load_seconds: float


# ----------------------------------------------------------------------------- memory helpers


def model_bytes(obj: object) -> int:
    """Bytes held by a model's parameters and buffers (shared/tied tensors counted once).
    Understands torch modules, tensors, and containers or plain objects holding them
    (e.g. a (model, processor) pair); anything else counts as 0."""
    torch = sys.modules.get("torch")
    if torch is None:
        return 0
    seen: set[int] = set()

    def tensor_bytes(tensor: Any) -> int:
        if tensor.device.type == "meta":
            return 0
        key = id(tensor)
        if key in seen:
            return 0
        seen.add(key)
        return int(tensor.numel() * tensor.element_size())

    def walk(value: Any, depth: int) -> int:
        if isinstance(value, torch.nn.Module):
            return sum(tensor_bytes(t) for t in value.parameters()) + sum(tensor_bytes(t) for t in value.buffers())
        if isinstance(value, torch.Tensor):
            return tensor_bytes(value)
        if depth > 2:
            return 0
        if isinstance(value, Mapping):
            return sum(walk(item, depth + 1) for item in value.values())
        if isinstance(value, list | tuple | set):
            return sum(walk(item, depth + 1) for item in value)
        attributes = getattr(value, "__dict__", None)
        if isinstance(attributes, dict):
            return sum(walk(item, depth + 1) for item in attributes.values())
        return 0

    return walk(obj, 0)


def free_cuda_memory() -> None:
    """Give cached CUDA memory back after models or tensors were dropped (call it after an
    out-of-memory error before retrying smaller). Cheap and safe without CUDA."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
            torch.cuda.ipc_collect()
    except Exception:  # freeing memory must never be the thing that fails
        pass


def estimate_weights_bytes(path: Path, dtype: str) -> int | None:
    """Memory a checkpoint will take once loaded in ``dtype``, from its weight files on disk
    (scaled from the checkpoint's own dtype). None when there are no weight files."""
    try:
        on_disk = sum(f.stat().st_size for f in Path(path).iterdir() if f.suffix in _WEIGHT_SUFFIXES and f.is_file())
    except OSError:
        return None
    if on_disk == 0:
        return None
    stored = "bfloat16"
    try:
        config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
        stored = str(config.get("torch_dtype") or config.get("dtype") or stored)
    except (OSError, ValueError, AttributeError):
        pass
    scale = _DTYPE_BYTES.get(dtype, 2) / _DTYPE_BYTES.get(stored, 2)
    return int(on_disk * scale)


def _is_out_of_memory(exc: BaseException) -> bool:
    torch = sys.modules.get("torch")
    oom_type = getattr(torch, "OutOfMemoryError", None) if torch else None
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


# ----------------------------------------------------------------------------- resolving model files


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache in effect now (HF_HUB_CACHE, else HF_HOME/hub, else the default)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) as set now, not when huggingface_hub was imported."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def _looks_like_path(model_id: str) -> bool:
    return (
        model_id.startswith(("/", "./", "../", "~", "\\"))
        or (len(model_id) > 1 and model_id[1] == ":")  # C:\...
        or model_id.count("/") > 1
    )


def _local_folder(model_id: str) -> Path | None:
    path = Path(model_id).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(message("core.model.is_a_file", model=model_id))
        if not (path / "config.json").is_file():
            raise ModelError(message("core.model.folder_no_config", folder=str(path)))
        return path
    if _looks_like_path(model_id):
        raise ModelError(message("core.model.folder_missing", model=model_id))
    return None


def _progress_tqdm(model_id: str, progress: Progress) -> type:
    """A tqdm class for snapshot_download that forwards byte progress to ``progress``
    instead of drawing bars."""
    from tqdm.auto import tqdm

    class ForwardingTqdm(tqdm):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self.n = kwargs.get("initial", 0) or 0
            self.total = kwargs.get("total")
            self._bytes = kwargs.get("unit") == "B"
            self._last = 0.0

        def update(self, n: float | None = 1) -> bool | None:
            self.n += n or 0
            now = time.monotonic()
            if self._bytes and self.total and now - self._last > 0.25:
                self._last = now
                done, total = self.n / 1024**3, self.total / 1024**3
                status = text(
                    "core.model.downloading_progress", model=model_id, done=f"{done:.2f}", total=f"{total:.2f}"
                )
                progress(status, min(1.0, self.n / self.total))
            return None

    return ForwardingTqdm


def resolve_model(model_id: str, revision: str | None = None, *, progress: Progress | None = None) -> Path:
    """The local folder of a model: a local folder as is (it must hold config.json), else the
    hub snapshot, from the cache when it is there, downloaded once when not. Honours HF_HOME /
    HF_HUB_CACHE and HF_HUB_OFFLINE=1 (cache only). Every failure is a ModelError saying what to do."""
    model_id = model_id.strip()
    if not model_id:
        raise ModelError(message("core.model.not_set"))
    local = _local_folder(model_id)
    if local is not None:
        return local

    from huggingface_hub import errors as hub_errors
    from huggingface_hub import snapshot_download

    cache = hub_cache_dir()
    offline = hub_offline()
    name = f"{model_id}@{revision}" if revision else model_id
    incomplete = getattr(hub_errors, "IncompleteSnapshotError", None)
    cached_errors = tuple(e for e in (hub_errors.LocalEntryNotFoundError, incomplete) if e is not None)

    try:
        # cache first: a cached model starts without asking the hub (and works with no network)
        folder = snapshot_download(model_id, revision=revision, cache_dir=str(cache), local_files_only=True)
    except hub_errors.HFValidationError:
        raise ModelError(message("core.model.invalid_id", model=repr(model_id))) from None
    except cached_errors:
        if offline:
            raise ModelError(message("core.model.offline_not_cached", model=name, cache=str(cache))) from None
        folder = _download(model_id, revision, name, cache, progress, hub_errors)

    path = Path(folder)
    if not (path / "config.json").is_file():
        raise ModelError(message("core.model.no_config", model=name))
    return path


def _download(
    model_id: str, revision: str | None, name: str, cache: Path, progress: Progress | None, hub_errors: Any
) -> str:
    from huggingface_hub import snapshot_download

    if progress:
        progress(text("core.model.downloading", model=name, cache=str(cache)), None)
    tqdm_class = _progress_tqdm(name, progress) if progress else None
    try:
        folder = snapshot_download(model_id, revision=revision, cache_dir=str(cache), tqdm_class=tqdm_class)
    except hub_errors.GatedRepoError:  # before RepositoryNotFoundError: it is a subclass
        raise ModelError(message("core.model.gated", model=model_id)) from None
    except hub_errors.RepositoryNotFoundError:
        raise ModelError(message("core.model.not_found", model=model_id)) from None
    except hub_errors.RevisionNotFoundError:
        raise ModelError(message("core.model.no_revision", model=model_id, revision=repr(revision))) from None
    except hub_errors.LocalEntryNotFoundError as exc:
        cause = exc.__cause__ or exc
        detail = type(cause).__name__
        raise ModelError(message("core.model.unreachable", model=name, cache=str(cache), detail=detail)) from None
    except hub_errors.HfHubHTTPError as exc:
        raise ModelError(message("core.model.download_failed_later", model=name, detail=str(exc))) from None
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ModelError(message("core.model.no_disk_space", model=name, cache=str(cache))) from None
        raise ModelError(message("core.model.download_failed", model=name, detail=str(exc))) from None
    if progress:
        progress(text("core.model.downloaded", model=name), 1.0)
    return folder


def cached_models() -> list[tuple[str, int, Path]]:
    """(repo id, bytes on disk, folder) of every model in the hub cache, for the sidebar."""
    cache = hub_cache_dir()
    if not cache.is_dir():
        return []
    try:
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir(cache)
    except Exception:
        return []
    return sorted(
        (repo.repo_id, int(repo.size_on_disk), Path(repo.repo_path)) for repo in info.repos if repo.repo_type == "model"
    )


# ----------------------------------------------------------------------------- the manager


class ModelManager:
    """Loads each model once per key, shares it, and unloads the least recently used first
    when a new one would not fit the budget.

    ``budget_bytes``: a fixed memory budget for all loaded models; None = free VRAM (plus what
    this manager already holds) minus ``margin_bytes`` on a GPU, unlimited on the CPU.
    ``resolver`` turns (model id, revision, progress) into the folder handed to loaders."""

    def __init__(
        self,
        *,
        budget_bytes: int | None = None,
        margin_bytes: int = DEFAULT_MARGIN_BYTES,
        device: str = "auto",
        resolver: Callable[..., Path] = resolve_model,
    ) -> None:
        self.budget_bytes = budget_bytes
        self.margin_bytes = margin_bytes
        self.device = device
        self._resolver = resolver
        self._lock = threading.RLock()
        self._entries: OrderedDict[ModelKey, _Entry] = OrderedDict()  # least recently used first
        self._key_locks: dict[ModelKey, threading.Lock] = {}

    def configure(self, settings: Settings) -> None:
        """Take the budget and device from settings (vram_budget_gb 0 = automatic)."""
        with self._lock:
            gb = float(settings.vram_budget_gb or 0)
            self.budget_bytes = int(gb * 1024**3) if gb > 0 else None
            self.device = "cpu" if str(settings.device).lower() == "cpu" else "auto"

    # -- budget

    def _uses_cuda(self) -> bool:
        if self.device == "cpu":
            return False
        try:
            import torch

            return bool(torch.cuda.is_available())
        except Exception:
            return False

    def budget(self) -> int | None:
        """The bytes all loaded models may take together now; None = unlimited."""
        if self.budget_bytes is not None:
            return self.budget_bytes
        if not self._uses_cuda():
            return None
        import torch

        free, _total = torch.cuda.mem_get_info()
        return max(0, int(free) + self.used_bytes() - self.margin_bytes)

    def used_bytes(self) -> int:
        with self._lock:
            return sum(entry.size_bytes for entry in self._entries.values())

    # -- loading

    def get(
        self,
        key: ModelKey,
        loader: Callable[[ModelKey, Path], T],
        *,
        estimate_bytes: int | None = None,
        progress: Progress | None = None,
    ) -> T:
        """The model for ``key``: loaded by ``loader(key, folder)`` the first time, the same
        object every later time. Concurrent callers for one key wait for a single load;
        different keys load in parallel. Raises ModelError when the model cannot be had."""
        hit = self._touch(key)
        if hit is not None:
            return hit.obj
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            hit = self._touch(key)  # loaded by the caller we waited for
            if hit is not None:
                return hit.obj
            return self._load(key, loader, estimate_bytes, progress)

    def _touch(self, key: ModelKey) -> _Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.last_used = time.time()
                self._entries.move_to_end(key)
            return entry

    def _load(
        self, key: ModelKey, loader: Callable[[ModelKey, Path], T], estimate: int | None, progress: Progress | None
    ) -> T:
        folder = self._resolver(key.model_id, key.revision, progress=progress)
        if estimate is None:
            estimate = estimate_weights_bytes(folder, key.dtype)
        if estimate:
            self._make_room(estimate, keep=key, progress=progress)
        if progress:
            progress(text("core.model.loading", model=key.label()), None)
        started = time.monotonic()
        try:
            obj = loader(key, folder)
        except ModelError:
            raise
        except Exception as exc:
            if _is_out_of_memory(exc):
                free_cuda_memory()
                reason = (
                    message("core.model.no_gpu_memory_size", model=key.label(), size=f"{estimate / 1024**3:.1f}")
                    if estimate
                    else message("core.model.no_gpu_memory", model=key.label())
                )
                raise ModelError(reason) from exc
            raise ModelError(message("core.model.load_failed", model=key.label(), detail=str(exc))) from exc
        seconds = time.monotonic() - started
        size = model_bytes(obj)
        now = time.time()
        with self._lock:
            self._entries[key] = _Entry(obj, size, now, now, seconds)
            self._entries.move_to_end(key)
        self._make_room(0, keep=key, progress=progress)  # the measured size may exceed the estimate
        if progress:
            progress(text("core.model.loaded", model=key.label(), seconds=f"{seconds:.1f}"), 1.0)
        return obj

    def _make_room(self, needed: int, *, keep: ModelKey, progress: Progress | None) -> None:
        """Unload least recently used models (never ``keep``) until ``needed`` more bytes fit."""
        while True:
            budget = self.budget()
            if budget is None:
                return
            with self._lock:
                if self.used_bytes() + needed <= budget:
                    return
                victim = next((k for k in self._entries if k != keep), None)
            if victim is None:
                return  # nothing else to drop: the model alone is larger than the budget; try anyway
            if progress:
                progress(text("core.model.unloading", model=victim.label()), None)
            self.unload(victim)

    # -- unloading and listing

    def unload(self, key: ModelKey) -> bool:
        """Drop the manager's reference to a model and free cached CUDA memory. The memory
        returns once no caller still holds the object. False when it was not loaded."""
        with self._lock:
            entry = self._entries.pop(key, None)
        if entry is None:
            return False
        del entry
        free_cuda_memory()
        return True

    def unload_all(self) -> int:
        """Unload every model; returns how many were loaded."""
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
        free_cuda_memory()
        return count

    def unload_others(self, keep: ModelKey | None = None) -> int:
        """Unload every model but ``keep`` (an engine's first answer to out-of-memory)."""
        with self._lock:
            victims = [k for k in self._entries if k != keep]
            for victim in victims:
                self._entries.pop(victim, None)
        free_cuda_memory()
        return len(victims)

    def loaded(self) -> list[LoadedInfo]:
        """Loaded models, most recently used first."""
        with self._lock:
            return [
                LoadedInfo(key, e.size_bytes, e.last_used, e.loaded_at, e.load_seconds)
                for key, e in reversed(self._entries.items())
            ]

    def is_loaded(self, key: ModelKey) -> bool:
        with self._lock:
            return key in self._entries


_manager_lock = threading.Lock()
_manager: ModelManager | None = None


def model_manager(settings: Settings | None = None) -> ModelManager:
    """The process-wide manager; ``settings`` (when given) update its budget and device."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = ModelManager()
        if settings is not None:
            _manager.configure(settings)
        return _manager


def status_progress(status: Callable[[str], None] | None) -> Progress | None:
    """A ``Progress`` that reports each (message, fraction) as one status line (UI and CLI)."""
    if status is None:
        return None
    return lambda news, fraction: status(
        news if fraction is None else text("core.model.progress", status=news, percent=f"{fraction:.0%}")
    )
