"""The e-book formats (EPUB, FictionBook) as one entry point for the exporters: the reading flow
of ``book.py`` written by ``epub_export`` or ``fb2_export``. Kept apart from ``book.py`` so the
writers can build on the flow without the flow knowing them (no import circle)."""

from __future__ import annotations

from collections.abc import Sequence

from .book import PictureSource, book_language, book_title, job_parts
from .results import DocumentResult

BOOK_FORMATS = ("epub", "fb2")


def book_file(
    fmt: str,
    docs: Sequence[DocumentResult],
    pictures: Sequence[PictureSource | None],
    *,
    clean: bool = False,
    title: str | None = None,
    names: Sequence[str] | None = None,
) -> bytes:
    """The e-book (``fmt``: "epub" or "fb2") of one document, or of a job's documents in order
    (``pictures[i]`` crops the pictures of ``docs[i]``; ``names`` are their headings)."""
    parts = job_parts(docs, pictures, clean=clean, names=names)
    title = title or (book_title(docs[0].name) if len(docs) == 1 else "OCR Studio")
    language = book_language(docs)
    if fmt == "epub":
        from .epub_export import epub_book

        return epub_book(parts, title=title, language=language)
    if fmt == "fb2":
        from .fb2_export import fb2_book

        return fb2_book(parts, title=title, language=language)
    raise ValueError(f"not a book format: {fmt!r}")
