"""The searchable PDF and the Word file: the PDF's extracted text is the recognised text and
lies where it was recognised, pages with their own text layer are not doubled, a viewer
renders the page as the original; Word has the headings, real merged tables, the pictures
and a section per page; both come out of the CLI and the job zip."""

from __future__ import annotations

import io
import shutil
import subprocess
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from PIL import Image, ImageDraw, ImageFont

from ocr_studio import glyphless_font
from ocr_studio.cli import main
from ocr_studio.engines import get_engine
from ocr_studio.exporters import DOCUMENT_FORMATS, export_document, export_job_zip
from ocr_studio.html_table import parse_table
from ocr_studio.invisible_text import block_lines, plain_lines
from ocr_studio.jobs import JobSpec, JobStore, run_job
from ocr_studio.printed_lines import printed_lines
from ocr_studio.results import Block, DocumentResult, PageResult
from ocr_studio.searchable_pdf import searchable_pdf
from ocr_studio.settings import Settings
from ocr_studio.word import word_document
from tests.generated_pages import character_error_rate

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
SCAN_LINES = [
    "Searchable scans keep their pixels",
    "and gain a text layer that nobody sees.",
    "Select a word and the right place lights up.",
]
TABLE = (
    "<table><tr><th>Region</th><th colspan='2'>Sales</th></tr>"
    "<tr><td rowspan='2'>North</td><td>Q1</td><td>10</td></tr>"
    "<tr><td>Q2</td><td>12</td></tr></table>"
)


def _has_tesseract_eng() -> bool:
    if shutil.which("tesseract") is None:
        return False
    listed = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, check=False)
    return "eng" in (listed.stdout + listed.stderr).split()


needs_tesseract = pytest.mark.skipif(not _has_tesseract_eng(), reason="Tesseract with English data is not installed")
needs_pdftoppm = pytest.mark.skipif(
    shutil.which("pdftoppm") is None, reason="poppler-utils (pdftoppm) is not installed"
)


def printable(text: str) -> str:
    """Without control characters (the text layer drops them) and U+FFFD (it stands for
    characters beyond the BMP): random model output has both."""
    return "".join(ch for ch in text if ch.isspace() or (unicodedata.category(ch) != "Cc" and ch != "\ufffd"))


def recognised_text(doc: DocumentResult) -> str:
    """What the PDF's text layer should say: each block's plain lines, in reading order."""
    return "\n".join(line for page in doc.pages for block in page.blocks for line in plain_lines(block))


def pdf_text(data: bytes) -> str:
    with pymupdf.open(stream=data) as pdf:
        return "\n".join(page.get_text() for page in pdf)


def highlights(data: bytes, word: str, page_result: PageResult, page_index: int = 0) -> list[pymupdf.Rect]:
    """Where a PDF viewer highlights ``word``, in the page result's pixels."""
    with pymupdf.open(stream=data) as pdf:
        page = pdf[page_index]
        scale = pymupdf.Matrix(page_result.width / page.rect.width, page_result.height / page.rect.height)
        return [(rect * page.rotation_matrix) * scale for rect in page.search_for(word)]


def inside(rect: pymupdf.Rect, box: tuple[float, float, float, float], slack: float = 1.0) -> bool:
    return (
        box[0] - slack <= rect.x0
        and rect.x1 <= box[2] + slack
        and box[1] - slack <= rect.y0 <= rect.y1 <= box[3] + slack
    )


def scan_image(path: Path, lines: list[str] = SCAN_LINES, size: tuple[int, int] = (1400, 500)) -> Path:
    """A clean 200-DPI scan of printed lines (no text layer: pixels only)."""
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 44)
    for number, line in enumerate(lines):
        draw.text((60, 60 + 110 * number), line, font=font, fill=0)
    image.save(path, dpi=(200, 200))
    return path


def born_digital_pdf(path: Path) -> Path:
    pdf = pymupdf.open()
    page = pdf.new_page(width=595, height=842)
    page.insert_text((72, 100), "Annual report", fontsize=24)
    page.insert_text((72, 140), "Revenue grew in every region this year.", fontsize=12)
    pdf.save(path)
    pdf.close()
    return path


def run_engine(tmp_path: Path, path: Path, engine_name: str = "text-layer", **settings_kw):
    settings = Settings(workspace=tmp_path / "ws", **settings_kw)
    engine = get_engine(engine_name, settings)
    store = JobStore(settings.workspace)
    job = store.create(JobSpec(files=[path], engine=engine_name, task=engine.info().default_task), engine, settings)
    job = run_job(job, engine, settings)
    assert job.status == "done", job.message
    return job


def sample_page() -> PageResult:
    return PageResult(
        page_number=1,
        width=1000,
        height=1400,
        blocks=[
            Block((0, 0, 1000, 40), "Page-header", "ACME — internal"),
            Block((100, 80, 900, 140), "Title", "Quarterly results"),
            Block((100, 160, 900, 200), "Section-header", "## Overview"),
            Block(
                (100, 220, 900, 400), "Text", "Sales rose **sharply** in the *north*.\n\n- first point\n- second point"
            ),
            Block((100, 420, 500, 620), "Picture"),
            Block((100, 640, 900, 700), "Formula", r"E = m c^{2}"),
            Block((100, 720, 900, 900), "Table", TABLE),
            Block((0, 1360, 1000, 1400), "Page-footer", "Page 1"),
        ],
    )


def page_image(document_index: int, page_number: int) -> Image.Image:
    image = Image.new("RGB", (1000, 1400), "white")
    image.paste((30, 120, 200), (100, 420, 500, 620))
    return image


# --- the searchable PDF ----------------------------------------------------------------------


def test_glyphless_font_is_a_font_mupdf_reads() -> None:
    font = pymupdf.Font(fontbuffer=glyphless_font.font_bytes())
    assert font.name.startswith(glyphless_font.NAME)
    assert (font.ascender, font.descender) == pytest.approx((0.8, -0.2))
    assert len(glyphless_font.font_bytes()) < 2000


@needs_tesseract
def test_scanned_image_through_tesseract_gives_the_recognised_text_where_it_was_read(tmp_path: Path) -> None:
    scan = scan_image(tmp_path / "scan.png")
    job = run_engine(tmp_path, scan)
    doc = job.documents[0]
    expected = recognised_text(doc)
    assert character_error_rate(expected, "\n".join(SCAN_LINES)) < 0.05  # Tesseract read the scan
    data = searchable_pdf(doc, source_path=job.input_path(0))
    assert character_error_rate(pdf_text(data), expected) < 0.02
    with pymupdf.open(stream=data) as pdf:
        page = pdf[0]
        assert page.rect.width == pytest.approx(1400 * 72 / 200, abs=0.5)  # the image's own size and DPI
        assert len(page.get_images()) == 1
    page_result = doc.pages[0]
    block = next(b for b in page_result.blocks if "lights" in b.text)
    found = highlights(data, "lights", page_result)
    assert found and all(inside(rect, block.bbox) for rect in found)  # type: ignore[arg-type]


def test_born_digital_page_keeps_its_own_text_layer_and_gets_no_second_one(tmp_path: Path) -> None:
    source = born_digital_pdf(tmp_path / "born.pdf")
    job = run_engine(tmp_path, source)
    doc = job.documents[0]
    data = searchable_pdf(doc, source_path=job.input_path(0))
    text = pdf_text(data)
    assert character_error_rate(text, recognised_text(doc)) < 0.02
    assert text.count("Revenue grew") == 1
    # a vision engine's blocks over the same page: still only the page's own text
    vision = DocumentResult(
        "born.pdf",
        [
            PageResult(
                1, 1654, 2339, blocks=[Block((200, 230, 1500, 300), "Text", "Revenue grew in every region this year.")]
            )
        ],
    )
    assert pdf_text(searchable_pdf(vision, source_path=source)).count("Revenue grew") == 1
    with pymupdf.open(stream=data) as pdf:
        assert [f[3] for f in pdf.get_page_fonts(0)] != [glyphless_font.NAME]


def test_scan_with_a_stray_text_line_still_gets_its_text_layer(tmp_path: Path) -> None:
    source = tmp_path / "stamped.pdf"
    pdf = pymupdf.open()
    page = pdf.new_page(width=400, height=300)
    page.insert_image(page.rect, stream=scan_image(tmp_path / "s.png").read_bytes())
    page.insert_text((370, 290), "12", fontsize=8)  # a stamped page number is not a text layer
    pdf.save(source)
    doc = DocumentResult(
        "stamped.pdf", [PageResult(1, 800, 600, blocks=[Block((40, 40, 760, 200), "Text", SCAN_LINES[0])])]
    )
    assert "Searchable scans keep their pixels" in " ".join(pdf_text(searchable_pdf(doc, source_path=source)).split())


def test_vision_blocks_are_laid_out_line_by_line_inside_their_boxes() -> None:
    page = sample_page()
    data = searchable_pdf(DocumentResult("x.png", [page]), page_image=page_image)
    assert character_error_rate(pdf_text(data), recognised_text(DocumentResult("x", [page]))) < 0.02
    for word, category in [("sharply", "Text"), ("second", "Text"), ("Quarterly", "Title"), ("Q1", "Table")]:
        box = next(b.bbox for b in page.blocks if b.category == category and word in b.text)
        found = highlights(data, word, page)
        assert found and all(inside(r, box) for r in found), (word, found, box)  # type: ignore[arg-type]
    text = pdf_text(data)
    assert "E = m c^{2}" in text  # formulas carry their LaTeX
    assert "Region Sales" in text and "North Q1 10" in text and "Q2 12" in text  # table cells row by row


def test_a_long_paragraph_wraps_into_lines_that_fill_its_box() -> None:
    page = PageResult(1, 1000, 1000)
    block = Block((100, 100, 900, 400), "Text", " ".join(["wrap"] * 120))
    lines = block_lines(block, page)
    assert 4 <= len(lines) <= 20
    assert lines[0].box[1] == pytest.approx(100) and lines[-1].box[3] == pytest.approx(400)
    assert all(100 <= line.box[0] and line.box[2] <= 900 for line in lines)


def test_words_are_placed_word_by_word_when_the_engine_gives_them() -> None:
    words = (
        ((100.0, 100.0, 260.0, 140.0), "alpha"),
        ((300.0, 100.0, 420.0, 140.0), "beta"),
        ((100.0, 160.0, 240.0, 200.0), "gamma"),
    )
    page = PageResult(1, 1000, 1000, blocks=[Block((100, 100, 420, 200), "Text", "alpha beta\ngamma", words=words)])
    data = searchable_pdf(
        DocumentResult("w.png", [page]), page_image=lambda d, n: Image.new("RGB", (1000, 1000), "white")
    )
    assert " ".join(pdf_text(data).split()) == "alpha beta gamma"
    for box, word in words:
        [found] = highlights(data, word, page)
        assert found.x0 == pytest.approx(box[0], abs=1.5) and found.x1 == pytest.approx(box[2], abs=1.5)
        assert found.y0 == pytest.approx(box[1], abs=1.5) and found.y1 == pytest.approx(box[3], abs=1.5)


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_text_lands_on_rotated_and_cropped_pages_where_it_shows(tmp_path: Path, rotation: int) -> None:
    source = tmp_path / "rotated.pdf"
    pdf = pymupdf.open()
    page = pdf.new_page(width=600, height=800)
    page.set_cropbox(pymupdf.Rect(10, 30, 500, 700))
    page.set_rotation(rotation)
    pdf.save(source)
    shown = pymupdf.open(source)[0].rect
    result = PageResult(
        1, int(shown.width * 2), int(shown.height * 2), blocks=[Block((200, 100, 800, 160), "Text", "turned target")]
    )
    data = searchable_pdf(DocumentResult("rotated.pdf", [result]), source_path=source)
    found = highlights(data, "target", result)
    assert found and all(inside(r, (200, 100, 800, 160)) for r in found)


def test_every_script_survives_the_text_layer() -> None:
    text = "Latin café — Кириллица — 中文文本 — 日本語 — 한국어 — Ελληνικά"
    page = PageResult(1, 1000, 300, blocks=[Block((20, 20, 980, 280), "Text", text)])
    data = searchable_pdf(
        DocumentResult("s.png", [page]), page_image=lambda d, n: Image.new("RGB", (1000, 300), "white")
    )
    assert " ".join(pdf_text(data).split()) == text
    assert highlights(data, "中文", page)


def test_jpeg_quality_trades_size_and_zero_keeps_images_lossless(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 255, (600, 800, 3), dtype=np.uint8))
    source = tmp_path / "photo.png"
    noisy.save(source)
    doc = DocumentResult("photo.png", [PageResult(1, 800, 600, blocks=[Block((10, 10, 300, 60), "Text", "noise")])])
    sizes = {q: len(searchable_pdf(doc, source_path=source, jpeg_quality=q)) for q in (30, 90, 0)}
    assert sizes[30] < sizes[90] < sizes[0]
    with pymupdf.open(stream=searchable_pdf(doc, source_path=source, jpeg_quality=0)) as pdf:
        pixmap = pymupdf.Pixmap(pdf, pdf[0].get_images()[0][0])
        assert np.array_equal(np.frombuffer(pixmap.samples, np.uint8).reshape(600, 800, 3), np.asarray(noisy))
    jpeg = tmp_path / "photo.jpg"
    noisy.save(jpeg, quality=80, dpi=(150, 150))
    with pymupdf.open(stream=searchable_pdf(DocumentResult("photo.jpg", doc.pages), source_path=jpeg)) as pdf:
        xref = pdf[0].get_images()[0][0]
        assert pdf.xref_stream_raw(xref) == jpeg.read_bytes()  # a JPEG is embedded as it is
        assert pdf[0].rect.width == pytest.approx(800 * 72 / 150, abs=0.5)


@needs_pdftoppm
def test_pdftoppm_renders_the_searchable_pdf_like_the_original(tmp_path: Path) -> None:
    scan = scan_image(tmp_path / "scan.png")
    doc = DocumentResult(
        "scan.png", [PageResult(1, 1400, 500, blocks=[Block((60, 60, 1300, 400), "Text", "\n".join(SCAN_LINES))])]
    )
    pdf_path = tmp_path / "scan.pdf"
    pdf_path.write_bytes(searchable_pdf(doc, source_path=scan, jpeg_quality=75))
    subprocess.run(["pdftoppm", "-r", "100", "-gray", "-png", str(pdf_path), str(tmp_path / "shown")], check=True)
    [rendered_path] = tmp_path.glob("shown*.png")
    rendered = np.asarray(Image.open(rendered_path).convert("L"), dtype=np.float32)
    original = np.asarray(
        Image.open(scan).convert("L").resize((rendered.shape[1], rendered.shape[0])), dtype=np.float32
    )
    assert abs(rendered.shape[0] - 250) <= 1 and abs(rendered.shape[1] - 700) <= 1  # its real size at 100 DPI
    assert np.abs(rendered - original).mean() < 3.0  # same picture; the text layer draws nothing


# --- Word ------------------------------------------------------------------------------------


def read_docx(data: bytes):
    import docx

    return docx.Document(io.BytesIO(data))


def test_word_has_headings_lists_merged_table_picture_formula_and_a_section_per_page(tmp_path: Path) -> None:
    second = PageResult(2, 1400, 1000, blocks=[Block((100, 100, 1300, 200), "Text", "Second page text.")])
    doc = DocumentResult("report.pdf", [sample_page(), second])
    [path] = export_document(doc, tmp_path, ["docx"], page_image=page_image)
    word = read_docx(path.read_bytes())
    styles = [(p.style.name, p.text) for p in word.paragraphs if p.text]
    assert ("Heading 1", "Quarterly results") in styles
    assert ("Heading 2", "Overview") in styles
    assert ("List Bullet", "first point") in styles and ("List Bullet", "second point") in styles
    assert ("Equation", r"E = m c^{2}") in styles
    sharply = next(p for p in word.paragraphs if "sharply" in p.text)
    assert [r.text for r in sharply.runs if r.bold] == ["sharply"] and [r.text for r in sharply.runs if r.italic] == [
        "north"
    ]
    [table] = word.tables
    assert [[c.text for c in row.cells] for row in table.rows] == [
        ["Region", "Sales", "Sales"],
        ["North", "Q1", "10"],
        ["North", "Q2", "12"],
    ]
    assert table.cell(0, 1)._tc is table.cell(0, 2)._tc  # colspan merged into one cell
    assert [row._tr.tc_lst[0].vMerge for row in table.rows[1:]] == ["restart", "continue"]  # rowspan merged
    assert len(word.inline_shapes) == 1
    picture = word.inline_shapes[0]
    content = word.sections[0].page_width - word.sections[0].left_margin - word.sections[0].right_margin
    assert picture.width == pytest.approx(content * 0.4, rel=0.01)  # its share of the page's width
    assert len(word.sections) == 2
    assert word.sections[1].page_width > word.sections[1].page_height  # the landscape page
    assert word.sections[0].header.paragraphs[0].text == "ACME — internal"
    assert word.sections[0].footer.paragraphs[0].text == "Page 1"
    assert "Second page text." in [p.text for p in word.paragraphs]


def test_clean_word_leaves_page_headers_and_footers_out(tmp_path: Path) -> None:
    [path] = export_document(DocumentResult("r.pdf", [sample_page()]), tmp_path, ["docx"], clean=True)
    word = read_docx(path.read_bytes())
    everything = [p.text for s in word.sections for part in (s.header, s.footer) for p in part.paragraphs]
    everything += [p.text for p in word.paragraphs]
    assert not any("ACME" in t or t == "Page 1" for t in everything)
    assert not word.inline_shapes  # no page image: the picture is left out, not broken


def test_html_tables_are_read_into_a_grid_with_spans() -> None:
    table = parse_table(TABLE)
    assert (table.rows, table.columns) == (3, 3)
    assert [(c.text, c.row, c.column, c.rowspan, c.colspan) for c in table.cells] == [
        ("Region", 0, 0, 1, 1),
        ("Sales", 0, 1, 1, 2),
        ("North", 1, 0, 2, 1),
        ("Q1", 1, 1, 1, 1),
        ("10", 1, 2, 1, 1),
        ("Q2", 2, 1, 1, 1),
        ("12", 2, 2, 1, 1),
    ]
    sloppy = parse_table("<table><tr><td rowspan=99999>a<td>b<tr><td>c</table>")
    assert (sloppy.rows, sloppy.columns) == (2, 2)


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed")
def test_libreoffice_converts_the_word_file_to_pdf(tmp_path: Path) -> None:
    [path] = export_document(DocumentResult("report.pdf", [sample_page()]), tmp_path, ["docx"], page_image=page_image)
    subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation=file://{tmp_path}/lo",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path / "lo-out"),
            str(path),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    text = pdf_text((tmp_path / "lo-out" / "report.pdf").read_bytes())
    assert "Quarterly results" in text and "North" in text


# --- every way out: CLI, zip, formats the UI offers ------------------------------------------


def test_the_ui_offers_pdf_and_word() -> None:
    assert "pdf" in DOCUMENT_FORMATS and "docx" in DOCUMENT_FORMATS


def test_cli_writes_pdf_and_docx_and_the_zip_holds_them(tmp_path: Path, capsys) -> None:
    source = born_digital_pdf(tmp_path / "born.pdf")
    out = tmp_path / "out"
    code = main(
        ["convert", str(source), "-o", str(out), "--format", "pdf,docx,zip", "--workspace", str(tmp_path / "ws"), "-q"]
    )
    assert code == 0, capsys.readouterr()
    assert pdf_text((out / "born.pdf").read_bytes()).count("Revenue grew") == 1
    assert any("Annual report" in p.text for p in read_docx((out / "born.docx").read_bytes()).paragraphs)
    with zipfile.ZipFile(out / "ocr-studio.zip") as archive:
        assert {"born/born.pdf", "born/born.docx"} <= set(archive.namelist())


def test_job_zip_builds_each_pdf_from_its_own_original(tmp_path: Path) -> None:
    first, second = born_digital_pdf(tmp_path / "a.pdf"), scan_image(tmp_path / "b.png")
    docs = [
        DocumentResult(
            "a.pdf", [PageResult(1, 1654, 2339, blocks=[Block((200, 230, 1500, 300), "Text", "Revenue grew")])]
        ),
        DocumentResult("b.png", [PageResult(1, 1400, 500, blocks=[Block((60, 60, 1300, 400), "Text", SCAN_LINES[0])])]),
    ]
    originals = {0: first, 1: second}
    zip_path = export_job_zip(docs, tmp_path / "job.zip", formats=["pdf"], input_path=originals.get)
    with zipfile.ZipFile(zip_path) as archive:
        a, b = archive.read("a/a.pdf"), archive.read("b/b.pdf")
    assert "Annual report" in pdf_text(a)  # the original page, not a rebuilt one
    with pymupdf.open(stream=b) as pdf:
        assert pdf[0].rect.width == pytest.approx(1400 * 72 / 200, abs=0.5)
        assert SCAN_LINES[0] in " ".join(pdf[0].get_text().split())


def test_a_tiny_vision_model_result_becomes_a_searchable_pdf_and_word(tmp_path: Path, tiny_qwen3_vl: Path) -> None:
    """Whatever a vision engine recognised (random weights: arbitrary text) is what the PDF's
    text layer says, on a scan and on a born-digital page alike."""
    settings = {"qwen_model": str(tiny_qwen3_vl), "device": "cpu", "max_new_tokens": 24, "max_pixels": 256 * 256}
    for source in (scan_image(tmp_path / "scan.png"), born_digital_pdf(tmp_path / "born.pdf")):
        job = run_engine(tmp_path / source.stem, source, "qwen3-vl", **settings)
        doc = job.documents[0]
        expected = recognised_text(doc)
        assert expected.strip()
        data = searchable_pdf(doc, source_path=job.input_path(0))
        if source.suffix == ".pdf":  # the page's own text stays, the model's is not added over it
            assert "Revenue grew" in pdf_text(data)
        else:
            assert character_error_rate(printable(pdf_text(data)), printable(expected)) < 0.02
        word = read_docx(
            export_document(doc, tmp_path / source.stem, ["docx"], page_image=job.page_image)[0].read_bytes()
        )
        assert len(word.sections) == 1 and any(p.text.strip() for p in word.paragraphs)


def test_pages_of_a_pdf_are_copied_once_with_their_shared_resources(tmp_path: Path) -> None:
    """A page range keeps just those pages, in order; fonts the pages share are not copied
    per page (which made a 100-page PDF 80 times larger than its input)."""
    source = tmp_path / "long.pdf"
    pdf = pymupdf.open()
    for number in range(1, 31):
        page = pdf.new_page()
        page.insert_text((72, 72), f"Page {number} of the manual", fontname="dejavu", fontfile=FONT)
    pdf.save(source, garbage=3, deflate=True)
    pdf.close()
    every = DocumentResult("long.pdf", [PageResult(n, 1700, 2200) for n in range(1, 31)])
    data = searchable_pdf(every, source_path=source)
    assert len(data) < 1.5 * source.stat().st_size
    some = DocumentResult("long.pdf", [PageResult(n, 1700, 2200) for n in (3, 7)])
    with pymupdf.open(stream=searchable_pdf(some, source_path=source)) as out:
        assert [page.get_text().strip() for page in out] == ["Page 3 of the manual", "Page 7 of the manual"]


def test_each_numbered_list_in_word_starts_at_one() -> None:
    """Word numbers every "List Number" paragraph as one list unless told otherwise."""
    blocks = [Block(None, "Text", "1. a\n2. b"), Block(None, "Text", "Between."), Block(None, "Text", "1. c\n2. d")]
    word = read_docx(word_document(DocumentResult("l.pdf", [PageResult(1, 100, 100, blocks=blocks)])))
    numbered = [(p.text, p._p.pPr.numPr.numId.val) for p in word.paragraphs if p.style.name == "List Number"]
    assert [text for text, _ in numbered] == ["a", "b", "c", "d"]
    ids = [num for _, num in numbered]
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]


def test_tiff_pages_and_turned_jpegs_become_upright_pages_of_their_size(tmp_path: Path) -> None:
    frames = [Image.new("L", (600, 400), 255), Image.new("L", (400, 600), 200)]
    tiff = tmp_path / "two.tif"
    frames[0].save(tiff, save_all=True, append_images=frames[1:], dpi=(100, 100))
    doc = DocumentResult(
        "two.tif",
        [PageResult(n, *frames[n - 1].size, blocks=[Block((10, 10, 200, 60), "Text", f"frame {n}")]) for n in (1, 2)],
    )
    with pymupdf.open(stream=searchable_pdf(doc, source_path=tiff)) as pdf:
        assert [(round(p.rect.width), round(p.rect.height)) for p in pdf] == [(432, 288), (288, 432)]
        assert [p.get_text().strip() for p in pdf] == ["frame 1", "frame 2"]
    turned = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned by 90°: 600 × 400 stored, 400 × 600 shown
    Image.new("RGB", (600, 400), "white").save(turned, exif=exif, dpi=(100, 100))
    shown = DocumentResult(
        "turned.jpg", [PageResult(1, 400, 600, blocks=[Block((10, 10, 200, 60), "Text", "upright")])]
    )
    with pymupdf.open(stream=searchable_pdf(shown, source_path=turned)) as pdf:
        assert (round(pdf[0].rect.width), round(pdf[0].rect.height)) == (288, 432)
        assert highlights(pdf.tobytes(), "upright", shown.pages[0])


def test_markdown_pipe_tables_become_word_tables_and_rows_of_text_in_the_pdf() -> None:
    """Qwen3-VL's Markdown task writes pipe tables, not HTML."""
    markdown = "Intro.\n\n| Name | Score |\n|---|:---:|\n| A \\| B | 1 |\n| C | 2 |\n\nAfter."
    page = PageResult(1, 1000, 600, blocks=[Block((50, 50, 950, 550), "Text", markdown)])
    word = read_docx(word_document(DocumentResult("m.png", [page])))
    [table] = word.tables
    assert [[c.text for c in row.cells] for row in table.rows] == [["Name", "Score"], ["A | B", "1"], ["C", "2"]]
    assert [p.text for p in word.paragraphs if p.text] == ["Intro.", "After."]
    assert plain_lines(page.blocks[0]) == ["Intro.", "Name Score", "A | B 1", "C 2", "After."]
    data = searchable_pdf(
        DocumentResult("m.png", [page]), page_image=lambda d, n: Image.new("RGB", (1000, 600), "white")
    )
    assert "---" not in pdf_text(data) and "Name Score" in pdf_text(data)


def test_a_vision_block_follows_the_printed_lines_the_page_image_shows(tmp_path: Path) -> None:
    """A paragraph's box and text (what dots.ocr gives): its words land on the printed line
    that shows them, within a few pixels of where they are printed."""
    printed = ["The first printed line of this paragraph", "and the second one, a bit shorter", "end."]
    font = ImageFont.truetype(FONT, 40)
    image = Image.new("L", (1400, 400), 255)
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(printed):
        draw.text((60, 50 + 90 * number), line, font=font, fill=0)
    source = tmp_path / "para.png"
    image.save(source, dpi=(200, 200))
    left, top, right, bottom = ImageDraw.Draw(image).textbbox((60, 50), printed[0], font=font)
    box = (float(left), float(top), float(right), 50 + 90 * 2 + 50.0)
    page = PageResult(1, 1400, 400, blocks=[Block(box, "Text", " ".join(printed))])
    assert [round(b[1] / 90) for b in printed_lines(image, box)] == [1, 2, 3]
    data = searchable_pdf(DocumentResult("para.png", [page]), source_path=source)
    for word, line in (("second", 1), ("shorter", 1), ("paragraph", 0), ("end", 2)):
        [found] = highlights(data, word, page)
        x = 60 + font.getlength(printed[line][: printed[line].index(word)])
        assert abs(found.x0 - x) < 12, (word, found, x)
        assert 50 + 90 * line - 10 < found.y0 < found.y1 < 50 + 90 * line + 60, (word, found)


def test_no_printed_lines_in_a_blank_or_flat_crop() -> None:
    assert printed_lines(Image.new("L", (300, 200), 255), (0, 0, 300, 200)) == []
    assert printed_lines(Image.new("L", (300, 200), 128), (10, 10, 290, 190)) == []
