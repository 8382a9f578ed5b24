"""The studio's look: Gradio's Soft theme with fonts that read Cyrillic right.

Gradio's Soft theme ships "Montserrat" files that are Montserrat *Alternates*: in Cyrillic т looks
like m, д like g, и like u. A reader checking OCR must tell Cyrillic т from Latin m, so the theme
downloads no font: the UI uses the computer's own UI font (every desktop's has proper Cyrillic)
and the text pane a plain sans face chosen for clear letters. The font stacks are in style.css
(``--studio-font``, ``--studio-mono``, ``--text-pane-font``), beside the rest of the look."""

from __future__ import annotations

import gradio as gr
from gradio.themes.utils import fonts


class _Stack(fonts.Font):
    """A font stack by CSS variable (style.css): written as it is, never quoted or downloaded."""

    def __str__(self) -> str:
        return self.name


def theme() -> gr.themes.Base:
    """The Soft theme in the studio's colours and sizes, with style.css's font stacks."""
    return gr.themes.Soft(
        primary_hue="indigo",
        secondary_hue="slate",
        text_size="sm",
        spacing_size="sm",
        font=[_Stack("var(--studio-font)")],
        font_mono=[_Stack("var(--studio-mono)")],
    )
