"""A page's layout from its lines: reading order across columns, paragraphs, and dots.ocr's
categories (Title, Section-header, Text, List-item, Caption, Footnote, Page-header,
Page-footer; Table and Picture come in as finished pieces).

Used for both kinds of text the no-GPU engine has: a born-digital PDF's own lines and the
lines of Tesseract's words. Neither comes in a reliable reading order — PDFs often write the
lines of two columns row by row, and Tesseract merges the lines of columns that sit close —
so the order is decided here, geometrically, with a recursive cut along the page's gutters.
Everything works in one page's pixels; sizes are only ever compared within one page."""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..results import Block

BBox = tuple[float, float, float, float]
Words = tuple[tuple[BBox, str], ...]

# A piece of text this far from its neighbour on the same line (× the line's height) is in
# another column (or another table cell): the line is split there.
SPLIT_GAP = 1.5
# A gutter between columns is at least this wide (× the median line height)...
MIN_GUTTER = 0.8
# ...and a column is made of lines at least this long (× their height): prose, not labels.
COLUMN_LINE = 4.0
# Headers and footers live in this share of the page at its top and bottom.
FURNITURE_BAND = 0.1

_BULLET = re.compile(r"^\s*(?:[•·▪◦‣●○■□➢►✓*–—-]|\(?\d{1,3}[.)]|\(?[a-zа-я][.)])\s+\S")
_CAPTION = re.compile(
    r"^\s*(?:fig(?:ure)?\.?|table|chart|plate|рис(?:унок)?\.?|таблица|схема|abb(?:ildung)?\.?|tab(?:elle)?\.?)"
    r"\s*[\dIVXivx]+[a-z]?\b",
    re.IGNORECASE,
)
_PAGE_NUMBER = re.compile(
    r"^\W*(?:(?:page|p\.|pg\.|seite|стр\.?|страница|с\.)\s*)?\d{1,4}(?:\s*(?:of|/|из|von)\s*\d{1,4})?\W*$",
    re.IGNORECASE,
)
_FOOTNOTE_MARK = re.compile(r"^\s*(?:\d{1,3}|[*†‡§¹²³⁴⁵⁶⁷⁸⁹])")


@dataclass
class Piece:
    """A line of text (or the part of one in one column), or a finished Table / Picture block.
    ``size`` is the font size for PDF text and the line height for OCR text: only compared
    with the other pieces of the same page."""

    bbox: BBox
    text: str = ""
    size: float = 0.0
    bold: bool = False
    words: Words = ()
    kind: str = "Text"  # "Text", or "Table" / "Picture" for blocks found whole
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def width(self) -> float:
        return self.bbox[2] - self.bbox[0]

    @property
    def height(self) -> float:
        return self.bbox[3] - self.bbox[1]

    @property
    def cx(self) -> float:
        return (self.bbox[0] + self.bbox[2]) / 2

    @property
    def cy(self) -> float:
        return (self.bbox[1] + self.bbox[3]) / 2


def union(boxes: Iterable[BBox]) -> BBox:
    boxes = list(boxes)
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def split_line(words: Sequence[tuple[BBox, str]], *, size: float = 0.0, bold: bool = False) -> list[Piece]:
    """One line's words (left to right) as pieces, cut wherever the space between two words is
    wider than ``SPLIT_GAP`` × the line's height: a gutter or a table's column gap."""
    words = sorted(words, key=lambda w: w[0][0])
    if not words:
        return []
    # The line's full height: one word's box may be x-height only ("a", "one"), another a bullet.
    height = (max(w[0][3] for w in words) - min(w[0][1] for w in words)) or 1.0
    groups: list[list[tuple[BBox, str]]] = [[words[0]]]
    for word in words[1:]:
        if word[0][0] - groups[-1][-1][0][2] > SPLIT_GAP * height:
            groups.append([])
        groups[-1].append(word)
    pieces = []
    for group in groups:
        bbox = union(w[0] for w in group)
        pieces.append(Piece(bbox, " ".join(w[1] for w in group), size or (bbox[3] - bbox[1]), bold, words=tuple(group)))
    return pieces


_ASCENDERS = frozenset("bdfhiklt0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ?!%&#@$бёйАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ")
_DESCENDERS = frozenset("gjpqyдруфцщ")


def text_size(words: Sequence[tuple[BBox, str]]) -> float:
    """A line's font size in pixels from its words' boxes: a box is as tall as the letters in it
    (x-height only, with ascenders, descenders or both), so each height is scaled by what its
    word's letters reach before the median is taken. Keeps "the new one." and "jumpy" the same size."""
    sizes = []
    for bbox, text in words:
        letters = set(text)
        up, down = bool(letters & _ASCENDERS), bool(letters & _DESCENDERS)
        share = 1.0 if up and down else 0.78 if up or down else 0.56
        sizes.append((bbox[3] - bbox[1]) / share)
    return statistics.median(sizes) if sizes else 0.0


def ocr_pieces(words: Iterable[tuple[BBox, str, tuple[int, ...]]], *, letter_boxes: bool = True) -> list[Piece]:
    """Tesseract's words (box, text, line id) as line pieces: its lines, split at wide gaps. The
    size of each is its letters' size, estimated from the word boxes where they hug the letters
    (``letter_boxes``), else the boxes' height."""
    lines: dict[tuple[int, ...], list[tuple[BBox, str]]] = {}
    for bbox, text, line in words:
        lines.setdefault(line, []).append((bbox, text))
    pieces = []
    for line, line_words in lines.items():
        for piece in split_line(line_words):
            piece.size = (text_size(piece.words) if letter_boxes else 0.0) or piece.height
            # Tesseract's block and paragraph: where its layout analysis put the line
            piece.extra.update(block=line[0], paragraph=tuple(line[:2]), line=tuple(line))
            pieces.append(_with_bullet(piece))
    return pieces


_BULLET_LOOKALIKES = frozenset("eoc«©®¢°*•·■▪●")


def _with_bullet(piece: Piece) -> Piece:
    """Tesseract reads a list's bullet as "e", "o" or "©": a lone small mark set apart from the
    line's first word by more than a space is a bullet, written "•" so the line is a list item."""
    if len(piece.words) < 2:
        return piece
    (box, mark), (following, _) = piece.words[0], piece.words[1]
    small = box[3] - box[1] <= 0.7 * piece.height
    apart = following[0] - box[2] >= 0.6 * piece.height
    if mark in _BULLET_LOOKALIKES and small and apart:
        piece.words = ((box, "•"), *piece.words[1:])
        piece.text = "• " + piece.text.split(" ", 1)[1]
    return piece


# --- reading order ---------------------------------------------------------------------------


def _text_height(items: Sequence[Piece]) -> float:
    heights = [p.height for p in items if p.kind == "Text" and p.height > 0]
    return statistics.median(heights) if heights else 10.0


def _gutter(items: Sequence[Piece], line_height: float) -> tuple[float, float] | None:
    """The widest vertical strip of white between lines of prose on both sides, or None."""
    if len(items) < 2:
        return None
    left_edge = min(p.bbox[0] for p in items)
    right_edge = max(p.bbox[2] for p in items)
    material = [
        p
        for p in items
        if p.kind == "Text" and p.width >= COLUMN_LINE * p.height and p.width < 0.7 * (right_edge - left_edge)
    ]
    if len(material) < 4:
        return None
    spans = sorted((p.bbox[0], p.bbox[2]) for p in material)
    best: tuple[float, float] | None = None
    reach = spans[0][1]
    for x0, x1 in spans[1:]:
        if x0 - reach >= MIN_GUTTER * line_height:
            left = sum(1 for p in material if p.bbox[2] <= reach)
            right = sum(1 for p in material if p.bbox[0] >= x0)
            if left >= 2 and right >= 2 and (best is None or x0 - reach > best[1] - best[0]):
                best = (reach, x0)
        reach = max(reach, x1)
    return best


def _rows(items: Sequence[Piece]) -> list[Piece]:
    """Single-column order: top to bottom, and left to right among pieces sharing a line."""
    ordered: list[Piece] = []
    row: list[Piece] = []
    row_box: tuple[float, float] | None = None
    for piece in sorted(items, key=lambda p: (p.cy, p.bbox[0])):
        if row_box is not None:
            overlap = min(row_box[1], piece.bbox[3]) - max(row_box[0], piece.bbox[1])
            if overlap >= 0.5 * min(piece.height, row_box[1] - row_box[0]):
                row.append(piece)
                row_box = (min(row_box[0], piece.bbox[1]), max(row_box[1], piece.bbox[3]))
                continue
            ordered.extend(sorted(row, key=lambda p: p.bbox[0]))
        row, row_box = [piece], (piece.bbox[1], piece.bbox[3])
    ordered.extend(sorted(row, key=lambda p: p.bbox[0]))
    return ordered


def reading_order(items: Sequence[Piece], line_height: float | None = None) -> list[Piece]:
    """Pieces in reading order: columns left to right, each top to bottom; anything that
    crosses a gutter (a title over both columns, a wide table) separates what is above it
    from what is below it."""
    items = list(items)
    if len(items) <= 1:
        return items
    line_height = line_height or _text_height(items)
    gutter = _gutter(items, line_height)
    if gutter is None:
        return _rows(items)
    g0, g1 = gutter
    spanners = sorted((p for p in items if p.bbox[0] < g1 and p.bbox[2] > g0), key=lambda p: p.cy)
    if not spanners:
        middle = (g0 + g1) / 2
        left = [p for p in items if p.cx < middle]
        right = [p for p in items if p.cx >= middle]
        return reading_order(left, line_height) + reading_order(right, line_height)
    ordered: list[Piece] = []
    crossing = {id(p) for p in spanners}
    rest = [p for p in items if id(p) not in crossing]
    for spanner in spanners:
        above = [p for p in rest if p.cy < spanner.cy]
        rest = [p for p in rest if p.cy >= spanner.cy]
        ordered += reading_order(above, line_height) + [spanner]
    return ordered + reading_order(rest, line_height)


def _edge_row(items: Sequence[Piece], height: float, line_height: float, *, top: bool) -> list[Piece]:
    """The row of text at the very top (or bottom) of the page, when it lies in the furniture band
    and a blank line or more keeps it apart from the rest: a running header or a page number."""
    text = [p for p in items if p.kind == "Text"]
    if len(text) < 2:
        return []
    ordered = sorted(text, key=lambda p: p.bbox[1] if top else -p.bbox[3])
    row, low, high = [ordered[0]], ordered[0].bbox[1], ordered[0].bbox[3]
    for piece in ordered[1:]:
        if min(high, piece.bbox[3]) - max(low, piece.bbox[1]) < 0.5 * min(piece.height, high - low):
            break
        row.append(piece)
        low, high = min(low, piece.bbox[1]), max(high, piece.bbox[3])
    rest = [p for p in items if all(p is not r for r in row)]
    if not rest:
        return []
    if top:
        gap = min(p.bbox[1] for p in rest) - high
        inside = high <= FURNITURE_BAND * height
    else:
        gap = low - max(p.bbox[3] for p in rest)
        inside = low >= (1 - FURNITURE_BAND) * height
    return row if inside and gap >= 1.5 * line_height else []


def page_order(items: Sequence[Piece], page_height: float) -> list[Piece]:
    """``reading_order`` for a whole page: a header row at its very top comes first and a footer
    row at its very bottom last, whatever column they sit over (a page number in a corner)."""
    line_height = _text_height(items)
    head = _edge_row(items, page_height, line_height, top=True)
    rest = [p for p in items if all(p is not h for h in head)]
    foot = _edge_row(rest, page_height, line_height, top=False)
    body = [p for p in rest if all(p is not f for f in foot)]
    return _rows(head) + reading_order(body, line_height) + _rows(foot)


# --- reading order of OCR'd pages: Tesseract's blocks, placed on a Manhattan layout ------------


@dataclass
class _Region:
    """One of Tesseract's blocks (or one column of a block it made across a gutter): its lines in
    Tesseract's order, the box around them, and its place in Tesseract's order."""

    pieces: list[Piece]
    bbox: BBox
    index: int
    block: object = None
    column: int = 0  # left to right among the columns of the same block
    split: bool = False  # a column of a block Tesseract made across a gutter

    @property
    def cy(self) -> float:
        return (self.bbox[1] + self.bbox[3]) / 2


def ocr_order(pieces: Sequence[Piece], width: float, height: float) -> list[Piece]:
    """OCR'd lines in reading order, changing Tesseract's own order only where it breaks one of two
    rules: a block above another in the same column is read first (Tesseract reads a full-width
    heading under two columns before the right column); and a block Tesseract made across a
    gutter (its lines cut in two by ``split_line``) is read column by column. Tesseract's blocks,
    and its order of the lines in each, are kept."""
    regions = _regions(pieces)
    if len(regions) <= 1:
        return [p for region in regions for p in region.pieces]
    return [p for region in _constrained(regions) for p in region.pieces]


def _regions(pieces: Sequence[Piece]) -> list[_Region]:
    """The pieces grouped by Tesseract block, in Tesseract's order; a block whose lines run across
    a gutter becomes one region per column; pieces of no block (tables, pictures) are regions of
    their own."""
    groups: dict[object, list[Piece]] = {}
    for index, piece in enumerate(pieces):
        groups.setdefault(piece.extra.get("block", ("piece", index)), []).append(piece)
    regions: list[_Region] = []
    for block, members in groups.items():
        columns = _side_by_side(members)
        for column, lines in enumerate(columns):
            box = union(p.bbox for p in lines)
            for piece in lines if len(columns) > 1 else ():
                piece.extra["split"] = True  # Tesseract's paragraphs ran across the gutter here: not kept
            regions.append(_Region(lines, box, len(regions), block, column, split=len(columns) > 1))
    return regions


def _side_by_side(members: list[Piece]) -> list[list[Piece]]:
    """A block's pieces in columns: pieces whose spans across the page overlap, directly or
    through others, are one column (left to right; each in Tesseract's order)."""
    spans = sorted(range(len(members)), key=lambda i: members[i].bbox[0])
    columns: list[list[int]] = []
    reach = float("-inf")
    for i in spans:
        if columns and members[i].bbox[0] < reach:
            columns[-1].append(i)
            reach = max(reach, members[i].bbox[2])
        else:
            columns.append([i])
            reach = members[i].bbox[2]
    found = [[members[i] for i in sorted(column)] for column in columns]
    prose = [statistics.median(p.width / max(p.height, 1.0) for p in c) >= COLUMN_LINE for c in found]
    lines = all(len(c) >= 2 for c in found)
    columns = len(found) > 1 and (all(prose) or (any(prose) and lines))
    return found if columns else [members]  # a table's cells stay in Tesseract's rows


def _before(a: _Region, b: _Region) -> bool:
    """Whether ``a`` must be read before ``b``: it sits above ``b`` in the same column, or it is a
    column of the same block to the left of ``b``."""
    if a.block == b.block and a.column < b.column:
        return True
    overlap = min(a.bbox[2], b.bbox[2]) - max(a.bbox[0], b.bbox[0])
    slack = 0.25 * min(a.bbox[3] - a.bbox[1], b.bbox[3] - b.bbox[1])
    return overlap > 0 and a.bbox[3] <= b.bbox[1] + slack and a.bbox[1] < b.bbox[1]


def _down_columns(columns: Sequence[_Region], regions: Sequence[_Region]) -> set[tuple[int, int]]:
    """Where Tesseract read across a gutter, the columns it cut are read down, left before right:
    ``a`` left of ``b`` comes first unless something between them in height spans both."""
    edges = set()
    for a in columns:
        for b in columns:
            if a.bbox[2] > b.bbox[0]:
                continue
            top, bottom = min(a.bbox[1], b.bbox[1]), max(a.bbox[3], b.bbox[3])
            spanned = any(
                c.bbox[0] < a.bbox[2] and c.bbox[2] > b.bbox[0] and top < c.cy < bottom
                for c in regions
                if c is not a and c is not b
            )
            if not spanned:
                edges.add((a.index, b.index))
    return edges


def _heading_of(regions: Sequence[_Region], head: _Region) -> _Region | None:
    """The region ``head`` introduces: the one right under it (less than two of its lines away),
    much wider than it; a heading over a full-width part below columns belongs with that part."""
    height = head.bbox[3] - head.bbox[1]
    below = [
        r
        for r in regions
        if r is not head
        and min(r.bbox[2], head.bbox[2]) > max(r.bbox[0], head.bbox[0])
        and 0 <= r.bbox[1] - head.bbox[3] <= 2 * height
    ]
    if not below:
        return None
    nearest = min(below, key=lambda r: r.bbox[1])
    wide = nearest.bbox[2] - nearest.bbox[0] >= 1.5 * (head.bbox[2] - head.bbox[0])
    return nearest if wide else None


def _constrained(regions: Sequence[_Region]) -> list[_Region]:
    """The regions in Tesseract's order, each moved only as far as ``_before`` needs (a heading
    waiting for what its part below waits for): of those whose predecessors are all read, the
    earliest in Tesseract's order comes next."""
    import heapq

    edges = {(a.index, b.index) for a in regions for b in regions if a is not b and _before(a, b)}
    edges |= _down_columns([r for r in regions if r.split], regions)
    edges -= {(b, a) for a, b in edges}
    for head in regions:
        part = _heading_of(regions, head)
        if part is not None:
            edges |= {
                (a, head.index)
                for a, b in list(edges)
                if b == part.index
                and a != head.index
                and (head.index, a) not in edges
                and regions[a].bbox[1] < head.bbox[1]
            }
    after: dict[int, list[int]] = {r.index: [] for r in regions}
    waiting = {r.index: 0 for r in regions}
    for a, b in edges:
        after[a].append(b)
        waiting[b] += 1
    ready = [i for i, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    by_index = {r.index: r for r in regions}
    ordered: list[_Region] = []
    while len(ordered) < len(regions):
        if not ready:  # a cycle (never from position alone): the earliest left goes next
            heapq.heappush(ready, min(i for i, n in waiting.items() if n > 0))
        index = heapq.heappop(ready)
        if waiting[index] < 0:
            continue
        waiting[index] = -1
        ordered.append(by_index[index])
        for later in after[index]:
            if waiting[later] > 0:
                waiting[later] -= 1
                if waiting[later] == 0:
                    heapq.heappush(ready, later)
    return ordered


# --- paragraphs and categories ---------------------------------------------------------------


def _same_paragraph(a: Piece, b: Piece) -> bool:
    if a.kind != "Text" or b.kind != "Text" or a.bold != b.bold:
        return False
    height = min(a.height, b.height)
    tesseract = "paragraph" in a.extra and "paragraph" in b.extra and not ("split" in a.extra or "split" in b.extra)
    if tesseract:  # OCR: Tesseract's paragraphs, read down one column
        below = b.bbox[1] >= a.bbox[1] + 0.3 * height
        column = min(a.bbox[2], b.bbox[2]) > max(a.bbox[0], b.bbox[0])
        return a.extra["paragraph"] == b.extra["paragraph"] and below and column and not _BULLET.match(b.text)
    if not (b.bbox[1] >= a.bbox[1] + 0.3 * height and b.bbox[1] - a.bbox[3] <= 0.8 * height):
        return False  # not the next line down
    if min(a.bbox[2], b.bbox[2]) <= max(a.bbox[0], b.bbox[0]):
        return False  # not in the same column
    if max(a.size, b.size) > 1.2 * min(a.size, b.size):
        return False
    return not _BULLET.match(b.text)


def paragraphs(ordered: Sequence[Piece]) -> list[list[Piece]]:
    """Consecutive lines of one column, one size and one weight, close together, form a paragraph;
    a line starting with a bullet or a number starts a new one (a list item)."""
    groups: list[list[Piece]] = []
    for piece in ordered:
        if groups and _same_paragraph(groups[-1][-1], piece):
            groups[-1].append(piece)
        else:
            groups.append([piece])
    return groups


def furniture_key(text: str) -> str:
    """A header/footer's text with its numbers blanked, to find the same one on other pages."""
    return re.sub(r"\d+", "#", " ".join(text.lower().split()))


def body_size(pieces: Iterable[Piece]) -> float:
    """The size most characters of the page have."""
    weights: dict[float, int] = {}
    for piece in pieces:
        if piece.kind == "Text" and piece.size > 0:
            key = round(piece.size * 2) / 2
            weights[key] = weights.get(key, 0) + len(piece.text.strip())
    return max(weights, key=lambda k: weights[k]) if weights else 0.0


@dataclass
class PageFacts:
    """What classification needs to know about the page besides its pieces."""

    width: float
    height: float
    repeated: frozenset[str] = frozenset()  # furniture_key()s found at the top or bottom of other pages
    bold_body: bool = False  # the body text itself is bold: weight tells nothing


# Two letters in a row somewhere: a heading is words, not "0 10 20 30", "(a)" or "±".
_WORDLIKE = re.compile(r"[^\W\d_]{2,}")


def _words_like(text: str) -> bool:
    """Whether ``text`` reads as words (a heading may), not numbers, marks or an axis's labels."""
    visible = [ch for ch in text if not ch.isspace()]
    letters = sum(ch.isalpha() for ch in visible)
    return bool(_WORDLIKE.search(text)) and letters >= 0.5 * len(visible)


def _label(piece: Piece) -> bool:
    """A short piece of text (a table cell, a chart's label), not a line of prose."""
    return piece.kind == "Text" and piece.width < COLUMN_LINE * piece.height


def _in_a_row(group: Sequence[Piece], pieces: Sequence[Piece]) -> bool:
    """Whether a one-line group shares its row with another short piece: a cell of a table the
    finder missed, or a label of a chart, not a heading. (A heading beside the other column's
    prose shares its row with a long line, which does not count.)"""
    if len(group) != 1:
        return False
    piece = group[0]
    for other in pieces:
        if other is piece or not _label(other):
            continue
        overlap = min(piece.bbox[3], other.bbox[3]) - max(piece.bbox[1], other.bbox[1])
        if overlap >= 0.5 * min(piece.height, other.height):
            return True
    return False


def _follows(upper: Sequence[Piece] | None, lower: Sequence[Piece] | None) -> bool:
    """Whether ``lower`` starts right below ``upper`` ends, in the same column, at line spacing:
    no room for a heading's space between them."""
    if not upper or not lower or upper[-1].kind != "Text" or lower[0].kind != "Text":
        return False
    a, b = upper[-1], lower[0]
    gap = b.bbox[1] - a.bbox[3]
    column = min(a.bbox[2], b.bbox[2]) > max(a.bbox[0], b.bbox[0])
    return column and -0.3 * min(a.height, b.height) <= gap <= 0.45 * min(a.height, b.height)


def _mono(group: Sequence[Piece]) -> bool:
    return all(p.kind == "Text" and p.extra.get("mono") for p in group)


def _category(group: list[Piece], body: float, facts: PageFacts, *, inline: bool = False) -> str:
    """A paragraph's category. ``inline``: the group sits inside running text (the lines above and
    below follow at line spacing) or in a row of short pieces (a table, a chart): no heading."""
    first = group[0]
    if first.kind != "Text":
        return first.kind
    if _mono(group):
        return "Code"
    bbox = union(p.bbox for p in group)
    text = " ".join(p.text for p in group)
    size = statistics.median(p.size for p in group)
    bold = all(p.bold for p in group) and not facts.bold_body
    top = bbox[3] <= FURNITURE_BAND * facts.height
    bottom = bbox[1] >= (1 - FURNITURE_BAND) * facts.height
    if (top or bottom) and len(group) <= 2:
        small = body > 0 and size <= 0.9 * body
        if furniture_key(text) in facts.repeated or _PAGE_NUMBER.match(text) or small:
            return "Page-header" if top else "Page-footer"
    short = len(group) <= 3 and len(text) <= 200
    heading = short and not inline and _words_like(text) and not text.lstrip()[:1].islower()
    if heading and body > 0 and size >= 1.2 * body:
        return "Section-header"
    if heading and bold and len(text) <= 150 and not text.rstrip().endswith((".", ",", ";", ":")):
        return "Section-header"
    if _CAPTION.match(text) and len(group) <= 4:
        return "Caption"
    if body > 0 and size <= 0.85 * body and bbox[1] >= 0.6 * facts.height and _FOOTNOTE_MARK.match(text):
        return "Footnote"
    if _BULLET.match(text):
        return "List-item"
    return "Text"


def _holds(box: BBox, piece: Piece) -> bool:
    return box[0] <= piece.cx <= box[2] and box[1] <= piece.cy <= box[3]


def _without_soup(pieces: Sequence[Piece]) -> list[Piece]:
    """The page without the labels printed over its pictures (a chart's ticks and legend): the
    Picture block stands for them. Lines of prose laid over an image stay."""
    tables = [p for p in pieces if p.kind == "Table"]
    covers = [p for p in pieces if p.kind == "Picture" and any(_holds(p.bbox, t) for t in tables)]
    pieces = [p for p in pieces if all(p is not c for c in covers)]  # a table's shading is no chart
    pictures = [p.bbox for p in pieces if p.kind == "Picture"]
    if not pictures:
        return list(pieces)
    return [
        p for p in pieces if not (_label(p) and any(b[0] <= p.cx <= b[2] and b[1] <= p.cy <= b[3] for b in pictures))
    ]


def _code_groups(groups: list[list[Piece]]) -> list[list[Piece]]:
    """Neighbouring groups of monospace lines joined into one listing: a code listing's blank lines
    and indents cut it into paragraphs that belong together."""
    joined: list[list[Piece]] = []
    for group in groups:
        if joined and _mono(group) and _mono(joined[-1]):
            a, b = joined[-1][-1], group[0]
            if 0 <= b.bbox[1] - a.bbox[3] <= 3.0 * a.height and abs(b.bbox[0] - a.bbox[0]) <= 0.5 * a.width + a.height:
                joined[-1] = joined[-1] + group
                continue
        joined.append(list(group))
    return joined


def code_text(lines: Sequence[Piece]) -> str:
    """A listing's lines as printed: indents from the lines' left edges in character widths (and the
    spaces a line starts with), and a blank line where the gap between two lines is a line or more."""
    widths = [p.width / (len(p.text) + int(p.extra.get("lead", 0))) for p in lines if p.text]
    char = statistics.median(widths) if widths else 1.0
    left = min(p.bbox[0] for p in lines)
    pitches = [b.bbox[1] - a.bbox[1] for a, b in zip(lines, lines[1:], strict=False) if b.bbox[1] > a.bbox[1]]
    pitch = min(pitches) if pitches else 0.0
    out: list[str] = []
    for index, piece in enumerate(lines):
        if index and pitch > 0:
            blank = round((piece.bbox[1] - lines[index - 1].bbox[1]) / pitch) - 1
            out += [""] * max(0, min(blank, 3))
        indent = (max(0, round((piece.bbox[0] - left) / char)) if char > 0 else 0) + int(piece.extra.get("lead", 0))
        out.append(" " * indent + piece.text)
    return "\n".join(out)


_HYPHEN_BREAK = re.compile(r"[^\W\d_][-\u2010]$")


def flow(lines: Sequence[str]) -> str:
    """A paragraph's printed lines as one line of text: joined with spaces; a word hyphenated at a
    line's end joined again ("in-" + "voked" -> "invoked"; "Jean-" + "Paul" keeps its hyphen);
    soft hyphens dropped. The searchable PDF keeps the printed lines (it places words by box)."""
    out = ""
    for line in (line.strip() for line in lines):
        if not line:
            continue
        if not out:
            out = line
        elif out.endswith("\u00ad"):
            out = out[:-1] + line
        elif _HYPHEN_BREAK.search(out) and line[:1].isalpha():
            out = (out[:-1] if line[:1].islower() else out) + line
        else:
            out += " " + line
    return out.replace("\u00ad", "")


def blocks(ordered: Sequence[Piece], facts: PageFacts) -> list[Block]:
    """The page's Blocks in reading order: paragraphs with their categories; the largest
    heading, clearly larger than the body text, is the page's Title. Paragraphs are unwrapped
    (``flow``); code listings keep their lines."""
    ordered = _without_soup(ordered)
    groups = _code_groups(paragraphs(ordered))
    body = body_size(ordered)
    categories = []
    for index, group in enumerate(groups):
        before = groups[index - 1] if index else None
        after = groups[index + 1] if index + 1 < len(groups) else None
        running = _follows(before, group) and _follows(group, after)
        inline = _in_a_row(group, ordered) or (running and statistics.median(p.size for p in group) < 1.5 * body)
        categories.append(_category(group, body, facts, inline=inline))
    heading_sizes = [
        statistics.median(p.size for p in group)
        for group, category in zip(groups, categories, strict=True)
        if category == "Section-header"
    ]
    title_size = max(heading_sizes) if heading_sizes and body and max(heading_sizes) >= 1.5 * body else None
    result: list[Block] = []
    for group, category in zip(groups, categories, strict=True):
        if category == "Section-header" and title_size is not None:
            if statistics.median(p.size for p in group) == title_size:
                category, title_size = "Title", None  # one title per page
        first = group[0]
        if first.kind != "Text":
            result.append(Block(bbox=first.bbox, category=category, text=first.text, words=first.words))
            continue
        words = tuple(word for piece in group for word in piece.words)
        text = code_text(group) if category == "Code" else flow([p.text for p in group])
        result.append(Block(bbox=union(p.bbox for p in group), category=category, text=text, words=words))
    return result
