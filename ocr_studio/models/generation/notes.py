"""Warnings a reader sees on a page (a fast path given up, a kernel missing), from the message
catalog where the package is there; plain English where the decoder was loaded on its own."""

from __future__ import annotations

from typing import Any


def note(msg_id: str, english: str, **args: Any) -> str:
    """The catalog's message as ``i18n.Text`` (English as a str, rendered in the reader's language), or
    the English sentence where ``ocr_studio.i18n`` cannot be imported."""
    try:
        from ocr_studio import i18n
    except ImportError:
        return english.format(**args)
    return i18n.text(msg_id, **args)
