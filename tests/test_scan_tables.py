"""Ruled tables on scanned pages become tables: the grid is read from the rules printed on the page
image and Tesseract's words go into its cells (issue 21, Build item 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from ocr_studio.engines import scan_tables
from ocr_studio.engines.page_layout import Piece, split_line
from ocr_studio.html_table import parse_table

ROWS = [
    ("Region", "2023", "2024"),
    ("North", "1,204", "1,310"),
    ("South-east", "877", "902"),
    ("Total", "2,081", "2,212"),
]
COLUMNS = [150, 650, 1000, 1350]
TOP, ROW = 300, 70


def _font(size: int = 28) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def ruled_scan(*, merged_row: bool = False) -> tuple[Image.Image, list[Piece]]:
    """A page image with a title, a ruled 4 × 3 table and a paragraph below it, and the OCR lines of its words
    (word boxes where the words are drawn, cut into pieces at the cells' gaps as Tesseract's lines are)."""
    font = _font()
    image = Image.new("L", (1700, 1200), 255)
    draw = ImageDraw.Draw(image)
    pieces: list[Piece] = []

    def write(x: float, y: float, text: str) -> tuple[tuple[float, float, float, float], str]:
        draw.text((x, y), text, font=font, fill=0)
        return draw.textbbox((x, y), text, font=font), text

    pieces += split_line(
        [write(150, 150, "Results"), write(290, 150, "of"), write(330, 150, "the"), write(390, 150, "survey")]
    )
    for r in range(len(ROWS) + 1):
        draw.line([(COLUMNS[0], TOP + r * ROW), (COLUMNS[-1], TOP + r * ROW)], fill=0, width=3)
    for index, x in enumerate(COLUMNS):
        if merged_row and index == 2:  # the last row's two number cells are one cell: no rule between them
            draw.line([(x, TOP), (x, TOP + 3 * ROW)], fill=0, width=3)
        else:
            draw.line([(x, TOP), (x, TOP + len(ROWS) * ROW)], fill=0, width=3)
    for r, row in enumerate(ROWS):
        words = [write(COLUMNS[c] + 20, TOP + r * ROW + 18, cell) for c, cell in enumerate(row)]
        pieces += split_line(words)
    pieces += split_line([write(150, 700, "The"), write(210, 700, "paragraph"), write(380, 700, "below.")])
    return image, pieces


def test_a_ruled_grid_on_a_scan_becomes_a_table_with_its_words_in_their_cells() -> None:
    image, pieces = ruled_scan()
    result = scan_tables.with_tables(image, pieces)
    [table] = [p for p in result if p.kind == "Table"]
    grid = parse_table(table.text)
    assert grid.row_texts() == [list(row) for row in ROWS]
    texts = [p.text for p in result if p.kind == "Text"]
    assert texts == ["Results of the survey", "The paragraph below."]  # the rest of the page untouched
    assert {w for _, w in table.words} >= {"North", "1,204", "2,212"}  # the words stay, for the searchable PDF
    assert table.bbox[0] <= COLUMNS[0] + 2 and table.bbox[2] >= COLUMNS[-1] - 2


def test_a_missing_rule_merges_the_cells_beside_it() -> None:
    image, pieces = ruled_scan(merged_row=True)
    [table] = [p for p in scan_tables.with_tables(image, pieces) if p.kind == "Table"]
    assert '<td colspan="2">2,081 2,212</td>' in table.text


def test_underlines_frames_and_letters_are_no_table() -> None:
    font = _font(40)
    image = Image.new("L", (1700, 1200), 255)
    draw = ImageDraw.Draw(image)
    draw.text((150, 100), "Illustrated lilliput III |||| llll 1111", font=font, fill=0)  # tall strokes, no rules
    draw.line([(150, 160), (900, 160)], fill=0, width=3)  # an underline
    draw.rectangle((100, 300, 1600, 700), outline=0, width=3)  # a frame around a paragraph
    draw.text((150, 350), "A boxed note with a single paragraph of text inside its frame.", font=font, fill=0)
    line = [((150.0, 350.0, 1500.0, 400.0), "A boxed note with a single paragraph of text inside its frame.")]
    pieces = split_line(line)
    assert [p.kind for p in scan_tables.with_tables(image, pieces)] == ["Text"]


def test_a_scanned_ruled_table_is_a_table_in_the_engines_result(tmp_path: Path) -> None:
    """End to end: the PNG through Tesseract and the no-GPU engine."""
    from ocr_studio.documents import Limits, open_document
    from ocr_studio.engines import tesseract
    from ocr_studio.engines.base import RecognizeRequest, Task
    from ocr_studio.engines.text_layer import TextLayerEngine
    from ocr_studio.settings import Settings

    if tesseract.language_problem("eng") is not None:
        pytest.skip("Tesseract with English is not installed")
    image, _ = ruled_scan()
    path = tmp_path / "table.png"
    image.save(path, dpi=(200, 200))
    with open_document(path, limits=Limits(dpi=200)) as document:
        [result] = TextLayerEngine(Settings(ocr_languages="eng")).recognize(
            list(document.pages()), RecognizeRequest(task=Task.TEXT)
        )
    tables = [b for b in result.blocks if b.category == "Table"]
    assert len(tables) == 1, [(b.category, b.text) for b in result.blocks]
    cells = [cell for row in parse_table(tables[0].text).row_texts() for cell in row]
    assert sum(cell in {c for row in ROWS for c in row} for cell in cells) >= 10  # OCR may misread one or two
