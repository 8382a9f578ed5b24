"""The engine without a model: a PDF's own text layer, instantly, and Tesseract OCR
(through PyMuPDF) for scans and images where Tesseract's language data is installed."""

from __future__ import annotations

import functools
import logging
import os
import re
import statistics
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..documents import MUPDF_LOCK
from ..results import Block, PageResult
from .base import Engine, EngineInfo, RecognizeRequest, Task

if TYPE_CHECKING:
    import pymupdf

    from ..documents import Page
    from ..settings import Settings

log = logging.getLogger(__name__)

NAME = "text-layer"
NO_TESSERACT = (
    "No text layer on this page and Tesseract is not installed — pick a vision model "
    "(dots.ocr or Qwen3-VL) or install tesseract-ocr."
)
# Pictures larger than this share of the page are the page itself (a scan), not a figure.
_MAX_PICTURE_SHARE = 0.8
_MIN_PICTURE_PIXELS = 24


@functools.lru_cache(maxsize=1)
def find_tessdata() -> Path | None:
    """Tesseract's language-data folder, or None when Tesseract is not installed.
    Looked up once per process: $TESSDATA_PREFIX, then PyMuPDF's search, then the binary."""
    candidates: list[str] = []
    if os.environ.get("TESSDATA_PREFIX"):
        candidates.append(os.environ["TESSDATA_PREFIX"])
    try:
        import pymupdf

        candidates.append(pymupdf.get_tessdata())
    except Exception as exc:  # PyMuPDF raises RuntimeError when it finds nothing
        log.debug("pymupdf.get_tessdata(): %s", exc)
    try:
        listed = subprocess.run(
            ["tesseract", "--list-langs"], capture_output=True, text=True, timeout=20, check=False
        ).stdout
        match = re.search(r'"(.+?)"', listed)
        if match:
            candidates.append(match.group(1))
    except (OSError, subprocess.SubprocessError):
        pass
    for candidate in candidates:
        folder = Path(candidate)
        if folder.is_dir() and any(folder.glob("*.traineddata")):
            return folder
    return None


def installed_languages() -> list[str]:
    folder = find_tessdata()
    return sorted(p.name.removesuffix(".traineddata") for p in folder.glob("*.traineddata")) if folder else []


def tesseract_problem(language: str) -> str | None:
    """Why Tesseract cannot OCR ``language`` ("eng", "eng+deu"), or None when it can."""
    if find_tessdata() is None:
        return NO_TESSERACT
    installed = installed_languages()
    missing = [lang for lang in language.split("+") if lang and lang not in installed]
    if missing or not language.strip("+"):
        wanted = "+".join(missing) or language
        package = f"tesseract-ocr-{missing[0]}" if missing else "tesseract-ocr-eng"
        return (
            f"No text layer on this page and Tesseract has no language data for {wanted!r} "
            f"(installed: {', '.join(installed) or 'none'}) — install it (e.g. {package}) "
            "or change the tesseract_language setting."
        )
    return None


class TextLayerEngine(Engine):
    """Text where the PDF has it; Tesseract OCR where it does not (and is installed)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.language = getattr(settings, "tesseract_language", "eng") or "eng"

    def info(self) -> EngineInfo:
        problem = tesseract_problem(self.language)
        if problem is None:
            reason = f"The PDF's own text, instantly; Tesseract OCR ({self.language}) for scans and images."
        elif find_tessdata() is None:
            reason = (
                "The PDF's own text only: Tesseract is not installed, so scans and images get no text "
                "(install tesseract-ocr, or pick a vision model)."
            )
        else:
            reason = f"The PDF's own text only: Tesseract has no {self.language!r} language data installed."
        return EngineInfo(
            name=NAME,
            label="Text layer / Tesseract (no GPU)",
            tasks=(Task.TEXT, Task.LAYOUT_TEXT, Task.MARKDOWN, Task.REGION),
            needs_gpu=False,
            available=True,
            reason=reason,
            default_task=Task.TEXT,
        )

    def settings_key(self) -> dict[str, object]:
        return {"engine": NAME, "tesseract_language": self.language}

    def recognize(self, pages: Sequence[Page], request: RecognizeRequest) -> list[PageResult]:
        return [self._recognize_page(page, request) for page in pages]

    def _recognize_page(self, page: Page, request: RecognizeRequest) -> PageResult:
        start = time.perf_counter()
        width, height = page.size
        result = PageResult(page_number=page.number, width=width, height=height, engine=NAME, task=request.task.value)
        region = request.region if request.task == Task.REGION else None
        try:
            with MUPDF_LOCK:  # PyMuPDF is not thread-safe; the UI may render pages meanwhile
                blocks = self._page_blocks(page, result, region, width, height)
        except Exception as exc:  # a page problem is reported on the page, never raised
            log.warning("text-layer: %s page %s: %s", page.document_name, page.number, exc)
            result.warnings.append(f"Could not read the text of this page: {exc}")
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
        pdf_page = page.pdf_page()
        to_pixels = _pixel_matrix(pdf_page, width, height)
        blocks = _text_blocks(pdf_page.get_text("dict", flags=_text_flags()), to_pixels, region, headings=True)
        if blocks:
            blocks = _with_pictures(blocks, pdf_page, to_pixels, region, (width, height))
        else:
            problem = tesseract_problem(self.language)
            if problem is not None:
                result.warnings.append(problem)
            else:
                blocks = self._ocr(pdf_page, page, to_pixels, region)
                if not blocks:
                    result.warnings.append("Tesseract found no text on this page.")
        return blocks

    def _ocr(
        self,
        pdf_page: pymupdf.Page,
        page: Page,
        to_pixels: pymupdf.Matrix,
        region: tuple[float, float, float, float] | None,
    ) -> list[Block]:
        textpage = pdf_page.get_textpage_ocr(
            flags=_text_flags(),
            language=self.language,
            dpi=max(72, min(int(page.dpi), 600)),
            full=True,
            tessdata=str(find_tessdata()),
        )
        content = pdf_page.get_text("dict", textpage=textpage)
        return _text_blocks(content, to_pixels, region, headings=False)


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


def _line_text(line: dict[str, Any]) -> str:
    return "".join(span.get("text", "") for span in line.get("spans", [])).rstrip()


def _inside(bbox: tuple[float, ...], region: tuple[float, float, float, float] | None) -> bool:
    if region is None:
        return True
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    x1, y1, x2, y2 = region
    return min(x1, x2) <= cx <= max(x1, x2) and min(y1, y2) <= cy <= max(y1, y2)


def _body_size(content: dict[str, Any]) -> float:
    """The font size most characters on the page have."""
    sizes: list[float] = []
    for block in content.get("blocks", []):
        for line in block.get("lines", []):
            for span in line.get("spans", []):
                sizes.extend([round(float(span.get("size", 0)) * 2) / 2] * len(span.get("text", "").strip()))
    return statistics.mode(sizes) if sizes else 0.0


def _text_blocks(
    content: dict[str, Any],
    to_pixels: pymupdf.Matrix,
    region: tuple[float, float, float, float] | None,
    *,
    headings: bool,
) -> list[Block]:
    """One Block per text block, lines joined by newlines, bbox in page pixels. With
    ``headings``, short blocks set clearly larger than the body text become headers."""
    import pymupdf

    body = _body_size(content) if headings else 0.0
    found: list[tuple[Block, float]] = []
    for block in content.get("blocks", []):
        if block.get("type", 0) != 0:
            continue
        lines, boxes, sizes = [], [], []
        for line in block.get("lines", []):
            text = _line_text(line)
            if not text.strip():
                continue
            rect = pymupdf.Rect(line["bbox"]) * to_pixels
            box = (rect.x0, rect.y0, rect.x1, rect.y1)
            if not _inside(box, region):
                continue
            lines.append(text)
            boxes.append(box)
            sizes.extend(float(s.get("size", 0)) for s in line.get("spans", []) if s.get("text", "").strip())
        if not lines:
            continue
        bbox = (
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        )
        text = "\n".join(lines)
        size = min(sizes) if sizes else 0.0
        category = "Text"
        if body and size >= 1.25 * body and len(lines) <= 3 and len(text) <= 200:
            category = "Section-header"
        found.append((Block(bbox=bbox, category=category, text=text), size))
    if headings:  # the largest heading, if much larger than the body text, is the title
        sizes = [size for block, size in found if block.category == "Section-header"]
        if sizes and max(sizes) >= 1.6 * body:
            top = max(sizes)
            found = [
                (Block(b.bbox, "Title", b.text) if b.category == "Section-header" and s == top else b, s)
                for b, s in found
            ]
    return [block for block, _ in found]


def _with_pictures(
    blocks: list[Block],
    pdf_page: pymupdf.Page,
    to_pixels: pymupdf.Matrix,
    region: tuple[float, float, float, float] | None,
    page_size: tuple[int, int],
) -> list[Block]:
    """Add the page's embedded images as Picture blocks, each placed before the first text
    block below it, so exports can crop them. Page-sized images (scans) are not pictures."""
    import pymupdf

    page_area = page_size[0] * page_size[1]
    result = list(blocks)
    try:
        infos = pdf_page.get_image_info()
    except Exception:
        return result
    for info in infos:
        rect = (pymupdf.Rect(info["bbox"]) * to_pixels) & pymupdf.Rect(0, 0, *page_size)
        if rect.is_empty or rect.width < _MIN_PICTURE_PIXELS or rect.height < _MIN_PICTURE_PIXELS:
            continue
        if rect.width * rect.height > _MAX_PICTURE_SHARE * page_area:
            continue
        bbox = (rect.x0, rect.y0, rect.x1, rect.y1)
        if not _inside(bbox, region):
            continue
        position = next(
            (i for i, b in enumerate(result) if b.bbox is not None and b.bbox[1] >= bbox[1]),
            len(result),
        )
        result.insert(position, Block(bbox=bbox, category="Picture"))
    return result
