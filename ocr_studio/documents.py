"""Open PDFs and images into pages; every input limit and input error lives here.

A file is recognised by its content, never by its name. Pages are cheap handles:
nothing is rendered or decoded until ``Page.image`` is asked for, and every size
limit is checked from headers before any pixels are decoded.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageOps, UnidentifiedImageError

from .i18n import LocalizedError, Message, Text, message, text

if TYPE_CHECKING:  # pymupdf takes most of a second to import: it is imported where a PDF is touched
    import pymupdf


class DocumentError(LocalizedError):
    """A file cannot be read as a document. The message says what is wrong and
    what the user can do about it (``.message`` in the reader's language; ``str()`` is English)."""

    def __init__(self, message: Message | str, *, path: str | Path | None = None, needs_password: bool = False):
        super().__init__(message)
        self.path = str(path) if path is not None else None
        self.needs_password = needs_password


@dataclass(frozen=True)
class Limits:
    """Input limits; every one is configurable (settings.py fills them)."""

    max_file_bytes: int = 200 * 1024 * 1024
    max_pages: int = 2000  # pages per job
    max_image_pixels: int = 200_000_000  # per image/page; checked before decoding
    dpi: int = 200


@dataclass(frozen=True)
class TextSpan:
    """A line of a PDF's own text layer, bbox in page-image pixels."""

    bbox: tuple[float, float, float, float]
    text: str


SUPPORTED_SUFFIXES = (".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif")

# PIL format names we read. MPO is what PIL calls many camera JPEGs.
_IMAGE_FORMATS = {"PNG", "JPEG", "MPO", "TIFF", "WEBP", "BMP", "DIB", "GIF"}
# Formats whose extra frames are pages; for the others (GIF, WebP, APNG, MPO) only the first frame counts.
_MULTI_PAGE_FORMATS = {"TIFF"}
_PDF_MAGIC = b"%PDF-"
_PDF_MAGIC_WINDOW = 1024  # the PDF header may follow some junk bytes
_EXIF_ORIENTATION = 0x0112
_SWAPS_AXES = {5, 6, 7, 8}  # EXIF orientations that turn the image by 90°
_TIFF_WIDTH, _TIFF_LENGTH = 256, 257

# A PDF MuPDF had to repair (a truncated download, a broken cross-reference table) opens and may
# look fine; these say so on every page, and which pages came out blank.
REPAIRED_PDF = text("core.document.repaired")

# MuPDF is not safe to call from two threads at once (PyMuPDF says so for the whole
# library), so every call into it here holds this lock. Callers of Page.pdf_page() should too.
MUPDF_LOCK = threading.RLock()


def _human_bytes(count: float) -> Message:
    if count < 1024:
        return message("core.units.bytes", count=int(count))
    if count < 1024 * 1024:
        return message("core.units.kilobytes", value=count / 1024)
    return message("core.units.megabytes", value=count / 1024 / 1024)


def _pixel_count(pixels: float) -> Message:
    if pixels < 100_000:
        return message("core.units.pixels", count=int(pixels))
    return message("core.units.megapixels", value=pixels / 1_000_000)


def _too_many_pixels(msg_id: str, name: str, width: int, height: int, limits: Limits, **args: object) -> Message:
    """One of the "larger than the pixel limit" messages, its sizes filled in."""
    return message(
        msg_id,
        name=name,
        width=width,
        height=height,
        pixels=_pixel_count(width * height),
        limit=_pixel_count(limits.max_image_pixels),
        **args,
    )


def check_page_budget(numbers: list[int], limits: Limits) -> None:
    """Refuse a job whose selected pages exceed ``limits.max_pages``."""
    if len(numbers) > limits.max_pages:
        raise DocumentError(message("core.document.too_many_pages", count=len(numbers), limit=limits.max_pages))


class Page:
    """One page of a document. The image is rendered lazily, once, at ``dpi``."""

    document_name: str
    number: int  # 1-based
    dpi: int

    def __init__(self, document_name: str, number: int, dpi: int):
        self.document_name = document_name
        self.number = number
        self.dpi = dpi
        self._image: Image.Image | None = None
        self._wrapper: pymupdf.Document | None = None  # one-page PDF around an image page
        self.warnings: list[str] = []  # problems met while rendering that did not stop it (i18n.Text)

    def __repr__(self) -> str:
        return f"<Page {self.number} of {self.document_name!r} at {self.dpi} DPI>"

    @classmethod
    def from_image(cls, image: Image.Image, *, number: int = 1, dpi: int = 200, document_name: str = "image") -> Page:
        """A page around an image already in memory (converted to RGB like a file would be)."""
        return _MemoryPage(document_name, number, dpi, _to_rgb(image))

    @property
    def image(self) -> Image.Image:  # RGB
        if self._image is None:
            self._image = self._render()
        return self._image

    @property
    def size(self) -> tuple[int, int]:  # (width, height) in pixels at dpi, without rendering
        if self._image is not None:
            return self._image.size
        return self._header_size()

    def text_spans(self) -> list[TextSpan]:
        """The page's own text layer (empty for images and scans)."""
        return []

    def pdf_page(self) -> pymupdf.Page:
        """A PyMuPDF page for this page (images are wrapped in a one-page PDF),
        used by the text-layer engine for its text and Tesseract OCR."""

        if self._wrapper is None:
            image = self.image
            with MUPDF_LOCK:
                self._wrapper = self._wrap(image)
        return self._wrapper[0]

    def _wrap(self, image: Image.Image) -> pymupdf.Document:
        import pymupdf

        width, height = image.size
        wrapper = pymupdf.open()
        # Sized in points so that rendering it at self.dpi gives back the image's pixel size.
        page = wrapper.new_page(width=width * 72 / self.dpi, height=height * 72 / self.dpi)
        pixmap = pymupdf.Pixmap(pymupdf.csRGB, width, height, image.tobytes(), 0)
        page.insert_image(page.rect, pixmap=pixmap)
        return wrapper

    def set_upright(self, image: Image.Image) -> None:
        """Make ``image``, this page turned upright by the engine that read it (a page scanned
        sideways), the page's image until released: the job saves and shows that one."""
        self._image = image
        if self._wrapper is not None:
            self._wrapper.close()
            self._wrapper = None

    def release(self) -> None:
        """Drop the cached image and PDF wrapper (a job calls this once a page is done)."""
        self._image = None
        if self._wrapper is not None:
            self._wrapper.close()
            self._wrapper = None

    def _render(self) -> Image.Image:
        raise NotImplementedError

    def _header_size(self) -> tuple[int, int]:
        raise NotImplementedError


class _MemoryPage(Page):
    def __init__(self, document_name: str, number: int, dpi: int, image: Image.Image):
        super().__init__(document_name, number, dpi)
        self._kept = image

    def _render(self) -> Image.Image:
        return self._kept

    def _header_size(self) -> tuple[int, int]:
        return self._kept.size


class _PdfPage(Page):
    def __init__(self, document: Document, number: int, dpi: int):
        super().__init__(document.name, number, dpi)
        self._document = document
        self.warnings = list(document.warnings)  # a repaired file: every page says so

    def _load(self) -> pymupdf.Page:
        pdf = self._document._open_pdf()
        try:
            return pdf.load_page(self.number - 1)
        except Exception as exc:
            raise DocumentError(
                message("core.document.page_damaged", name=self.document_name, page=self.number, detail=str(exc)),
                path=self._document.path,
            ) from exc

    def _header_size(self) -> tuple[int, int]:
        import pymupdf

        with self._document._lock:
            rect = self._load().rect
        zoom = self.dpi / 72
        pixels = (rect * pymupdf.Matrix(zoom, zoom)).irect  # the same rounding as get_pixmap
        return pixels.width, pixels.height

    def _render(self) -> Image.Image:
        import pymupdf

        width, height = self._header_size()
        if width * height > self._document.limits.max_image_pixels:
            raise DocumentError(
                _too_many_pixels(
                    "core.document.page_too_large_to_render",
                    self.document_name,
                    width,
                    height,
                    self._document.limits,
                    page=self.number,
                    dpi=self.dpi,
                ),
                path=self._document.path,
            )
        with self._document._lock:
            page = self._load()
            try:
                pymupdf.TOOLS.mupdf_warnings(reset=True)
                pixmap = page.get_pixmap(dpi=self.dpi, alpha=False)
                image = Image.frombytes("RGB", (pixmap.width, pixmap.height), pixmap.samples)
                image.info["dpi"] = (self.dpi, self.dpi)  # a real resolution: the page's size is known
                # MuPDF renders what it can of a damaged page and only warns; keep that for the job to show.
                found = pymupdf.TOOLS.mupdf_warnings(reset=True)
                self.warnings = list(self._document.warnings)
                if found:
                    self.warnings += [
                        text("core.document.page_incomplete", page=self.number, detail=line)
                        for line in found.splitlines()
                    ]
                if self._document.warnings and image.convert("L").getextrema()[0] >= 250:
                    self.warnings.append(text("core.document.blank_after_repair", page=self.number))
                return image
            except Exception as exc:
                raise DocumentError(
                    message(
                        "core.document.page_render_failed", name=self.document_name, page=self.number, detail=str(exc)
                    ),
                    path=self._document.path,
                ) from exc

    def text_spans(self) -> list[TextSpan]:
        import pymupdf

        with self._document._lock:
            page = self._load()
            try:
                content = page.get_text("dict", sort=True)
            except Exception as exc:
                raise DocumentError(
                    message(
                        "core.document.page_text_failed", name=self.document_name, page=self.number, detail=str(exc)
                    ),
                    path=self._document.path,
                ) from exc
            # Text comes in unrotated page coordinates; the image shows the page rotated.
            zoom = self.dpi / 72
            to_pixels = page.rotation_matrix * pymupdf.Matrix(zoom, zoom)
        spans = []
        for block in content.get("blocks", []):
            for line in block.get("lines", []):
                text = "".join(span.get("text", "") for span in line.get("spans", []))
                if not text.strip():
                    continue
                x0, y0, x1, y1 = _rect_times(line["bbox"], to_pixels)
                spans.append(TextSpan(bbox=(x0, y0, x1, y1), text=text))
        return spans

    def pdf_page(self) -> pymupdf.Page:
        with self._document._lock:
            return self._load()


def _rect_times(bbox: tuple[float, float, float, float], matrix: pymupdf.Matrix) -> tuple[float, ...]:
    import pymupdf

    rect = pymupdf.Rect(bbox) * matrix
    return (rect.x0, rect.y0, rect.x1, rect.y1)


@dataclass(frozen=True)
class _Frame:
    """What an image frame's header says, read without decoding it."""

    index: int
    width: int  # after EXIF orientation
    height: int


class _ImagePage(Page):
    def __init__(self, document: Document, frame: _Frame, dpi: int):
        super().__init__(document.name, frame.index + 1, dpi)
        self._document = document
        self._frame = frame

    def _header_size(self) -> tuple[int, int]:
        return self._frame.width, self._frame.height

    def _render(self) -> Image.Image:
        limits = self._document.limits
        frame = self._frame
        if frame.width * frame.height > limits.max_image_pixels:
            raise DocumentError(
                _too_many_pixels(
                    "core.document.image_page_too_large",
                    self.document_name,
                    frame.width,
                    frame.height,
                    limits,
                    page=self.number,
                ),
                path=self._document.path,
            )
        try:
            with _open_image(self._document.path, limits) as source:
                source.seek(frame.index)
                source.load()
                # Recent Pillow already turns TIFF frames while loading (and drops the tag); this does the rest.
                image = _to_rgb(ImageOps.exif_transpose(source))
                if "dpi" in source.info:  # the file's own resolution, which OCR reads the letters' size by
                    image.info["dpi"] = source.info["dpi"]
                return image
        except DocumentError:
            raise
        except Exception as exc:
            raise DocumentError(
                message("core.document.image_page_damaged", name=self.document_name, page=self.number, detail=str(exc)),
                path=self._document.path,
            ) from exc


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode → RGB the way a viewer shows it: alpha over white, 16-bit scaled, CMYK via its profile."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _high_depth_to_rgb(image)
    if mode == "CMYK":
        return _cmyk_to_rgb(image)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("PA", "LA", "La", "RGBa", "RGBA"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image).convert("RGB")
    return image.convert("RGB")


def _high_depth_to_rgb(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit grey images scaled into 8 bits (PIL's own conversion clips them to white)."""
    import numpy as np

    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F" and values.size and float(values.max()) <= 1.0:
        scale = 255.0
    elif values.size and float(values.max()) > 65535:
        scale = 255.0 / float(values.max())
    else:
        scale = 255.0 / 65535.0
    grey = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, mode="L").convert("RGB")


def _cmyk_to_rgb(image: Image.Image) -> Image.Image:
    profile = image.info.get("icc_profile")
    if profile:
        try:
            from PIL import ImageCms

            source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
            target = ImageCms.createProfile("sRGB")
            converted = ImageCms.profileToProfile(image, source, target, outputMode="RGB")
            if converted is not None:
                return converted
        except Exception:  # a broken embedded profile: fall back to the plain formula
            pass
    return image.convert("RGB")


def _allow_pil_pixels(limits: Limits) -> None:
    """PIL refuses images over twice its own MAX_IMAGE_PIXELS on open; make sure it
    never refuses what our limit allows (ours is checked from the header first). It is
    process-wide, so it is only ever raised, never lowered."""
    current = Image.MAX_IMAGE_PIXELS
    if current is not None and current < limits.max_image_pixels:
        Image.MAX_IMAGE_PIXELS = limits.max_image_pixels


def _open_image(path: Path, limits: Limits) -> Image.Image:
    """PIL's lazy open (header only), with its decompression-bomb error turned into ours."""
    _allow_pil_pixels(limits)
    try:
        return Image.open(path)
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        limit = _pixel_count(limits.max_image_pixels)
        reason = (
            message(
                "core.document.image_bomb_size", name=path.name, pixels=_pixel_count(int(found.group(1))), limit=limit
            )
            if found
            else message("core.document.image_bomb", name=path.name, limit=limit)
        )
        raise DocumentError(reason, path=path) from exc


class Document:
    """An opened file: a PDF or an image (a TIFF's frames are its pages)."""

    path: Path
    name: str
    kind: str  # "pdf" or "image"
    page_count: int

    def __init__(
        self,
        path: Path,
        kind: str,
        page_count: int,
        limits: Limits,
        *,
        pdf: pymupdf.Document | None = None,
        frames: list[_Frame] | None = None,
    ):
        self.path = path
        self.name = path.name
        self.kind = kind
        self.page_count = page_count
        self.limits = limits
        self._pdf = pdf
        self._frames = frames or []
        self._closed = False
        self._lock = MUPDF_LOCK
        self.warnings: list[str] = []  # problems with the whole file that did not stop it (i18n.Text)

    def __repr__(self) -> str:
        return f"<Document {self.name!r} {self.kind}, {self.page_count} pages>"

    def page(self, number: int, *, dpi: int | None = None) -> Page:  # 1-based
        if self._closed:
            raise DocumentError(message("core.document.closed", name=self.name), path=self.path)
        if not isinstance(number, int) or not 1 <= number <= self.page_count:
            raise DocumentError(
                message("core.document.no_such_page", name=self.name, page=str(number), count=self.page_count),
                path=self.path,
            )
        dpi = dpi or self.limits.dpi
        if self.kind == "pdf":
            return _PdfPage(self, number, dpi)
        return _ImagePage(self, self._frames[number - 1], dpi)

    def pages(self, numbers: list[int] | None = None, *, dpi: int | None = None) -> Iterator[Page]:
        """The selected pages (all by default), refused up front if the selection is over the page limit."""
        selected = list(range(1, self.page_count + 1)) if numbers is None else list(numbers)
        check_page_budget(selected, self.limits)
        handles = [self.page(number, dpi=dpi) for number in selected]  # validates every number now
        return iter(handles)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._pdf is not None:
                self._pdf.close()
                self._pdf = None

    def _open_pdf(self) -> pymupdf.Document:
        if self._pdf is None:
            raise DocumentError(message("core.document.closed", name=self.name), path=self.path)
        return self._pdf

    def __enter__(self) -> Document:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_document(path: str | Path, *, limits: Limits | None = None, password: str | None = None) -> Document:
    """Open ``path`` by its content (never its extension) or raise DocumentError."""
    limits = limits or Limits()
    path = Path(path)
    if limits.dpi <= 0:
        raise DocumentError(message("core.document.dpi_invalid", dpi=limits.dpi))
    if not path.exists():
        raise DocumentError(message("core.document.missing", path=str(path)), path=path)
    if path.is_dir():
        raise DocumentError(message("core.document.folder", path=str(path)), path=path)
    try:
        size = path.stat().st_size
        if size == 0:
            raise DocumentError(message("core.document.empty", name=path.name), path=path)
        if size > limits.max_file_bytes:
            raise DocumentError(
                message(
                    "core.document.file_too_large",
                    name=path.name,
                    size=_human_bytes(size),
                    limit=_human_bytes(limits.max_file_bytes),
                ),
                path=path,
            )
        with path.open("rb") as handle:
            head = handle.read(_PDF_MAGIC_WINDOW)
    except OSError as exc:
        raise DocumentError(
            message("core.document.unreadable", name=path.name, detail=str(exc.strerror or exc))
        ) from exc
    if _PDF_MAGIC in head:
        return _open_pdf(path, limits, password)
    return _open_image_document(path, limits)


def _open_pdf(path: Path, limits: Limits, password: str | None) -> Document:
    with MUPDF_LOCK:
        return _open_pdf_locked(path, limits, password)


def _open_pdf_locked(path: Path, limits: Limits, password: str | None) -> Document:
    import pymupdf

    try:
        pdf = pymupdf.open(path, filetype="pdf")
    except Exception as exc:
        raise DocumentError(
            message("core.document.pdf_damaged_open", name=path.name, detail=library_detail("pdf")), path=path
        ) from exc
    try:
        if pdf.needs_pass:
            if password is None:
                raise DocumentError(
                    message("core.document.password_required", name=path.name),
                    path=path,
                    needs_password=True,
                )
            # Note: do not read pdf.needs_pass again after authenticating; in PyMuPDF that
            # loses the decryption and pages then come out blank.
            if not pdf.authenticate(password):
                raise DocumentError(
                    message("core.document.password_wrong", name=path.name),
                    path=path,
                    needs_password=True,
                )
        page_count = pdf.page_count
        if page_count == 0:
            raise DocumentError(message("core.document.pdf_no_pages", name=path.name), path=path)
    except DocumentError:
        pdf.close()
        raise
    except Exception as exc:
        pdf.close()
        raise DocumentError(
            message("core.document.pdf_damaged", name=path.name, detail=library_detail("pdf")), path=path
        ) from exc
    document = Document(path, "pdf", page_count, limits, pdf=pdf)
    if getattr(pdf, "is_repaired", False):  # MuPDF rebuilt a broken file: pages may be missing or blank
        document.warnings.append(REPAIRED_PDF)  # no file name: jobs keep their inputs under neutral names
    return document


def library_detail(kind: str) -> Message:
    """What a reading library said, in the user's words: MuPDF's and Pillow's own sentences are English
    whatever the tab's language, so the message names the library and the failure in the catalog's words;
    the library's sentence stays on the exception chain (``from exc``) for a bug report."""
    return message(f"core.document.library_{kind}")


def not_supported_message(name: str) -> Text:
    return text("core.document.not_supported", name=name)


def sniff(path: Path) -> str | None:
    """The kind of file ``path`` is by its content: "pdf", an image's format in lower case
    ("png"), or None when it is neither (or cannot be read). A job stores only what this names;
    it reads headers only."""
    try:
        with open(path, "rb") as handle:
            if _PDF_MAGIC in handle.read(_PDF_MAGIC_WINDOW):
                return "pdf"
        with Image.open(path) as image:
            return str(image.format or "").lower() or None
    except Image.DecompressionBombError:  # an image all the same: opening it says it is too large
        return "image"
    except Exception:  # unreadable, or not an image: not stored
        return None


def _open_image_document(path: Path, limits: Limits) -> Document:
    not_supported = not_supported_message(path.name).message
    try:
        with _open_image(path, limits) as image:
            if image.format not in _IMAGE_FORMATS:
                raise DocumentError(
                    message("core.document.image_format", name=path.name, format=str(image.format)), path=path
                )
            count = getattr(image, "n_frames", 1) if image.format in _MULTI_PAGE_FORMATS else 1
            frames = [_read_frame(image, index) for index in range(count)]
    except DocumentError:
        raise
    except UnidentifiedImageError as exc:
        raise DocumentError(not_supported, path=path) from exc
    except Exception as exc:
        raise DocumentError(
            message("core.document.image_header_damaged", name=path.name, detail=library_detail("image")), path=path
        ) from exc
    if not frames:
        raise DocumentError(message("core.document.image_no_pages", name=path.name), path=path)
    if len(frames) == 1 and frames[0].width * frames[0].height > limits.max_image_pixels:
        first = frames[0]
        raise DocumentError(
            _too_many_pixels("core.document.image_too_large", path.name, first.width, first.height, limits), path=path
        )
    return Document(path, "image", len(frames), limits, frames=frames)


def _read_frame(image: Image.Image, index: int) -> _Frame:
    """A frame's size after EXIF orientation, from its header alone."""
    image.seek(index)
    width, height = image.size
    try:
        tags = getattr(image, "tag_v2", None)
        if tags is not None:
            # A TIFF frame's own tags (getexif() does not follow seek()). The stored size is read
            # from them because recent Pillow reports TIFF sizes already turned, older Pillow not.
            width, height = int(tags.get(_TIFF_WIDTH, width)), int(tags.get(_TIFF_LENGTH, height))
            orientation = tags.get(_EXIF_ORIENTATION)
        else:
            orientation = image.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # unreadable EXIF is ignored, as viewers do
        orientation = 1
    if orientation in _SWAPS_AXES:
        width, height = height, width
    return _Frame(index=index, width=width, height=height)


_RANGE_PART = re.compile(r"^(\d*)\s*-\s*(\d*)$")


def parse_page_range(spec: str | None, page_count: int) -> list[int]:
    """ "1-3,7" → [1, 2, 3, 7]; empty/None → all pages; raises DocumentError with a
    clear message on bad syntax or pages out of range."""
    if page_count < 1:
        raise DocumentError(message("core.page_range.no_pages"))
    valid = message("core.page_range.valid", count=page_count)
    if spec is None or not spec.strip():
        return list(range(1, page_count + 1))
    normalized = spec.replace("–", "-").replace("—", "-")
    chosen: set[int] = set()
    for raw in normalized.split(","):
        part = raw.strip()
        if not part:
            continue
        if part.isdigit():
            first = last = int(part)
        else:
            match = _RANGE_PART.match(part)
            if match is None or not (match.group(1) or match.group(2)):
                raise DocumentError(message("core.page_range.bad_part", part=part, spec=spec, valid=valid))
            first = int(match.group(1)) if match.group(1) else 1
            last = int(match.group(2)) if match.group(2) else page_count
        for number in (first, last):
            if not 1 <= number <= page_count:
                raise DocumentError(message("core.page_range.out_of_range", page=number, part=part, valid=valid))
        if first > last:
            raise DocumentError(message("core.page_range.reversed", part=part, first=first, last=last))
        chosen.update(range(first, last + 1))
    if not chosen:
        raise DocumentError(message("core.page_range.empty", spec=spec, valid=valid))
    return sorted(chosen)
