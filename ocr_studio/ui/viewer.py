"""The reader's data: which page is shown, the page image with its layout boxes drawn over it,
the text pane linked to those boxes, and the job's status in words. Pure functions of a Job
(HTML strings out), so the UI stays a thin wiring layer and a page turn costs milliseconds:
the image is a file the browser fetches (encoded once, see media.py), the boxes are one SVG.

Everything from a document or a model is untrusted: text is escaped, tables go through the
results sanitiser, and nothing in the text pane can load or link to anything outside."""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..results import CATEGORY_COLORS, PAGE_FURNITURE, block_html

if TYPE_CHECKING:
    from ..jobs import Job
    from ..results import DocumentResult, PageResult

MEDIA_PREFIX = "/studio"  # media.PREFIX; repeated here so this module imports no web framework

LATEX_DELIMITERS = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "$", "right": "$", "display": False},
    {"left": "\\[", "right": "\\]", "display": True},
    {"left": "\\(", "right": "\\)", "display": False},
]

THUMBNAIL_LIMIT = 400  # pages in the strip; beyond that the page list still reaches them


@dataclass
class PageView:
    """Everything the result panel shows for one page."""

    document_index: int
    page_number: int | None
    page_html: str  # the page image with its boxes, or a message where there is no image
    text_html: str  # the linked text pane
    markdown: str  # the page's Markdown, as exported
    json_text: str  # the page's result, compact
    note: str = ""  # a warning or error about this page/document
    block_count: int = 0


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


def page_boxes(page: PageResult) -> list[tuple[int, tuple[float, float, float, float], str]]:
    """(block index, box clamped to the page, category) for every block that has a box."""
    boxes = []
    for index, block in enumerate(page.blocks):
        if block.bbox is None:
            continue
        x1, y1, x2, y2 = block.bbox
        left, right = sorted((x1, x2))
        top, bottom = sorted((y1, y2))
        left, top = max(left, 0.0), max(top, 0.0)
        right, bottom = min(right, float(page.width or right)), min(bottom, float(page.height or bottom))
        if right > left and bottom > top:
            boxes.append((index, (left, top, right, bottom), block.category))
    return boxes


def media_url(kind: str, job: Job, document_index: int, page_number: int, stamp: int = 0) -> str:
    return f"{MEDIA_PREFIX}/{kind}/{quote(job.id)}/{document_index}/{page_number}?v={stamp}"


def _color(category: str) -> str:
    return CATEGORY_COLORS.get(category, "#555555")


def legend_html(boxes: list[tuple[int, tuple[float, float, float, float], str]]) -> str:
    """The categories on the page, coloured as their boxes, with how many boxes each has."""
    counts: dict[str, int] = {}
    for _, _, category in boxes:
        counts[category] = counts.get(category, 0) + 1
    return "".join(
        f'<span class="legend-chip" style="--c:{_color(name)}">{html.escape(name)} × {count}</span>'
        for name, count in counts.items()
    )


def page_html(job: Job, document_index: int, page: PageResult, stamp: int, note: str = "") -> str:
    """The page image (fetched by the browser, cached) with one SVG of its boxes on top."""
    width, height = max(page.width, 1), max(page.height, 1)
    boxes = page_boxes(page)
    rects = "".join(
        f'<rect data-b="{index}" x="{x1:.1f}" y="{y1:.1f}" width="{x2 - x1:.1f}" height="{y2 - y1:.1f}" '
        f'style="--c:{_color(category)}"><title>{html.escape(category)}</title></rect>'
        for index, (x1, y1, x2, y2), category in boxes
    )
    image = media_url("page", job, document_index, page.page_number, stamp)
    tools = (
        '<div class="pv-tools" role="toolbar" aria-label="Zoom">'
        '<button type="button" data-zoom="width" title="Fit the page width">Fit width</button>'
        '<button type="button" data-zoom="page" title="Show the whole page">Fit page</button>'
        '<button type="button" data-zoom="actual" title="One image pixel per screen pixel">100 %</button>'
        f'<span class="pv-legend">{legend_html(boxes)}</span></div>'
    )
    warning = f'<div class="pv-note" role="note">{html.escape(note)}</div>' if note else ""
    return (
        f'<div class="pv" data-job="{html.escape(job.id)}" data-doc="{document_index}" '
        f'data-page="{page.page_number}" data-w="{width}" data-h="{height}">'
        f"{tools}{warning}"
        '<div class="pv-scroll" tabindex="0" aria-label="Page image">'
        f'<div class="pv-stage" style="aspect-ratio:{width}/{height}">'
        f'<img src="{image}" width="{width}" height="{height}" alt="Page {page.page_number}" draggable="false">'
        f'<svg viewBox="0 0 {width} {height}" preserveAspectRatio="none" aria-hidden="true">{rects}</svg>'
        "</div></div>"
        f"{thumbnails_html(job, document_index, page.page_number)}</div>"
    )


def thumbnails_html(job: Job, document_index: int, current: int) -> str:
    """A strip of the document's page thumbnails; a click opens that page."""
    pages = job.documents[document_index].pages[:THUMBNAIL_LIMIT]
    if len(pages) < 2:
        return ""
    items = "".join(
        f'<button type="button" class="pv-thumb{" current" if p.page_number == current else ""}" '
        f'data-goto="{document_index}:{p.page_number}" title="Page {p.page_number}" '
        f'aria-label="Page {p.page_number}">'
        f'<img loading="lazy" src="{media_url("thumb", job, document_index, p.page_number)}" alt="">'
        f"<span>{p.page_number}</span></button>"
        for p in pages
    )
    return f'<div class="pv-thumbs" aria-label="Pages">{items}</div>'


def text_html(page: PageResult) -> str:
    """The page's blocks in reading order, each linked to its box by its ``b-<index>`` class (Gradio's
    Markdown sanitiser keeps classes, not data attributes). Inert: every
    block goes through ``results.block_html`` (escaped text, sanitised tables, no links)."""
    parts = []
    for index, block in enumerate(page.blocks):
        if block.category == "Picture":
            body = '<p class="blk-picture">[Picture]</p>'
        else:
            body = block_html(block)
        if not body:
            continue
        body = re.sub(r"\n\s*\n+", "\n", body)  # a blank line would end the HTML block for the Markdown parser
        furniture = " furniture" if block.category in PAGE_FURNITURE else ""
        parts.append(
            f'<div class="blk b-{index}{furniture}" style="--c:{_color(block.category)}" '
            f'title="{html.escape(block.category)}">\n{body}\n</div>'
        )
    if not parts:
        return "*No text was found on this page.*"
    return "\n\n".join(parts)


def compact_json(data: Any) -> str:
    """Indented JSON where each block is one line and coordinates have one decimal."""

    def rounded(value: Any) -> Any:
        if isinstance(value, float):
            return round(value, 1)
        if isinstance(value, list):
            return [rounded(v) for v in value]
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        return value

    data = rounded(data)
    blocks = data.pop("blocks", None) if isinstance(data, dict) else None
    text = json.dumps(data, ensure_ascii=False, indent=1)
    if blocks is None:
        return text
    lines = ",\n".join("  " + json.dumps(block, ensure_ascii=False) for block in blocks)
    body = f'"blocks": [\n{lines}\n ]' if blocks else '"blocks": []'
    return text[:-2] + (",\n " if len(data) else " ") + body + "\n}"


def _find_page(document: DocumentResult, page_number: int | None) -> PageResult | None:
    for page in document.pages:
        if page.page_number == page_number:
            return page
    return document.pages[0] if document.pages else None


def message_html(message: str) -> str:
    return f'<div class="pv pv-empty"><p>{html.escape(message)}</p></div>'


def page_view(job: Job, document_index: int, page_number: int | None) -> PageView:
    """The view of one page; a failed document shows its error instead."""
    if not job.documents:
        return PageView(document_index, None, message_html("No results yet."), "", "", "")
    document_index = min(max(document_index, 0), len(job.documents) - 1)
    document = job.documents[document_index]
    page = _find_page(document, page_number)
    if page is None:
        if document.error:
            message = f"{document.name} could not be converted: {document.error}"
        else:
            message = "No pages of this document are finished yet."
        data = {"name": document.name, "error": document.error}
        return PageView(document_index, None, message_html(message), "", "", compact_json(data), message)
    warnings = list(page.warnings)
    if page.truncated:
        warnings.insert(0, "the engine stopped early on this page; the text may be incomplete")
    note = ("Warning: " + "; ".join(warnings) + ".") if warnings else ""
    image_path = job.page_image_path(document_index, page.page_number)
    try:
        stamp = int(image_path.stat().st_mtime)
    except OSError:
        stamp = -1
    if stamp < 0:
        note = " ".join(filter(None, ["The page image is not available.", note]))
        body = message_html(note)
    else:
        body = page_html(job, document_index, page, stamp, note)
    return PageView(
        document_index,
        page.page_number,
        body,
        text_html(page),
        page.markdown() or "",
        compact_json(page.to_dict()),
        note,
        len(page.blocks),
    )


# --- status in words ------------------------------------------------------------------------


def failures(job: Job) -> list[str]:
    """Every failed document and page of ``job``, with its reason."""
    lines = []
    for index, document in enumerate(job.documents):
        if document.error:
            lines.append(f"{document.name}: {document.error}")
        errors = job.page_errors[index] if index < len(job.page_errors) else {}
        for number, reason in sorted(errors.items()):
            lines.append(f"{document.name}, page {number}: {reason}")
    return lines


def pages_read(job: Job) -> int:
    """Pages that were read (a page that failed keeps a result too, holding only its reason)."""
    failed = sum(len(errors) for errors in job.page_errors)
    return max(job.pages_done - failed, 0)


def outcome(job: Job) -> str:
    """done | partial | failed | cancelled | interrupted | running | pending."""
    pages = pages_read(job)
    failed = failures(job)
    if job.status == "done":
        if not pages:
            return "failed"
        return "partial" if failed else "done"
    if job.status == "failed":
        return "partial" if pages else "failed"
    return job.status


# (symbol, word) per outcome; the symbols are in every common UI font (no emoji font needed).
VERBS = {
    "done": ("✓", "Done"),
    "partial": ("⚠", "Partly done"),
    "failed": ("✗", "Failed"),
    "cancelled": ("■", "Cancelled"),
    "interrupted": ("‖", "Interrupted"),
    "running": ("…", "Running"),
    "pending": ("…", "Waiting"),
}


def job_summary(job: Job, seconds: float | None = None, *, plain: bool = False) -> str:
    """The status of a finished (or stopped) job: what succeeded, every failure with its reason,
    and what to do about it. Markdown for the page, or ``plain`` text for the API's answer."""
    state = outcome(job)
    pages = pages_read(job)
    symbol, word = VERBS.get(state, ("", state.capitalize()))
    head = f"{word}:" if plain else f"**{' '.join(filter(None, (symbol, word)))}:**"
    line = f"{head} {_plural(pages, 'page')} from {_plural(len(job.documents), 'document')}"
    if seconds is not None:
        line += f" in {seconds:.1f} s"
    line += "."
    reasons = []
    if job.message and job.status != "done":
        reasons.append(job.message)
    if state == "failed" and not job.message and not failures(job):
        reasons.append("no page could be read. Check that the files are PDFs or images.")
    reasons.extend(failures(job))
    if reasons:
        line += "\n" + "\n".join(f"- {reason if plain else _md_text(reason)}" for reason in reasons)
    return line


def _md_text(text: str) -> str:
    """Plain text shown inside Markdown: escaped so a file name or reason cannot add markup."""
    # not ( ) or $: "\\(" and "$" are LaTeX delimiters in the text pane
    return re.sub(r"([\\`*_{}\[\]<>#|~])", r"\\\1", text)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
