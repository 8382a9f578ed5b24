"""Ruled tables on scanned pages, from the rules printed on the page image.

Tesseract reads a ruled table's cells as lines of words and knows nothing of the grid, so the
grid is found here: long dark runs along the rows of the image are horizontal rules, along its
columns vertical ones; where at least three of each cross, the rules are a table, its cells are
the spaces between neighbouring rules (a vertical rule missing in a row merges the cells on both
sides), and each OCR'd word goes into the cell its centre falls in. Plain numpy on the page (no
OpenCV): a Letter page at 200 DPI takes a few hundredths of a second."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .page_layout import Piece, union

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

# A rule is at least this share of the page's width (height) long, and this many pixels.
_MIN_RULE_SHARE = 0.06
_MIN_RULE_PIXELS = 40
# Rules closer than this (pixels) are one thick rule.
_MERGE = 4
# A vertical rule runs through a row of cells when it covers this share of the row's height.
_COVERS = 0.6
_MAX_THICKNESS = 8  # thicker dark bands are pictures or shading, not rules


@dataclass
class _Rule:
    at: float  # y of a horizontal rule, x of a vertical one
    start: float
    end: float


def _runs(binary: np.ndarray, min_length: int) -> list[tuple[int, int, int]]:
    """(row, start, end) of every run of dark pixels at least ``min_length`` long, row by row."""
    import numpy as np

    padded = np.zeros((binary.shape[0], binary.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = binary
    edges = np.diff(padded, axis=1)
    rows, starts = np.nonzero(edges == 1)  # row-major: each start pairs with the next end
    _, ends = np.nonzero(edges == -1)
    long = ends - starts >= min_length
    return list(zip(rows[long].tolist(), starts[long].tolist(), ends[long].tolist(), strict=True))


def _rules(binary: np.ndarray, min_length: int) -> list[_Rule]:
    """Runs on neighbouring rows that overlap merged into one rule each (a rule is a few pixels thick)."""
    rules: list[_Rule] = []
    last: list[int] = []  # the last row of each rule
    for row, start, end in sorted(_runs(binary, min_length)):
        for index in range(len(rules) - 1, -1, -1):
            rule = rules[index]
            if row - last[index] > 1 and row - rule.at > _MAX_THICKNESS:
                if row - rule.at > 4 * _MAX_THICKNESS:
                    index = -1
                    break
                continue
            if row - last[index] <= 1 and min(end, rule.end) - max(start, rule.start) > 0.5 * (end - start):
                rule.start, rule.end = min(rule.start, start), max(rule.end, end)
                last[index] = row
                break
        else:
            index = -1
        if index < 0:
            rules.append(_Rule(float(row), float(start), float(end)))
            last.append(row)
    return [rule for rule, end in zip(rules, last, strict=True) if end - rule.at <= _MAX_THICKNESS]


def _positions(values: Sequence[float]) -> list[float]:
    merged: list[float] = []
    for value in sorted(values):
        if merged and value - merged[-1] <= 2 * _MERGE:
            continue
        merged.append(value)
    return merged


@dataclass
class _Grid:
    ys: list[float]  # horizontal rules, top to bottom
    xs: list[float]  # vertical rules, left to right
    verticals: list[_Rule]

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        return (self.xs[0], self.ys[0], self.xs[-1], self.ys[-1])

    def has_rule(self, column: int, top: float, bottom: float) -> bool:
        """Whether the vertical rule ``column`` runs through the band top..bottom."""
        x = self.xs[column]
        covered = sum(
            max(0.0, min(bottom, r.end) - max(top, r.start)) for r in self.verticals if abs(r.at - x) <= 2 * _MERGE
        )
        return covered >= _COVERS * (bottom - top)


def _crosses(vertical: _Rule, y: float) -> bool:
    return vertical.start - _MERGE <= y <= vertical.end + _MERGE


def _grids(horizontal: list[_Rule], vertical: list[_Rule]) -> list[_Grid]:
    """Groups of horizontal and vertical rules that cross each other: one grid per table. A vertical
    rule counts where it reaches from one horizontal rule to another (a letter's stroke never does)."""
    grids = []
    used: set[int] = set()
    for index, rule in enumerate(horizontal):
        if index in used:
            continue
        crossing = [v for v in vertical if _crosses(v, rule.at) and rule.start - _MERGE <= v.at <= rule.end + _MERGE]
        if len(crossing) < 2:
            continue
        top, bottom = min(v.start for v in crossing), max(v.end for v in crossing)
        members = [
            i
            for i, h in enumerate(horizontal)
            if top - _MERGE <= h.at <= bottom + _MERGE and min(h.end, rule.end) - max(h.start, rule.start) > 0
        ]
        ys = _positions([horizontal[i].at for i in members])
        if len(ys) < 3:
            continue
        used.update(members)
        left = min(horizontal[i].start for i in members) - 2 * _MERGE
        right = max(horizontal[i].end for i in members) + 2 * _MERGE
        columns = [v for v in vertical if left <= v.at <= right and sum(_crosses(v, y) for y in ys) >= 2]
        xs = _positions([v.at for v in columns])
        if xs and xs[0] > left + 5 * _MERGE:  # no outer rule on the left: the horizontal rules end the table
            xs.insert(0, left + 2 * _MERGE)
        if xs and xs[-1] < right - 5 * _MERGE:
            xs.append(right - 2 * _MERGE)
        if len(xs) >= 3:
            grids.append(_Grid(ys, xs, columns))
    return grids


def _binary(image: Image.Image) -> np.ndarray:
    import numpy as np

    gray = np.asarray(image.convert("L"), dtype=np.uint8)
    return (gray < 128).astype(np.int8)


def find_grids(image: Image.Image) -> list[tuple[tuple[float, float, float, float], list[float], list[float]]]:
    """The ruled grids on the page image: (bbox, rule ys, rule xs) each, in image pixels."""
    binary = _binary(image)
    height, width = binary.shape
    horizontal = _rules(binary, max(_MIN_RULE_PIXELS, int(_MIN_RULE_SHARE * width)))
    vertical = _rules(binary.T.copy(), max(_MIN_RULE_PIXELS // 2, int(_MIN_RULE_SHARE * height / 2)))
    return [(grid.bbox, grid.ys, grid.xs) for grid in _grids(horizontal, vertical)]


def _table_html(grid: _Grid, words: Sequence[tuple[tuple[float, float, float, float], str]]) -> str | None:
    rows_html = []
    filled = 0
    cells = 0
    for r in range(len(grid.ys) - 1):
        top, bottom = grid.ys[r], grid.ys[r + 1]
        edges = [0] + [c for c in range(1, len(grid.xs) - 1) if grid.has_rule(c, top, bottom)] + [len(grid.xs) - 1]
        parts = []
        for a, b in zip(edges, edges[1:], strict=False):
            x0, x1 = grid.xs[a], grid.xs[b]
            inside = [
                (box, text)
                for box, text in words
                if x0 <= (box[0] + box[2]) / 2 <= x1 and top <= (box[1] + box[3]) / 2 <= bottom
            ]
            inside.sort(key=lambda w: (round(((w[0][1] + w[0][3]) / 2) / max(1.0, w[0][3] - w[0][1])), w[0][0]))
            text = " ".join(t for _, t in inside)
            cells += 1
            filled += bool(text.strip())
            span = f' colspan="{b - a}"' if b - a > 1 else ""
            parts.append(f"<td{span}>{html.escape(text)}</td>")
        rows_html.append("<tr>" + "".join(parts) + "</tr>")
    if filled < 2 or filled < 0.3 * cells:
        return None  # a frame or a form with empty boxes, not a table of text
    return "<table>" + "".join(rows_html) + "</table>"


def with_tables(image: Image.Image, pieces: list[Piece]) -> list[Piece]:
    """``pieces`` (OCR'd lines of ``image``) with the words inside each ruled table taken out of their
    lines and put into a Table piece (its cells as HTML, its words kept for the searchable PDF)."""
    binary = _binary(image)
    height, width = binary.shape
    horizontal = _rules(binary, max(_MIN_RULE_PIXELS, int(_MIN_RULE_SHARE * width)))
    if len(horizontal) < 3:
        return pieces
    vertical = _rules(binary.T.copy(), max(_MIN_RULE_PIXELS // 2, int(_MIN_RULE_SHARE * height / 2)))
    tables = []
    for grid in _grids(horizontal, vertical):
        x0, y0, x1, y1 = grid.bbox
        inside = [p for p in pieces if p.kind == "Text" and x0 <= p.cx <= x1 and y0 <= p.cy <= y1]
        words = tuple(word for piece in inside for word in piece.words)
        markup = _table_html(grid, words)
        if markup is None:
            continue
        box = union([grid.bbox, *(p.bbox for p in inside)])
        tables.append(Piece(box, markup, kind="Table", words=words))
        taken = {id(p) for p in inside}
        pieces = [p for p in pieces if id(p) not in taken]
    return pieces + tables
