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
    for line_words in lines.values():
        for piece in split_line(line_words):
            piece.size = (text_size(piece.words) if letter_boxes else 0.0) or piece.height
            pieces.append(_with_bullet(piece))
    return pieces


_BULLET_LOOKALIKES = frozenset("eoc«©°*•·■▪●")


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


# --- paragraphs and categories ---------------------------------------------------------------


def _same_paragraph(a: Piece, b: Piece) -> bool:
    if a.kind != "Text" or b.kind != "Text" or a.bold != b.bold:
        return False
    height = min(a.height, b.height)
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


def _category(group: list[Piece], body: float, facts: PageFacts) -> str:
    first = group[0]
    if first.kind != "Text":
        return first.kind
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
    if short and body > 0 and size >= 1.2 * body:
        return "Section-header"
    if short and bold and len(text) <= 150 and not text.rstrip().endswith((".", ",", ";", ":")):
        return "Section-header"
    if _CAPTION.match(text) and len(group) <= 4:
        return "Caption"
    if body > 0 and size <= 0.85 * body and bbox[1] >= 0.6 * facts.height and _FOOTNOTE_MARK.match(text):
        return "Footnote"
    if _BULLET.match(text):
        return "List-item"
    return "Text"


def blocks(ordered: Sequence[Piece], facts: PageFacts) -> list[Block]:
    """The page's Blocks in reading order: paragraphs with their categories; the largest
    heading, clearly larger than the body text, is the page's Title."""
    groups = paragraphs(ordered)
    body = body_size(ordered)
    categories = [_category(group, body, facts) for group in groups]
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
            result.append(Block(bbox=first.bbox, category=category, text=first.text))
            continue
        words = tuple(word for piece in group for word in piece.words)
        text = "\n".join(p.text for p in group)
        result.append(Block(bbox=union(p.bbox for p in group), category=category, text=text, words=words))
    return result
