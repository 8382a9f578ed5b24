"""Tables on born-digital PDF pages, as Table pieces holding an HTML table.

PyMuPDF's table finder does the finding: ruled tables from the page's lines (where it draws any), and,
only where the page's text sits in aligned columns, unruled tables through its layout model
(PyMuPDF 2.0: a few tenths of a second a page, so not paid on pages of prose). Cell text is
rebuilt from the page's words rather than taken from the finder, which splits "1,204" into
"1 204" and "," on some fonts. Merged cells become colspan / rowspan."""

from __future__ import annotations

import html
import logging
import re
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
# Ruled tables holding this share of the page's tabular rows are the page's tables.
_COVERED = 0.8
# Fewer lines and rectangles than this cannot rule a table of two rows and two columns.
_RULES = 4


def _tabular_rows(pieces: Sequence[Piece]) -> list[list[Piece]]:
    """The page's rows (pieces side by side) that hold three or more separate pieces."""
    rows: list[list[Piece]] = []
    for piece in sorted((p for p in pieces if p.kind == "Text"), key=lambda p: p.cy):
        if rows and abs(rows[-1][0].cy - piece.cy) <= 0.5 * min(rows[-1][0].height, piece.height):
            rows[-1].append(piece)
        else:
            rows.append([piece])
    return [row for row in rows if len(row) >= _TABULAR_CELLS]


def looks_tabular(pieces: Sequence[Piece]) -> bool:
    """Whether several lines of the page hold three or more separate pieces side by side."""
    return len(_tabular_rows(pieces)) >= _TABULAR_ROWS


def _covered(found: Sequence[Any], pieces: Sequence[Piece], to_pixels: pymupdf.Matrix) -> bool:
    """Whether the ruled tables hold (nearly) all of the page's tabular rows: then the layout model,
    seconds a page, has nothing to add. A table ruled only under its header holds few of them."""
    import pymupdf

    rows = _tabular_rows(pieces)
    boxes = [pymupdf.Rect(t.bbox) * to_pixels for t in found]
    inside = sum(1 for row in rows if any(b.y0 - 1 <= row[0].cy <= b.y1 + 1 for b in boxes))
    return bool(found) and inside >= _COVERED * len(rows)


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
    """The finder's tables. With the layout model, its table boxes are joined with the ruled ones
    (``union``) and their rows and columns rebuilt from the text (``refine``): a statistical table
    ruled only under its header comes whole, not as its header's three rows."""
    try:
        if layout:
            try:
                return list(pdf_page.find_tables(use_layout=True, union=True, refine=True).tables)
            except TypeError:  # a PyMuPDF 2.0 without union/refine
                return list(pdf_page.find_tables(use_layout=True).tables)
        return list(pdf_page.find_tables(use_layout=False).tables)  # rules only: hundredths of a second
    except TypeError:  # PyMuPDF before 2.0: no layout model, ruled tables only
        return [] if layout else list(pdf_page.find_tables().tables)


def find_tables(pdf_page: pymupdf.Page, to_pixels: pymupdf.Matrix, pieces: Sequence[Piece]) -> list[Piece]:
    """The page's tables as Table pieces (bbox in page pixels, text an HTML table). Where the page
    both draws rules and sets text in aligned columns, both finders run and the one that puts more
    text into cells wins: rules also frame charts and boxes (a partial "table" of a chart's frame),
    and the layout model misses tables drawn as a grid without aligned text."""
    import pymupdf

    try:
        finds = []
        if _has_rules(pdf_page):
            finds.append(_find(pdf_page, layout=False))
        if looks_tabular(pieces) and not (finds and _covered(finds[0], pieces, to_pixels)):
            finds.append(_find(pdf_page, layout=True))
        if not any(finds):
            return []
        words = pdf_page.get_text("words", sort=True)
    except Exception as exc:  # a table finder failure costs the tables, never the page's text
        log.warning("table finder failed on page %s: %s", pdf_page.number + 1, exc)
        return []
    best: list[Piece] = []
    best_cells = 0
    for found in finds:
        tables = []
        for table in found:
            markup = table_html(table, words)
            if markup is None:
                continue
            rect = pymupdf.Rect(table.bbox) * to_pixels
            tables.append(Piece((rect.x0, rect.y0, rect.x1, rect.y1), markup, kind="Table"))
        cells = sum(len(re.findall(r"<t[dh][^>]*>[^<]", t.text)) for t in tables)
        if cells > best_cells:
            best, best_cells = tables, cells
    return best


def _split_unruled(row: list[Any], column_x: Sequence[float], right: float, words: Sequence[tuple]) -> list[Any]:
    """A row whose cells are ruled in the header but not in the body comes from the finder as one
    cell spanning the columns (the rest None): where a column of it holds words of its own, the
    column is a cell of its own again ("Austria | 0 | 100" rather than "Austria 0 100"). Cells that
    span rows are left alone (their words are in the row above)."""
    row = [tuple(box) if box is not None else None for box in row]
    ys = [(box[1], box[3]) for box in row if box is not None]
    if not ys or all(box is not None for box in row):
        return row
    top, bottom = max(y[0] for y in ys), min(y[1] for y in ys)
    for c in range(1, len(row)):
        if row[c] is not None or column_x[c] == float("inf"):
            continue
        owner = next((i for i in range(c - 1, -1, -1) if row[i] is not None), None)
        if owner is None or row[owner][3] > bottom + 1 or row[owner][1] < top - 1:
            continue  # not a span along this row
        end = next((column_x[i] for i in range(c + 1, len(row)) if column_x[i] != float("inf")), right)
        box = (column_x[c], row[owner][1], min(end, row[owner][2]), row[owner][3])
        if box[2] > box[0] and _cell_text(box, words):
            row[owner] = (row[owner][0], row[owner][1], column_x[c], row[owner][3])
            row[c] = box
    return row


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
    grid = [_split_unruled(row, column_x, table.bbox[2], words) for row in grid]
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
            left_box = grid[left[0]][left[1]] if left is not None else None
            if left is not None and left_box is not None and left_box[2] > column_x[c] + 1:
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
    cells = _without_empty_lines(cells)
    filled = sum(1 for text, _, _ in cells.values() if text.strip())
    if filled < 0.5 * len(cells) or filled < 2:
        return None
    header = not getattr(getattr(table, "header", None), "external", True)
    rows_html = []
    for r in sorted({r for r, _ in cells}):
        tag = "th" if header and r == 0 else "td"
        parts = []
        for c in sorted(c for row, c in cells if row == r):
            text, rowspan, colspan = cells[(r, c)]
            spans = (f' rowspan="{rowspan}"' if rowspan > 1 else "") + (f' colspan="{colspan}"' if colspan > 1 else "")
            parts.append(f"<{tag}{spans}>{html.escape(text)}</{tag}>")
        rows_html.append("<tr>" + "".join(parts) + "</tr>")
    return "<table>" + "".join(rows_html) + "</table>"


def _without_empty_lines(cells: dict[tuple[int, int], list[Any]]) -> dict[tuple[int, int], list[Any]]:
    """The grid without the columns and rows no text starts in: the finder makes a column of every
    gap between rules, so a table drawn with double rules or padded cells comes with empty ones
    (and then looked mostly empty). Spans across a dropped line shrink; a cell left spanning
    nothing goes."""
    columns = sorted({c for (_, c), (text, _, _) in cells.items() if text.strip()})
    rows = sorted({r for (r, _), (text, _, _) in cells.items() if text.strip()})
    if not columns or not rows:
        return cells
    kept: dict[tuple[int, int], list[Any]] = {}
    for (r, c), (text, rowspan, colspan) in cells.items():
        over_rows = [i for i, row in enumerate(rows) if r <= row < r + rowspan]
        over_columns = [i for i, column in enumerate(columns) if c <= column < c + colspan]
        if not over_rows or not over_columns:
            continue
        place = (over_rows[0], over_columns[0])
        if place not in kept or text.strip():
            kept[place] = [text, len(over_rows), len(over_columns)]
    return kept
