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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ..i18n import render, t
from ..results import CATEGORY_COLORS, EXTRA_CATEGORY_COLORS, PAGE_FURNITURE, block_html
from .language import number

if TYPE_CHECKING:
    from ..jobs import Job
    from ..results import DocumentResult, PageResult

# media.PREFIX without its slash; repeated here so this module imports no web framework. Relative:
# the links resolve under the page's own path (the guard's per-launch prefix, where the cookie goes).
MEDIA_PREFIX = "studio"

# Empty: Gradio's Markdown math is off. Its tokenizer matches a "$" anywhere in the pane and swallows
# everything up to the next one (other blocks, their box links) into one red error; math is drawn
# per block as MathML by results.block_html instead, only where the page's text is math.
LATEX_DELIMITERS: list[dict[str, object]] = []

FOUND_CLASS = ' class="found"'  # the box of a search's match
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
            label = t("ui.navigator.failed_document", name=document.name)
        elif document.pages:
            label = t("ui.navigator.document_pages", name=document.name, count=len(document.pages))
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
    return CATEGORY_COLORS.get(category) or EXTRA_CATEGORY_COLORS.get(category, "#555555")


def category_name(category: str) -> str:
    """A layout category ("Page-header") in the tab's language; an engine's own category as it is."""
    known = category in CATEGORY_COLORS or category in EXTRA_CATEGORY_COLORS
    return t(f"ui.category.{category}") if known else category


def legend_html(boxes: list[tuple[int, tuple[float, float, float, float], str]]) -> str:
    """The categories on the page, coloured as their boxes, with how many boxes each has."""
    counts: dict[str, int] = {}
    for _, _, category in boxes:
        counts[category] = counts.get(category, 0) + 1
    return "".join(
        f'<span class="legend-chip" style="--c:{_color(name)}">'
        f"{html.escape(t('ui.viewer.legend_chip', category=category_name(name), count=count))}</span>"
        for name, count in counts.items()
    )


def page_html(
    job: Job, document_index: int, page: PageResult, stamp: int, note: str = "", found: int | None = None
) -> str:
    """The page image (fetched by the browser, cached) with one SVG of its boxes on top; the box of
    block ``found`` (a search's match) marked."""
    width, height = max(page.width, 1), max(page.height, 1)
    boxes = page_boxes(page)
    rects = "".join(
        f'<rect data-b="{index}"{FOUND_CLASS if index == found else ""} '
        f'x="{x1:.1f}" y="{y1:.1f}" width="{x2 - x1:.1f}" height="{y2 - y1:.1f}" '
        f'style="--c:{_color(category)}"><title>{html.escape(category_name(category))}</title></rect>'
        for index, (x1, y1, x2, y2), category in boxes
    )
    image = media_url("page", job, document_index, page.page_number, stamp)
    alt = _attr(t("ui.viewer.page_number", page=page.page_number))
    zoom = "".join(
        f'<button type="button" data-zoom="{mode}" title="{_attr(t(f"ui.viewer.{name}_tip"))}">'
        f"{html.escape(t(f'ui.viewer.{name}'))}</button>"
        for mode, name in (
            ("out", "zoom_out"),
            ("width", "fit_width"),
            ("page", "fit_page"),
            ("actual", "actual_size"),
            ("in", "zoom_in"),
        )
    )
    tools = (
        f'<div class="pv-tools" role="toolbar" aria-label="{_attr(t("ui.viewer.zoom"))}">{zoom}'
        f'<span class="pv-legend">{legend_html(boxes)}</span></div>'
    )
    warning = f'<div class="pv-note" role="note">{html.escape(note)}</div>' if note else ""
    return (
        f'<div class="pv" data-job="{html.escape(job.id)}" data-doc="{document_index}" '
        f'data-page="{page.page_number}" data-w="{width}" data-h="{height}">'
        f"{tools}{warning}"
        f'<div class="pv-scroll" tabindex="0" aria-label="{_attr(t("ui.viewer.page_image"))}">'
        f'<div class="pv-stage" style="aspect-ratio:{width}/{height}">'
        f'<img src="{image}" width="{width}" height="{height}" alt="{alt}" draggable="false">'
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
        f'data-goto="{document_index}:{p.page_number}" title="{_attr(t("ui.viewer.page_number", page=p.page_number))}" '
        f'aria-label="{_attr(t("ui.viewer.page_number", page=p.page_number))}">'
        f'<img loading="lazy" src="{media_url("thumb", job, document_index, p.page_number)}" alt="">'
        f"<span>{p.page_number}</span></button>"
        for p in pages
    )
    return f'<div class="pv-thumbs" aria-label="{_attr(t("ui.viewer.pages"))}">{items}</div>'


def text_html(page: PageResult, found: int | None = None) -> str:
    """The page's blocks in reading order, each linked to its box by its ``b-<index>`` class (Gradio's
    Markdown sanitiser keeps classes, not data attributes). Inert: every
    block goes through ``results.block_html`` (escaped text, sanitised tables and MathML, no links);
    a literal page's text is shown as printed, ``$`` and ``#`` included."""
    parts = []
    for index, block in enumerate(page.blocks):
        if block.category == "Picture":
            body = f'<p class="blk-picture">{html.escape(t("ui.viewer.picture"))}</p>'
        else:
            body = block_html(block, literal=page.literal)
        if not body:
            continue
        body = re.sub(r"\n\s*\n+", "\n", body)  # a blank line would end the HTML block for the Markdown parser
        furniture = " furniture" if block.category in PAGE_FURNITURE else ""
        furniture += " found" if index == found else ""  # a search's match
        parts.append(
            f'<div class="blk b-{index}{furniture}" style="--c:{_color(block.category)}" '
            f'title="{_attr(category_name(block.category))}">\n{body}\n</div>'
        )
    if not parts:
        return t("ui.viewer.no_text")
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


EMPTY_HTML = '<div class="pv pv-empty"><p>{}</p></div>'  # the page view without a page


def message_html(message: str) -> str:
    return EMPTY_HTML.format(html.escape(message))


def page_view(job: Job, document_index: int, page_number: int | None, found: int | None = None) -> PageView:
    """The view of one page (block ``found`` marked in the image and the text: a search's match);
    a failed document shows its error instead."""
    if not job.documents:
        return PageView(document_index, None, message_html(t("ui.viewer.no_results")), "", "", "")
    document_index = min(max(document_index, 0), len(job.documents) - 1)
    document = job.documents[document_index]
    page = _find_page(document, page_number)
    if page is None:
        if document.error:
            message = t("ui.viewer.document_failed", name=document.name, reason=render(document.error))
        else:
            message = t("ui.viewer.no_pages_yet")
        data = {"name": document.name, "error": render(document.error) if document.error else document.error}
        return PageView(document_index, None, message_html(message), "", "", compact_json(data), message)
    warnings = [render(warning).rstrip(".") for warning in page.warnings]
    if page.truncated:
        warnings.insert(0, t("ui.viewer.truncated"))
    listed = "; ".join(warnings)  # each a whole sentence of its own, in the tab's language
    note = t("ui.viewer.warnings", warnings=listed) if warnings else ""
    found = found if page.page_number == page_number else None  # that page is gone: mark nothing
    image_path = job.page_image_path(document_index, page.page_number)
    try:
        stamp = int(image_path.stat().st_mtime)
    except OSError:
        stamp = -1
    if stamp < 0:
        note = t("ui.viewer.no_image_warnings", warnings=listed) if warnings else t("ui.viewer.no_image")
        body = message_html(note)
    else:
        body = page_html(job, document_index, page, stamp, note, found)
    return PageView(
        document_index,
        page.page_number,
        body,
        text_html(page, found),
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
            lines.append(t("ui.outcome.document_failure", name=document.name, reason=render(document.error)))
        errors = job.page_errors[index] if index < len(job.page_errors) else {}
        for page, reason in sorted(errors.items()):
            lines.append(t("ui.outcome.page_failure", name=document.name, page=page, reason=render(reason)))
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


# the symbol of each outcome; they are in every common UI font (no emoji font needed)
SYMBOLS = {
    "done": "✓",
    "partial": "⚠",
    "failed": "✗",
    "cancelled": "■",
    "interrupted": "‖",
    "running": "…",
    "pending": "…",
}


def job_summary(job: Job, seconds: float | None = None, *, plain: bool = False, problems: Sequence[str] = ()) -> str:
    """The status of a finished (or stopped) job: what succeeded, every failure with its reason,
    and what to do about it. Markdown for the page, or ``plain`` text for the API's answer.
    ``problems``: downloads that could not be made (then it never says a clean "Done")."""
    state = outcome(job)
    if problems and state == "done":
        state = "partial"
    word = t(f"ui.outcome.{state}") if state in SYMBOLS else state.capitalize()
    head = word if plain else f"**{' '.join(filter(None, (SYMBOLS.get(state, ''), word)))}**"
    counts = {
        "outcome": head,
        "pages": t("ui.outcome.pages", count=pages_read(job)),
        "documents": t("ui.outcome.documents", count=len(job.documents)),
    }
    if seconds is None:
        line = t("ui.outcome.summary", **counts)
    else:
        line = t("ui.outcome.summary_time", seconds=number(seconds), **counts)
    if not plain:  # the colon inside the bold head, as before: "**✓ Done:** 1 page…"
        line = line.replace(f"{head}:", f"{head[:-2]}:**", 1)
    reasons = []
    if job.message and job.status != "done":
        reasons.append(render(job.message))
    if state == "failed" and not job.message and not failures(job):
        reasons.append(t("ui.outcome.no_page_read"))
    reasons.extend(failures(job))
    if reasons:
        line += "\n" + "\n".join(f"- {reason if plain else _md_text(reason)}" for reason in reasons)
    if problems:
        line += "\n" + t("files.export.downloads_failed", count=len(problems))
        line += "\n" + "\n".join(f"- {reason if plain else _md_text(reason)}" for reason in problems)
    return line


def _md_text(text: str) -> str:
    """Plain text shown inside Markdown: escaped so a file name or reason cannot add markup."""
    # "$" too: Gradio's default "$$" math would take two of them as a formula
    return re.sub(r"([\\`*_{}\[\]<>#|~$])", r"\\\1", text)


def _attr(text: str) -> str:
    """Text for an HTML attribute."""
    return html.escape(text, quote=True)
