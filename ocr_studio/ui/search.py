"""The studio's search box: every job's text found by its words (any form, English and Russian),
listed as document, page and snippet; a match opens its page with its box marked.

HTML strings out, like viewer.py. Document names and snippets come from documents: every one is
escaped, and a match carries only numbers and a job id (checked again when it comes back)."""

from __future__ import annotations

import html
import re

from ..i18n import t
from ..library.search_index import Hit

LIMIT = 50  # matches listed; more words narrow the search
_TARGET = re.compile(r"([0-9a-f]{8,64}):(\d{1,6}):(\d{1,7}):(\d{1,7})(?::\d{1,20})?")


def snippet_html(hit: Hit) -> str:
    """The snippet, escaped, its matched words in ``<mark>``."""
    return "".join(
        f"<mark>{html.escape(part)}</mark>" if matched else html.escape(part) for part, matched in hit.snippet
    )


def note_html(text: str) -> str:
    """A line in place of the matches (nothing found, no words, the index unusable)."""
    return f'<div class="search-hits empty"><p class="sh-note">{html.escape(text)}</p></div>'


def hits_html(hits: list[Hit], query: str, limit: int = LIMIT) -> str:
    """The matches as buttons (reader-side ``search.js`` opens the one clicked); ``hits`` may hold
    one more than ``limit``, which says there are more."""
    if not hits:
        return note_html(t("library.ui.no_hits", query=query))
    shown = hits[:limit]
    head = t("library.ui.more", count=limit) if len(hits) > limit else t("library.ui.count", count=len(shown))
    items = "".join(
        f'<li><button type="button" class="sh-hit" data-hit="{hit.job_id}:{hit.document_index}:{hit.page}:{hit.block}">'
        f'<span class="sh-where">{html.escape(t("library.ui.where", document=hit.document, page=hit.page))}</span>'
        f'<span class="sh-snippet">{snippet_html(hit)}</span></button></li>'
        for hit in shown
        if _TARGET.fullmatch(f"{hit.job_id}:{hit.document_index}:{hit.page}:{hit.block}")
    )
    return f'<div class="search-hits"><p class="sh-count">{html.escape(head)}</p><ol>{items}</ol></div>'


def parse_target(value: str | None) -> tuple[str, int, int, int] | None:
    """(job id, document index, page number, block index) of a clicked match ("job:doc:page:block",
    a click's time after it); None for anything else."""
    found = _TARGET.fullmatch((value or "").strip())
    if found is None:
        return None
    job_id, document, page, block = found.groups()
    return job_id, int(document), int(page), int(block)
