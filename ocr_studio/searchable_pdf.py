"""Searchable PDF: each page as the original, with the recognised text laid over it invisibly.

A page of a PDF is copied as it is (its own content, fonts and images); an image becomes a
page at its real size (its own DPI). Over it goes the invisible text layer of
``invisible_text.py``, placed where the engine found the text.

A page that already has a text layer (born-digital, or OCRed before) keeps it and gets no
second one. Images stored losslessly are recompressed to JPEG at ``jpeg_quality`` (0 keeps
them lossless); black-and-white scans become CCITT G4; JPEGs are never recompressed.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .documents import MUPDF_LOCK
from .invisible_text import add_font, add_text_layer, plain_lines
from .results import DocumentResult, PageResult

if TYPE_CHECKING:
    import pymupdf
    from PIL import Image

log = logging.getLogger(__name__)

DEFAULT_JPEG_QUALITY = 75
# A page's own text counts as a text layer when it holds at least this share of what the
# engine recognised: a scan with a stamped page number still gets its OCR layer.
_TEXT_LAYER_SHARE = 0.5
_PLAUSIBLE_DPI = (36, 2400)
JPEG_MAX_SIDE = 65_500  # libjpeg's limit per side; PNG has none that a page reaches

PageImageSource = Callable[[int, int], "Image.Image | None"]


def has_text_layer(page: pymupdf.Page, result: PageResult) -> bool:
    """Whether ``page`` already carries (most of) the text the engine recognised."""
    own = len("".join(page.get_text("text").split()))
    recognised = sum(len("".join(line.split())) for b in result.blocks for line in plain_lines(b))
    return own > 0 and own >= _TEXT_LAYER_SHARE * recognised


def _image_bytes(image: Image.Image, quality: int, bilevel: bool = False) -> bytes:
    """A page image for embedding: JPEG at ``quality``, or PNG when lossless is asked for, the
    scan is black and white (the PDF then stores it as CCITT G4), or a side is past what JPEG
    can hold (``JPEG_MAX_SIDE``: a 1x100000 px strip would fail the whole PDF)."""
    buffer = io.BytesIO()
    if bilevel:
        image.convert("1").save(buffer, format="PNG")
    elif quality <= 0 or max(image.size) > JPEG_MAX_SIDE:
        image.save(buffer, format="PNG")
    else:
        image.save(buffer, format="JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def _plausible(dpi: object) -> tuple[float, float] | None:
    try:
        x, y = (float(v) for v in dpi)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    low, high = _PLAUSIBLE_DPI
    return (x, y) if low <= x <= high and low <= y <= high else None


def image_file_page(path: Path, number: int, quality: int) -> tuple[bytes, tuple[int, int], tuple[float, float] | None]:
    """Page ``number`` of an image file: the bytes to embed, the size in pixels and the
    file's own DPI (None when it does not say). A plain JPEG is embedded as it is."""
    from PIL import Image

    from .documents import open_document

    with Image.open(path) as source:
        fmt, mode, dpi = source.format, source.mode, _plausible(source.info.get("dpi"))
        frames = getattr(source, "n_frames", 1)
        if number > 1:
            source.seek(number - 1)
            mode = source.mode
        turned = source.getexif().get(0x0112, 1) not in (None, 1)
        if fmt == "JPEG" and frames == 1 and not turned and mode in ("L", "RGB"):
            return path.read_bytes(), source.size, dpi
        with open_document(path) as document:
            image = document.page(number).image
    if mode in ("1", "L", "LA", "I", "I;16", "F"):
        gray = image.convert("L")
        return _image_bytes(gray, quality, bilevel=mode == "1"), gray.size, dpi
    return _image_bytes(image, quality), image.size, dpi


class _Source:
    """The original file the pages come from, opened once: a PDF, an image, or nothing."""

    def __init__(self, path: Path | None):
        self.path = path
        self.pdf: pymupdf.Document | None = None
        self.kind = "none"
        if path is None:
            return
        try:
            with path.open("rb") as handle:
                head = handle.read(1024)
            if b"%PDF-" in head:
                import pymupdf

                pdf = pymupdf.open(path, filetype="pdf")
                if pdf.needs_pass:  # the password is never stored: the page images stand in
                    pdf.close()
                    return
                self.pdf, self.kind = pdf, "pdf"
            else:
                self.kind = "image"
        except Exception as exc:
            log.warning("Searchable PDF: cannot open %s (%s); using the page images", path, exc)

    def close(self) -> None:
        if self.pdf is not None:
            self.pdf.close()


def searchable_pdf(
    doc: DocumentResult,
    *,
    source_path: Path | None = None,
    page_image: PageImageSource | None = None,
    document_index: int = 0,
    jpeg_quality: int = DEFAULT_JPEG_QUALITY,
    dpi: int = 200,
) -> bytes:
    """The searchable PDF of ``doc`` as bytes.

    Each page comes from ``source_path`` (the original PDF or image) when it is there and
    readable, else from ``page_image(document_index, page_number)`` (the image the engine
    saw, placed at ``dpi``), else it is a blank page of the right size with the text shown.
    """
    import pymupdf

    quality = max(0, min(int(jpeg_quality), 100))
    with MUPDF_LOCK:
        source = _Source(Path(source_path) if source_path is not None else None)
        out = pymupdf.open()
    try:
        with MUPDF_LOCK:
            copied = _copy_source_pages(out, source, doc.pages)
        font: int | None = None
        shown = False  # pages with no image at all show their text in real (subset) fonts
        for position, result in enumerate(doc.pages):
            with MUPDF_LOCK:  # page by page: the UI may render pages in between
                if position in copied:
                    page = out[position]
                    own = has_text_layer(source.pdf[copied[position]], result)  # type: ignore[index]
                    text = "own" if own else "layer"
                    _turn_upright(page, result)
                else:
                    page, text = _add_page(out, position, source, result, page_image, document_index, quality, dpi)
                if text == "layer":
                    font = font if font is not None else add_font(out)
                    image = _seen_image(page_image, document_index, source, result.page_number)
                    add_text_layer(out, page, result, font, image)
                shown = shown or text == "shown"
        with MUPDF_LOCK:
            if out.page_count == 0:
                out.new_page()
            if shown:
                _try(out.subset_fonts)
            if quality > 0 and hasattr(out, "rewrite_images"):  # PyMuPDF 1.25+
                _try(lambda: out.rewrite_images(quality=quality, lossy=False, lossless=True, bitonal=True))
            out.set_metadata({"title": Path(doc.name).stem, "creator": "OCR Studio", "producer": "OCR Studio"})
            return out.tobytes(garbage=3, deflate=True)
    finally:
        with MUPDF_LOCK:
            out.close()
            source.close()


def _try(step: Callable[[], object]) -> None:
    """A size optimisation that fails leaves the PDF as it is, never the export failed."""
    try:
        step()
    except Exception as exc:
        log.warning("Searchable PDF: %s skipped: %s", getattr(step, "__name__", "a step"), exc)


def _copy_source_pages(out: pymupdf.Document, source: _Source, results: list[PageResult]) -> dict[int, int]:
    """Copy the source PDF's pages that ``results`` need into ``out`` in one go (page by page,
    every page would get its own copy of the fonts and images they share). Returns, for each
    position in ``results`` that was copied, its page's index in the narrowed source."""
    if source.pdf is None:
        return {}
    wanted = {i: r.page_number - 1 for i, r in enumerate(results) if 1 <= r.page_number <= source.pdf.page_count}
    if not wanted:
        return {}
    source.pdf.select(list(wanted.values()))  # our own handle: the file is untouched
    out.insert_pdf(source.pdf)
    return {position: index for index, position in enumerate(wanted)}


def _add_page(
    out: pymupdf.Document,
    position: int,
    source: _Source,
    result: PageResult,
    page_image: PageImageSource | None,
    document_index: int,
    quality: int,
    dpi: int,
) -> tuple[pymupdf.Page, str]:
    """Add ``result``'s page to ``out`` at ``position`` from an image. Returns it and what its
    text needs: "layer" (an invisible text layer) or "shown" (no image: the text was written
    visibly)."""
    number = result.page_number
    at = position if position < out.page_count else -1
    if source.kind == "image":
        try:
            data, (width, height), own_dpi = image_file_page(source.path, number, quality)  # type: ignore[arg-type]
            xdpi, ydpi = own_dpi or (dpi, dpi)
            page = out.new_page(at, width=_points(width, xdpi), height=_points(height, ydpi))
            page.insert_image(page.rect, stream=data)
            _turn_upright(page, result)
            return page, "layer"
        except Exception as exc:
            log.warning("Searchable PDF: page %d of %s: %s; using the page image", number, source.path, exc)
    image = _page_image(page_image, document_index, number)
    width = result.width if result.width > 0 else (image.width if image is not None else 612 * dpi // 72)
    height = result.height if result.height > 0 else (image.height if image is not None else 792 * dpi // 72)
    page = out.new_page(at, width=_points(width, dpi), height=_points(height, dpi))
    if image is not None:
        page.insert_image(page.rect, stream=_image_bytes(image, quality))
        return page, "layer"
    _visible_text(page, result)
    return page, "shown"


def _points(pixels: float, dpi: float) -> float:
    """A side of ``pixels`` at ``dpi`` in PDF points, at least one: MuPDF makes a page with a
    thinner side 1x1 pt, squashing a 1 px wide strip's image and text into a dot."""
    return max(1.0, pixels * 72 / dpi)


def _turn_upright(page: pymupdf.Page, result: PageResult) -> None:
    """Show the original page (a scan fed sideways) the way the engine read it: its content stays
    as it is, its /Rotate turns it upright, so the text layer (in upright pixels) lies on its words."""
    if result.rotation:
        page.set_rotation((page.rotation + result.rotation) % 360)


def _page_image(source: PageImageSource | None, document_index: int, number: int) -> Image.Image | None:
    if source is None:
        return None
    try:
        image = source(document_index, number)
    except Exception as exc:  # a missing page image costs the picture, not the export
        log.warning("Searchable PDF: no page image for page %d: %s", number, exc)
        return None
    if image is not None and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    return image


def _seen_image(
    page_image: PageImageSource | None, document_index: int, source: _Source, number: int
) -> Image.Image | None:
    """The page as the engine saw it (where the printed lines are): the job's page image,
    else the decoded image file."""
    image = _page_image(page_image, document_index, number)
    if image is None and source.kind == "image" and source.path is not None:
        from .documents import open_document

        try:
            with open_document(source.path) as document:
                image = document.page(number).image
        except Exception as exc:
            log.debug("Searchable PDF: page %d not decoded for its lines: %s", number, exc)
    return image


def _visible_text(page: pymupdf.Page, result: PageResult) -> None:
    """No image of the page at all: show the text in its blocks, so the page is not blank."""
    import html

    sx = page.rect.width / result.width if result.width > 0 else 1.0
    sy = page.rect.height / result.height if result.height > 0 else 1.0
    for block in result.blocks:
        lines = plain_lines(block)
        if not lines:
            continue
        x1, y1, x2, y2 = block.bbox if block.bbox is not None else (0, 0, result.width, result.height)
        import pymupdf

        rect = pymupdf.Rect(x1 * sx, y1 * sy, x2 * sx, y2 * sy)
        if rect.is_empty:
            continue
        try:
            page.insert_htmlbox(rect, "<br>".join(html.escape(line) for line in lines))
        except Exception as exc:
            log.debug("Searchable PDF: text of a block not shown: %s", exc)
