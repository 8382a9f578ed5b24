"""What an engine found on a page, and the text views built from it.

Coordinates are pixels of the page image the job rendered (``PageResult.width``
× ``PageResult.height``); engines map their model's coordinate space back to it.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from typing import Any

from .i18n import loaded, render, stored, t
from .mathml import latex_mathml
from .text_markup import (
    LITERAL_ENGINES,
    code_fence,
    escape_inline,
    escape_markdown,
    escape_markdown_line,
    math_html,
    printable,
    safe_markdown,
)

# dots.ocr's layout categories; other engines use a subset ("Text" by default). The text-layer engine
# adds "Code" (a monospace listing, kept line by line), coloured by EXTRA_CATEGORY_COLORS.
CATEGORIES = (
    "Caption",
    "Footnote",
    "Formula",
    "List-item",
    "Page-footer",
    "Page-header",
    "Picture",
    "Section-header",
    "Table",
    "Text",
    "Title",
)
PAGE_FURNITURE = ("Page-header", "Page-footer")
# One distinct colour per category: layout boxes in the page view and its legend.
CATEGORY_COLORS: dict[str, str] = {
    "Caption": "#8e44ad",
    "Footnote": "#7f8c8d",
    "Formula": "#c0392b",
    "List-item": "#16a085",
    "Page-footer": "#95a5a6",
    "Page-header": "#b0a18f",
    "Picture": "#e67e22",
    "Section-header": "#2980b9",
    "Table": "#27ae60",
    "Text": "#34495e",
    "Title": "#d35400",
}
# Categories of our own engines beyond dots.ocr's, with their colours.
EXTRA_CATEGORY_COLORS: dict[str, str] = {"Code": "#6d4c41"}

BBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class Block:
    """One layout element: where it is, what kind it is, and its text.

    ``text`` is Markdown for ordinary elements (literal text on pages of a literal engine, see
    ``PageResult.literal``), LaTeX for formulas, HTML for tables and the printed lines of a code
    listing for Code; pictures have no text.
    """

    bbox: BBox | None
    category: str = "Text"
    text: str = ""
    # Where each recognised word is, when the engine knows (Tesseract does; vision models
    # give blocks only): lets a searchable PDF place its invisible text word by word.
    words: tuple[tuple[BBox, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "bbox": list(self.bbox) if self.bbox is not None else None,
            "category": self.category,
            "text": self.text,
        }
        if self.words:
            data["words"] = [[*box, word] for box, word in self.words]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Block:
        bbox = data.get("bbox")
        return cls(
            bbox=tuple(float(v) for v in bbox) if bbox else None,  # type: ignore[arg-type]
            category=str(data.get("category") or "Text"),
            text=str(data.get("text") or ""),
            words=tuple(
                ((float(w[0]), float(w[1]), float(w[2]), float(w[3])), str(w[4])) for w in data.get("words") or ()
            ),
        )


@dataclass
class PageResult:
    """One page's result. ``truncated`` means the engine stopped early (token
    limit, runaway repetition) and what is here is what could be kept."""

    page_number: int  # 1-based, in the source document
    width: int
    height: int
    blocks: list[Block] = field(default_factory=list)
    engine: str = ""
    task: str = ""
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)
    raw_text: str = ""  # the engine's raw output, kept so nothing is ever lost
    seconds: float = 0.0
    rotation: int = 0  # clockwise degrees the page image was turned to read it upright (boxes are upright)
    unread: bool = False  # the page could not be read (no OCR installed, OCR failed): never a cached result

    def to_dict(self, *, messages: bool = False) -> dict[str, Any]:
        """The page as JSON. ``messages=True`` (job files) keeps each warning as a message id with its
        arguments, to be read in either language; otherwise warnings are English text (exports)."""
        data = asdict(self)
        data["blocks"] = [b.to_dict() for b in self.blocks]
        data["warnings"] = [stored(w) if messages else str(w) for w in self.warnings]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PageResult:
        return cls(
            page_number=int(data["page_number"]),
            width=int(data["width"]),
            height=int(data["height"]),
            blocks=[Block.from_dict(b) for b in data.get("blocks", [])],
            engine=str(data.get("engine", "")),
            task=str(data.get("task", "")),
            truncated=bool(data.get("truncated", False)),
            warnings=[loaded(w) for w in data.get("warnings", [])],
            raw_text=str(data.get("raw_text", "")),
            seconds=float(data.get("seconds", 0.0)),
            rotation=int(data.get("rotation", 0)) % 360,
            unread=bool(data.get("unread", False)),
        )

    @property
    def literal(self) -> bool:
        """Whether the page's text is literal (a text layer, Tesseract): no Markdown, no math."""
        return self.engine in LITERAL_ENGINES

    def markdown(self, *, furniture: bool = True, image_ref: ImageRef | None = None) -> str:
        return page_markdown(self, furniture=furniture, image_ref=image_ref)

    def text(self, *, furniture: bool = True) -> str:
        return "\n\n".join(
            printable(b.text).strip("\n")
            for b in self.blocks
            if b.text.strip() and (furniture or b.category not in PAGE_FURNITURE)
        )


@dataclass
class DocumentResult:
    """A document's pages in order, plus what went wrong with it (if anything)."""

    name: str
    pages: list[PageResult] = field(default_factory=list)
    page_count: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "page_count": self.page_count,
            "error": None if self.error is None else str(self.error),
            "pages": [p.to_dict() for p in self.pages],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocumentResult:
        return cls(
            name=str(data["name"]),
            pages=[PageResult.from_dict(p) for p in data.get("pages", [])],
            page_count=int(data.get("page_count", 0)),
            error=loaded(data.get("error")),
        )

    def markdown(self, *, furniture: bool = True, image_ref: ImageRef | None = None) -> str:
        parts = [p.markdown(furniture=furniture, image_ref=image_ref) for p in self.pages]
        return "\n\n---\n\n".join(part for part in parts if part) + "\n"

    def text(self, *, furniture: bool = True) -> str:
        return "\n\n\f".join(p.text(furniture=furniture) for p in self.pages) + "\n"

    def json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"

    def html(self, *, furniture: bool = True, image_ref: ImageRef | None = None) -> str:
        return document_html(self, furniture=furniture, image_ref=image_ref)


class ImageRef:
    """Names the file a picture block is exported to, so Markdown and HTML can link it.

    ``folder`` is relative to the exported Markdown/HTML file. A subclass may return
    None for a picture it has no file for; the views then leave the picture out.
    """

    def __init__(self, folder: str = "images"):
        self.folder = folder.strip("/")

    def file_name(self, page: PageResult, index: int) -> str:
        return f"page-{page.page_number:04d}-{index:03d}.png"

    def __call__(self, page: PageResult, index: int) -> str | None:
        return f"{self.folder}/{self.file_name(page, index)}"


_LITERAL_BULLET = re.compile(r"^[•·▪◦‣●○■□➢►✓*–—-]\s+")
_LITERAL_NUMBER = re.compile(r"^(\d{1,9})[.)]\s+")


def _formula_source(text: str) -> str:
    if text.startswith("$$") and text.endswith("$$") and len(text) >= 4:
        return text[2:-2].strip()
    return text.strip("$").strip()


def block_markdown(block: Block, *, literal: bool = False) -> str:
    """One block as Markdown: formulas stay LaTeX, tables stay (sanitised) HTML, code is fenced;
    ``literal`` text is escaped so it reads back as printed; a model's Markdown keeps its math and
    markup, never live HTML or links elsewhere."""
    text = printable(block.text).strip()
    if not text:
        return ""
    if block.category == "Formula":
        source = _formula_source(text).replace("<", "\\lt ").replace(">", "\\gt ")
        return f"$$\n{source}\n$$" if source else ""
    if block.category == "Code":
        return code_fence(printable(block.text).strip("\n"))
    if block.category == "Table" and "<table" in text.lower():
        table = sanitize_table_html(text)
        return table.replace("$", "&#36;") if literal else table  # two cells' "$" are no formula
    if literal:
        flat = " ".join(text.split())
        if block.category in ("Title", "Section-header"):
            return ("# " if block.category == "Title" else "## ") + escape_inline(flat)
        if block.category == "List-item":
            number = _LITERAL_NUMBER.match(flat)
            if number:
                return f"{number.group(1)}. " + escape_markdown_line(flat[number.end() :])
            bullet = _LITERAL_BULLET.match(flat)
            return "- " + escape_markdown_line(flat[bullet.end() :] if bullet else flat)
        return escape_markdown(text)
    text = safe_markdown(text, math=True, sanitize_table=sanitize_table_html)
    if block.category == "Title":
        return text if text.startswith("#") else f"# {text}"
    if block.category == "Section-header":
        return text if text.startswith("#") else f"## {text}"
    return text


def page_markdown(page: PageResult, *, furniture: bool = True, image_ref: ImageRef | None = None) -> str:
    parts: list[str] = []
    for index, block in enumerate(page.blocks):
        if not furniture and block.category in PAGE_FURNITURE:
            continue
        if block.category == "Picture":
            ref = image_ref(page, index) if image_ref is not None and block.bbox is not None else None
            if ref:
                parts.append(f"![Picture]({ref})")
            continue
        md = block_markdown(block, literal=page.literal)
        if md:
            parts.append(md)
    return "\n\n".join(parts)


def escape(text: str) -> str:
    return html.escape(text, quote=True)


# --- HTML view -------------------------------------------------------------------------
# Model output is untrusted: every text is escaped, and a table's HTML is rebuilt from an
# allow-list of table tags and attributes (scripts, styles, event handlers and links dropped).

_TABLE_TAGS = frozenset(
    "table thead tbody tfoot tr th td caption colgroup col br b i u em strong sub sup span p div".split()
)
_TABLE_ATTRS = frozenset({"colspan", "rowspan", "align", "valign", "scope", "border"})
_VOID_TAGS = frozenset({"br", "col"})
# Elements whose content is dropped along with the tag.
_DROPPED_WITH_CONTENT = frozenset(
    "script style iframe object embed template noscript textarea title head svg math frame frameset".split()
)


class _TableSanitizer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []
        self.skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skipping or tag in _DROPPED_WITH_CONTENT:
            if tag not in _VOID_TAGS:
                self.skipping.append(tag)
            return
        if tag not in _TABLE_TAGS:
            return
        kept = "".join(
            f' {name}="{escape(value)}"'
            for name, value in attrs
            if name in _TABLE_ATTRS and value is not None and re.fullmatch(r"[\w .%-]{1,32}", value)
        )
        self.out.append(f"<{tag}{kept}>")
        if tag not in _VOID_TAGS:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID_TAGS:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag in self.skipping:
                while self.skipping.pop() != tag:
                    pass
            return
        if tag in self.open:  # close what is still open inside it, so the output stays well formed
            while True:
                name = self.open.pop()
                self.out.append(f"</{name}>")
                if name == tag:
                    break

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(escape(data))

    def result(self) -> str:
        self.close()
        return "".join(self.out) + "".join(f"</{name}>" for name in reversed(self.open))


def sanitize_table_html(markup: str) -> str:
    """A model's table HTML, safe to embed: only table tags and span/align attributes survive."""
    sanitizer = _TableSanitizer()
    sanitizer.feed(markup)
    return sanitizer.result()


_HEADING = re.compile(r"^(#{1,6})\s+(.*)$", re.S)
_LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")


def _inline_html(text: str, *, math: bool = False) -> str:
    """Lines of text as escaped HTML with line breaks; ``math`` draws its ``$…$`` as MathML."""
    lines = text.strip().split("\n")
    return "<br>\n".join(math_html(line, escape) if math else escape(line) for line in lines)


def _code_html(text: str) -> str:
    """A code listing's lines, kept as printed; newlines as character references, so a blank line
    inside cannot end the HTML block where the text pane embeds it in Markdown."""
    return '<pre class="code"><code>' + escape(text.strip("\n")).replace("\n", "&#10;") + "</code></pre>"


def _formula_html(block: Block) -> str:
    source = _formula_source(block.text.strip())
    drawn = latex_mathml(source, display=True) if source else None
    if drawn is None:
        return f'<div class="formula">{escape(block_markdown(block))}</div>'
    return f'<div class="formula">{drawn}<code class="latex">{escape(block_markdown(block))}</code></div>'


def _markdown_chunk_html(chunk: str) -> str:
    """One paragraph of a block's Markdown: headings, lists, tables, formulas, else a paragraph.
    A deliberately small subset: enough for what OCR engines write, never raw HTML."""
    chunk = chunk.strip()
    if not chunk:
        return ""
    lowered = chunk.lower()
    if lowered.startswith("<table") and lowered.endswith("</table>"):  # a model's table, and nothing else
        return sanitize_table_html(chunk)
    if chunk.startswith("$$") and chunk.endswith("$$") and len(chunk) >= 4:
        return _formula_html(Block(None, "Formula", chunk))
    heading = _HEADING.match(chunk)
    if heading:
        level = len(heading.group(1))
        return f"<h{level}>{_inline_html(heading.group(2), math=True)}</h{level}>"
    lines = chunk.split("\n")
    if all(_LIST_ITEM.match(line) for line in lines):
        items = "".join(
            f"<li>{_inline_html(_LIST_ITEM.sub('', line, count=1).strip(), math=True)}</li>" for line in lines
        )
        tag = "ol" if lines[0].lstrip()[:1].isdigit() else "ul"
        return f"<{tag}>{items}</{tag}>"
    return f"<p>{_inline_html(chunk, math=True)}</p>"


def block_html(block: Block, image_src: str | None = None, *, literal: bool = False) -> str:
    """One block as HTML. Tables keep their (sanitised) HTML, formulas are drawn as MathML (their
    LaTeX kept beside), code keeps its lines; ``literal`` text is shown as printed (no Markdown,
    no math), a model's Markdown gets its headings, lists and inline math."""
    text = printable(block.text).strip()
    if block.category == "Picture":
        return f'<figure><img src="{escape(image_src)}" alt="Picture"></figure>' if image_src else ""
    if not text:
        return ""
    if block.category == "Table":
        if "<table" in text.lower():
            return f'<div class="table">{sanitize_table_html(text)}</div>'
        return f'<pre class="table">{escape(text)}</pre>'
    if block.category == "Formula":
        return _formula_html(block)
    if block.category == "Code":
        return _code_html(printable(block.text))
    if block.category in ("Title", "Section-header"):
        level = 1 if block.category == "Title" else 2
        heading = None if literal else _HEADING.match(text)
        if heading:
            level, text = len(heading.group(1)), heading.group(2)
        return f"<h{level}>{_inline_html(text, math=not literal)}</h{level}>"
    css = {
        "Caption": "caption",
        "Footnote": "footnote",
        "Page-header": "page-header",
        "Page-footer": "page-footer",
        "List-item": "list-item",
    }.get(block.category)
    if css:
        return f'<p class="{css}">{_inline_html(text, math=not literal)}</p>'
    if literal:
        return "\n".join(f"<p>{_inline_html(chunk)}</p>" for chunk in re.split(r"\n\s*\n", text) if chunk.strip())
    return "\n".join(part for part in (_markdown_chunk_html(c) for c in re.split(r"\n\s*\n", text)) if part)


_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[A-Za-z]")


def document_language(doc: DocumentResult) -> str:
    """The document's language (BCP 47) from its letters: "ru" where Cyrillic letters outnumber
    Latin ones, else "en" (the two the studio reads); "und" for a document without letters. An
    export says it (HTML ``lang``, Word's proofing language) and writes its own words in it."""
    text = " ".join(block.text for page in doc.pages for block in page.blocks)
    cyrillic, latin = len(_CYRILLIC.findall(text)), len(_LATIN.findall(text))
    if not cyrillic and not latin:
        return "und"
    return "ru" if cyrillic > latin else "en"


def page_html(page: PageResult, *, furniture: bool = True, image_ref: ImageRef | None = None, lang: str = "en") -> str:
    """One page of the HTML export; its own words (page number, warnings) in ``lang``."""
    words = lang if lang in ("en", "ru") else "en"
    parts = [
        f'<section class="page" id="page-{page.page_number}">',
        f'<div class="page-number">{escape(t("exports.page.number", words, number=page.page_number))}</div>',
    ]
    if page.truncated:
        parts.append(f'<p class="warning">{escape(t("exports.page.truncated", words))}</p>')
    parts.extend(f'<p class="warning">{escape(render(w, words))}</p>' for w in page.warnings)
    for index, block in enumerate(page.blocks):
        if not furniture and block.category in PAGE_FURNITURE:
            continue
        src = image_ref(page, index) if image_ref is not None and block.category == "Picture" and block.bbox else None
        rendered = block_html(block, src, literal=page.literal)
        if rendered:
            parts.append(rendered)
    parts.append("</section>")
    return "\n".join(parts)


_HTML_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; line-height: 1.55; color: #1d1d1f;
       max-width: 52rem; margin: 2rem auto; padding: 0 1rem; }
header.document { border-bottom: 2px solid #ddd; margin-bottom: 1.5rem; }
header.document .name { color: #666; font-size: .9rem; }
section.page { border-bottom: 1px dashed #ccc; padding-bottom: 1.5rem; margin-bottom: 1.5rem; }
.page-number { color: #999; font-size: .8rem; text-transform: uppercase; letter-spacing: .05em; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #bbb; padding: .25rem .5rem; vertical-align: top; }
.formula { font-family: ui-monospace, monospace; white-space: pre-wrap; background: #f6f6f6;
           padding: .5rem; margin: 1rem 0; overflow-x: auto; }
.formula code.latex { display: block; color: #888; font-size: .8em; white-space: pre-wrap; }
pre.code { background: #f6f6f6; padding: .5rem; overflow-x: auto; }
pre.table { background: #f6f6f6; padding: .5rem; overflow-x: auto; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
.caption, .footnote, .page-header, .page-footer { color: #555; font-size: .9rem; }
.warning, .error { color: #8a4b00; background: #fff4e0; padding: .25rem .5rem; }
"""


def document_html(doc: DocumentResult, *, furniture: bool = True, image_ref: ImageRef | None = None) -> str:
    """The document as one standalone, readable HTML file (no scripts, no external resources
    other than exported picture crops)."""
    name = escape(doc.name)
    body = [f'<header class="document"><div class="name">{name}</div></header>']
    if doc.error:
        body.append(f'<p class="error">{escape(doc.error)}</p>')
    lang = document_language(doc)
    body.extend(page_html(p, furniture=furniture, image_ref=image_ref, lang=lang) for p in doc.pages)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src 'self' file: data:; "
        "style-src 'unsafe-inline'\">\n"
        f"<title>{name}</title>\n<style>{_HTML_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
