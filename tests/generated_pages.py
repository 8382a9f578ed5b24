"""Pages with known content, generated for the text-layer engine's tests and its accuracy
benchmark (benchmarks/bench_text_layer.py): scans (text rendered to an image at 200 DPI
with mild noise) in one or two columns, English or Russian; born-digital pages with ruled
and unruled tables; a multi-page report with a running header and footer; a truncated PDF.

Every generator returns what a perfect reader would find, so a test or the benchmark can
measure how close the engine came."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pymupdf
from PIL import Image, ImageFilter


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insert, delete, substitute), one row at a time."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def character_error_rate(found: str, expected: str) -> float:
    """Edits per expected character, whitespace normalised (line breaks are layout, not content)."""
    found, expected = " ".join(found.split()), " ".join(expected.split())
    return levenshtein(found, expected) / max(1, len(expected))


FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT = FONT_DIR / "DejaVuSans.ttf"  # Latin and Cyrillic (fonts-dejavu-core)
FONT_BOLD = FONT_DIR / "DejaVuSans-Bold.ttf"

EN_PARAGRAPHS = [
    "To record a sequence, press the record button and then play. The counter starts at the first bar "
    "and the display shows the tempo of the song.",
    "Find the bar you want with the arrow keys and press enter. The sequencer keeps every take until "
    "you clear the memory or switch the power off.",
    "Each track holds up to sixteen channels of notes. Use the mixer to set the volume of every channel "
    "before you save the song to the card.",
    "When the memory is full the display blinks and the last take is not kept. Delete an old song to "
    "make room for the new one.",
    "The metronome follows the tempo of the song. Turn it off in the options menu if you record with a "
    "drum machine or a click track.",
    "Songs are saved in the standard format, so any other sequencer or computer program can open them "
    "without a conversion.",
]
RU_PARAGRAPHS = [
    "Чтобы записать последовательность, нажмите кнопку записи, а затем воспроизведения. Счётчик "
    "начинает с первого такта, а на экране виден темп песни.",
    "Найдите нужный такт стрелками и нажмите ввод. Секвенсор хранит каждый дубль, пока вы не очистите "
    "память или не выключите питание.",
    "Каждая дорожка вмещает до шестнадцати каналов. Микшером задайте громкость каждого канала, прежде "
    "чем сохранить песню на карту.",
    "Когда память заполнена, экран мигает и последний дубль не сохраняется. Удалите старую песню, "
    "чтобы освободить место для новой.",
]


@dataclass
class GeneratedPage:
    """A generated file and what is on it, in reading order."""

    path: Path
    text: str  # every text of the page in reading order (tables excluded), paragraphs separated by blank lines
    tables: list[list[list[str]]] = field(default_factory=list)  # each table's rows of cells
    headers: list[str] = field(default_factory=list)  # running header / footer texts (multi-page documents)
    footers: list[str] = field(default_factory=list)


def _fit_text(page: pymupdf.Page, rect: pymupdf.Rect, paragraphs: list[str], size: float) -> None:
    text = "\n\n".join(paragraphs)
    room = page.insert_textbox(rect, text, fontsize=size, fontname="dejavu", fontfile=str(FONT), lineheight=1.3)
    if room < 0:
        raise ValueError(f"the text does not fit in {rect} at {size} pt")


def _scanned(doc: pymupdf.Document, path: Path, dpi: int, seed: int) -> None:
    """The document's first page as a PNG scan at ``dpi``: grey noise and a slight blur, no text layer."""
    pixmap = doc[0].get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)
    grey = np.frombuffer(pixmap.samples, dtype=np.uint8).reshape(pixmap.height, pixmap.width).astype(np.float32)
    rng = np.random.default_rng(seed)
    grey = np.clip(grey * 0.92 + 12 + rng.normal(0, 14, grey.shape), 0, 255).astype(np.uint8)
    image = Image.fromarray(grey, mode="L").filter(ImageFilter.GaussianBlur(0.6))
    image.save(path, dpi=(dpi, dpi))


def column_scan(
    path: Path,
    paragraphs: list[str],
    *,
    columns: int = 2,
    size: float = 10,
    width: float = 500,
    height: float = 420,
    gutter: float = 36,
    title: str = "",
    footer: str = "",
    dpi: int = 200,
    seed: int = 1,
) -> GeneratedPage:
    """A scan of ``paragraphs`` flowed into ``columns`` columns of about equal length (top to
    bottom, left column first), under an optional ``title`` across the columns and over an
    optional ``footer`` centred at the bottom (a page number, say: furniture, not text)."""
    per_column = -(-len(paragraphs) // columns)
    chunks = [paragraphs[i : i + per_column] for i in range(0, len(paragraphs), per_column)]
    margin = 30
    top = margin + (2.4 * size + 12 if title else 0)
    column_width = (width - 2 * margin - gutter * (columns - 1)) / columns
    doc = pymupdf.open()
    page = doc.new_page(width=width, height=height)
    if title:
        page.insert_text(
            (margin, margin + 2 * size), title, fontsize=2 * size, fontname="dejavu-bold", fontfile=str(FONT_BOLD)
        )
    for index, chunk in enumerate(chunks):
        x0 = margin + index * (column_width + gutter)
        _fit_text(page, pymupdf.Rect(x0, top, x0 + column_width, height - margin - 10), chunk, size)
    if footer:
        length = pymupdf.get_text_length(footer, fontsize=size * 0.8)
        page.insert_text(
            ((width - length) / 2, height - 14), footer, fontsize=size * 0.8, fontname="dejavu", fontfile=str(FONT)
        )
    _scanned(doc, path, dpi, seed)
    doc.close()
    text = "\n\n".join([title, *paragraphs] if title else paragraphs)
    return GeneratedPage(path=path, text=text, footers=[footer] if footer else [])


TABLE_ROWS = [
    ["Region", "Units", "Revenue", "Growth"],
    ["North", "1,204", "48,160", "4.2%"],
    ["South", "986", "39,440", "-1.3%"],
    ["East", "2,310", "92,400", "12.8%"],
    ["West", "1,577", "63,080", "0.9%"],
]
TABLE_BEFORE = "Quarterly sales by region"
TABLE_AFTER = "All figures are in thousands of euros and exclude taxes."


def table_pdf(path: Path, *, ruled: bool, rows: list[list[str]] | None = None) -> GeneratedPage:
    """A born-digital page: a heading, a sentence, a table (grid lines drawn when ``ruled``,
    else only aligned columns), and a sentence after it."""
    rows = rows or TABLE_ROWS
    doc = pymupdf.open()
    page = doc.new_page(width=500, height=400)
    page.insert_text((40, 50), TABLE_BEFORE, fontsize=16, fontname="dejavu-bold", fontfile=str(FONT_BOLD))
    x0, y0, cell_w, cell_h = 40, 80, 100, 22
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            bold = r == 0
            page.insert_text(
                (x0 + c * cell_w + 6, y0 + r * cell_h + 15),
                cell,
                fontsize=10,
                fontname="dejavu-bold" if bold else "dejavu",
                fontfile=str(FONT_BOLD if bold else FONT),
            )
    bottom = y0 + len(rows) * cell_h
    if ruled:
        right = x0 + len(rows[0]) * cell_w
        for r in range(len(rows) + 1):
            page.draw_line((x0, y0 + r * cell_h), (right, y0 + r * cell_h), width=0.8)
        for c in range(len(rows[0]) + 1):
            page.draw_line((x0 + c * cell_w, y0), (x0 + c * cell_w, bottom), width=0.8)
    page.insert_text((40, bottom + 40), TABLE_AFTER, fontsize=10, fontname="dejavu", fontfile=str(FONT))
    doc.save(path)
    doc.close()
    return GeneratedPage(path=path, text=f"{TABLE_BEFORE}\n\n{TABLE_AFTER}", tables=[rows])


REPORT_HEADER = "Northwind Traders - Annual Report 2025"


def report_pdf(path: Path, *, pages: int = 3, seed: int = 3) -> GeneratedPage:
    """A born-digital report: every page has the same running header and a numbered footer; the
    first page a large title; each page a bold section heading over two paragraphs."""
    rng = random.Random(seed)
    doc = pymupdf.open()
    texts, footers = [], []
    for number in range(1, pages + 1):
        page = doc.new_page(width=500, height=650)
        page.insert_text((40, 30), REPORT_HEADER, fontsize=8, fontname="dejavu", fontfile=str(FONT))
        body: list[str] = []
        y = 90
        if number == 1:
            page.insert_text((40, 80), "Annual Report", fontsize=26, fontname="dejavu-bold", fontfile=str(FONT_BOLD))
            body.append("Annual Report")
            y = 120
        heading = f"{number}. Results of part {number}"
        page.insert_text((40, y), heading, fontsize=14, fontname="dejavu-bold", fontfile=str(FONT_BOLD))
        body.append(heading)
        paragraphs = rng.sample(EN_PARAGRAPHS, 2)
        _fit_text(page, pymupdf.Rect(40, y + 15, 460, 560), paragraphs, 10)
        body.extend(paragraphs)
        footer = f"Page {number} of {pages}"
        page.insert_text((220, 630), footer, fontsize=8, fontname="dejavu", fontfile=str(FONT))
        footers.append(footer)
        texts.append("\n\n".join(body))
    doc.save(path)
    doc.close()
    return GeneratedPage(path=path, text="\n\n".join(texts), headers=[REPORT_HEADER] * pages, footers=footers)


def two_column_pdf(path: Path, paragraphs: list[str] | None = None) -> GeneratedPage:
    """A born-digital two-column page whose lines the PDF writes row by row across both columns
    (as many typesetters do), so reading in stream order interleaves the columns."""
    paragraphs = paragraphs or EN_PARAGRAPHS[:4]
    doc = pymupdf.open()
    page = doc.new_page(width=500, height=420)
    # Lay each column out on a scratch page, then write the lines of both columns interleaved.
    scratch_doc = pymupdf.open()
    lines: list[tuple[float, float, str]] = []
    for index, chunk in enumerate((paragraphs[: len(paragraphs) // 2], paragraphs[len(paragraphs) // 2 :])):
        scratch = scratch_doc.new_page(width=500, height=420)
        x0 = 30 + index * 236
        _fit_text(scratch, pymupdf.Rect(x0, 30, x0 + 204, 390), chunk, 10)
        for block in scratch.get_text("dict")["blocks"]:
            for line in block.get("lines", []):
                origin = line["spans"][0]["origin"]
                lines.append((origin[1], origin[0], "".join(s["text"] for s in line["spans"])))
    for y, x, text in sorted(lines):
        page.insert_text((x, y), text, fontsize=10, fontname="dejavu", fontfile=str(FONT))
    scratch_doc.close()
    doc.save(path)
    doc.close()
    return GeneratedPage(path=path, text="\n\n".join(paragraphs))


def truncated_pdf(path: Path, *, pages: int = 10, keep_bytes: int = 3000) -> Path:
    """A text PDF of ``pages`` pages cut after its first ``keep_bytes`` bytes, as a broken
    download leaves it: the page objects come first in the file, their text after them, so
    MuPDF repairs the file on open, finds every page, and most pages come out blank."""
    doc = pymupdf.open()
    for _ in range(pages):  # every page object first...
        doc.new_page(width=400, height=300)
    for number, page in enumerate(doc, start=1):  # ...then each page's text, in later objects
        page.insert_textbox(pymupdf.Rect(30, 30, 370, 270), f"Page {number}. " + EN_PARAGRAPHS[0], fontsize=9)
    data = doc.tobytes(garbage=0, deflate=True, use_objstms=0)
    doc.close()
    path.write_bytes(data[:keep_bytes])
    return path
