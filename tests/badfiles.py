"""Makers of good, odd and bad input files, written at test time (nothing binary is checked in).

Every maker takes the path to write and returns what a test needs to check the
result (expected colours, sizes, text positions). Import them as
``from tests.badfiles import text_pdf``.
"""

from __future__ import annotations

import random
import struct
import zlib
from pathlib import Path

import pymupdf
from PIL import Image, TiffImagePlugin

# --- PDFs ---------------------------------------------------------------------------------------------------------


def text_pdf(
    path: str | Path,
    lines: list[str],
    *,
    page_size: tuple[float, float] = (595, 842),
    origin: tuple[float, float] = (72, 100),
    line_gap: float = 24,
    fontsize: float = 12,
) -> list[tuple[str, tuple[float, float]]]:
    """A one-page PDF with a real text layer. Returns each line with the point where it
    was written: (x, baseline y) in PDF points from the top-left of the page."""
    doc = pymupdf.open()
    page = doc.new_page(width=page_size[0], height=page_size[1])
    positions = []
    x, y = origin
    for index, line in enumerate(lines):
        baseline = y + index * line_gap
        page.insert_text((x, baseline), line, fontsize=fontsize, fontname="helv")
        positions.append((line, (x, baseline)))
    doc.save(str(path))
    doc.close()
    return positions


def pages_pdf(path: str | Path, count: int, *, page_size: tuple[float, float] = (300, 200)) -> None:
    """A PDF of ``count`` pages, each saying "Page N"."""
    doc = pymupdf.open()
    for number in range(1, count + 1):
        page = doc.new_page(width=page_size[0], height=page_size[1])
        page.insert_text((30, 60), f"Page {number}", fontsize=18)
    doc.save(str(path))
    doc.close()


def scanned_pdf(path: str | Path, lines: list[str], *, dpi: int = 150) -> None:
    """A PDF whose only page is a picture of text: no text layer, as a scanner makes it."""
    source = pymupdf.open(stream=_text_pdf_bytes(lines), filetype="pdf")
    pixmap = source[0].get_pixmap(dpi=dpi)
    doc = pymupdf.open()
    page = doc.new_page(width=source[0].rect.width, height=source[0].rect.height)
    page.insert_image(page.rect, pixmap=pixmap)
    doc.save(str(path))
    doc.close()
    source.close()


def text_png(path: str | Path, lines: list[str], *, dpi: int = 150) -> tuple[int, int]:
    """A PNG picture of text (for OCR tests). Returns its pixel size."""
    source = pymupdf.open(stream=_text_pdf_bytes(lines), filetype="pdf")
    pixmap = source[0].get_pixmap(dpi=dpi)
    pixmap.save(str(path))
    source.close()
    return pixmap.width, pixmap.height


def _text_pdf_bytes(lines: list[str]) -> bytes:
    doc = pymupdf.open()
    page = doc.new_page(width=420, height=60 + 30 * len(lines))
    for index, line in enumerate(lines):
        page.insert_text((30, 45 + 30 * index), line, fontsize=18)
    data = doc.tobytes()
    doc.close()
    return data


def encrypted_pdf(path: str | Path, password: str, *, text: str = "Top secret text") -> None:
    """A PDF that needs ``password`` to open (AES-256)."""
    doc = pymupdf.open()
    page = doc.new_page(width=300, height=200)
    page.insert_text((30, 60), text, fontsize=14)
    doc.save(str(path), encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw=password, owner_pw=password + "-owner")
    doc.close()


def truncated_pdf(path: str | Path, *, keep: float = 0.5) -> None:
    """A PDF cut off after ``keep`` of its bytes: too little is left to repair."""
    doc = pymupdf.open()
    page = doc.new_page(width=300, height=200)
    page.insert_text((30, 60), "This file was cut short", fontsize=14)
    data = doc.tobytes(garbage=0, deflate=False)
    doc.close()
    Path(path).write_bytes(data[: int(len(data) * keep)])


def repairable_pdf(path: str | Path, text: str = "Still readable") -> None:
    """A PDF whose cross-reference table and trailer are cut off; MuPDF repairs it on open."""
    doc = pymupdf.open()
    page = doc.new_page(width=300, height=200)
    page.insert_text((30, 60), text, fontsize=14)
    data = doc.tobytes()
    doc.close()
    Path(path).write_bytes(data[: data.rindex(b"xref")])


def zero_page_pdf(path: str | Path) -> None:
    """A well-formed PDF with an empty page tree (PyMuPDF refuses to save one, so it is written by hand)."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    Path(path).write_bytes(_pdf_from_objects(objects))


def _pdf_from_objects(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref_at)
    return bytes(out)


def damaged_page_pdf(path: str | Path) -> None:
    """A two-page PDF whose second page's content stream is not valid compressed data.
    MuPDF renders what it can (a blank page) and warns."""
    doc = pymupdf.open()
    for number in (1, 2):
        page = doc.new_page(width=300, height=200)
        page.insert_text((30, 60), f"Page {number}", fontsize=14)
    xref = doc[1].get_contents()[0]
    doc.update_stream(xref, b"this is not zlib data" * 4, compress=False)
    doc.xref_set_key(xref, "Filter", "/FlateDecode")
    doc.save(str(path))
    doc.close()


def big_page_pdf(path: str | Path, width_pt: float, height_pt: float) -> None:
    """A one-page PDF with a page of the given size in points (1/72 inch)."""
    doc = pymupdf.open()
    doc.new_page(width=width_pt, height=height_pt)
    doc.save(str(path))
    doc.close()


# --- not documents ------------------------------------------------------------------------------------------------


def random_bytes(path: str | Path, size: int = 4096, *, seed: int = 1234) -> None:
    """Noise, reproducibly (name it .pdf or .png to check that names are not trusted)."""
    data = random.Random(seed).randbytes(size)
    Path(path).write_bytes(b"\x00" + data[1:])  # never a valid magic number by chance


def empty_file(path: str | Path) -> None:
    Path(path).write_bytes(b"")


# --- images -------------------------------------------------------------------------------------------------------


def png_bomb(path: str | Path, width: int, height: int) -> None:
    """A tiny PNG whose header claims ``width``×``height`` pixels (a decompression bomb's
    signature). Its header chunk and CRCs are valid; its pixel data is not there."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    pixels = zlib.compress(b"\x00" * 64)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    Path(path).write_bytes(data)


def multi_frame_tiff(path: str | Path, count: int, *, size: tuple[int, int] = (64, 48)) -> list[tuple[int, int, int]]:
    """A TIFF with ``count`` frames, each a different solid colour; frame i is (i+1) pixels wider.
    Returns the colours in frame order."""
    colours = [((40 * i) % 256, (255 - 30 * i) % 256, (90 + 50 * i) % 256) for i in range(count)]
    frames = [Image.new("RGB", (size[0] + i + 1, size[1]), colour) for i, colour in enumerate(colours)]
    frames[0].save(str(path), format="TIFF", save_all=True, append_images=frames[1:])
    return colours


def exif_rotated_jpeg(path: str | Path, size: tuple[int, int] = (80, 40), orientation: int = 6) -> None:
    """A JPEG stored ``size`` wide×high with an EXIF orientation tag: a viewer shows it turned.
    Its left half is black and its right half white as stored."""
    image = Image.new("RGB", size, (255, 255, 255))
    image.paste((0, 0, 0), (0, 0, size[0] // 2, size[1]))
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(str(path), format="JPEG", exif=exif, quality=95)


def tiff_with_turned_second_frame(path: str | Path, size: tuple[int, int] = (80, 40)) -> None:
    """A two-frame TIFF: frame 1 upright, frame 2 with orientation 6 (shown turned clockwise).
    Each is stored ``size`` wide×high with its left half black."""
    image = Image.new("RGB", size, (255, 255, 255))
    image.paste((0, 0, 0), (0, 0, size[0] // 2, size[1]))
    with open(path, "w+b") as handle, TiffImagePlugin.AppendingTiffWriter(handle, new=True) as writer:
        for orientation in (1, 6):
            tags = TiffImagePlugin.ImageFileDirectory_v2()
            tags[0x0112] = orientation
            image.save(writer, format="TIFF", tiffinfo=tags)
            writer.newFrame()


def cmyk_jpeg(path: str | Path, cmyk: tuple[int, int, int, int] = (0, 255, 255, 0)) -> None:
    """A CMYK JPEG of one solid colour (default: pure red ink, magenta + yellow)."""
    Image.new("CMYK", (32, 32), cmyk).save(str(path), format="JPEG", quality=95)


def palette_png_with_transparency(path: str | Path) -> None:
    """A palette PNG: left half transparent (index 0), right half opaque blue (index 1)."""
    image = Image.new("P", (40, 20), 0)
    image.putpalette([0, 0, 0, 0, 0, 255] + [0, 0, 0] * 254)
    image.paste(1, (20, 0, 40, 20))
    image.save(str(path), format="PNG", transparency=0)


def gray16_png(path: str | Path, value: int, size: tuple[int, int] = (20, 20)) -> None:
    """A 16-bit greyscale PNG of one value (0-65535)."""
    Image.new("I;16", size, value).save(str(path), format="PNG")


def rgba_png(path: str | Path, rgba: tuple[int, int, int, int], size: tuple[int, int] = (20, 20)) -> None:
    """A PNG with an alpha channel, filled with one colour and opacity."""
    Image.new("RGBA", size, rgba).save(str(path), format="PNG")


def animated_gif(path: str | Path, count: int = 3, size: tuple[int, int] = (30, 20)) -> list[tuple[int, int, int]]:
    """An animated GIF with ``count`` frames of different colours. Returns them in order."""
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)][:count]
    frames = [Image.new("RGB", size, colour) for colour in colours]
    frames[0].save(str(path), format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return colours


def solid_image(path: str | Path, format: str, colour: tuple[int, int, int], size: tuple[int, int] = (50, 30)) -> None:
    """One solid-colour image in any format PIL writes (PNG, WEBP, BMP, ...)."""
    options = {"lossless": True} if format.upper() == "WEBP" else {}
    Image.new("RGB", size, colour).save(str(path), format=format, **options)


def truncated_png(path: str | Path, size: tuple[int, int] = (200, 200)) -> None:
    """A PNG cut off in the middle of its pixel data: the header reads, decoding fails."""
    image = Image.effect_noise(size, 64).convert("RGB")
    image.save(str(path), format="PNG")
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
