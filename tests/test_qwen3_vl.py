"""The Qwen3-VL engine end to end on a tiny random checkpoint (CPU), through the registry
and the CLI like a user; plus its resize rule and its output parsing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from ocr_studio.engines import EngineError, RecognizeRequest, Task, get_engine  # noqa: E402
from ocr_studio.engines.qwen3_vl import fit_size, parse_layout  # noqa: E402
from ocr_studio.settings import Settings  # noqa: E402
from ocr_studio.text_markup import printable  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _pages(tmp_path, sizes=((300, 200), (160, 400))):
    from PIL import Image, ImageDraw

    from ocr_studio.documents import open_document

    pages = []
    for index, size in enumerate(sizes):
        image = Image.new("RGB", size, "white")
        ImageDraw.Draw(image).text((10, 10), f"Page {index + 1}: total 42.00", fill="black")
        path = tmp_path / f"page{index + 1}.png"
        image.save(path)
        pages.append(next(open_document(path).pages()))
    return pages


def _settings(tmp_path, model, **kwargs) -> Settings:
    return Settings(
        workspace=tmp_path / "ws",
        qwen_model=str(model),
        device="cpu",
        max_new_tokens=24,
        max_pixels=256 * 256,
        **kwargs,
    )


def test_engine_reads_pages_through_the_registry(tmp_path, tiny_qwen3_vl):
    engine = get_engine("qwen3-vl", _settings(tmp_path, tiny_qwen3_vl, batch_size=2))
    info = engine.info()
    assert info.needs_gpu and info.available
    assert Task.MARKDOWN in info.tasks and Task.LAYOUT_TEXT in info.tasks
    pages = _pages(tmp_path)
    streamed: list[str] = []
    results = engine.recognize(pages, RecognizeRequest(task=Task.TEXT, on_text=streamed.append))
    assert [r.page_number for r in results] == [1, 1]
    assert [(r.width, r.height) for r in results] == [(300, 200), (160, 400)]
    for result in results:
        assert result.engine == "qwen3-vl" and result.task == "text"
        assert result.raw_text  # random weights: some text, content arbitrary
        assert result.text() == printable(result.raw_text).strip()  # the text views drop control characters
    assert streamed and streamed[-1] == results[0].raw_text  # the stream ends on the final text
    assert all(a == b[: len(a)] for a, b in zip(streamed, streamed[1:], strict=False))


def test_batched_pages_equal_pages_read_alone(tmp_path, tiny_qwen3_vl):
    pages = _pages(tmp_path)
    together = get_engine("qwen3-vl", _settings(tmp_path, tiny_qwen3_vl, batch_size=2)).recognize(
        pages, RecognizeRequest(task=Task.MARKDOWN)
    )
    alone = get_engine("qwen3-vl", _settings(tmp_path, tiny_qwen3_vl, batch_size=1)).recognize(
        pages, RecognizeRequest(task=Task.MARKDOWN)
    )
    assert [r.raw_text for r in together] == [r.raw_text for r in alone]


def test_layout_output_that_is_not_json_is_kept_as_text(tmp_path, tiny_qwen3_vl):
    engine = get_engine("qwen3-vl", _settings(tmp_path, tiny_qwen3_vl))
    (result,) = engine.recognize(_pages(tmp_path)[:1], RecognizeRequest(task=Task.LAYOUT_TEXT))
    assert result.raw_text.strip()
    assert result.text().strip() == printable(result.raw_text).strip()  # nothing lost but control characters
    assert any("raw text" in w for w in result.warnings)


def test_runaway_repetition_marks_the_page_truncated(tmp_path):
    """With the loop retry off (test_loop_retry.py covers it on), a loop is cut and the page marked."""
    from tests.tiny_models import build_tiny_qwen3_vl

    folder = build_tiny_qwen3_vl(tmp_path / "looping", repeat_forever=True)
    engine = get_engine(
        "qwen3-vl",
        _settings(tmp_path, folder).__class__(
            workspace=tmp_path / "ws",
            qwen_model=str(folder),
            device="cpu",
            max_new_tokens=600,
            max_pixels=256 * 256,
            loop_retry=False,
        ),
    )
    (result,) = engine.recognize(_pages(tmp_path)[:1], RecognizeRequest(task=Task.TEXT))
    assert result.truncated
    assert any("repeating" in w for w in result.warnings)
    assert 0 < len(result.raw_text) < 300


def test_token_limit_marks_the_page_truncated(tmp_path, tiny_qwen3_vl):
    engine = get_engine(
        "qwen3-vl",
        _settings(tmp_path, tiny_qwen3_vl).__class__(
            workspace=tmp_path / "ws", qwen_model=str(tiny_qwen3_vl), device="cpu", max_new_tokens=3, max_pixels=65536
        ),
    )
    results = engine.recognize(_pages(tmp_path), RecognizeRequest(task=Task.TEXT))
    for result in results:  # random weights rarely say EOS within 3 tokens; a page that did is not truncated
        assert result.truncated == any("limit of 3 new tokens" in w for w in result.warnings)
    assert any(r.truncated for r in results)


def test_missing_model_gives_a_clear_error(tmp_path):
    engine = get_engine("qwen3-vl", _settings(tmp_path, tmp_path / "no-such-model"))
    with pytest.raises(EngineError, match="does not exist"):
        engine.recognize(_pages(tmp_path)[:1], RecognizeRequest(task=Task.TEXT))


def test_eight_b_and_cpu_warnings(tmp_path, monkeypatch):
    """8B is offered with a warning on a card under 20 GB (the first user's 16 GB laptop);
    without a GPU every Qwen3-VL engine says it will be slow."""
    from ocr_studio.hardware import GpuInfo

    laptop = GpuInfo(available=True, name="RTX 5070 Ti Laptop", capability=(12, 0), total_memory_bytes=16 * 1024**3)
    monkeypatch.setattr("ocr_studio.hardware.probe", lambda: laptop)
    eight = get_engine("qwen3-vl-8b", Settings(workspace=tmp_path)).info()
    assert eight.available and eight.needs_gpu
    assert "20 GB" in eight.reason and "16 GB" in eight.reason
    assert get_engine("qwen3-vl", Settings(workspace=tmp_path)).info().reason == ""
    assert get_engine("qwen3-vl-4b", Settings(workspace=tmp_path)).info().reason == ""

    monkeypatch.setattr("ocr_studio.hardware.probe", lambda: GpuInfo(available=False, reason="no NVIDIA GPU"))
    for name in ("qwen3-vl", "qwen3-vl-4b", "qwen3-vl-8b"):
        assert "no GPU" in get_engine(name, Settings(workspace=tmp_path)).info().reason


def test_cli_converts_with_the_qwen_engine(tmp_path, tiny_qwen3_vl):
    _pages(tmp_path, sizes=((240, 180),))
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "OCR_STUDIO_QWEN_MODEL": str(tiny_qwen3_vl),
        "OCR_STUDIO_MAX_NEW_TOKENS": "16",
        "OCR_STUDIO_MAX_PIXELS": "65536",
        "OCR_STUDIO_DEVICE": "cpu",
        "OCR_STUDIO_WORKSPACE": str(tmp_path / "ws"),
        "OCR_STUDIO_CONFIG": str(tmp_path / "none.toml"),
        "PYTHONPATH": str(ROOT),
    }
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ocr_studio",
            "convert",
            str(tmp_path / "page1.png"),
            "-o",
            str(out),
            "--engine",
            "qwen3-vl",
            "--task",
            "text",
            "--format",
            "json",
            "-q",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    (written,) = list(out.rglob("*.json"))
    data = json.loads(written.read_text())
    assert data["pages"][0]["engine"] == "qwen3-vl"
    assert data["pages"][0]["raw_text"]


@pytest.mark.parametrize(
    ("size", "budget"),
    [((1700, 2200), 2_500_000), ((1280, 992), 2_500_000), ((5000, 300), 1_000_000), ((20, 20), 10**6)],
)
def test_fit_size_is_a_multiple_of_32_within_the_budget(size, budget):
    w, h = fit_size(*size, budget)
    assert w % 32 == 0 and h % 32 == 0
    assert w * h <= max(budget, 64 * 32 * 32)
    assert abs(w / h - size[0] / size[1]) / (size[0] / size[1]) < 0.2


def test_layout_json_with_fences_maps_coordinates_to_page_pixels():
    raw = '```json\n[{"bbox_2d": [100, 200, 500, 250], "category": "title", "text": "Report"}]\n```'
    blocks, warnings = parse_layout(raw, 2000, 1000)
    assert warnings == []
    assert blocks[0].bbox == (200.0, 200.0, 1000.0, 250.0)
    assert (blocks[0].category, blocks[0].text) == ("Title", "Report")


def test_truncated_layout_json_keeps_complete_elements():
    raw = '[{"bbox_2d": [0, 0, 1000, 100], "category": "Text", "text": "first"}, {"bbox_2d": [0, 100, 10'
    blocks, warnings = parse_layout(raw, 1000, 1000)
    assert [b.text for b in blocks] == ["first"]
    assert warnings


def test_a_job_reports_model_loading_then_reuses_the_loaded_model(tmp_path, tiny_qwen3_vl):
    """The first page says the model is loading (UI status line, CLI bar); a second job
    finds it in the manager and loads nothing."""
    from ocr_studio.jobs import JobSpec, JobStore, run_job
    from ocr_studio.models.manager import model_manager

    settings = _settings(tmp_path, tiny_qwen3_vl)
    model_manager(settings).unload_all()
    engine = get_engine("qwen3-vl", settings)
    image = tmp_path / "one.png"
    _pages(tmp_path, sizes=((200, 120),))  # writes page1.png
    (tmp_path / "page1.png").rename(image)
    statuses: list[str] = []

    def progress(event):
        if event.status:
            statuses.append(event.status)

    store = JobStore(settings.workspace)
    job = run_job(
        store.create(JobSpec([image], "qwen3-vl", Task.TEXT), engine, settings), engine, settings, progress=progress
    )
    assert job.status == "done"
    assert any("Loading" in s and str(tiny_qwen3_vl) in s for s in statuses), statuses
    loaded = model_manager(settings).loaded()
    assert len(loaded) == 1

    statuses.clear()
    other = run_job(
        store.create(JobSpec([image], "qwen3-vl", Task.MARKDOWN), engine, settings), engine, settings, progress=progress
    )
    assert other.status == "done" and statuses == []
    assert model_manager(settings).loaded()[0].loaded_at == loaded[0].loaded_at


def test_the_ui_api_converts_with_qwen3_vl(tmp_path, tiny_qwen3_vl):
    """The studio's /convert endpoint (what the Run button does) with the Qwen3-VL engine."""
    from gradio_client import Client, handle_file
    from PIL import Image, ImageDraw

    from tests.test_ui_client import start_server

    image = Image.new("RGB", (240, 160), "white")
    ImageDraw.Draw(image).text((10, 10), "Invoice 42", fill="black")
    path = tmp_path / "invoice.png"
    image.save(path)
    app, url = start_server(
        tmp_path / "workspace", qwen_model=str(tiny_qwen3_vl), max_new_tokens=16, max_pixels=256 * 256, device="cpu"
    )
    try:
        client = Client(url, verbose=False, download_files=str(tmp_path / "downloads"))
        status, markdown, files = client.predict(
            [handle_file(str(path))], "qwen3-vl", "markdown", "", "", api_name="/convert"
        )
    finally:
        app.close()
    assert status.startswith("Done"), status
    exported = next(Path(f) for f in files if Path(f).name == "invoice.json")
    [page] = json.loads(exported.read_text(encoding="utf-8"))["pages"]
    assert page["engine"] == "qwen3-vl" and (page["width"], page["height"]) == (240, 160)
    assert page["raw_text"] and printable(page["raw_text"]).strip() in markdown  # random weights: shown as is


def test_the_sidebar_lists_the_loaded_model_after_a_run_and_unloads_it(tmp_path, tiny_qwen3_vl):
    from PIL import Image

    from ocr_studio.models.manager import model_manager
    from ocr_studio.ui import build_app

    settings = _settings(tmp_path, tiny_qwen3_vl)
    model_manager(settings).unload_all()
    studio = build_app(settings).studio
    assert "No model loaded" in studio.loaded_models_text()
    path = tmp_path / "page.png"
    Image.new("RGB", (200, 120), "white").save(path)

    started = studio.run([str(path)], "qwen3-vl", "text", "", "", "", "local")
    studio.background.wait(started[studio.job_id], timeout=300)
    final = studio.poll(started[studio.job_id], None, None, -1)  # the tab's last tick after the run
    assert "Done" in final[studio.status], final[studio.status]
    assert str(tiny_qwen3_vl) in final[studio.models]
    choices = final[studio.model_menu]["choices"]
    assert len(choices) == 1 and str(tiny_qwen3_vl) in choices[0][1]
    assert str(tiny_qwen3_vl) in studio.loaded_models_text()  # what the timer refreshes

    after = studio.unload_model(choices[0][1])
    assert "No model loaded" in after[studio.models] and after[studio.model_menu]["choices"] == []
    assert not model_manager(settings).loaded()


def test_the_processor_keeps_each_page_as_resized_even_under_a_budget_below_min_pixels(tiny_qwen3_vl):
    """With max_pixels below MIN_PIXELS the resize rule keeps the budget (it re-checks after scaling
    up); the processor must then take each page as it is, alone or in a batch with larger pages."""
    from PIL import Image
    from transformers import AutoProcessor

    from ocr_studio.engines.qwen3_vl import MIN_PIXELS, build_inputs

    processor = AutoProcessor.from_pretrained(tiny_qwen3_vl)
    budget = MIN_PIXELS - 1
    small, large = Image.new("RGB", (96, 300), "white"), Image.new("RGB", (900, 700), "white")
    alone = build_inputs(processor, [small], "Read.", budget)["image_grid_thw"]
    together = build_inputs(processor, [small, large], "Read.", budget)["image_grid_thw"]
    assert alone[0].tolist() == together[0].tolist()
    assert all(int(t * h * w) * 16 * 16 <= budget for t, h, w in together.tolist())
