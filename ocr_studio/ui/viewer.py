"""The result viewer's data: which page is shown, its image with layout boxes,
and its text views. Pure functions of a Job, so the UI stays a thin wiring layer."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

    from ..jobs import Job
    from ..results import DocumentResult, PageResult

from ..results import CATEGORY_COLORS

LATEX_DELIMITERS = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "$", "right": "$", "display": False},
    {"left": "\\[", "right": "\\]", "display": True},
    {"left": "\\(", "right": "\\)", "display": False},
]


@dataclass
class PageView:
    """Everything the result panel shows for one page."""

    document_index: int
    page_number: int | None
    image: Image.Image | None
    boxes: list[tuple[tuple[int, int, int, int], str]]
    markdown: str
    data: dict[str, Any]
    note: str = ""  # a warning or error about this page/document

    @property
    def annotated(self) -> tuple[Image.Image, list[tuple[tuple[int, int, int, int], str]]] | None:
        return (self.image, self.boxes) if self.image is not None else None


def document_choices(job: Job) -> list[tuple[str, int]]:
    """(label, index) for the document selector; failed documents say so."""
    choices = []
    for index, document in enumerate(job.documents):
        label = document.name
        if document.error:
            label += " (failed)"
        elif document.pages:
            label += f" ({len(document.pages)} p.)"
        choices.append((label, index))
    return choices


def page_numbers(job: Job, document_index: int) -> list[int]:
    if not 0 <= document_index < len(job.documents):
        return []
    return [page.page_number for page in job.documents[document_index].pages]


def first_page(job: Job) -> tuple[int, int | None]:
    """The first (document, page) worth showing: the first document with pages."""
    for index, document in enumerate(job.documents):
        if document.pages:
            return index, document.pages[0].page_number
    return 0, None


def step_page(job: Job, document_index: int, page_number: int | None, step: int) -> tuple[int, int | None]:
    """The page ``step`` pages away, crossing into the neighbouring documents."""
    flat = [(d, p.page_number) for d, doc in enumerate(job.documents) for p in doc.pages]
    if not flat:
        return document_index, None
    try:
        position = flat.index((document_index, page_number))
    except ValueError:
        position = 0
    position = min(max(position + step, 0), len(flat) - 1)
    return flat[position]


def page_boxes(page: PageResult, size: tuple[int, int] | None = None) -> list[tuple[tuple[int, int, int, int], str]]:
    """Layout boxes as integer pixel rectangles clamped to the image, labelled by category."""
    width, height = size or (page.width, page.height)
    boxes = []
    for block in page.blocks:
        if block.bbox is None:
            continue
        x1, y1, x2, y2 = block.bbox
        left, right = sorted((int(round(x1)), int(round(x2))))
        top, bottom = sorted((int(round(y1)), int(round(y2))))
        left, top = max(left, 0), max(top, 0)
        right, bottom = min(right, width), min(bottom, height)
        if right > left and bottom > top:
            boxes.append(((left, top, right, bottom), block.category))
    return boxes


def legend_html(boxes: list[tuple[tuple[int, int, int, int], str]]) -> str:
    """A one-line legend of the categories on the page, with how many boxes each has."""
    counts: dict[str, int] = {}
    for _, category in boxes:
        counts[category] = counts.get(category, 0) + 1
    chips = [
        f'<span class="legend-chip" style="border-color:{CATEGORY_COLORS.get(name, "#555")}">'
        f"{html.escape(name)} × {count}</span>"
        for name, count in counts.items()
    ]
    return " ".join(chips)


def _find_page(document: DocumentResult, page_number: int | None) -> PageResult | None:
    for page in document.pages:
        if page.page_number == page_number:
            return page
    return document.pages[0] if document.pages else None


def page_view(job: Job, document_index: int, page_number: int | None) -> PageView:
    """The view of one page; a failed document shows its error instead."""
    if not job.documents:
        return PageView(document_index, None, None, [], "*No results yet.*", {})
    document_index = min(max(document_index, 0), len(job.documents) - 1)
    document = job.documents[document_index]
    page = _find_page(document, page_number)
    if page is None:
        message = f"**{document.name}** could not be converted: {document.error}" if document.error else ""
        return PageView(
            document_index, None, None, [], message or "*No pages in this document yet.*", document.to_dict()
        )
    image = None
    note = ""
    try:
        image = job.page_image(document_index, page.page_number)
    except Exception as exc:  # a missing page image must not hide the text
        note = f"The page image is not available ({exc})."
    size = image.size if image is not None else None
    warnings = list(page.warnings)
    if page.truncated:
        warnings.insert(0, "the engine stopped early on this page; the text may be incomplete")
    if warnings:
        note = " ".join(filter(None, [note, "Warning: " + "; ".join(warnings) + "."]))
    markdown = page.markdown() or "*No text was found on this page.*"
    return PageView(document_index, page.page_number, image, page_boxes(page, size), markdown, page.to_dict(), note)


def job_summary(job: Job) -> str:
    """One status line about a finished (or stopped) job, errors included."""
    pages = sum(len(d.pages) for d in job.documents)
    failed = [d for d in job.documents if d.error]
    documents = len(job.documents)
    verb = {"done": "Done", "cancelled": "Cancelled", "failed": "Failed", "interrupted": "Interrupted"}.get(
        job.status, job.status.capitalize()
    )
    line = f"**{verb}:** {_plural(pages, 'page')} from {_plural(documents, 'document')}."
    for document in failed:
        line += f"\n\n⚠️ **{document.name}**: {document.error}"
    return line


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
