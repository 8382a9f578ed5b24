"""A document's pages as the flow of a book: headings, paragraphs, lists, tables, formulas and
pictures in reading order, without the page geometry an e-book has no use for.

EPUB (``epub_export``) and FictionBook (``fb2_export``) are both written from this flow, so a
job's results are read into a book one way: the same rules as the Word export (titles and
section headers are headings, a block's Markdown headings, lists and tables are recognised, the
text's **bold**, *italic* and `code` kept). Page starts are kept as markers, for an EPUB's page
list. Text is made safe for XML here (characters XML 1.0 cannot hold are dropped).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .html_table import Table, looks_like_markdown_table, looks_like_table, parse_markdown_table, parse_table
from .results import PAGE_FURNITURE, Block, DocumentResult, PageResult

# (page, block index) -> the PNG of that picture block, or None (``exporters.PictureCrops.picture``)
PictureSource = Callable[[PageResult, int], "bytes | None"]

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$", re.S)
_LIST_ITEM = re.compile(r"^\s*([-*+•]|\d{1,3}[.)])\s+")
_INLINE = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1|(?<![\w*])\*(?=\S)([^*]+?)(?<=\S)\*(?!\w)|`([^`]+)`")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class PageStart:
    number: int  # the page of the source document that starts here


@dataclass(frozen=True)
class Heading:
    level: int  # 1-6
    text: str


@dataclass(frozen=True)
class Paragraph:
    lines: tuple[str, ...]  # kept apart: a line break inside a block is the engine's
    kind: str = ""  # "", "caption", "footnote", "page-header", "page-footer"


@dataclass(frozen=True)
class ListItems:
    items: tuple[str, ...]
    ordered: bool


@dataclass(frozen=True)
class TableGrid:
    table: Table


@dataclass(frozen=True)
class Formula:
    latex: str


@dataclass(frozen=True)
class Picture:
    name: str  # a file name unique in the book, e.g. "d01-p0003-002.png"
    png: bytes
    page: int


Part = PageStart | Heading | Paragraph | ListItems | TableGrid | Formula | Picture


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold (model output may contain them)."""
    return _NOT_XML.sub("", text)


def inline_runs(text: str) -> list[tuple[str, str]]:
    """``text``'s Markdown emphasis as (style, text) runs; style is "", "strong", "em" or "code"."""
    runs: list[tuple[str, str]] = []
    at = 0
    for match in _INLINE.finditer(text):
        if match.start() > at:
            runs.append(("", text[at : match.start()]))
        if match.group(2) is not None:
            runs.append(("strong", match.group(2)))
        elif match.group(3) is not None:
            runs.append(("em", match.group(3)))
        else:
            runs.append(("code", match.group(4)))
        at = match.end()
    if at < len(text):
        runs.append(("", text[at:]))
    return runs


def book_parts(
    doc: DocumentResult,
    *,
    picture: PictureSource | None = None,
    clean: bool = False,
    document_number: int = 1,
    heading_shift: int = 0,
) -> list[Part]:
    """The flow of ``doc``. ``heading_shift`` moves every heading down (a job's book puts each
    document's name above its own headings); ``document_number`` keeps picture names apart."""
    parts: list[Part] = []
    for page in doc.pages:
        parts.append(PageStart(page.page_number))
        for index, block in enumerate(page.blocks):
            if clean and block.category in PAGE_FURNITURE:
                continue
            if block.category == "Picture":
                png = picture(page, index) if picture is not None and block.bbox is not None else None
                if png:
                    name = f"d{document_number:02d}-p{page.page_number:04d}-{index:03d}.png"
                    parts.append(Picture(name, png, page.page_number))
                continue
            _add_block(parts, block, heading_shift)
    return _merge_lists(parts)


def _add_block(parts: list[Part], block: Block, shift: int) -> None:
    text = xml_text(block.text).strip()
    if not text:
        return
    if block.category == "Formula":
        parts.append(Formula(_latex(text)))
    elif block.category == "Table" and (looks_like_table(text) or looks_like_markdown_table(text)):
        _add_table(parts, text)
    elif block.category in ("Title", "Section-header"):
        heading = _HEADING.match(text)
        level = len(heading.group(1)) if heading else (1 if block.category == "Title" else 2)
        parts.append(Heading(_level(level + shift), " ".join((heading.group(2) if heading else text).split())))
    elif block.category in ("Caption", "Footnote", "Page-header", "Page-footer"):
        parts.append(Paragraph(_lines(text), block.category.lower()))
    elif block.category == "List-item":
        match = _LIST_ITEM.match(text)
        ordered = bool(match and match.group(1)[0].isdigit())
        parts.append(ListItems((" ".join(_LIST_ITEM.sub("", text, count=1).split()),), ordered))
    else:
        for chunk in re.split(r"(<table\b.*?</table>)|\n\s*\n", text, flags=re.I | re.S):
            if chunk and chunk.strip():
                _add_chunk(parts, chunk.strip(), shift)


def _add_chunk(parts: list[Part], chunk: str, shift: int) -> None:
    """One paragraph of a block's Markdown: a table, a formula, a heading, a list, or a paragraph."""
    if looks_like_table(chunk) or looks_like_markdown_table(chunk):
        _add_table(parts, chunk)
        return
    if chunk.startswith("$$") and chunk.endswith("$$") and len(chunk) >= 4:
        parts.append(Formula(_latex(chunk)))
        return
    heading = _HEADING.match(chunk)
    if heading and "\n" not in chunk:
        parts.append(Heading(_level(len(heading.group(1)) + shift), " ".join(heading.group(2).split())))
        return
    lines = _lines(chunk)
    if lines and all(_LIST_ITEM.match(line) for line in lines):
        ordered = _LIST_ITEM.match(lines[0]).group(1)[0].isdigit()  # type: ignore[union-attr]
        parts.append(ListItems(tuple(_LIST_ITEM.sub("", line, count=1).strip() for line in lines), ordered))
        return
    if lines:
        parts.append(Paragraph(lines))


def _add_table(parts: list[Part], text: str) -> None:
    table = parse_table(text) if looks_like_table(text) else parse_markdown_table(text)
    if table.rows and table.cells:
        parts.append(TableGrid(table))


def _merge_lists(parts: list[Part]) -> list[Part]:
    """Consecutive list items of one kind are one list (engines give one block per item)."""
    merged: list[Part] = []
    for part in parts:
        last = merged[-1] if merged else None
        if isinstance(part, ListItems) and isinstance(last, ListItems) and last.ordered == part.ordered:
            merged[-1] = ListItems(last.items + part.items, part.ordered)
        else:
            merged.append(part)
    return merged


def job_parts(
    docs: Sequence[DocumentResult],
    pictures: Sequence[PictureSource | None],
    *,
    clean: bool = False,
    names: Sequence[str] | None = None,
) -> list[Part]:
    """One book of several documents: each one's name is a top heading above its own headings."""
    if len(docs) == 1:
        return book_parts(docs[0], picture=pictures[0], clean=clean)
    parts: list[Part] = []
    for number, (doc, picture) in enumerate(zip(docs, pictures, strict=True), start=1):
        title = names[number - 1] if names is not None else doc.name
        parts.append(Heading(1, " ".join(xml_text(title).split()) or f"{number}"))
        parts.extend(book_parts(doc, picture=picture, clean=clean, document_number=number, heading_shift=1))
    return parts


def book_language(docs: Sequence[DocumentResult]) -> str:
    """The book's language (BCP 47) from its letters: Russian where Cyrillic letters outnumber
    Latin ones, else English; "und" (undetermined) for a book without letters. The studio reads
    English and Russian (Tesseract's packs, the UI), so those are the languages it can tell apart
    with confidence; a reader uses it for hyphenation and the voice of text-to-speech."""
    text = " ".join(
        _TAG.sub(" ", block.text)  # a table's markup is not the language of its cells
        for doc in docs
        for page in doc.pages
        for block in page.blocks
        if block.category != "Formula"  # nor is LaTeX
    )
    cyrillic, latin = len(_CYRILLIC.findall(text)), len(_LATIN.findall(text))
    if not cyrillic and not latin:
        return "und"
    return "ru" if cyrillic > latin else "en"


def _lines(text: str) -> tuple[str, ...]:
    return tuple(" ".join(line.split()) for line in text.split("\n") if line.strip())


def _latex(text: str) -> str:
    text = text.strip()
    if text.startswith("$$") and text.endswith("$$") and len(text) >= 4:
        text = text[2:-2]
    return text.strip()


def _level(level: int) -> int:
    return max(1, min(6, level))


def book_title(name: str) -> str:
    """A document's name as a book title: the file name without folders and extension."""
    base = re.split(r"[/\\]", name or "")[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    return " ".join(xml_text(stem).split()) or "document"
