"""A glyphless TrueType font: every character is the same empty glyph, half an em wide.

An invisible text layer (PDF text render mode 3) needs a font only for its metrics and its
character codes, never its shapes. One empty glyph serves every script — Latin, Cyrillic,
Greek, CJK, Arabic — in a font of a few hundred bytes, where a real font covering CJK
alone is megabytes. Built here from the OpenType tables (no font file shipped, no font
library needed); Tesseract and OCRmyPDF use the same idea for their text layers.

Metrics: 1000 units per em, ascender 800, descender -200, so a glyph's box is exactly
one em tall (a line box of height ``h`` takes font size ``h``), and every advance is 500.
"""

from __future__ import annotations

import struct
from functools import cache

NAME = "GlyphLessFont"
UNITS_PER_EM = 1000
ASCENT = 800
DESCENT = -200
ADVANCE = 500  # every glyph's advance width, in font units


def _checksum(data: bytes) -> int:
    padded = data + b"\0" * (-len(data) % 4)
    return sum(struct.unpack(f">{len(padded) // 4}I", padded)) & 0xFFFFFFFF


def _name_table() -> bytes:
    records = {1: NAME, 2: "Regular", 3: f"{NAME}-Regular", 4: NAME, 6: NAME}
    strings = b""
    entries = b""
    for name_id, text in records.items():
        encoded = text.encode("utf-16-be")
        # platform 3 (Windows), encoding 1 (Unicode BMP), language 0x409 (English)
        entries += struct.pack(">6H", 3, 1, 0x409, name_id, len(encoded), len(strings))
        strings += encoded
    header = struct.pack(">3H", 0, len(records), 6 + len(entries))
    return header + entries + strings


def _cmap_table() -> bytes:
    # Format 4 with only the mandatory 0xFFFF end segment: the PDF maps codes to the glyph
    # through its CIDToGIDMap, so the font itself needs no character map beyond a valid one.
    subtable = struct.pack(">7H", 4, 16 + 8, 0, 2, 2, 0, 0) + struct.pack(">4H", 0xFFFF, 0, 0xFFFF, 1)
    subtable += struct.pack(">H", 0)  # idRangeOffset
    subtable = subtable[:2] + struct.pack(">H", len(subtable)) + subtable[4:]
    return struct.pack(">HHHHI", 0, 1, 3, 1, 12) + subtable


def _os2_table() -> bytes:
    return struct.pack(
        ">HhHHHhhhhhhhhhhh10s4I4sHHHhhhHHII",
        4,  # version
        ADVANCE,  # xAvgCharWidth
        400,  # usWeightClass
        5,  # usWidthClass
        0,  # fsType: installable embedding
        650,
        600,
        0,
        75,  # subscript size / offset
        650,
        600,
        0,
        350,  # superscript size / offset
        50,
        250,  # strikeout size / position
        0,  # sFamilyClass
        b"\0" * 10,  # panose
        0,
        0,
        0,
        0,  # ulUnicodeRange1-4
        b"NONE",  # achVendID
        0x40,  # fsSelection: regular
        0x20,  # usFirstCharIndex
        0xFFFF,  # usLastCharIndex
        ASCENT,  # sTypoAscender
        DESCENT,  # sTypoDescender
        0,  # sTypoLineGap
        ASCENT,  # usWinAscent
        -DESCENT,  # usWinDescent
        1,
        0,  # ulCodePageRange1-2
    ) + struct.pack(">hhHHH", 500, 700, 0, 0x20, 0)  # sxHeight, sCapHeight, default/break char, maxContext


@cache
def font_bytes() -> bytes:
    """The font file (TrueType, two glyphs: .notdef and the empty glyph every code maps to)."""
    glyphs = 2
    tables = {
        "OS/2": _os2_table(),
        "cmap": _cmap_table(),
        "glyf": b"",  # both glyphs are empty: zero-length outlines
        "head": struct.pack(
            ">IIIIHHQQhhhhHHhhh",
            0x00010000,
            0x00010000,
            0,  # checkSumAdjustment, filled in below
            0x5F0F3CF5,
            0x000B,
            UNITS_PER_EM,
            0,
            0,  # created, modified
            0,
            DESCENT,
            ADVANCE,
            ASCENT,  # font bounding box
            0,  # macStyle
            3,  # lowestRecPPEM
            2,  # fontDirectionHint
            0,  # indexToLocFormat: short offsets
            0,  # glyphDataFormat
        ),
        "hhea": struct.pack(
            ">IhhhHhhhhhhhhhhhH",
            0x00010000,
            ASCENT,
            DESCENT,
            0,
            ADVANCE,
            0,
            0,
            ADVANCE,
            1,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            glyphs,
        ),
        "hmtx": struct.pack(">HhHh", ADVANCE, 0, ADVANCE, 0),
        "loca": struct.pack(">3H", 0, 0, 0),
        "maxp": struct.pack(">IHHHHHHHHHHHHHH", 0x00010000, glyphs, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0),
        "name": _name_table(),
        "post": struct.pack(">IIhhIIIII", 0x00030000, 0, -100, 50, 1, 0, 0, 0, 0),
    }
    count = len(tables)
    power = 1 << (count.bit_length() - 1)
    header = struct.pack(">IHHHH", 0x00010000, count, power * 16, power.bit_length() - 1, count * 16 - power * 16)
    offset = len(header) + 16 * count
    directory = b""
    body = b""
    for tag in sorted(tables):
        data = tables[tag]
        directory += struct.pack(">4sIII", tag.encode("ascii"), _checksum(data), offset + len(body), len(data))
        body += data + b"\0" * (-len(data) % 4)
    font = bytearray(header + directory + body)
    head_at = offset + sum(len(tables[t]) + (-len(tables[t]) % 4) for t in sorted(tables) if t < "head")
    struct.pack_into(">I", font, head_at + 8, (0xB1B0AFBA - _checksum(bytes(font))) & 0xFFFFFFFF)
    return bytes(font)
