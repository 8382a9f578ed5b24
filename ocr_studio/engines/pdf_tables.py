"""Tables on born-digital PDF pages, as Table pieces holding an HTML table.

PyMuPDF's table finder does the finding: ruled tables from the page's lines (where it draws any), and,
only where the page's text sits in aligned columns, unruled tables through its layout model
(PyMuPDF 2.0: a few tenths of a second a page, so not paid on pages of prose). Cell text is
rebuilt from the page's words rather than taken from the finder, which splits "1,204" into
"1 204" and "," on some fonts. Merged cells become colspan / rowspan."""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .page_layout import Piece

if TYPE_CHECKING:
    import pymupdf

log = logging.getLogger(__name__)

# A row with at least this many separate pieces of text, repeated on this many rows, looks
# like an unruled table and is worth the layout model's look.
_TABULAR_CELLS = 3
_TABULAR_ROWS = 3
# Fewer lines and rectangles than this cannot rule a table of two rows and two columns.
_RULES = 4


def looks_tabular(pieces: Sequence[Piece]) -> bool:
    """Whether several lines of the page hold three or more separate pieces side by side."""
    rows: list[list[Piece]] = []
    for piece in sorted((p for p in pieces if p.kind == "Text"), key=lambda p: p.cy):
        if rows and abs(rows[-1][0].cy - piece.cy) <= 0.5 * min(rows[-1][0].height, piece.height):
            rows[-1].append(piece)
        else:
            rows.append([piece])
    return sum(1 for row in rows if len(row) >= _TABULAR_CELLS) >= _TABULAR_ROWS


def _has_rules(pdf_page: pymupdf.Page) -> bool:
    """Whether the page draws enough lines or rectangles to rule a table: the line finder costs
    a tenth of a second or more on real pages, and most pages draw none."""
    drawn = 0
    for path in pdf_page.get_cdrawings():
        drawn += sum(1 for item in path.get("items", ()) if item[0] in ("l", "re", "qu"))
        if drawn >= _RULES:
            return True
    return False


def _find(pdf_page: pymupdf.Page, *, layout: bool) -> list[Any]:
    try:
        return list(pdf_page.find_tables(use_layout=layout).tables)
    except TypeError:  # PyMuPDF before 2.0: no layout model, ruled tables only
        return [] if layout else list(pdf_page.find_tables().tables)


def find_tables(pdf_page: pymupdf.Page, to_pixels: pymupdf.Matrix, pieces: Sequence[Piece]) -> list[Piece]:
    """The page's tables as Table pieces (bbox in page pixels, text an HTML table)."""
    try:
        found = _find(pdf_page, layout=False) if _has_rules(pdf_page) else []
        if not found and looks_tabular(pieces):
            found = _find(pdf_page, layout=True)
        if not found:
            return []
        words = pdf_page.get_text("words", sort=True)
    except Exception as exc:  # a table finder failure costs the tables, never the page's text
        log.warning("table finder failed on page %s: %s", pdf_page.number + 1, exc)
        return []
    import pymupdf

    tables = []
    for table in found:
        markup = table_html(table, words)
        if markup is None:
            continue
        rect = pymupdf.Rect(table.bbox) * to_pixels
        tables.append(Piece((rect.x0, rect.y0, rect.x1, rect.y1), markup, kind="Table"))
    return tables


def _cell_text(cell: tuple[float, float, float, float], words: Sequence[tuple]) -> str:
    x0, y0, x1, y1 = cell
    inside = [w[4] for w in words if x0 <= (w[0] + w[2]) / 2 <= x1 and y0 <= (w[1] + w[3]) / 2 <= y1]
    return " ".join(inside)


def table_html(table: Any, words: Sequence[tuple]) -> str | None:
    """A PyMuPDF table as an HTML table, or None when it is not worth one (fewer than two rows
    or columns, or mostly empty cells: a frame drawn around text, not a table)."""
    grid = [list(row.cells) for row in table.rows]
    if len(grid) < 2 or max((len(r) for r in grid), default=0) < 2:
        return None
    columns = max(len(r) for r in grid)
    column_x = [
        min((r[c][0] for r in grid if c < len(r) and r[c] is not None), default=float("inf")) for c in range(columns)
    ]
    # cells[(row, column)] = [text, rowspan, colspan]; a None cell extends its left or upper neighbour.
    cells: dict[tuple[int, int], list[Any]] = {}
    owner: dict[tuple[int, int], tuple[int, int]] = {}
    for r, row in enumerate(grid):
        for c in range(columns):
            box = row[c] if c < len(row) else None
            if box is not None:
                cells[(r, c)] = [_cell_text(box, words), 1, 1]
                owner[(r, c)] = (r, c)
                continue
            left = owner.get((r, c - 1))
            if left is not None and grid[left[0]][left[1]][2] > column_x[c] + 1:
                cells[left][2] += 1 if left[0] == r else 0
                owner[(r, c)] = left
                continue
            above = owner.get((r - 1, c))
            if above is not None:
                if above[1] == c:
                    cells[above][1] += 1
                owner[(r, c)] = above
                continue
            cells[(r, c)] = ["", 1, 1]
            owner[(r, c)] = (r, c)
    filled = sum(1 for text, _, _ in cells.values() if text.strip())
    if filled < 0.5 * len(cells) or filled < 2:
        return None
    header = not getattr(getattr(table, "header", None), "external", True)
    rows_html = []
    for r in range(len(grid)):
        tag = "th" if header and r == 0 else "td"
        parts = []
        for c in range(columns):
            if (r, c) not in cells:
                continue
            text, rowspan, colspan = cells[(r, c)]
            spans = (f' rowspan="{rowspan}"' if rowspan > 1 else "") + (f' colspan="{colspan}"' if colspan > 1 else "")
            parts.append(f"<{tag}{spans}>{html.escape(text)}</{tag}>")
        rows_html.append("<tr>" + "".join(parts) + "</tr>")
    return "<table>" + "".join(rows_html) + "</table>"
