"""The engine/runtime seam: one prepare per model for both runtimes, the engine registry as data,
model sizes read from the families table (not guessed in the engines)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from ocr_studio.documents import Page
from ocr_studio.engines import ENGINES, EngineKind, get_engine
from ocr_studio.engines.dots_prompts import MAX_PIXELS, MIN_PIXELS
from ocr_studio.models.families import QWEN3_VL, qwen3_vl_size
from ocr_studio.recognition import RecognizeRequest, Task
from ocr_studio.runtime.client import Completion
from ocr_studio.runtime.remote import RemoteEngine
from ocr_studio.settings import Settings


@pytest.fixture(scope="module")
def published_dots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny dots.ocr checkpoint whose processor has the published pixel bounds (3,136 … 11,289,600),
    as a server running the real checkpoint has."""
    from tests.tiny_dots import build_tiny_dots_ocr

    folder = build_tiny_dots_ocr(tmp_path_factory.mktemp("tiny-dots-published"))
    config_path = folder / "preprocessor_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.update(
        min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, size={"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS}
    )
    config_path.write_text(json.dumps(config), encoding="utf-8")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


class RecordingServer:
    """Stands in for the inference server's client: keeps what each page sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[tuple[int, int], str]] = []

    def complete(self, image: Image.Image, prompt: str, **_: object) -> Completion:
        self.sent.append((image.size, prompt))
        return Completion("[]", "stop", 0.0)


@pytest.mark.parametrize(
    ("page_size", "max_pixels", "task"),
    [
        ((4000, 3000), 12_000_000, Task.LAYOUT_TEXT),  # a budget above the checkpoint's own bound
        ((400, 520), 2_000, Task.REGION),  # a budget below the smallest image the processor takes
    ],
)
def test_local_and_remote_runs_send_the_same_image_and_prompt(
    published_dots: Path, monkeypatch: pytest.MonkeyPatch, page_size, max_pixels: int, task: Task
) -> None:
    """dots.ocr had two prepare functions that sized a page differently on a server than on this
    machine; now both runtimes use the engine's one prepare, so a page reads the same either way."""
    from ocr_studio.models.dots_ocr import DotsOCRProcessor

    page = Page.from_image(Image.new("RGB", page_size, "white"), number=1)
    region = (40.0, 60.0, 300.0, 200.0) if task is Task.REGION else None
    request = RecognizeRequest(task=task, region=region)
    local_settings = Settings(dots_model=str(published_dots), max_pixels=max_pixels, device="cpu")

    engine = get_engine("dots-ocr", local_settings)
    given: list[tuple[tuple[int, int], str]] = []

    def processor_call(self, images, prompts):  # what the local runtime hands the model
        given.extend((image.size, prompt) for image, prompt in zip(images, prompts, strict=True))
        return {}

    monkeypatch.setattr(DotsOCRProcessor, "__call__", processor_call)
    loaded = engine._load()
    engine._page_inputs(loaded, page, request, engine.max_pixels)

    server = RecordingServer()
    remote_settings = Settings(
        dots_model=str(published_dots), max_pixels=max_pixels, runtime="remote", remote_url="http://127.0.0.1:9/v1"
    )
    remote = RemoteEngine(get_engine("dots-ocr", local_settings), remote_settings, client=server)  # type: ignore[arg-type]
    [result] = remote.recognize([page], request)
    assert result.page_number == 1 and not result.truncated

    [(local_size, local_prompt)] = given
    [(remote_size, remote_prompt)] = server.sent
    assert remote_size == local_size
    assert local_size[0] * local_size[1] <= min(max_pixels, MAX_PIXELS)
    # the server's chat template gets the image placeholder the local processor expands itself
    assert remote_prompt == "<|img|><|imgpad|><|endofimg|>" + local_prompt


def test_every_registry_row_is_the_engine_it_builds() -> None:
    """The table says what each engine is; the engine built from the row agrees with it, so nothing
    needs to guess an engine's kind from the object."""
    local, remote = Settings(), Settings(runtime="remote", remote_url="http://127.0.0.1:9/v1")
    assert list(ENGINES)[0] == "text-layer" and {"dots-ocr", "dots-mocr", "qwen3-vl"} <= set(ENGINES)
    for name, row in ENGINES.items():
        info = get_engine(name, local).info()
        assert (info.name, info.tasks, info.needs_gpu) == (name, row.tasks, row.needs_gpu)
        served = get_engine(name, remote).info()
        if row.kind is EngineKind.VISION_MODEL:
            assert info.runs == "local" and info.model_id and served.runs == "server"
            assert info.model_setting == (row.setting or "qwen_model")
        else:
            assert info.runs == served.runs == "here" and not info.model_id


def test_model_sizes_come_from_the_families_table() -> None:
    """A published checkpoint is its row; a folder or fine-tune is matched by the size its name says."""
    assert [qwen3_vl_size(size.hub_id) for size in QWEN3_VL] == list(QWEN3_VL)
    assert qwen3_vl_size("/models/my-qwen3-vl-8b-finetune").tag == "8b"
    assert qwen3_vl_size("./checkpoints/qwen").tag == "2b"
    eight = get_engine("qwen3-vl-8b", Settings())
    assert (
        eight.weight_bytes
        > get_engine("qwen3-vl-4b", Settings()).weight_bytes
        > get_engine("qwen3-vl", Settings()).weight_bytes
    )
    assert eight.min_vram_gb == 20.0 and get_engine("qwen3-vl", Settings()).min_vram_gb == 0.0


def test_gpu_families_come_from_the_table() -> None:
    """A capability finds its family row; the profile's choices follow the row (a new architecture
    is one row, never a new comparison in code)."""
    from ocr_studio import gpu_families, hardware

    assert gpu_families.family_name((9, 0)) == "Hopper (sm_90)"
    assert gpu_families.family_name((8, 9)) == "Ada (sm_89)" and gpu_families.family((8, 6)).name == "Ampere"
    assert gpu_families.family_name((12, 0)) == "Blackwell consumer (sm_120)"
    assert gpu_families.family((3, 5)).name == "Maxwell or older"
    turing = hardware.GpuInfo(True, "NVIDIA T4", (7, 5), 16 * 1024**3)
    profile = hardware.choose_profile(turing, Settings())
    assert (profile.name, profile.dtype, profile.tf32) == ("Turing (sm_75)", "float16", False)
    hopper = hardware.choose_profile(hardware.GpuInfo(True, "NVIDIA H100", (9, 0), 80 * 1024**3), Settings())
    assert (hopper.name, hopper.dtype, hopper.tf32) == ("Hopper (sm_90)", "bfloat16", True)


@pytest.mark.parametrize("max_pixels", [0, 50_000])
def test_qwen3_vl_local_and_remote_runs_send_the_same_image_and_prompt(
    monkeypatch: pytest.MonkeyPatch, max_pixels: int
) -> None:
    """Qwen3-VL's local runtime builds its model inputs from the same prepare the server is sent."""
    from types import SimpleNamespace

    from ocr_studio.engines import qwen3_vl

    page = Page.from_image(Image.new("L", (1700, 2200), "white"), number=4)
    request = RecognizeRequest(task=Task.MARKDOWN)
    settings = Settings(max_pixels=max_pixels, device="cpu")
    given: list[tuple[tuple[int, int], str]] = []

    def record(processor, resized, prompt, budget):  # what the local runtime hands the processor
        given.extend((image.size, prompt) for image in resized)
        return {}

    monkeypatch.setattr(qwen3_vl, "model_inputs", record)
    engine = get_engine("qwen3-vl", settings)
    engine._page_inputs(SimpleNamespace(processor=None), page, request, engine.max_pixels)

    server = RecordingServer()
    remote_settings = Settings(max_pixels=max_pixels, runtime="remote", remote_url="http://127.0.0.1:9/v1")
    RemoteEngine(get_engine("qwen3-vl", settings), remote_settings, client=server).recognize([page], request)  # type: ignore[arg-type]

    assert given == server.sent and len(given) == 1
    (width, height), prompt = given[0]
    assert width % 32 == 0 and height % 32 == 0 and width * height <= engine.max_pixels
    assert prompt == qwen3_vl.PROMPTS[Task.MARKDOWN]
