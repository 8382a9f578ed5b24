"""The no-GPU engine: a PDF's own text with positions, Tesseract OCR for images, and a
clear message when neither is possible."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pymupdf
import pytest
from PIL import Image

from benchmarks import bench_text_layer as bench
from ocr_studio.documents import Limits, open_document
from ocr_studio.engines import get_engine, page_layout, tesseract
from ocr_studio.engines import text_layer as text_layer_module
from ocr_studio.engines.base import RecognizeRequest, Task
from ocr_studio.engines.page_layout import PageFacts
from ocr_studio.engines.text_layer import NO_TESSERACT, TextLayerEngine
from ocr_studio.exporters import export_document
from ocr_studio.results import DocumentResult, PageResult
from ocr_studio.settings import Settings
from tests import generated_pages
from tests.generated_pages import character_error_rate

TEXT_FORMATS = ("md", "txt", "json", "html")
OCR_LINES = ["The quick brown fox jumps", "over the lazy dog 1234."]


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
    monkeypatch.setattr(tesseract, "find_tessdata", lambda: None)
    image = make_image_of_text(tmp_path / "scan.png", OCR_LINES, dpi=72)
    _, [result] = recognize(image)
    assert result.blocks == []
    assert result.warnings == [NO_TESSERACT]
    assert "sudo apt install tesseract-ocr" in NO_TESSERACT and "brew install tesseract" in NO_TESSERACT
    assert "Tesseract is not installed" in NO_TESSERACT and "dots.ocr or Qwen3-VL" in NO_TESSERACT
    info = TextLayerEngine(Settings()).info()
    assert info.available and not info.needs_gpu and "not installed" in info.reason
    # a PDF with its own text still works without Tesseract
    pdf = make_text_pdf(tmp_path / "text.pdf", [((50, 80), "still readable", 12)])
    _, [result] = recognize(pdf)
    assert [b.text for b in result.blocks] == ["still readable"] and not result.warnings


def test_missing_language_names_its_package_on_each_system(tmp_path: Path) -> None:
    if text_layer_module.find_tessdata() is None:
        pytest.skip("Tesseract OCR is not installed here")
    image = make_image_of_text(tmp_path / "scan.png", OCR_LINES)
    _, [result] = recognize(image, settings=Settings(ocr_languages="xyz"))
    assert result.blocks == []  # nothing it could read with
    [warning] = result.warnings
    assert "(xyz)" in warning and "sudo apt install tesseract-ocr-xyz" in warning  # Debian
    assert "UB-Mannheim" in warning and "brew install tesseract-lang" in warning  # Windows, macOS
    assert "--lang" in warning and "ocr_languages" in warning
    # with one language installed and one missing, it reads with the one it has, and says so
    _, [result] = recognize(image, settings=Settings(ocr_languages="eng+xyz"))
    assert character_error_rate("\n".join(b.text for b in result.blocks), " ".join(OCR_LINES)) < 0.05
    assert len(result.warnings) == 1 and "tesseract-ocr-xyz" in result.warnings[0]
    # a code that cannot be a language is refused with an example of what to write
    _, [result] = recognize(image, settings=Settings(ocr_languages="english!"))
    assert result.blocks == [] and "eng+rus" in result.warnings[0]
    assert "eng" in TextLayerEngine(Settings(ocr_languages="xyz")).info().reason


def test_engine_is_registered_and_declares_what_it_can_do() -> None:
    engine = get_engine("text-layer", Settings())
    info = engine.info()
    assert isinstance(engine, TextLayerEngine)
    assert info.name == "text-layer" and info.default_task == Task.TEXT
    assert {Task.TEXT, Task.LAYOUT_TEXT, Task.MARKDOWN} <= set(info.tasks)
    assert Task.LAYOUT not in info.tasks


# --- reading real documents right: columns, tables, headers, languages ----------------------

needs_tesseract = pytest.mark.skipif(
    text_layer_module.find_tessdata() is None, reason="Tesseract OCR is not installed here (CI installs it)"
)


def needs_language(code: str) -> None:
    if code not in text_layer_module.installed_languages():
        pytest.skip(f"Tesseract has no {code!r} data here (apt install tesseract-ocr-{code}); CI installs it")


def exported(document: DocumentResult, folder: Path, *, clean: bool = False) -> dict[str, str]:
    """The document's md/txt/json/html exports, by suffix."""
    written = export_document(document, folder, TEXT_FORMATS, clean=clean)
    return {path.suffix: path.read_text(encoding="utf-8") for path in written}


def page_text(results: list[PageResult], *, furniture: bool = True) -> str:
    return "\n\n".join(r.text(furniture=furniture) for r in results)


@needs_tesseract
@pytest.mark.parametrize("program", [True, False], ids=["tesseract-program", "pymupdf-ocr"])
def test_a_two_column_scan_is_read_column_by_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, program: bool
) -> None:
    """Tesseract (either way it runs) merges the lines of close columns; the page still reads
    down the left column, then down the right one, paragraph by paragraph."""
    if not program:
        monkeypatch.setattr(tesseract, "find_program", lambda: None)  # PyMuPDF's own Tesseract
    page = generated_pages.column_scan(tmp_path / "columns.png", generated_pages.EN_PARAGRAPHS[:4], height=250)
    _, results = recognize(page.path, Task.LAYOUT_TEXT, settings=Settings(ocr_languages="eng"))
    [result] = results
    assert not result.warnings
    assert character_error_rate(page_text(results), page.text) < 0.05, page_text(results)
    assert result.blocks[0].text.startswith("To record a sequence, press the record button")  # unwrapped
    assert len(result.blocks) == 4 and all(b.category == "Text" for b in result.blocks)  # one block a paragraph
    left, right = result.blocks[1], result.blocks[2]
    assert left.bbox[2] < result.width / 2 < right.bbox[0]  # the second paragraph ends the left column
    for block in result.blocks:  # every word's box, for a searchable PDF, lies in its block
        assert " ".join(word for _, word in block.words) == " ".join(block.text.split())
        for (x1, y1, x2, y2), _ in block.words:
            assert block.bbox[0] <= x1 < x2 <= block.bbox[2] and block.bbox[1] <= y1 < y2 <= block.bbox[3]


@needs_tesseract
def test_a_scanned_pdf_page_with_a_stamp_of_text_is_ocrd_whole(tmp_path: Path) -> None:
    """A scanner app's PDF: the page is a picture, with "Scanned with …" as real text over it.
    The few words of text must not hide the page's own: it is OCR'd like any scan."""
    scan = make_image_of_text(tmp_path / "scan.png", OCR_LINES)
    doc = pymupdf.open()
    pdf_page = doc.new_page(width=420, height=160)
    pdf_page.insert_image(pdf_page.rect, filename=str(scan))
    pdf_page.insert_text((300, 150), "Scanned with PocketScan", fontsize=6)
    doc.save(tmp_path / "scanned.pdf")
    _, [result] = recognize(tmp_path / "scanned.pdf", settings=Settings(ocr_languages="eng"))
    found = "\n".join(b.text for b in result.blocks)
    assert character_error_rate(found.replace("Scanned with PocketScan", ""), " ".join(OCR_LINES)) < 0.05, found
    assert all(b.words for b in result.blocks if b.text)  # OCR'd: word boxes for a searchable PDF
    assert not any(b.category == "Picture" for b in result.blocks)


@needs_tesseract
def test_a_page_whose_text_layer_is_unreadable_is_ocrd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fonts without a character map extract as U+FFFD (or private-use code points): such a
    page is OCR'd instead, and says why."""
    scan = make_image_of_text(tmp_path / "scan.png", OCR_LINES)
    doc = pymupdf.open()
    pdf_page = doc.new_page(width=420, height=160)
    pdf_page.insert_image(pdf_page.rect, filename=str(scan))
    pdf_page.insert_textbox(pdf_page.rect, "x" * 400, fontsize=6, render_mode=3)  # an invisible text layer
    doc.save(tmp_path / "garbled.pdf")
    doc.close()
    real = text_layer_module._pdf_pieces

    def garbled(content, to_pixels):  # what a font without a character map extracts as
        pieces = real(content, to_pixels)
        for piece in pieces:
            piece.text = "\ufffd" * len(piece.text)
        return pieces

    monkeypatch.setattr(text_layer_module, "_pdf_pieces", garbled)
    _, [result] = recognize(tmp_path / "garbled.pdf", settings=Settings(ocr_languages="eng"))
    found = "\n".join(b.text for b in result.blocks)
    assert character_error_rate(found, " ".join(OCR_LINES)) < 0.05, found
    assert result.warnings == [text_layer_module.GARBLED_TEXT_LAYER]
    assert not text_layer_module._garbled([page_layout.Piece((0, 0, 9, 9), "Ünïcödé, ёжик: fine")])


def test_a_pdf_writing_two_columns_row_by_row_is_read_column_by_column(tmp_path: Path) -> None:
    page = generated_pages.two_column_pdf(tmp_path / "columns.pdf")
    _, results = recognize(page.path)
    assert character_error_rate(page_text(results), page.text) < 0.01
    assert [b.text.split("\n")[0][:20] for b in results[0].blocks] == [
        p[:20] for p in generated_pages.EN_PARAGRAPHS[:4]
    ]


@pytest.mark.parametrize("ruled", [True, False], ids=["ruled", "unruled"])
def test_a_born_digital_table_is_exported_as_a_table(tmp_path: Path, ruled: bool) -> None:
    page = generated_pages.table_pdf(tmp_path / "table.pdf", ruled=ruled)
    _, [result] = recognize(page.path, Task.LAYOUT_TEXT)
    assert [b.category for b in result.blocks] == ["Title", "Table", "Text"]
    table = result.blocks[1]
    rows = bench.table_rows(table.text)
    assert rows == generated_pages.TABLE_ROWS  # cell for cell, row by row
    assert "1,204" in table.text and "\n" not in table.text
    document = DocumentResult(name="table.pdf", pages=[result], page_count=1)
    written = exported(document, tmp_path / "out")
    markdown, html, data = written[".md"], written[".html"], json.loads(written[".json"])
    assert "<table><tr><th>Region</th><th>Units</th>" in markdown and "<td>North</td><td>1,204</td>" in markdown
    assert "<table><tr><th>Region</th>" in html and "<td>East</td><td>2,310</td><td>92,400</td>" in html
    [table_block] = [b for b in data["pages"][0]["blocks"] if b["category"] == "Table"]
    assert bench.table_rows(table_block["text"]) == generated_pages.TABLE_ROWS
    assert "North" in written[".txt"] and "92,400" in written[".txt"]


def test_running_header_and_footer_are_classified_and_left_out_by_the_clean_export(tmp_path: Path) -> None:
    page = generated_pages.report_pdf(tmp_path / "report.pdf", pages=3)
    _, results = recognize(page.path, Task.LAYOUT_TEXT)
    for number, result in enumerate(results, start=1):
        categories = [(b.category, b.text) for b in result.blocks]
        assert categories[0] == ("Page-header", generated_pages.REPORT_HEADER)  # first, before the body
        assert categories[-1] == ("Page-footer", f"Page {number} of 3")  # last, after it
        assert ("Section-header", f"{number}. Results of part {number}") in categories
    assert [(b.category, b.text) for b in results[0].blocks][1] == ("Title", "Annual Report")
    document = DocumentResult(name="report.pdf", pages=results, page_count=3)
    clean = exported(document, tmp_path / "clean", clean=True)
    for suffix in (".md", ".txt", ".html"):
        assert "Northwind Traders" not in clean[suffix] and "Page 2 of 3" not in clean[suffix], suffix
        assert "Results of part 2" in clean[suffix]
    assert "# Annual Report" in clean[".md"] and "## 2. Results of part 2" in clean[".md"]
    assert "Northwind Traders" in clean[".json"]  # the lossless export keeps everything
    assert character_error_rate(document.text(furniture=False), page.text) < 0.01


def test_titles_lists_captions_and_footnotes_are_told_apart(tmp_path: Path) -> None:
    doc = pymupdf.open()
    pdf_page = doc.new_page(width=400, height=500)
    font, bold = str(generated_pages.FONT), str(generated_pages.FONT_BOLD)
    texts = [
        ((30, 50), "Field Guide", 24, bold),
        ((30, 90), "Before you start", 11, bold),
        ((30, 115), "Check the following before every trip into the hills:", 10, font),
        ((30, 135), "• a map of the area and a compass", 10, font),
        ((30, 150), "• water for the whole day", 10, font),
        ((30, 175), "Most trips take longer than planned, so start early in the day.", 10, font),
        ((30, 300), "Figure 2: The northern ridge seen from the lake.", 9, font),
        ((30, 430), "1 Distances are measured along the marked path.", 7, font),
    ]
    for point, text, size, fontfile in texts:
        pdf_page.insert_text(point, text, fontsize=size, fontname="f" + str(len(fontfile)), fontfile=fontfile)
    doc.save(tmp_path / "guide.pdf")
    _, [result] = recognize(tmp_path / "guide.pdf", Task.LAYOUT_TEXT)
    assert [b.category for b in result.blocks] == [
        "Title",
        "Section-header",
        "Text",
        "List-item",
        "List-item",
        "Text",
        "Caption",
        "Footnote",
    ]
    assert result.markdown().startswith("# Field Guide\n\n## Before you start\n\n")


def test_a_bullet_tesseract_reads_as_a_letter_makes_a_list_item() -> None:
    """Tesseract reads a list's "•" as "e", "o" or "©" (as on libtasn1.pdf rendered as a scan):
    a lone small mark set apart from its line's first word is a bullet."""
    # Boxes as Tesseract gives them: hugging the letters (x-height 12, capitals 18, descenders 24).
    words = [
        ((100, 100, 400, 124), "Here is the list of types:", (1, 1, 1)),
        ((127, 152, 139, 164), "e", (1, 2, 1)),  # x-height, a bullet's width away from its word
        ((162, 146, 280, 164), "INTEGER;", (1, 2, 1)),
        ((127, 197, 139, 209), "e", (1, 2, 2)),
        ((162, 191, 330, 209), "ENUMERATED;", (1, 2, 2)),
        ((100, 248, 112, 260), "e", (1, 3, 1)),  # a letter in running text, a space away: left alone
        ((120, 242, 135, 260), "is", (1, 3, 1)),
        ((143, 242, 230, 260), "Euler's", (1, 3, 1)),
        ((238, 242, 330, 260), "number.", (1, 3, 1)),
    ]
    blocks = page_layout.blocks(page_layout.page_order(page_layout.ocr_pieces(words), 1000), PageFacts(800, 1000))
    assert [(b.category, b.text) for b in blocks] == [
        ("Text", "Here is the list of types:"),
        ("List-item", "• INTEGER;"),
        ("List-item", "• ENUMERATED;"),
        ("Text", "e is Euler's number."),
    ]
    assert blocks[1].words[0][1] == "•"


@needs_tesseract
def test_a_russian_scan_is_read_with_rus(tmp_path: Path) -> None:
    needs_language("rus")
    page = generated_pages.column_scan(tmp_path / "ru.png", generated_pages.RU_PARAGRAPHS[:2], columns=1, height=230)
    _, results = recognize(page.path, settings=Settings(ocr_languages="rus"))
    assert not results[0].warnings
    assert character_error_rate(page_text(results), page.text) < 0.05, page_text(results)
    assert "последовательность" in page_text(results)
    # English alone reads it as gibberish: the language setting is what makes it right
    _, results = recognize(page.path, settings=Settings(ocr_languages="eng"))
    assert character_error_rate(page_text(results), page.text) > 0.3


def test_languages_default_to_the_installed_supported_packs_and_key_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tesseract, "installed_languages", lambda: ["deu", "eng", "jpn", "rus"])
    assert tesseract.default_languages() == "eng+rus+deu"  # supported ones, English first; jpn is not offered
    assert tesseract.language_choices() == [
        ("English (eng)", "eng"),
        ("Russian (rus)", "rus"),
        ("German (deu)", "deu"),
        ("jpn (jpn)", "jpn"),  # installed, so it can be chosen, but not read by default
    ]
    engines = [TextLayerEngine(Settings(ocr_languages=value)) for value in ("", "auto", "rus", "eng + rus", "eng,rus")]
    assert [e.language for e in engines] == ["eng+rus+deu", "eng+rus+deu", "rus", "eng+rus", "eng+rus"]
    keys = [e.settings_key() for e in engines]
    assert keys[0] == keys[1] and keys[2] != keys[3] and keys[3] == keys[4]
    assert TextLayerEngine(Settings(tesseract_language="rus")).language == "rus"  # the old setting still works
    # the UI's per-run choice: a copy of the settings with other languages
    assert (
        get_engine("text-layer", dataclasses.replace(Settings(), ocr_languages="rus")).settings_key()["ocr_languages"]
        == "rus"
    )


def test_the_reading_order_crosses_a_title_over_both_columns_and_a_centred_footer() -> None:
    """Geometry only: a page number in the top corner over the right column, a full-width
    title, two columns of prose and a page number centred under the gutter. Lines of the two
    columns sit at the same heights."""
    line = 12.0
    pieces = [page_layout.Piece((440, 8, 460, 20), "33", 10), page_layout.Piece((40, 40, 460, 64), "Title", 20)]
    for row in range(6):
        y = 80 + row * (line + 3)
        pieces.append(page_layout.Piece((40, y, 230, y + line), f"left {row} " + "x" * 30, 10))
        pieces.append(page_layout.Piece((270, y, 460, y + line), f"right {row} " + "x" * 30, 10))
    pieces.append(page_layout.Piece((240, 480, 260, 492), "7", 10))
    ordered = ["".join(p.text.split()[:2]).removesuffix("x" * 30) for p in page_layout.page_order(pieces, 500)]
    assert ordered == ["33", "Title"] + [f"left{n}" for n in range(6)] + [f"right{n}" for n in range(6)] + ["7"]


def test_the_benchmark_scores_a_page(tmp_path: Path) -> None:
    """benchmarks/bench_text_layer.py stays runnable: one cheap case through it."""
    [case] = [c for c in bench.CASES if c.name == "PDF, ruled table"]
    row = bench.run_case(case, tmp_path)
    assert row["cer"] == 0.0 and row["cells"] == "20/20"
