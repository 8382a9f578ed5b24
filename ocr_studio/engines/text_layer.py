"""The engine without a model: a PDF's own text layer, instantly, and Tesseract OCR for scans
and images where Tesseract's language data is installed.

Both kinds of text go through the same stages: lines (PDF lines, or Tesseract's words regrouped
into lines) → tables and pictures found whole (PDF pages) → reading order across columns →
paragraphs with dots.ocr's categories (page_layout.py). Running headers and footers of PDFs are
recognised by the same text at the top or bottom of the neighbouring pages."""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import i18n
from ..documents import MUPDF_LOCK
from ..i18n import as_text, error_message
from ..results import Block, PageResult
from . import page_layout, pdf_tables, scan_page, scan_tables, tesseract
from .base import Engine, EngineInfo, RecognizeRequest, Task
from .page_layout import PageFacts, Piece
from .tesseract import NO_TESSERACT, find_tessdata, installed_languages

if TYPE_CHECKING:
    import pymupdf
    from PIL import Image

    from ..documents import Page
    from ..settings import Settings

__all__ = ["NAME", "NO_TESSERACT", "TextLayerEngine", "find_tessdata", "installed_languages"]

log = logging.getLogger(__name__)

NAME = "text-layer"
# Bumped whenever the same page would come out differently, so cached results are not reused.
LAYOUT_VERSION = 5
# Pictures larger than this share of the page are the page itself (a scan), not a figure.
_MAX_PICTURE_SHARE = 0.8
_MIN_PICTURE_PIXELS = 24
# Other pages looked at for the same header or footer text: this many before and after.
_NEIGHBOURS = 2
_BOLD_FLAG = 16
# A page that is one image over this share of it, with fewer characters of text than this
# laid over it, is a scan with a stamp: it is OCR'd, not read as a text page.
_SCAN_SHARE = 0.6
_STAMP_CHARS = 200
# A text layer with more than this share of unreadable characters is OCR'd instead.
_GARBLED_SHARE = 0.3
GARBLED_TEXT_LAYER = i18n.text("core.text_layer.garbled")


def requested_languages(settings: Settings) -> str:
    """The OCR languages the settings ask for ("" = auto); ``tesseract_language`` is the old name."""
    return (getattr(settings, "ocr_languages", "") or getattr(settings, "tesseract_language", "") or "").strip()


class TextLayerEngine(Engine):
    """Text where the PDF has it; Tesseract OCR where it does not (and is installed)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.language_error: str | None = None
        try:
            self.language = tesseract.resolve_languages(requested_languages(settings))
        except tesseract.LanguageError as exc:
            self.language, self.language_error = "eng", as_text(exc)

    def info(self) -> EngineInfo:
        problem = self.language_error or tesseract.language_problem(self.language)
        if problem is None:
            reason = i18n.text("core.text_layer.reason_ok", languages=self.language)
        elif tesseract.find_tessdata() is None:
            reason = i18n.text("core.text_layer.reason_no_tesseract")
        else:
            reason = i18n.text("core.text_layer.reason_problem", problem=problem)
        return EngineInfo(
            name=NAME,
            label=i18n.text("core.text_layer.label"),
            tasks=(Task.TEXT, Task.LAYOUT_TEXT, Task.MARKDOWN, Task.REGION),
            needs_gpu=False,
            available=True,
            reason=reason,
            default_task=Task.TEXT,
        )

    def settings_key(self) -> dict[str, object]:
        return {"engine": NAME, "ocr_languages": self.language, "layout": LAYOUT_VERSION}

    def recognize(self, pages: Sequence[Page], request: RecognizeRequest) -> list[PageResult]:
        return [self._recognize_page(page, request) for page in pages]

    def _recognize_page(self, page: Page, request: RecognizeRequest) -> PageResult:
        start = time.perf_counter()
        width, height = page.size
        result = PageResult(page_number=page.number, width=width, height=height, engine=NAME, task=request.task.value)
        region = request.region if request.task == Task.REGION else None
        try:
            blocks = self._page_blocks(page, result, region, width, height)
        except Exception as exc:  # a page problem is reported on the page, never raised
            log.warning("text-layer: %s page %s: %s", page.document_name, page.number, exc)
            result.warnings.append(i18n.text("core.text_layer.page_unreadable", detail=error_message(exc)))
            result.unread = True  # read again next time, never served from the cache
            blocks = []
        result.blocks = blocks
        result.raw_text = "\n\n".join(b.text for b in blocks if b.text)
        result.seconds = time.perf_counter() - start
        if request.on_text is not None and result.raw_text:
            request.on_text(result.raw_text)
        return result

    def _page_blocks(
        self,
        page: Page,
        result: PageResult,
        region: tuple[float, float, float, float] | None,
        width: int,
        height: int,
    ) -> list[Block]:
        """The text layer's blocks, else Tesseract's; warnings go on ``result``."""
        repeated: frozenset[str] = frozenset()
        with MUPDF_LOCK:  # PyMuPDF is not thread-safe; the UI may render pages meanwhile
            pdf_page = page.pdf_page()
            to_pixels = _pixel_matrix(pdf_page, width, height)
            pieces = _pdf_pieces(pdf_page.get_text("dict", flags=_text_flags()), to_pixels)
            if pieces and _scan_with_a_stamp(pdf_page, to_pixels, (width, height), pieces):
                pieces = []  # a scanner's or stamp's few words over a scanned page: OCR reads them all
            elif pieces and _garbled(pieces):
                pieces = []
                result.warnings.append(GARBLED_TEXT_LAYER)
            if pieces:
                tables = pdf_tables.find_tables(pdf_page, to_pixels, pieces)
                pieces = [p for p in pieces if not any(_contains(t.bbox, p) for t in tables)] + tables
                pieces += _pictures(pdf_page, to_pixels, (width, height))
                repeated = _furniture_nearby(pdf_page)
        if pieces:
            facts = PageFacts(width, height, repeated=repeated, bold_body=_bold_body(pieces))
            if region is not None:
                pieces = [p for p in pieces if _inside(p.bbox, region)]
            return page_layout.blocks(page_layout.page_order(pieces, height), facts)
        pieces = self._ocr_pieces(page, result)
        facts = PageFacts(result.width, result.height)  # the upright page's: OCR may have turned it
        if region is not None:
            pieces = [p for p in pieces if _inside(p.bbox, region)]
        return page_layout.blocks(page_layout.ocr_order(pieces, result.width, result.height), facts)

    def _ocr_pieces(self, page: Page, result: PageResult) -> list[Piece]:
        """Tesseract's lines of the page read upright; the page turned upright where it was scanned
        sideways (``result`` then has the upright size and the turn)."""
        if self.language_error:
            result.warnings.append(i18n.text("core.text_layer.wrong_languages", problem=self.language_error))
            result.unread = True
            return []
        problem = tesseract.language_problem(self.language)
        languages = self.language
        if problem is not None:
            result.warnings.append(
                problem if problem == NO_TESSERACT else i18n.text("core.text_layer.no_text_layer", problem=problem)
            )
            missing = tesseract.missing_languages(self.language)
            languages = "+".join(code for code in self.language.split("+") if code not in missing)
            if problem == NO_TESSERACT or not languages:
                result.unread = True  # once Tesseract or the language is installed, the page is read
                return []
        image = page.image
        reading = scan_page.read_scan(image, languages, explicit=self._explicit(), dpi=_real_dpi(image))
        if reading.rotation:
            page.set_upright(reading.image)
            result.rotation = reading.rotation
            result.width, result.height = reading.image.size
        result.warnings += reading.warnings
        words = reading.words
        if not words:
            result.warnings.append(i18n.text("core.text_layer.tesseract_empty"))
        letter_boxes = all(w.letter_box for w in words)
        pieces = page_layout.ocr_pieces(((w.bbox, w.text, w.line) for w in words), letter_boxes=letter_boxes)
        return scan_tables.with_tables(reading.image, pieces)  # ruled tables: their words into cells

    def _explicit(self) -> bool:
        """Whether the user narrowed the languages: a choice of every language "auto" reads (the
        studio's picker as it starts) still lets each page be read in its own script's."""
        chosen = tesseract.parse_languages(requested_languages(self.settings))
        return bool(chosen) and set(chosen) != set(tesseract.default_languages().split("+"))


# A page is at most this many inches on its longer side (A3, tabloid); a stated resolution that
# makes it larger is an editor's default (72, 96), not the scan's...
_LARGEST_PAGE_INCHES = 17.0
# ...and a page-shaped image (this ratio of sides) is then taken for a letter or A4 page this long.
_PAGE_INCHES = 11.0
_PAGE_RATIO = (1.25, 1.5)


def _real_dpi(image: Image.Image) -> int | None:
    """The image's own resolution where it states a plausible one (a rendered PDF page always does;
    an image file may). A stated one that would make the page larger than any paper (a 2000 px
    page "at 96 DPI") is replaced, on a page-shaped image, by a letter/A4 page's. None lets
    Tesseract estimate it from the letters."""
    dpi = image.info.get("dpi")
    try:
        value = round(float(dpi[0])) if dpi else 0
    except (TypeError, ValueError, IndexError):
        return None
    if not 70 <= value <= 2400:
        return None
    long, short = max(image.size), min(image.size)
    if long / value <= _LARGEST_PAGE_INCHES:
        return value
    page_shaped = short > 0 and _PAGE_RATIO[0] <= long / short <= _PAGE_RATIO[1]
    return max(70, min(2400, round(long / _PAGE_INCHES))) if page_shaped else None


def _text_flags() -> int:
    import pymupdf

    # dict defaults without image bytes (pictures come from get_image_info, cheaply)
    return pymupdf.TEXTFLAGS_DICT & ~pymupdf.TEXT_PRESERVE_IMAGES


def _pixel_matrix(pdf_page: pymupdf.Page, width: int, height: int) -> pymupdf.Matrix:
    """Unrotated PDF coordinates (what get_text returns) → pixels of the page image."""
    import pymupdf

    rect = pdf_page.rect  # the page as displayed (rotation applied)
    sx = width / rect.width if rect.width else 1.0
    sy = height / rect.height if rect.height else 1.0
    return pdf_page.rotation_matrix * pymupdf.Matrix(sx, sy)


def _pdf_pieces(content: dict[str, Any], to_pixels: pymupdf.Matrix) -> list[Piece]:
    """Every non-empty line of the text layer as a piece, bbox in page pixels."""
    import pymupdf

    pieces = []
    for block in content.get("blocks", []):
        if block.get("type", 0) != 0:
            continue
        for line in block.get("lines", []):
            spans = [s for s in line.get("spans", []) if s.get("text", "").strip()]
            text = "".join(s.get("text", "") for s in line.get("spans", [])).strip()
            if not spans or not text:
                continue
            rect = pymupdf.Rect(line["bbox"]) * to_pixels
            sizes = [float(s.get("size", 0)) for s in spans for _ in s["text"].strip()]
            bold = all(int(s.get("flags", 0)) & _BOLD_FLAG or "bold" in str(s.get("font", "")).lower() for s in spans)
            piece = Piece((rect.x0, rect.y0, rect.x1, rect.y1), text, statistics.median(sizes), bool(bold))
            if all(_monospace(s) for s in spans):  # a code listing: kept line by line, indents and all
                raw = "".join(s.get("text", "") for s in line.get("spans", []))
                piece.extra.update(mono=True, lead=len(raw) - len(raw.lstrip(" ")))
            pieces.append(piece)
    return pieces


_MONO_FLAG = 8
_MONO_FONT = ("courier", "cour", "mono", "consol", "menlo", "typewriter", "lettergothic", "fixed", "code")


def _monospace(span: dict[str, Any]) -> bool:
    """Whether a span is set in a monospace font: the font says so, or its name does."""
    font = str(span.get("font", "")).lower()
    return bool(int(span.get("flags", 0)) & _MONO_FLAG) or any(name in font for name in _MONO_FONT)


def _bold_body(pieces: Sequence[Piece]) -> bool:
    """Whether most of the page's text is bold (then weight marks no heading)."""
    text = [p for p in pieces if p.kind == "Text"]
    bold = sum(len(p.text) for p in text if p.bold)
    return bold > 0.5 * sum(len(p.text) for p in text)


def _contains(box: tuple[float, float, float, float], piece: Piece) -> bool:
    return box[0] <= piece.cx <= box[2] and box[1] <= piece.cy <= box[3]


def _inside(bbox: tuple[float, ...], region: tuple[float, float, float, float]) -> bool:
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    x1, y1, x2, y2 = region
    return min(x1, x2) <= cx <= max(x1, x2) and min(y1, y2) <= cy <= max(y1, y2)


def _pictures(pdf_page: pymupdf.Page, to_pixels: pymupdf.Matrix, page_size: tuple[int, int]) -> list[Piece]:
    """The page's embedded images as Picture pieces, so exports can crop them. Page-sized
    images (scans) are not pictures."""
    import pymupdf

    page_area = page_size[0] * page_size[1]
    try:
        infos = pdf_page.get_image_info()
    except Exception:
        return []
    pictures = []
    for info in infos:
        rect = (pymupdf.Rect(info["bbox"]) * to_pixels) & pymupdf.Rect(0, 0, *page_size)
        if rect.is_empty or rect.width < _MIN_PICTURE_PIXELS or rect.height < _MIN_PICTURE_PIXELS:
            continue
        if rect.width * rect.height > _MAX_PICTURE_SHARE * page_area:
            continue
        pictures.append(Piece((rect.x0, rect.y0, rect.x1, rect.y1), kind="Picture"))
    return pictures + _charts(pdf_page, to_pixels, page_size)


_CHART_SHARE = 0.03  # a chart covers at least this share of the page
_CHART_PATHS = 4
_CHART_WORDS = 60  # more words than this inside: a form or a table, not a chart
_PROSE_WORDS = 7  # a line with more words than this is prose: a framed text box, not a chart
_LABEL_MARGIN = 30.0  # points around a chart where its short labels are
_LABEL_WORDS = 3


def _coloured(colour: object) -> bool:
    return isinstance(colour, tuple | list) and len(colour) == 3 and max(colour) - min(colour) > 0.2


def _charts(pdf_page: pymupdf.Page, to_pixels: pymupdf.Matrix, page_size: tuple[int, int]) -> list[Piece]:
    """Charts drawn as vector graphics, as Picture pieces (their labels then go with the picture, not
    into the text as soup). Only clusters of drawings that are clearly charts: coloured fills or
    curves, a few short labels at most, no line of prose; a ruled table (grey or no fills, straight
    lines) or a framed paragraph is never taken."""
    import pymupdf

    page_rect = pdf_page.rect
    try:
        clusters = pdf_page.cluster_drawings()
        paths = pdf_page.get_cdrawings()
        words = pdf_page.get_text("words")
    except Exception:
        return []
    charts = []
    for cluster in clusters:
        area = cluster.get_area()
        if area < _CHART_SHARE * page_rect.get_area() or area > _MAX_PICTURE_SHARE * page_rect.get_area():
            continue
        around = cluster + (-1, -1, 1, 1)
        inside = [p for p in paths if pymupdf.Rect(p["rect"]) in around]
        curves = sum(1 for p in inside for item in p.get("items", ()) if item[0] == "c")
        coloured = sum(1 for p in inside if _coloured(p.get("fill")) or _coloured(p.get("color")))
        if len(inside) < _CHART_PATHS or (coloured < 2 and curves < 4):
            continue
        labels = [w for w in words if cluster.contains(pymupdf.Point((w[0] + w[2]) / 2, (w[1] + w[3]) / 2))]
        lines: dict[tuple[int, int], int] = {}
        for w in labels:
            lines[(w[5], w[6])] = lines.get((w[5], w[6]), 0) + 1
        if len(labels) > _CHART_WORDS or any(count > _PROSE_WORDS for count in lines.values()):
            continue
        rect = pymupdf.Rect(cluster)
        near = cluster + (-_LABEL_MARGIN, -_LABEL_MARGIN, _LABEL_MARGIN, _LABEL_MARGIN)
        beside = [w for w in words if near.contains(pymupdf.Point((w[0] + w[2]) / 2, (w[1] + w[3]) / 2))]
        line_words: dict[tuple[int, int], list[tuple]] = {}
        for w in beside:
            line_words.setdefault((w[5], w[6]), []).append(w)
        for members in line_words.values():
            if len(members) <= _LABEL_WORDS:  # the axes' ticks and the categories' names belong to the chart
                for w in members:
                    rect |= pymupdf.Rect(w[:4])
        rect = (rect * to_pixels) & pymupdf.Rect(0, 0, *page_size)
        if not rect.is_empty:
            charts.append(Piece((rect.x0, rect.y0, rect.x1, rect.y1), kind="Picture"))
    return charts


def _garbled(pieces: Sequence[Piece]) -> bool:
    """Whether the text layer is mostly characters no reader can use: fonts without a character
    map come out as U+FFFD, private-use code points or control characters."""
    text = "".join(p.text for p in pieces)
    letters = [ch for ch in text if not ch.isspace()]
    bad = sum(1 for ch in letters if ch == "\ufffd" or "\ue000" <= ch <= "\uf8ff" or ord(ch) < 32)
    return bool(letters) and bad > _GARBLED_SHARE * len(letters)


def _scan_with_a_stamp(
    pdf_page: pymupdf.Page, to_pixels: pymupdf.Matrix, page_size: tuple[int, int], pieces: Sequence[Piece]
) -> bool:
    """A scanned page whose only text is a few words laid over it ("Scanned with …", a date
    stamp, a Bates number): the page is an image covering most of it, and its text is short."""
    import pymupdf

    if sum(len(p.text) for p in pieces) >= _STAMP_CHARS:
        return False
    page_rect = pymupdf.Rect(0, 0, *page_size)
    try:
        infos = pdf_page.get_image_info()
    except Exception:
        return False
    covered = max(((pymupdf.Rect(i["bbox"]) * to_pixels) & page_rect).get_area() for i in infos) if infos else 0.0
    return covered >= _SCAN_SHARE * page_rect.get_area()


def _furniture_nearby(pdf_page: pymupdf.Page) -> frozenset[str]:
    """The texts (numbers blanked) at the top and bottom of the pages around this one: a
    running header or footer is the same text there."""
    import pymupdf

    document = pdf_page.parent
    number = pdf_page.number
    keys: set[str] = set()
    try:
        count = document.page_count
    except Exception:
        return frozenset()
    for other_number in range(max(0, number - _NEIGHBOURS), min(count, number + _NEIGHBOURS + 1)):
        if other_number == number:
            continue
        try:
            other = document.load_page(other_number)
            height = other.rect.height
            for block in other.get_text("blocks"):
                if block[6] != 0:
                    continue
                rect = pymupdf.Rect(block[:4]) * other.rotation_matrix
                band = page_layout.FURNITURE_BAND * height
                if rect.y1 <= band or rect.y0 >= height - band:
                    lines = [line for line in block[4].splitlines() if line.strip()]
                    keys.update(page_layout.furniture_key(line) for line in lines)
                    keys.add(page_layout.furniture_key(" ".join(lines)))
        except Exception as exc:  # a damaged neighbour only costs the comparison
            log.debug("furniture: page %s: %s", other_number + 1, exc)
    return frozenset(keys)
