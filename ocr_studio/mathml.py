"""LaTeX as MathML the browser draws itself, for the text pane and the HTML export.

MathML needs no script (Chromium, Firefox and Safari render it natively), so the pane and the
exported file stay inert. The converter copies ``\\text{…}`` verbatim and turns ``\\href`` and
``\\style`` into attributes, so its output goes through an allow-list of MathML elements and
presentation attributes before it reaches a page: the LaTeX is untrusted model output."""

from __future__ import annotations

import html
import logging
import re
from html.parser import HTMLParser

log = logging.getLogger(__name__)

_ELEMENTS = frozenset(
    "math mrow mi mn mo mtext ms mspace msub msup msubsup mfrac msqrt mroot mover munder munderover "
    "mtable mtr mtd mstyle mpadded mphantom menclose mfenced merror mmultiscripts mprescripts none "
    "semantics annotation".split()
)
_ATTRIBUTES = frozenset(
    "display mathvariant stretchy fence separator separators accent accentunder linethickness columnalign "
    "rowalign rowspacing columnspacing columnlines rowlines frame lspace rspace minsize maxsize movablelimits "
    "symmetric form largeop notation open close encoding scriptlevel displaystyle width height depth".split()
)
_DROPPED_WITH_CONTENT = frozenset("script style iframe object embed template noscript textarea svg title".split())
_SAFE_VALUE = re.compile(r"[\w .%#+-]{0,40}")


class _MathSanitizer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []
        self.skipped = 0  # depth inside an element that is dropped with its content

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skipped or tag in _DROPPED_WITH_CONTENT:
            self.skipped += 1
            return
        if tag not in _ELEMENTS:
            return  # the tag goes, its text stays (as text)
        kept = "".join(
            f' {name}="{html.escape(value, quote=True)}"'
            for name, value in attrs
            if name in _ATTRIBUTES and value is not None and _SAFE_VALUE.fullmatch(value)
        )
        self.out.append(f"<{tag}{kept}>")
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.skipped:
            self.skipped -= 1
            return
        if tag not in _ELEMENTS:
            return
        if tag in self.open:
            while True:
                name = self.open.pop()
                self.out.append(f"</{name}>")
                if name == tag:
                    break

    def handle_data(self, data: str) -> None:
        if not self.skipped:
            self.out.append(html.escape(data, quote=False))

    def result(self) -> str:
        self.close()
        return "".join(self.out) + "".join(f"</{name}>" for name in reversed(self.open))


def latex_mathml(latex: str, *, display: bool) -> str | None:
    """``latex`` as sanitised MathML, or None when it does not convert (the caller shows the source
    instead). No ``<semantics>``/``<annotation>``: Gradio's sanitiser drops a ``<math>``'s whole
    content when they are in it; the caller keeps the source beside the formula."""
    from latex2mathml.converter import convert

    source = latex.strip()
    if not source:
        return None
    try:
        markup = convert(source, display="block" if display else "inline")
    except Exception as exc:  # malformed LaTeX: the source is shown as written
        log.debug("LaTeX not converted: %s", exc)
        return None
    sanitizer = _MathSanitizer()
    sanitizer.feed(markup)
    inner = sanitizer.result()
    body = re.sub(r"^<math[^>]*>|</math>$", "", inner)
    mode = "block" if display else "inline"
    return f'<math display="{mode}">{body}</math>'
