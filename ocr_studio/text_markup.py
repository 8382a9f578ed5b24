"""What a block's text means, and how each view keeps that meaning.

Two kinds of text reach the views (see design.md, "What is math"):
- literal text — a PDF's own text layer, Tesseract's words: a ``$`` is a dollar, ``# This`` at a
  line start is a comment in a code listing, ``*.patch`` is a file pattern. Markdown must show
  it as printed, so everything Markdown would read as markup is escaped.
- Markdown from a vision model, whose prompt asks for Markdown with LaTeX math: its ``$…$`` is
  math, its emphasis is emphasis. Its raw HTML and its links to elsewhere are not kept live
  (a document can carry ``<script>`` or ``javascript:`` links into a Markdown app).

Every text export also drops control characters (a PDF can carry ``ESC[31m`` or BEL into a
terminal that ``cat``s the file)."""

from __future__ import annotations

import re

from .mathml import latex_mathml

# Engines whose text is literal (no Markdown, no LaTeX).
LITERAL_ENGINES = frozenset({"text-layer"})

# C0 controls but tab and newline, DEL, and C1 controls (CSI is 0x9b): dropped from text exports.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` without control characters; line ends become ``\\n``."""
    return _CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


# --- literal text as Markdown ---------------------------------------------------------------

_INLINE_SPECIALS = re.compile(r"([\\`*_\[\]{}<>|$~])")
_ENTITY = re.compile(r"&(?=#?\w+;)")
_LINE_START = re.compile(r"^(\s*)(#{1,6}(?=\s|$)|>|[-+*](?=\s)|=+\s*$|-+\s*$|(\d{1,9})([.)])(?=\s|$))")


def escape_inline(text: str) -> str:
    """Literal text as Markdown inside a line that is already something (a heading's text, a list
    item's): emphasis, code, links, HTML, math and table marks escaped."""
    return _ENTITY.sub("&amp;", _INLINE_SPECIALS.sub(r"\\\1", text.strip()))


def escape_markdown_line(line: str) -> str:
    """One printed line as Markdown that reads back as the same characters."""
    line = escape_inline(line)
    match = _LINE_START.match(line)
    if match is None:
        return line
    indent, mark = match.group(1), match.group(2)
    if match.group(3) is not None:  # "1." at a line start would start a numbered list
        escaped = f"{match.group(3)}\\{match.group(4)}"
    else:
        escaped = "\\" + mark
    return indent + escaped + line[match.end() :]


def escape_markdown(text: str) -> str:
    """Literal text as Markdown: each line escaped, line breaks kept as hard breaks."""
    lines = [escape_markdown_line(line) for line in text.strip().split("\n")]
    return "\\\n".join(line for line in lines if line) if len(lines) > 1 else lines[0]


def code_fence(text: str) -> str:
    """Code as a fenced block whose fence no run of backticks inside can close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text.rstrip()}\n{fence}"


# --- a model's Markdown, made safe -----------------------------------------------------------

_TABLE_CHUNK = re.compile(r"(<table\b.*?</table>)", re.I | re.S)
_MATH = re.compile(r"(\$\$.+?\$\$|\\\[.+?\\\]|\\\(.+?\\\)|(?<![\\$])\$(?=\S)[^$\n]+?(?<=\S)\$(?!\d))", re.S)
_LINK = re.compile(r"(!?)\[([^\]\n]*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^(\s{0,3})\[([^\]\n]+)\]:\s*(\S+)", re.M)
_SCHEME = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:|//|\\\\)", re.I)


def relative(url: str) -> bool:
    """Whether ``url`` points inside the export (``images/page-0001-002.png``), not elsewhere."""
    return bool(url) and not _SCHEME.match(url) and not url.startswith(("/", "\\"))


def _link(match: re.Match[str]) -> str:
    bang, label, url = match.groups()
    if relative(url):
        return match.group(0)
    return label if not bang else (f"[{label}]" if label else "")


def _neutral(chunk: str) -> str:
    """Markdown outside math: HTML and angle-bracket autolinks inert, links elsewhere reduced to their
    text, a lone ``$`` a dollar."""
    chunk = chunk.replace("<", "&lt;")
    chunk = _LINK.sub(_link, chunk)
    chunk = _REFERENCE.sub(lambda m: m.group(0) if relative(m.group(3)) else f"{m.group(1)}\\[{m.group(2)}]:", chunk)
    return re.sub(r"(?<!\\)\$", r"\\$", chunk)


def safe_markdown(text: str, *, math: bool, sanitize_table) -> str:  # noqa: ANN001 - results' sanitiser
    """A model's Markdown with its tables sanitised, its math kept (``math``) and nothing else live."""
    parts = []
    for index, chunk in enumerate(_TABLE_CHUNK.split(text)):
        if index % 2:
            parts.append(sanitize_table(chunk))
            continue
        if not math:
            parts.append(_neutral(chunk))
            continue
        pieces = _MATH.split(chunk)
        parts.append(
            "".join(
                piece.replace("<", "\\lt ").replace(">", "\\gt ") if odd % 2 else _neutral(piece)
                for odd, piece in enumerate(pieces)
            )
        )
    return "".join(parts)


def math_spans(text: str) -> list[tuple[str, bool, bool]]:
    """``text`` cut into (piece, is_math, display) in order, for views that draw math."""
    spans: list[tuple[str, bool, bool]] = []
    for index, piece in enumerate(_MATH.split(text)):
        if not piece:
            continue
        if index % 2 == 0:
            spans.append((piece, False, False))
        elif piece.startswith("$$") or piece.startswith("\\["):
            spans.append((piece[2:-2], True, True))
        elif piece.startswith("\\("):
            spans.append((piece[2:-2], True, False))
        else:
            spans.append((piece[1:-1], True, False))
    return spans


def math_html(text: str, escape) -> str:  # noqa: ANN001 - the caller's escaper for the text between
    """``text`` with its math drawn as MathML and the rest escaped by ``escape``; math that does not
    convert stays as its source."""
    out = []
    for piece, is_math, display in math_spans(text):
        rendered = latex_mathml(piece, display=display) if is_math else None
        if rendered is None:
            source = piece if not is_math else ("$$" + piece + "$$" if display else "$" + piece + "$")
            out.append(escape(source))
        else:
            out.append(rendered)
    return "".join(out)
