"""Open PDFs and images into pages; every input limit and input error lives here.

CONTRACT (implementation pending): the names and signatures below are what the
rest of the package uses. Keep them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pymupdf
    from PIL import Image


class DocumentError(Exception):
    """A file cannot be read as a document. The message says what is wrong and
    what the user can do about it (it is shown as is in the UI and CLI)."""

    def __init__(self, message: str, *, path: str | Path | None = None, needs_password: bool = False):
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


class Page:
    """One page of a document. The image is rendered lazily, once, at ``dpi``."""

    document_name: str
    number: int  # 1-based
    dpi: int

    @property
    def image(self) -> Image.Image:  # RGB
        raise NotImplementedError

    @property
    def size(self) -> tuple[int, int]:  # (width, height) in pixels at dpi, without rendering
        raise NotImplementedError

    def text_spans(self) -> list[TextSpan]:
        """The page's own text layer (empty for images and scans)."""
        raise NotImplementedError

    def pdf_page(self) -> pymupdf.Page:
        """A PyMuPDF page for this page (images are wrapped in a one-page PDF),
        used by the text-layer engine for its text and Tesseract OCR."""
        raise NotImplementedError


class Document:
    """An opened file: a PDF or an image (a TIFF's frames are its pages)."""

    path: Path
    name: str
    kind: str  # "pdf" or "image"
    page_count: int

    def page(self, number: int) -> Page:  # 1-based
        raise NotImplementedError

    def pages(self, numbers: list[int] | None = None) -> Iterator[Page]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Document:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_document(path: str | Path, *, limits: Limits | None = None, password: str | None = None) -> Document:
    """Open ``path`` by its content (never its extension) or raise DocumentError."""
    raise NotImplementedError


def parse_page_range(spec: str | None, page_count: int) -> list[int]:
    """"1-3,7" → [1, 2, 3, 7]; empty/None → all pages; raises DocumentError with a
    clear message on bad syntax or pages out of range."""
    raise NotImplementedError


SUPPORTED_SUFFIXES = (".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif")
