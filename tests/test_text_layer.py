"""The no-GPU engine: a PDF's own text with positions, Tesseract OCR for images, and a
clear message when neither is possible."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest
from PIL import Image

from ocr_studio.documents import Limits, open_document
from ocr_studio.engines import get_engine
from ocr_studio.engines import text_layer as text_layer_module
from ocr_studio.engines.base import RecognizeRequest, Task
from ocr_studio.engines.text_layer import NO_TESSERACT, TextLayerEngine
from ocr_studio.settings import Settings

OCR_LINES = ["The quick brown fox jumps", "over the lazy dog 1234."]


def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def character_error_rate(found: str, expected: str) -> float:
    return levenshtein(" ".join(found.split()), " ".join(expected.split())) / len(expected)


def make_text_pdf(path: Path, texts: list[tuple[tuple[float, float], str, float]], *, rotation: int = 0) -> Path:
    """A one-page PDF (400 × 300 pt) with each text inserted at its point and font size."""
    doc = pymupdf.open()
    page = doc.new_page(width=400, height=300)
    for point, text, size in texts:
        page.insert_text(point, text, fontsize=size)
    if rotation:
        page.set_rotation(rotation)
    doc.save(path)
    doc.close()
    return path


def make_image_of_text(path: Path, lines: list[str], dpi: int = 200) -> Path:
    """A PNG of clearly printed text: no text layer, only pixels."""
    doc = pymupdf.open()
    page = doc.new_page(width=420, height=160)
    for n, line in enumerate(lines):
        page.insert_text((30, 60 + 50 * n), line, fontsize=26, fontname="helv")
    page.get_pixmap(dpi=dpi).save(path)
    doc.close()
    return path


def recognize(path: Path, task: Task = Task.TEXT, *, dpi: int = 200, settings: Settings | None = None, **kw):
    """The engine's results for every page of ``path``, and the first page's image."""
    engine = TextLayerEngine(settings or Settings())
    with open_document(path, limits=Limits(dpi=dpi)) as document:
        pages = list(document.pages())
        results = engine.recognize(pages, RecognizeRequest(task=task, **kw))
        return pages[0].image, results


@pytest.mark.parametrize("dpi", [72, 200])
def test_pdf_text_comes_back_with_positions_in_page_pixels(tmp_path: Path, dpi: int) -> None:
    pdf = make_text_pdf(
        tmp_path / "known.pdf",
        [((50, 80), "Invoice number 4711", 12), ((220, 250), "Total due: 99.50 EUR", 12)],
    )
    image, [result] = recognize(pdf, dpi=dpi)
    scale = dpi / 72
    assert (result.width, result.height) == image.size
    assert result.width == pytest.approx(400 * scale, abs=1) and result.height == pytest.approx(300 * scale, abs=1)
    assert result.engine == "text-layer" and result.task == "text" and result.page_number == 1
    assert not result.warnings
    by_text = {block.text: block for block in result.blocks}
    assert set(by_text) == {"Invoice number 4711", "Total due: 99.50 EUR"}
    for (x, y), text in (((50, 80), "Invoice number 4711"), ((220, 250), "Total due: 99.50 EUR")):
        x1, y1, x2, y2 = by_text[text].bbox
        px, py = x * scale, y * scale  # the insertion point is on the baseline, at the text's left edge
        assert x1 - 1 <= px <= x1 + 2 and px < x2
        assert y1 < py - 3 and py <= y2 + 1  # text rises above the baseline
        assert (y2 - y1) < 20 * scale  # one line of 12 pt text, not the whole page
    assert "Invoice number 4711" in result.raw_text


def test_text_layer_positions_follow_a_rotated_page(tmp_path: Path) -> None:
    pdf = make_text_pdf(tmp_path / "rotated.pdf", [((50, 80), "Rotated words", 20)], rotation=90)
    image, [result] = recognize(pdf, dpi=100)
    [block] = result.blocks
    image = image.convert("L")
    assert image.size == (result.width, result.height)
    assert result.width == pytest.approx(300 * 100 / 72, abs=1)  # width and height swap
    assert result.height == pytest.approx(400 * 100 / 72, abs=1)
    x1, y1, x2, y2 = block.bbox
    assert 0 <= x1 < x2 <= image.width and 0 <= y1 < y2 <= image.height
    assert y2 - y1 > x2 - x1  # the line runs down the rotated page
    inside = image.crop((int(x1), int(y1), int(x2) + 1, int(y2) + 1))
    assert inside.getextrema()[0] < 100  # the ink is inside the box...
    image.paste(255, (int(x1) - 1, int(y1) - 1, int(x2) + 2, int(y2) + 2))
    assert image.getextrema()[0] > 200  # ...and none outside it


def test_large_text_becomes_the_title_in_markdown(tmp_path: Path) -> None:
    pdf = make_text_pdf(
        tmp_path / "titled.pdf",
        [((40, 60), "Annual Report", 30), ((40, 120), "Revenue grew by ten percent this year.", 11)],
    )
    _, [result] = recognize(pdf, Task.MARKDOWN)
    assert [b.category for b in result.blocks] == ["Title", "Text"]
    assert result.markdown().startswith("# Annual Report\n\nRevenue grew")


def test_region_task_returns_only_the_text_inside_the_region(tmp_path: Path) -> None:
    pdf = make_text_pdf(tmp_path / "two.pdf", [((50, 80), "upper left", 12), ((220, 250), "lower right", 12)])
    scale = 200 / 72
    region = (200 * scale, 200 * scale, 400 * scale, 300 * scale)
    _, [result] = recognize(pdf, Task.REGION, region=region)
    assert [b.text for b in result.blocks] == ["lower right"]
    assert result.task == "region"


def test_embedded_images_become_picture_blocks(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=400, height=300)
    page.insert_text((40, 40), "Figure above the caption", fontsize=12)
    picture = tmp_path / "dot.png"
    Image.new("RGB", (60, 40), (0, 120, 200)).save(picture)
    page.insert_image(pymupdf.Rect(100, 100, 250, 200), filename=str(picture))
    page.insert_text((40, 230), "Caption below", fontsize=12)
    doc.save(tmp_path / "figure.pdf")
    _, [result] = recognize(tmp_path / "figure.pdf", dpi=72)
    assert [b.category for b in result.blocks] == ["Text", "Picture", "Text"]
    assert result.blocks[1].bbox == pytest.approx((100, 100, 250, 200), abs=1)


def test_tesseract_reads_an_image_without_text_layer(tmp_path: Path) -> None:
    if text_layer_module.find_tessdata() is None:
        pytest.skip("Tesseract OCR is not installed here (apt install tesseract-ocr); CI installs it")
    image = make_image_of_text(tmp_path / "scan.png", OCR_LINES)
    page_image, [result] = recognize(image)
    assert (result.width, result.height) == page_image.size == Image.open(image).size
    assert not result.warnings
    expected = " ".join(OCR_LINES)
    found = "\n".join(b.text for b in result.blocks)
    assert character_error_rate(found, expected) < 0.05, found
    # the boxes are in the image's pixels: the first line sits near the top-left
    first = min(result.blocks, key=lambda b: b.bbox[1])
    assert first.bbox[0] < 0.2 * result.width and first.bbox[1] < 0.5 * result.height


def test_without_tesseract_an_image_page_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_layer_module, "find_tessdata", lambda: None)
    image = make_image_of_text(tmp_path / "scan.png", OCR_LINES, dpi=72)
    _, [result] = recognize(image)
    assert result.blocks == []
    assert result.warnings == [NO_TESSERACT]
    assert "Tesseract is not installed" in NO_TESSERACT and "dots.ocr or Qwen3-VL" in NO_TESSERACT
    info = TextLayerEngine(Settings()).info()
    assert info.available and not info.needs_gpu and "not installed" in info.reason
    # a PDF with its own text still works without Tesseract
    pdf = make_text_pdf(tmp_path / "text.pdf", [((50, 80), "still readable", 12)])
    _, [result] = recognize(pdf)
    assert [b.text for b in result.blocks] == ["still readable"] and not result.warnings


def test_missing_tesseract_language_is_named(tmp_path: Path) -> None:
    if text_layer_module.find_tessdata() is None:
        pytest.skip("Tesseract OCR is not installed here")
    image = make_image_of_text(tmp_path / "scan.png", OCR_LINES, dpi=72)
    _, [result] = recognize(image, settings=Settings(tesseract_language="xyz"))
    assert result.blocks == []
    assert len(result.warnings) == 1 and "'xyz'" in result.warnings[0]


def test_engine_is_registered_and_declares_what_it_can_do() -> None:
    engine = get_engine("text-layer", Settings())
    info = engine.info()
    assert isinstance(engine, TextLayerEngine)
    assert info.name == "text-layer" and info.default_task == Task.TEXT
    assert {Task.TEXT, Task.LAYOUT_TEXT, Task.MARKDOWN} <= set(info.tasks)
    assert Task.LAYOUT not in info.tasks
