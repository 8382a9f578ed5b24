"""The invisible text layer of a searchable PDF: where each line of recognised text goes,
and the PDF operators and font that draw it.

Placement: word by word where the engine knows the words (Tesseract); else the block's text
wrapped into lines of equal height that fill the block's box, so that selecting or searching
highlights the right region; a table row by row, each cell from its column. Every piece is
stretched (``Tz``) to its width. Drawing: text render mode 3 (invisible) in the glyphless
font (``glyphless_font.py``), one 2-byte code per character with a ToUnicode map, so what a
viewer copies is the recognised text, whatever the script.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

from . import glyphless_font
from .html_table import looks_like_markdown_table, looks_like_table, parse_markdown_table, parse_table
from .printed_lines import Band, printed_lines
from .results import Block, PageResult

if TYPE_CHECKING:
    import pymupdf
    from PIL import Image

FONT_RESOURCE = "OcrStudioText"
_EM = glyphless_font.UNITS_PER_EM
_DESCENT = -glyphless_font.DESCENT / _EM  # below the baseline, in ems
_LINE_SPACING = 1.2  # line height / font size, for guessing how a block's text wraps
_MAX_STRETCH = 2.5  # widest stretch (Tz 250 %) of a text whose real width is not known
# Blocks of running text, whose printed lines the page image can show (not tables, formulas)
_PROSE = frozenset(
    {"Text", "Title", "Section-header", "List-item", "Caption", "Footnote", "Page-header", "Page-footer"}
)


@dataclass
class Line:
    """One line of text to place: its box (page-result pixels) and its pieces, left to right,
    each ``(x1, x2, text)``; the pieces are separated by spaces in the text layer."""

    box: tuple[float, float, float, float]
    pieces: list[tuple[float, float, str]] = field(default_factory=list)


# --- the text of a block, as lines in its box ------------------------------------------------

_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+")
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|`)(?=\S)(.+?)(?<=\S)\1")
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_HTML_TAG = re.compile(r"<[^>]+>")


def plain_lines(block: Block) -> list[str]:
    """The block's text as plain lines, as a reader would select it: Markdown marks removed,
    a table's cells row by row, a formula's LaTeX as written."""
    text = block.text.strip()
    if not text or block.category == "Picture":
        return []
    if block.category == "Formula":
        text = text.strip("$").strip()
        return [line.strip() for line in text.split("\n") if line.strip()]
    lines: list[str] = []
    for chunk in re.split(r"(<table\b.*?</table>)|\n\s*\n", text, flags=re.I | re.S):
        if not chunk or not chunk.strip():
            continue
        if looks_like_table(chunk) or looks_like_markdown_table(chunk):
            table = parse_table(chunk) if looks_like_table(chunk) else parse_markdown_table(chunk)
            lines += [" ".join(t for t in row if t).replace("\n", " ") for row in table.row_texts()]
            continue
        for line in chunk.split("\n"):
            line = _MD_HEADING.sub("", line)
            line = _MD_LINK.sub(r"\1", _MD_IMAGE.sub("", line))
            line = _HTML_TAG.sub("", _MD_EMPHASIS.sub(r"\2", line)).strip()
            if line and line != "$$":
                lines.append(line)
    return [line for line in lines if line.strip()]


@cache
def _advances() -> dict[int, int]:
    """Each character's advance (font units) where it is not the font's default half em: a
    typical printed width (Helvetica's, for Latin, Greek and Cyrillic; a full em for CJK and
    other wide characters), so that text placed across a line lands near the printed letters."""
    import pymupdf

    helvetica = pymupdf.Font("helv")
    table: dict[int, int] = {}
    for first, last in ((0x20, 0x24F), (0x370, 0x4FF), (0x2000, 0x206F), (0x20A0, 0x20BF)):
        for code in range(first, last + 1):
            if helvetica.has_glyph(code):
                table[code] = round(1000 * helvetica.glyph_advance(code))
    for code in range(0x1100, 0xFFEF):
        if code not in table and unicodedata.east_asian_width(chr(code)) in "WF":
            table[code] = 1000
    return {code: width for code, width in table.items() if width != glyphless_font.ADVANCE}


def _advance(code: int) -> int:
    return _advances().get(code, glyphless_font.ADVANCE)


def _em_width(text: str) -> float:
    """How wide ``text`` is in ems, at the text layer's character widths."""
    return sum(_advance(ord(ch)) for ch in text if ord(ch) <= 0xFFFF) / _EM


def _width_array() -> str:
    """The advances as a CID font's /W array: a run of three or more equal widths as
    ``first last width``, other consecutive codes as ``first [width width ...]``."""
    table = _advances()
    codes = sorted(table)
    parts: list[str] = []
    listed: list[int] = []  # consecutive codes waiting to be written in list form

    def flush() -> None:
        if listed:
            parts.append(f"{listed[0]}[{' '.join(str(table[c]) for c in listed)}]")
            listed.clear()

    start = 0
    while start < len(codes):
        end = start  # the run of consecutive codes of one width
        while (
            end + 1 < len(codes) and codes[end + 1] == codes[end] + 1 and table[codes[end + 1]] == table[codes[start]]
        ):
            end += 1
        if end - start >= 2:
            flush()
            parts.append(f"{codes[start]} {codes[end]} {table[codes[start]]}")
        else:
            if listed and codes[start] != listed[-1] + 1:
                flush()
            listed.extend(codes[start : end + 1])
        start = end + 1
    flush()
    return "[" + " ".join(parts) + "]"


def _wrap(line: str, width: float) -> list[str]:
    """Greedy word wrap at ``width`` ems; unspaced text (CJK) breaks anywhere."""
    out: list[str] = []
    current = ""
    for word in re.findall(r"\S+\s*", line) if " " in line else list(line):
        if current and _em_width(current + word.rstrip()) > width:
            out.append(current.rstrip())
            current = ""
        current += word
    if current.strip():
        out.append(current.rstrip())
    return out


def block_lines(block: Block, page: PageResult, image: Image.Image | None = None) -> list[Line]:
    """Where each line of the block's text goes, in page-result pixels: per word when the
    block has word boxes; else on the printed lines that ``image`` (the page) shows in the
    block's box; else its text wrapped to fill its box (or the page, when the block has no
    box) in lines of equal height."""
    if block.category == "Picture":
        return []
    if block.words:
        return _word_lines(block.words)
    x1, y1, x2, y2 = block.bbox if block.bbox is not None else (0.0, 0.0, float(page.width), float(page.height))
    x1, x2 = sorted((x1, x2))
    y1, y2 = sorted((y1, y2))
    width, height = x2 - x1, y2 - y1
    if width <= 0 or height <= 0:
        return []
    if block.category == "Table" and looks_like_table(block.text):
        return _table_lines(block.text, (x1, y1, x2, y2))
    lines = plain_lines(block)
    if not lines:
        return []
    if image is not None and block.bbox is not None and block.category in _PROSE:
        fitted = _on_printed_lines(lines, _printed_bands(image, (x1, y1, x2, y2), page))
        if fitted:
            return fitted
    total = sum(_em_width(line) for line in lines)
    # Wrap at the line length L (in ems) where the font size that fills the width equals the
    # one that fills the height (lines 1.2 em apart): W / L = H·L / (1.2·total).
    guess = math.sqrt(_LINE_SPACING * total * width / height)
    longest = max(_em_width(line) for line in lines)
    longest_word = max((_em_width(w) for line in lines for w in line.split()), default=0.5)
    target = max(longest_word, min(longest, guess))
    wrapped = [piece for line in lines for piece in _wrap(line, target)]
    widest = max(_em_width(piece) for piece in wrapped) or 0.5
    band = height / len(wrapped)
    # A short text in a wide box is not stretched past _MAX_STRETCH: viewers that find words
    # by letter spacing would split it.
    span = min(width, widest * band * _MAX_STRETCH)
    result = []
    for index, piece in enumerate(wrapped):
        top = y1 + index * band
        right = x1 + span * _em_width(piece) / widest
        result.append(Line((x1, top, right, top + band), [(x1, right, piece)]))
    return result


def _table_lines(markup: str, box: tuple[float, float, float, float]) -> list[Line]:
    """A table's rows as lines of equal height across its box, each cell's text a piece
    starting at its column (columns of equal width: the HTML does not say where they are)."""
    table = parse_table(markup)
    if not table.rows or not table.columns:
        return []
    x1, y1, x2, y2 = box
    row_height = (y2 - y1) / table.rows
    column_width = (x2 - x1) / table.columns
    lines: list[Line] = []
    for cell in sorted(table.cells, key=lambda c: (c.row, c.column)):
        text = " ".join(cell.text.split())
        if not text:
            continue
        top = y1 + cell.row * row_height
        left = x1 + cell.column * column_width
        right = left + min(cell.colspan * column_width, _em_width(text) * row_height * _MAX_STRETCH)
        if not lines or lines[-1].box[1] != top:
            lines.append(Line((left, top, right, top + row_height), []))
        line = lines[-1]
        line.pieces.append((left, right, text))
        line.box = (min(line.box[0], left), top, max(line.box[2], right), top + row_height)
    return lines


def _word_lines(words: tuple[tuple[tuple[float, float, float, float], str], ...]) -> list[Line]:
    """Words grouped into lines: a word starts a new line when it lies left of the previous
    one or does not overlap the current line's band vertically."""
    lines: list[Line] = []
    last_x = -math.inf
    for (wx1, wy1, wx2, wy2), word in words:
        word = word.strip()
        if not word:
            continue
        wx1, wx2 = sorted((wx1, wx2))
        wy1, wy2 = sorted((wy1, wy2))
        current = lines[-1] if lines else None
        if current is not None and wx1 >= last_x:
            top, bottom = current.box[1], current.box[3]
            overlap = min(bottom, wy2) - max(top, wy1)
            if overlap >= 0.5 * min(bottom - top, wy2 - wy1):
                current.pieces.append((wx1, wx2, word))
                current.box = (min(current.box[0], wx1), min(top, wy1), max(current.box[2], wx2), max(bottom, wy2))
                last_x = wx1
                continue
        lines.append(Line((wx1, wy1, wx2, wy2), [(wx1, wx2, word)]))
        last_x = wx1
    return lines


# --- the text layer as PDF content ---------------------------------------------------------


def _num(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _encode(text: str) -> tuple[str, float]:
    """``text`` as the font's 2-byte codes (one per character; characters beyond the BMP become
    U+FFFD, control characters are dropped), in hex, and its width in ems."""
    codes = [
        ord(ch) if ord(ch) <= 0xFFFF and unicodedata.category(ch) != "Cs" else 0xFFFD
        for ch in text
        if unicodedata.category(ch) != "Cc"
    ]
    return "".join(f"{code:04X}" for code in codes), sum(_advance(code) for code in codes) / _EM


def text_layer_stream(lines: list[Line], to_pdf: pymupdf.Matrix, scale: tuple[float, float]) -> bytes:
    """Content-stream operators that draw ``lines`` invisibly. ``scale`` takes page-result
    pixels to the page's displayed points (top-left origin); ``to_pdf`` takes those to PDF
    user space, rotation and crop box included, so the text reads upright on screen."""
    import pymupdf

    sx, sy = scale
    origin = pymupdf.Point(0, 0) * to_pdf
    ex = pymupdf.Point(1, 0) * to_pdf - origin  # the text's x axis, in PDF space
    ey = pymupdf.Point(0, -1) * to_pdf - origin  # the text's up axis
    out = ["BT", "3 Tr"]
    for line in lines:
        top, bottom = line.box[1] * sy, line.box[3] * sy
        size = bottom - top
        if size < 0.5:
            continue
        baseline = bottom - _DESCENT * size
        out.append(f"/{FONT_RESOURCE} {_num(size)} Tf")
        pieces = sorted(line.pieces, key=lambda p: p[0])
        for index, (px1, px2, text) in enumerate(pieces):
            hexcodes, ems = _encode(text)
            left, right = px1 * sx, px2 * sx
            if ems <= 0 or right <= left:
                continue
            at = pymupdf.Point(left, baseline) * to_pdf
            matrix = (ex.x, ex.y, ey.x, ey.y, at.x, at.y)
            out.append(" ".join(_num(v) for v in matrix) + " Tm")
            out.append(f"{_num(100 * (right - left) / (ems * size))} Tz <{hexcodes}> Tj")
            if index + 1 < len(pieces):  # a space that spans the gap to the next piece
                gap = max(pieces[index + 1][0] * sx - right, 0.01 * size)
                out.append(f"{_num(100 * gap / (_advance(0x20) / _EM * size))} Tz <0020> Tj")
    out.append("ET")
    return ("\n".join(out) + "\n").encode("ascii")


def _printed_bands(image: Image.Image, box: tuple[float, float, float, float], page: PageResult) -> list[Band]:
    """The printed lines in ``box``, in page-result pixels (the image may be another size)."""
    sx = image.width / page.width if page.width > 0 else 1.0
    sy = image.height / page.height if page.height > 0 else 1.0
    found = printed_lines(image, (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy))
    return [(a / sx, b / sy, c / sx, d / sy) for a, b, c, d in found]


def _on_printed_lines(lines: list[str], bands: list[Band]) -> list[Line]:
    """The text spread over the printed lines: its own lines one to a band when they are as
    many, else its words split so each band holds the share of the text that its printed
    width holds. Empty when it cannot fit (no bands, more bands than words)."""
    if not bands:
        return []
    if len(lines) == len(bands):
        return [Line(band, [(band[0], band[2], line)]) for band, line in zip(bands, lines, strict=True)]
    text = " ".join(lines)
    tokens = re.findall(r"\S+\s*", text) if " " in text else list(text)
    if len(tokens) < len(bands):
        return []
    weights = [_em_width(token) for token in tokens]
    widths = [band[2] - band[0] for band in bands]
    total_weight, total_width = sum(weights) or 1.0, sum(widths) or 1.0
    result: list[Line] = []
    start, done, printed = 0, 0.0, 0.0
    for index, band in enumerate(bands):
        if index == len(bands) - 1:
            end = len(tokens)
        else:
            printed += widths[index] / total_width
            end, cumulative = start + 1, done + weights[start] / total_weight
            last_possible = len(tokens) - (len(bands) - index - 1)  # leave a token for each later band
            while end < last_possible and abs(cumulative + weights[end] / total_weight - printed) < abs(
                cumulative - printed
            ):
                cumulative += weights[end] / total_weight
                end += 1
            done = cumulative
        piece = "".join(tokens[start:end]).strip()
        start = end
        result.append(Line(band, [(band[0], band[2], piece)]))
    return result


def page_lines(page: PageResult, image: Image.Image | None = None) -> list[Line]:
    return [line for block in page.blocks for line in block_lines(block, page, image)]


# --- the font, once per output document ----------------------------------------------------


def _to_unicode_cmap() -> bytes:
    """Code = UTF-16 code unit = Unicode character, for the whole BMP except surrogates."""
    ranges = [f"<{hi:02X}00> <{hi:02X}FF> <{hi:02X}00>" for hi in range(256) if not 0xD8 <= hi <= 0xDF]
    blocks = []
    for start in range(0, len(ranges), 100):
        chunk = ranges[start : start + 100]
        blocks.append(f"{len(chunk)} beginbfrange\n" + "\n".join(chunk) + "\nendbfrange")
    return (
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
        + "\n".join(blocks)
        + "\nendcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n"
    ).encode("ascii")


def _new_stream(doc: pymupdf.Document, data: bytes, extra: str = "") -> int:
    xref = doc.get_new_xref()
    doc.update_object(xref, f"<<{extra}>>")
    doc.update_stream(xref, data, compress=True)
    return xref


def add_font(doc: pymupdf.Document) -> int:
    """Embed the glyphless font as a Type 0 font; returns its xref."""
    font = glyphless_font.font_bytes()
    font_file = _new_stream(doc, font, f"/Length1 {len(font)}")
    cid_to_gid = _new_stream(doc, b"\x00\x01" * 65536)  # every code → the empty glyph
    to_unicode = _new_stream(doc, _to_unicode_cmap())
    name = glyphless_font.NAME
    descriptor = doc.get_new_xref()
    doc.update_object(
        descriptor,
        f"<</Type/FontDescriptor/FontName/{name}/Flags 5/FontBBox[0 {glyphless_font.DESCENT} "
        f"{glyphless_font.ADVANCE} {glyphless_font.ASCENT}]/ItalicAngle 0/Ascent {glyphless_font.ASCENT}"
        f"/Descent {glyphless_font.DESCENT}/CapHeight 700/StemV 80/FontFile2 {font_file} 0 R>>",
    )
    cid_font = doc.get_new_xref()
    doc.update_object(
        cid_font,
        f"<</Type/Font/Subtype/CIDFontType2/BaseFont/{name}/CIDSystemInfo<</Registry(Adobe)/Ordering(Identity)"
        f"/Supplement 0>>/FontDescriptor {descriptor} 0 R/DW {glyphless_font.ADVANCE}/W {_width_array()}"
        f"/CIDToGIDMap {cid_to_gid} 0 R>>",
    )
    type0 = doc.get_new_xref()
    doc.update_object(
        type0,
        f"<</Type/Font/Subtype/Type0/BaseFont/{name}/Encoding/Identity-H/DescendantFonts[{cid_font} 0 R]"
        f"/ToUnicode {to_unicode} 0 R>>",
    )
    return type0


def _use_font(doc: pymupdf.Document, page: pymupdf.Page, font: int) -> None:
    """Name the font in the page's resources (wherever they are kept: inline or shared)."""
    kind, value = doc.xref_get_key(page.xref, "Resources")
    if kind == "xref":
        holder, prefix = int(value.split()[0]), ""
    else:
        if kind != "dict":
            doc.xref_set_key(page.xref, "Resources", "<<>>")
        holder, prefix = page.xref, "Resources/"
    kind, value = doc.xref_get_key(holder, prefix + "Font")
    if kind == "xref":
        doc.xref_set_key(int(value.split()[0]), FONT_RESOURCE, f"{font} 0 R")
    else:
        if kind != "dict":
            doc.xref_set_key(holder, prefix + "Font", "<<>>")
        doc.xref_set_key(holder, prefix + "Font/" + FONT_RESOURCE, f"{font} 0 R")


def _unrotated_to_pdf(page: pymupdf.Page) -> pymupdf.Matrix:
    """Unrotated page coordinates (top-left origin, crop box) → PDF user space. PyMuPDF's
    ``transformation_matrix`` drops the crop box offset on rotated pages, so it is read
    with the rotation set aside for a moment (on our own copy of the page)."""
    rotation = page.rotation
    if not rotation:
        return ~page.transformation_matrix
    page.set_rotation(0)
    try:
        return ~page.transformation_matrix
    finally:
        page.set_rotation(rotation)


def add_text_layer(
    doc: pymupdf.Document, page: pymupdf.Page, result: PageResult, font: int, image: Image.Image | None = None
) -> None:
    """Lay ``result``'s text invisibly over ``page``, after its own content (which is wrapped
    in q/Q first so that whatever state it leaves cannot move the text). ``image``, the page
    as the engine saw it, shows where the printed lines of each block are."""
    lines = page_lines(result, image)
    if not lines or result.width <= 0 or result.height <= 0:
        return
    rect = page.rect
    to_pdf = page.derotation_matrix * _unrotated_to_pdf(page)
    stream = text_layer_stream(lines, to_pdf, (rect.width / result.width, rect.height / result.height))
    _use_font(doc, page, font)
    page.wrap_contents()
    contents = page.get_contents()
    xref = _new_stream(doc, stream)
    doc.xref_set_key(page.xref, "Contents", "[" + " ".join(f"{x} 0 R" for x in [*contents, xref]) + "]")
