"""A table as a grid of cells, read from the HTML (or Markdown pipe table) a model writes.

The searchable PDF needs a table's cell text row by row; Word needs the grid with each
cell's row and column span to merge real table cells. Both read it from here, so
a table is parsed one way. Unknown tags are ignored, their text kept (models wrap
cells in ``<b>``, ``<p>``, ``<br>``), which makes the parser forgiving of sloppy HTML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

_MAX_SPAN = 1000  # a model may write rowspan="99999"; the grid never grows beyond the table anyway


@dataclass
class Cell:
    text: str
    row: int  # top-left position in the grid, 0-based
    column: int
    rowspan: int = 1
    colspan: int = 1
    header: bool = False


@dataclass
class Table:
    cells: list[Cell] = field(default_factory=list)
    rows: int = 0
    columns: int = 0

    def row_texts(self) -> list[list[str]]:
        """Each grid row's cell texts, left to right (a spanning cell counted once, where it starts)."""
        rows: list[list[str]] = [[] for _ in range(self.rows)]
        for cell in sorted(self.cells, key=lambda c: (c.row, c.column)):
            rows[cell.row].append(cell.text)
        return rows


def _span(value: str | None) -> int:
    try:
        return max(1, min(int(str(value).strip()), _MAX_SPAN))
    except ValueError:
        return 1


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[tuple[str, int, int, bool]]] = []
        self.cell: list[str] | None = None
        self.cell_attrs: tuple[int, int, bool] = (1, 1, False)
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif tag == "tr":
            self._end_cell()
            self.rows.append([])
        elif tag in ("td", "th"):
            self._end_cell()
            if not self.rows:
                self.rows.append([])
            values = dict(attrs)
            self.cell = []
            self.cell_attrs = (_span(values.get("rowspan")), _span(values.get("colspan")), tag == "th")
        elif tag == "br" and self.cell is not None:
            self.cell.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip = max(0, self.skip - 1)
        elif tag in ("td", "th", "tr", "table"):
            self._end_cell()

    def handle_data(self, data: str) -> None:
        if self.cell is not None and not self.skip:
            self.cell.append(data)

    def _end_cell(self) -> None:
        if self.cell is None:
            return
        text = "\n".join(" ".join(line.split()) for line in "".join(self.cell).split("\n")).strip()
        self.rows[-1].append((text, *self.cell_attrs))
        self.cell = None


def parse_table(markup: str) -> Table:
    """The grid of ``markup`` (a table's HTML): every cell placed where HTML places it,
    skipping the slots that spanning cells above or to the left already fill."""
    parser = _Parser()
    parser.feed(markup)
    parser.close()
    parser._end_cell()
    taken: set[tuple[int, int]] = set()
    table = Table()
    rows = [row for row in parser.rows if row]
    for r, row in enumerate(rows):
        column = 0
        for text, rowspan, colspan, header in row:
            while (r, column) in taken:
                column += 1
            rowspan = min(rowspan, len(rows) - r)  # a span past the last row ends there
            for dr in range(rowspan):
                for dc in range(colspan):
                    taken.add((r + dr, column + dc))
            table.cells.append(Cell(text, r, column, rowspan, colspan, header))
            column += colspan
    table.rows = len(rows)
    table.columns = max((c + 1 for _, c in taken), default=0)
    return table


def looks_like_table(text: str) -> bool:
    return re.search(r"<table\b", text, re.I) is not None


_PIPE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def looks_like_markdown_table(text: str) -> bool:
    """A Markdown pipe table (what Qwen3-VL's Markdown task writes): a header row, a rule
    row of dashes, then rows, every line holding a pipe."""
    lines = [line for line in text.strip().split("\n") if line.strip()]
    return len(lines) >= 2 and all("|" in line for line in lines) and _PIPE_RULE.match(lines[1]) is not None


def parse_markdown_table(text: str) -> Table:
    """The grid of a Markdown pipe table; the first row is the header."""
    lines = [line.strip() for line in text.strip().split("\n") if line.strip()]
    table = Table()
    rows = [lines[0], *lines[2:]]
    for r, line in enumerate(rows):
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        for c, cell in enumerate(cells):
            table.cells.append(Cell(cell.replace("\\|", "|"), r, c, header=r == 0))
        table.columns = max(table.columns, len(cells))
    table.rows = len(rows)
    return table
