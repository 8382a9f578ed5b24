"""The dots.ocr engine end to end on a tiny random checkpoint: API, CLI and UI.

Random weights write arbitrary tokens, so these tests check structure (one result per
page, raw text kept, warnings, streaming, batching, retries), never content.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pymupdf
import pytest
import torch
from PIL import Image, ImageDraw

from ocr_studio.documents import Page
from ocr_studio.engines import EngineError, RecognizeRequest, Task, get_engine
from ocr_studio.engines.dots_ocr import DOTS_MAX_NEW_TOKENS, DotsOcrEngine, ResizeBounds
from ocr_studio.engines.dots_parsing import strip_code_fence, to_resized_box
from ocr_studio.engines.dots_prompts import PROMPT_GROUNDING_OCR, PROMPT_LAYOUT_ALL_EN
from ocr_studio.hardware import GpuInfo
from ocr_studio.settings import Settings

REPO = Path(__file__).resolve().parents[1]
NEW_TOKENS = 24


@pytest.fixture(scope="module")
def tiny_dots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_dots import build_tiny_dots_ocr

    return build_tiny_dots_ocr(tmp_path_factory.mktemp("tiny-dots"))


def settings_for(folder: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"dots_model": str(folder), "max_new_tokens": NEW_TOKENS, "device": "cpu"}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def page_image(width: int, height: int, words: str) -> Image.Image:
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((20, 20), words, fill="black")
    draw.rectangle((20, height // 2, width - 20, height // 2 + 40), outline="black")
    return image


@pytest.fixture(scope="module")
def pages() -> list[Page]:
    return [
        Page.from_image(page_image(400, 520, "Annual Report"), number=1),
        Page.from_image(page_image(600, 300, "Section 2"), number=2),
    ]


def assert_raw_text_is_kept(result) -> None:
    """Whatever the model wrote is in the result: as parsed blocks, or as one raw block with a warning."""
    if not result.raw_text.strip():
        assert result.blocks == [] and result.warnings
        return
    if any("raw text is kept" in w for w in result.warnings):
        assert [b.text for b in result.blocks] == [strip_code_fence(result.raw_text)]
    else:
        assert result.blocks


# --- the engine's description ------------------------------------------------------------------------


def test_info_describes_the_engine_and_warns_without_a_gpu(tiny_dots: Path, monkeypatch) -> None:
    engine = get_engine("dots-ocr", settings_for(tiny_dots))
    assert isinstance(engine, DotsOcrEngine)
    monkeypatch.setattr("ocr_studio.hardware.probe", lambda: GpuInfo(available=False, reason="none"))
    info = engine.info()
    assert (info.name, info.label) == ("dots-ocr", "dots.ocr (layout + text, GPU)")
    assert info.tasks == (Task.LAYOUT_TEXT, Task.LAYOUT, Task.TEXT, Task.REGION)
    assert info.default_task is Task.LAYOUT_TEXT
    assert info.needs_gpu and info.available
    assert info.reason == "no GPU: very slow on the CPU"
    gpu = GpuInfo(available=True, name="Test GPU", capability=(12, 0), total_memory_bytes=16 * 1024**3)
    monkeypatch.setattr("ocr_studio.hardware.probe", lambda: gpu)
    assert get_engine("dots-ocr", settings_for(tiny_dots, device="auto")).info().reason == ""


def test_the_token_budget_is_raised_for_whole_page_json_unless_set(tiny_dots: Path) -> None:
    assert DotsOcrEngine(Settings(dots_model=str(tiny_dots))).max_new_tokens == DOTS_MAX_NEW_TOKENS
    assert DotsOcrEngine(Settings(dots_model=str(tiny_dots), max_new_tokens=2000)).max_new_tokens == 2000
    key = DotsOcrEngine(settings_for(tiny_dots, max_pixels=1_000_000)).settings_key()
    assert key == {"engine": "dots-ocr", "model": str(tiny_dots), "max_pixels": 1_000_000, "max_new_tokens": 24}


def test_a_missing_model_is_a_clear_engine_error(tmp_path: Path, pages: list[Page]) -> None:
    engine = get_engine("dots-ocr", settings_for(tmp_path / "no-such-model"))
    with pytest.raises(EngineError, match="dots.ocr cannot be loaded") as caught:
        engine.recognize(pages[:1], RecognizeRequest(task=Task.LAYOUT_TEXT))
    assert "no-such-model" in str(caught.value)


def test_bad_requests_are_refused_before_loading_anything(tmp_path: Path, pages: list[Page]) -> None:
    engine = get_engine("dots-ocr", settings_for(tmp_path / "never-loaded"))
    with pytest.raises(EngineError, match="box"):
        engine.recognize(pages[:1], RecognizeRequest(task=Task.REGION))
    with pytest.raises(EngineError, match="cannot do"):
        engine.recognize(pages[:1], RecognizeRequest(task=Task.MARKDOWN))


# --- recognition on the tiny checkpoint -----------------------------------------------------------------


def test_layout_text_gives_one_result_per_page_and_streams_the_first(tiny_dots: Path, pages: list[Page]) -> None:
    # 21 tokens: the last few arrive after the last periodic update, so only the final one shows them
    engine = get_engine("dots-ocr", settings_for(tiny_dots, batch_size=2, max_new_tokens=21))
    streamed: list[str] = []
    results = engine.recognize(pages, RecognizeRequest(task=Task.LAYOUT_TEXT, on_text=streamed.append))
    assert [r.page_number for r in results] == [1, 2]
    assert [(r.width, r.height) for r in results] == [(400, 520), (600, 300)]
    for result in results:
        assert (result.engine, result.task) == ("dots-ocr", "layout_text")
        assert_raw_text_is_kept(result)
        if result.truncated:
            assert result.warnings
        for block in result.blocks:
            if block.bbox is not None:
                x1, y1, x2, y2 = block.bbox
                assert 0 <= x1 < x2 <= result.width and 0 <= y1 < y2 <= result.height
    assert streamed and streamed[-1] == results[0].raw_text


def test_a_batch_reads_each_page_as_it_would_alone(tiny_dots: Path, pages: list[Page]) -> None:
    batched = get_engine("dots-ocr", settings_for(tiny_dots, batch_size=2))
    single = get_engine("dots-ocr", settings_for(tiny_dots, batch_size=1))
    request = RecognizeRequest(task=Task.LAYOUT_TEXT)
    together = batched.recognize(pages, request)
    alone = single.recognize(pages, request)
    assert [r.raw_text for r in together] == [r.raw_text for r in alone]


@pytest.mark.parametrize("task", [Task.LAYOUT, Task.TEXT])
def test_other_tasks_keep_the_raw_text(tiny_dots: Path, pages: list[Page], task: Task) -> None:
    results = get_engine("dots-ocr", settings_for(tiny_dots)).recognize(pages[:1], RecognizeRequest(task=task))
    assert len(results) == 1 and results[0].task == task.value
    result = results[0]
    if task is Task.TEXT and result.raw_text.strip():
        assert [(b.bbox, b.text) for b in result.blocks] == [(None, strip_code_fence(result.raw_text))]
    else:
        assert_raw_text_is_kept(result)


def test_a_region_is_sent_in_resized_pixels_and_kept_in_page_pixels(tiny_dots: Path, pages: list[Page]) -> None:
    engine = get_engine("dots-ocr", settings_for(tiny_dots))
    loaded = engine._load()
    region = (40.0, 60.0, 300.0, 200.0)
    request = RecognizeRequest(task=Task.REGION, region=region)
    prepared = engine.prepare(pages[0], request, engine.max_pixels, ResizeBounds.of(loaded.processor))
    assert prepared.context != prepared.page_size  # the tiny processor shrinks the page
    assert prepared.image.size == prepared.context
    box = to_resized_box(region, prepared.page_size, prepared.context)
    assert prepared.prompt == PROMPT_GROUNDING_OCR + "[{}, {}, {}, {}]".format(*box)
    [result] = engine.recognize(pages[:1], request)
    if result.raw_text.strip():
        assert [b.bbox for b in result.blocks] == [region]


def test_the_page_is_resized_to_the_pixel_budget(tiny_dots: Path, pages: list[Page]) -> None:
    engine = get_engine("dots-ocr", settings_for(tiny_dots, max_pixels=28 * 28 * 20))
    bounds = ResizeBounds.of(engine._load().processor)
    prepared = engine.prepare(pages[0], RecognizeRequest(Task.LAYOUT_TEXT), 28 * 28 * 20, bounds)
    width, height = prepared.context
    assert width % 28 == 0 and height % 28 == 0 and width * height <= 28 * 28 * 20
    assert prepared.prompt == PROMPT_LAYOUT_ALL_EN


def test_a_page_the_model_cannot_take_is_reported_and_the_others_read(tiny_dots: Path, pages: list[Page]) -> None:
    sliver = Page.from_image(Image.new("RGB", (6000, 20), "white"), number=3)
    results = get_engine("dots-ocr", settings_for(tiny_dots, batch_size=2)).recognize(
        [sliver, pages[0]], RecognizeRequest(task=Task.LAYOUT_TEXT)
    )
    assert [r.page_number for r in results] == [3, 1]
    assert results[0].blocks == [] and "cannot read this page" in results[0].warnings[0]
    assert_raw_text_is_kept(results[1])


# --- out of GPU memory ------------------------------------------------------------------------------------


def _oom_when(engine: DotsOcrEngine, monkeypatch, refuse) -> list[dict]:
    """Make the engine's generator run out of memory whenever ``refuse(inputs)`` is true."""
    loaded = engine._load()
    real = loaded.generator.generate
    calls: list[dict] = []

    def generate(inputs, config, on_tokens=None):
        calls.append(inputs)
        if refuse(inputs):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(inputs, config, on_tokens)

    monkeypatch.setattr(loaded.generator, "generate", generate)
    return calls


def test_out_of_memory_in_a_batch_retries_smaller_and_says_so(tiny_dots: Path, pages: list[Page], monkeypatch) -> None:
    engine = get_engine("dots-ocr", settings_for(tiny_dots, batch_size=2))
    calls = _oom_when(engine, monkeypatch, lambda inputs: inputs["input_ids"].shape[0] > 1)
    results = engine.recognize(pages, RecognizeRequest(task=Task.LAYOUT_TEXT))
    assert [r.page_number for r in results] == [1, 2]
    assert [c["input_ids"].shape[0] for c in calls] == [2, 1, 1]
    assert all(any("smaller batch" in w for w in r.warnings) for r in results)


def test_out_of_memory_on_one_page_lowers_the_resolution(tiny_dots: Path, pages: list[Page], monkeypatch) -> None:
    # the tiny processor's own bound is 64 merged patches; ask for more so halving the budget shows
    engine = get_engine("dots-ocr", settings_for(tiny_dots, max_pixels=28 * 28 * 40))
    calls = _oom_when(engine, monkeypatch, lambda inputs: inputs["image_grid_thw"][0].prod().item() > 4 * 20)
    [result] = engine.recognize(pages[:1], RecognizeRequest(task=Task.LAYOUT_TEXT))
    assert len(calls) == 2
    assert any("lower resolution" in w for w in result.warnings)
    assert_raw_text_is_kept(result)


def test_a_page_that_never_fits_is_skipped_with_a_warning(tiny_dots: Path, pages: list[Page], monkeypatch) -> None:
    engine = get_engine("dots-ocr", settings_for(tiny_dots))
    _oom_when(engine, monkeypatch, lambda inputs: True)
    [result] = engine.recognize(pages[:1], RecognizeRequest(task=Task.LAYOUT_TEXT))
    assert result.blocks == [] and result.truncated
    assert "Not enough GPU memory" in result.warnings[0]


# --- through the CLI and the UI ------------------------------------------------------------------------


def make_pdf(path: Path, pages: int) -> Path:
    document = pymupdf.open()
    for number in range(1, pages + 1):
        page = document.new_page(width=200, height=260)
        page.insert_text((20, 40), f"Page {number} of a small report", fontsize=10)
    document.save(path)
    document.close()
    return path


def test_the_cli_converts_with_dots_ocr(tiny_dots: Path, tmp_path: Path) -> None:
    source = make_pdf(tmp_path / "report.pdf", 2)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCR_STUDIO_")}
    env.update(
        OCR_STUDIO_CONFIG=str(tmp_path / "absent-config.toml"),
        OCR_STUDIO_DOTS_MODEL=str(tiny_dots),
        OCR_STUDIO_MAX_NEW_TOKENS=str(NEW_TOKENS),
        OCR_STUDIO_DEVICE="cpu",
        HF_HUB_OFFLINE="1",
    )
    command = [sys.executable, "-m", "ocr_studio", "convert", str(source), "-o", str(out), "--engine", "dots-ocr"]
    command += ["--workspace", str(tmp_path / "workspace"), "--dpi", "72", "--format", "json,md", "-q"]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    [exported] = list(out.rglob("report.json"))
    document = json.loads(exported.read_text(encoding="utf-8"))
    assert [p["page_number"] for p in document["pages"]] == [1, 2]
    for page in document["pages"]:
        assert page["engine"] == "dots-ocr" and page["task"] == "layout_text"
        assert page["width"] == 200 and page["height"] == 260  # 72 DPI: page pixels = points
        assert "raw_text" in page
    assert list(out.rglob("report.md"))


def test_the_ui_api_converts_with_dots_ocr(tiny_dots: Path, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    from tests.test_ui_client import start_server

    app, url = start_server(
        tmp_path / "workspace", dots_model=str(tiny_dots), max_new_tokens=NEW_TOKENS, device="cpu", dpi=72
    )
    try:
        client = Client(url, verbose=False, download_files=str(tmp_path / "downloads"))
        pdf = make_pdf(tmp_path / "memo.pdf", 1)
        status, _markdown, files = client.predict(
            [handle_file(str(pdf))], "dots-ocr", "layout_text", "", "", api_name="/convert"
        )
    finally:
        app.close()
    assert not status.startswith("Error"), status
    exported = next(Path(f) for f in files if Path(f).name == "memo.json")
    [page] = json.loads(exported.read_text(encoding="utf-8"))["pages"]
    assert page["engine"] == "dots-ocr" and page["width"] == 200
