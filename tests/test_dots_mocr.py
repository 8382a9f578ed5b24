"""dots.mocr, dots.ocr's successor, as a model choice next to dots.ocr (issue 22).

The same architecture and config shapes, so a tiny checkpoint of that architecture, saved with
``save_pretrained`` to a folder and named by the ``dots_mocr_model`` setting, must load through
the real path (engine -> model manager -> our native classes) and read pages from the CLI and
the studio. Random weights write arbitrary tokens: the page tests check structure, never content.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from ocr_studio.documents import Page
from ocr_studio.engines import REGISTRY, EngineError, RecognizeRequest, Task, engine_infos, engine_names, get_engine
from ocr_studio.engines.dots_families import DOTS_MOCR, DOTS_OCR, FAMILIES
from ocr_studio.engines.dots_ocr import ResizeBounds
from ocr_studio.engines.dots_parsing import read_page, strip_code_fence
from ocr_studio.engines.dots_prompts import PROMPT_LAYOUT_ALL_EN, UnsupportedTaskError, prompt_for
from ocr_studio.hardware import GpuInfo
from ocr_studio.settings import Settings

REPO = Path(__file__).resolve().parents[1]
NEW_TOKENS = 24
WEB_PROMPT = "Parsing the layout info of this webpage image with format json:\n"  # dots_mocr/utils/prompts.py
SCENE_PROMPT = "Detect and recognize the text in the image."


@pytest.fixture(scope="module")
def tiny_mocr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny checkpoint of the dots architecture, written with save_pretrained like a downloaded one."""
    from tests.tiny_dots import build_tiny_dots_ocr

    return build_tiny_dots_ocr(tmp_path_factory.mktemp("tiny-dots-mocr"))


def settings_for(folder: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"dots_mocr_model": str(folder), "max_new_tokens": NEW_TOKENS, "device": "cpu"}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def photo(width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height), (90, 120, 90))
    draw = ImageDraw.Draw(image)
    draw.rectangle((30, 40, width - 30, 110), fill="white")
    draw.text((40, 60), "EXIT 12", fill="black")
    return image


def assert_page_structure(result, page: Page, engine: str, task: Task) -> None:
    """One result for the page, in page pixels, the model's text kept (as blocks or one raw block)."""
    assert (result.page_number, result.width, result.height) == (page.number, *page.size)
    assert (result.engine, result.task) == (engine, task.value)
    for block in result.blocks:
        if block.bbox is not None:
            x1, y1, x2, y2 = block.bbox
            assert 0 <= x1 < x2 <= result.width and 0 <= y1 < y2 <= result.height
    if not result.raw_text.strip():
        assert result.blocks == [] and result.warnings
    elif any("raw text is kept" in w for w in result.warnings):
        assert [b.text for b in result.blocks] == [strip_code_fence(result.raw_text)]
    else:
        assert result.blocks


# --- the choice --------------------------------------------------------------------------------------


def test_dots_mocr_is_offered_next_to_dots_ocr_with_its_licence(monkeypatch) -> None:
    assert engine_names().index("dots-mocr") == engine_names().index("dots-ocr") + 1
    assert set(FAMILIES) <= set(REGISTRY)  # every family row has its registry row
    for family in FAMILIES.values():  # each setting's default is the family's published checkpoint
        assert getattr(Settings(), family.setting) == family.default_model
    gpu = GpuInfo(available=True, name="Test GPU", capability=(12, 0), total_memory_bytes=16 * 1024**3)
    monkeypatch.setattr("ocr_studio.hardware.probe", lambda: gpu)
    mocr = get_engine("dots-mocr", Settings()).info()
    assert (mocr.name, mocr.label) == ("dots-mocr", "dots.mocr (layout + text, web pages, photos; GPU)")
    assert mocr.tasks == (Task.LAYOUT_TEXT, Task.LAYOUT, Task.TEXT, Task.REGION, Task.WEB, Task.SCENE)
    assert mocr.default_task is Task.LAYOUT_TEXT and mocr.needs_gpu
    assert "dots.mocr LICENSE AGREEMENT" in mocr.reason and "Лицензия" in mocr.reason.render("ru")
    ocr = get_engine("dots-ocr", Settings()).info()
    assert ocr.tasks == DOTS_OCR.tasks == (Task.LAYOUT_TEXT, Task.LAYOUT, Task.TEXT, Task.REGION)
    assert ocr.reason == ""  # dots.ocr's choice is as it was


def test_the_new_prompt_modes_are_the_published_strings_and_only_dots_mocr_has_them(tmp_path: Path) -> None:
    assert prompt_for(Task.WEB, modes=DOTS_MOCR.modes) == WEB_PROMPT
    assert prompt_for(Task.SCENE, modes=DOTS_MOCR.modes) == SCENE_PROMPT
    assert prompt_for(Task.LAYOUT_TEXT, modes=DOTS_MOCR.modes) == PROMPT_LAYOUT_ALL_EN  # dots.ocr's modes unchanged
    with pytest.raises(UnsupportedTaskError):
        prompt_for(Task.WEB)  # dots.ocr's table
    page = Page.from_image(photo(200, 150), number=1)
    dots_ocr = get_engine("dots-ocr", Settings(dots_model=str(tmp_path / "never-loaded"), device="cpu"))
    with pytest.raises(EngineError, match="cannot do"):
        dots_ocr.recognize([page], RecognizeRequest(task=Task.SCENE))


def test_a_model_not_downloaded_names_the_dots_mocr_setting(monkeypatch, tmp_path: Path) -> None:
    from ocr_studio.runtime import availability

    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    availability.forget()
    try:
        infos = {info.name: info for info in engine_infos(Settings())}
        mocr = infos["dots-mocr"]
        assert not mocr.available
        assert "rednote-hilab/dots.mocr" in mocr.reason and "dots_mocr_model" in mocr.reason
        assert "dots_model" in infos["dots-ocr"].reason and "dots_mocr_model" not in infos["dots-ocr"].reason
        folder = tmp_path / "my-mocr"
        folder.mkdir()
        assert "no config.json" in {i.name: i for i in engine_infos(settings_for(folder))}["dots-mocr"].reason
    finally:
        availability.forget()


# --- reading answers ---------------------------------------------------------------------------------


def test_a_scene_answer_becomes_one_block_per_spotted_line_in_page_pixels() -> None:
    raw = "(10, 20), (110, 22), (108, 40), (12, 38) EXIT 12\n(200, 50), (300, 50), (300, 90), (200, 90) Platform (2)\n"
    reading = read_page(raw, Task.SCENE, resized_size=(400, 200), page_size=(800, 400))
    assert [(b.text, b.category) for b in reading.blocks] == [("EXIT 12", "Text"), ("Platform (2)", "Text")]
    assert [b.bbox for b in reading.blocks] == [(20.0, 40.0, 220.0, 80.0), (400.0, 100.0, 600.0, 180.0)]
    assert reading.warnings == []
    kept = read_page("no corners here", Task.SCENE, resized_size=(400, 200), page_size=(800, 400))
    assert [(b.bbox, b.text) for b in kept.blocks] == [(None, "no corners here")]
    assert "raw text is kept" in kept.warnings[0]
    assert read_page("  ", Task.SCENE, resized_size=(400, 200), page_size=(800, 400)).blocks == []


def test_a_web_answer_is_read_as_layout_elements() -> None:
    raw = json.dumps(
        [
            {"bbox": [0, 0, 400, 30], "category": "Page-header", "text": "Example News"},
            {"bbox": [20, 40, 380, 80], "category": "Title", "text": "# Headline"},
            {"bbox": [20, 90, 380, 190], "category": "Text", "text": "Body text."},
        ]
    )
    reading = read_page(raw, Task.WEB, resized_size=(400, 200), page_size=(800, 400))
    assert [(b.category, b.text) for b in reading.blocks] == [
        ("Page-header", "Example News"),
        ("Title", "# Headline"),
        ("Text", "Body text."),
    ]
    assert reading.blocks[1].bbox == (40.0, 80.0, 760.0, 160.0)


# --- the real path: a checkpoint folder, the model manager, our native classes --------------------------


def test_dots_mocr_loads_a_checkpoint_folder_and_reads_pages(tiny_mocr: Path) -> None:
    from ocr_studio.models.dots_ocr import DotsOCRForCausalLM
    from ocr_studio.models.manager import model_manager

    engine = get_engine("dots-mocr", settings_for(tiny_mocr))
    assert engine.model_id == str(tiny_mocr)
    pages = [Page.from_image(photo(420, 300), number=1), Page.from_image(photo(300, 420), number=2)]
    for task in (Task.LAYOUT_TEXT, Task.WEB, Task.SCENE):
        results = engine.recognize(pages, RecognizeRequest(task=task))
        assert len(results) == 2
        for result, page in zip(results, pages, strict=True):
            assert_page_structure(result, page, "dots-mocr", task)
    loaded = engine._load()
    assert isinstance(loaded.model, DotsOCRForCausalLM)  # ours, not the checkpoint's remote code
    assert any(info.key.model_id == str(tiny_mocr) for info in model_manager().loaded())
    bounds = ResizeBounds.of(loaded.processor)
    prepared = engine.prepare(pages[0], RecognizeRequest(task=Task.WEB), engine.max_pixels, bounds)
    assert prepared.prompt == WEB_PROMPT
    assert engine.settings_key()["engine"] == "dots-mocr"  # its jobs never share dots.ocr's cache


def test_the_remote_runtime_sends_dots_mocr_prompts_and_reads_the_answer() -> None:
    """What an inference server (vLLM serves dots.mocr as DotsOCRForCausalLM) is sent: the image
    placeholder, then the mode's prompt, as dots.mocr's own client (dots_mocr/model/inference.py) sends it."""
    from ocr_studio.runtime.remote import RemoteEngine

    settings = Settings(
        runtime="remote", remote_url="http://127.0.0.1:9/v1", remote_model="dots-mocr", max_pixels=100_000
    )
    assert isinstance(get_engine("dots-mocr", settings), RemoteEngine)  # no connection is made to build it
    engine = get_engine("dots-mocr", Settings(max_pixels=100_000))
    page = Page.from_image(photo(420, 300), number=2)
    request = RecognizeRequest(task=Task.SCENE)
    prepared = engine.prepare(page, request)
    assert prepared.server_prefix + prepared.prompt == "<|img|><|imgpad|><|endofimg|>" + SCENE_PROMPT
    width, height = prepared.image.size
    assert width % 28 == 0 and height % 28 == 0 and width * height <= 100_000
    answer = f"(0, 0), ({width}, 0), ({width}, {height // 2}), (0, {height // 2}) EXIT 12"
    result = engine.parse(prepared, answer, stop_reason="eos", request=request)
    assert (result.engine, result.task, result.page_number) == ("dots-mocr", "scene", 2)
    [block] = result.blocks
    assert block.text == "EXIT 12" and block.bbox is not None
    assert block.bbox[:3] == (0.0, 0.0, 420.0) and abs(block.bbox[3] - 150) < 300 / height + 1


def cli_env(tiny_mocr: Path, tmp_path: Path) -> dict[str, str]:
    """The CLI's environment as a user sets it: the model setting points at the checkpoint folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCR_STUDIO_")}
    env.update(
        OCR_STUDIO_CONFIG=str(tmp_path / "absent-config.toml"),
        OCR_STUDIO_DOTS_MOCR_MODEL=str(tiny_mocr),
        OCR_STUDIO_MAX_NEW_TOKENS=str(NEW_TOKENS),
        OCR_STUDIO_DEVICE="cpu",
        HF_HUB_OFFLINE="1",
    )
    return env


def test_doctor_lists_dots_mocr_with_its_licence(tiny_mocr: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "ocr_studio", "doctor"]
    env = cli_env(tiny_mocr, tmp_path)
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.strip().startswith("dots-mocr")]
    assert "unavailable" not in line and "dots.mocr LICENSE AGREEMENT" in line


def test_the_cli_converts_with_dots_mocr(tiny_mocr: Path, tmp_path: Path) -> None:
    import pymupdf

    source = tmp_path / "screenshot.pdf"
    document = pymupdf.open()
    page = document.new_page(width=200, height=260)
    page.insert_text((20, 40), "Home | News | Contact", fontsize=10)
    document.save(source)
    document.close()
    out = tmp_path / "out"
    env = cli_env(tiny_mocr, tmp_path)
    command = [sys.executable, "-m", "ocr_studio", "convert", str(source), "-o", str(out), "--engine", "dots-mocr"]
    command += ["--task", "web", "--workspace", str(tmp_path / "ws"), "--dpi", "72", "--format", "json", "-q"]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    [exported] = list(out.rglob("screenshot.json"))
    [page_json] = json.loads(exported.read_text(encoding="utf-8"))["pages"]
    assert (page_json["engine"], page_json["task"]) == ("dots-mocr", "web")
    assert (page_json["width"], page_json["height"]) == (200, 260)
    assert "raw_text" in page_json


def test_the_studio_offers_dots_mocr_tasks_and_reads_a_photo(tiny_mocr: Path, tmp_path: Path) -> None:
    from ocr_studio.ui import build_app

    studio = build_app(settings_for(tiny_mocr, workspace=tmp_path / "ws", dpi=72)).studio  # type: ignore[attr-defined]
    assert "dots-mocr" in [name for _, name in studio.engine_labels()]
    changed = studio.engine_changed("dots-mocr")
    offered = [value for _, value in changed[studio.task]["choices"]]
    assert offered == ["layout_text", "layout", "text", "region", "web", "scene"]
    assert "dots.mocr LICENSE AGREEMENT" in changed[studio.engine_info]  # the licence, where the model is chosen
    picture = tmp_path / "sign.png"
    photo(320, 240).save(picture)
    status, _markdown, files = studio.convert([str(picture)], "dots-mocr", "scene", "", "")
    assert not status.startswith(("Error", "Failed")), status
    exported = next(Path(f) for f in files if Path(f).suffix == ".json")
    [page_json] = json.loads(exported.read_text(encoding="utf-8"))["pages"]
    assert (page_json["engine"], page_json["task"], page_json["width"]) == ("dots-mocr", "scene", 320)
