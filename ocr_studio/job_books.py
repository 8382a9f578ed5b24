"""A whole job as one e-book (EPUB and FB2): each document under its name, in the job's order.

The per-document books come with every document's downloads (``exporters``); this is the one book
a reader wants for a job of several files (the chapters of a scanned book, a folder of letters).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from .book import book_title
from .ebooks import BOOK_FORMATS, book_file
from .exporters import PageImageSource, PictureCrops, write_atomic
from .results import DocumentResult

log = logging.getLogger(__name__)


def export_job_books(
    docs: Sequence[DocumentResult],
    out_dir: Path,
    stem: str,
    *,
    page_image: PageImageSource | None = None,
    clean: bool = False,
    title: str | None = None,
    formats: Sequence[str] = BOOK_FORMATS,
) -> dict[str, Path]:
    """``<stem>.epub`` and ``<stem>.fb2`` of the documents that have pages, written atomically into
    ``out_dir``; returns them by format. ``page_image`` is called with each document's index in
    ``docs`` (a job's ``Job.page_image``)."""
    chosen = [(index, doc) for index, doc in enumerate(docs) if doc.pages]
    pictures = [PictureCrops(doc, index, page_image).picture for index, doc in chosen]
    names = [book_title(doc.name) for _, doc in chosen]
    written = {}
    for fmt in formats:
        if fmt not in BOOK_FORMATS:
            continue
        data = book_file(fmt, [doc for _, doc in chosen], pictures, clean=clean, title=title, names=names)
        written[fmt] = write_atomic(Path(out_dir) / f"{stem}.{fmt}", data)
    return written


def job_books_or_none(
    docs: Sequence[DocumentResult],
    out_dir: Path,
    stem: str,
    *,
    page_image: PageImageSource | None = None,
    clean: bool = False,
    title: str | None = None,
) -> dict[str, Path]:
    """``export_job_books``, or no books when they cannot be made (logged): a bug in the book code
    costs the job's two books, never its other downloads."""
    try:
        return export_job_books(docs, out_dir, stem, page_image=page_image, clean=clean, title=title)
    except Exception as exc:
        log.warning("The e-books of %s could not be made: %s", out_dir, exc, exc_info=True)
        return {}
