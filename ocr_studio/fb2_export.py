"""FictionBook 2 (.fb2): the e-book format many Russian readers and libraries use.

Written from the reading flow of ``book.py``, as FictionBook 2.0 requires: headings become nested
``<section>``s with ``<title>``s (which readers show as the table of contents); a section holds
either text or sub-sections, so text before the first sub-section goes into an untitled section
of its own; pictures are ``<image>`` links to base64 ``<binary>`` elements at the end; tables
keep their cells and spans; the book's language is in its description. Built as XML elements,
so model output cannot break the markup. FB2 has no printed pages: page starts are dropped.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.etree import ElementTree as ET

from . import __version__
from .book import Formula, Heading, ListItems, PageStart, Paragraph, Part, Picture, TableGrid, inline_runs, xml_text

FB2 = "http://www.gribuser.ru/xml/fictionbook/2.0"
XLINK = "http://www.w3.org/1999/xlink"
GENRE = "nonfiction"  # from FictionBook's fixed genre list; a converted document is rarely fiction
_STYLES = {"strong": "strong", "em": "emphasis", "code": "code"}


@dataclass
class _Section:
    level: int
    title: str | None
    content: list[Part] = field(default_factory=list)
    children: list[_Section] = field(default_factory=list)


def fb2_book(parts: Sequence[Part], *, title: str, language: str, identifier: str | None = None) -> bytes:
    """The .fb2 file (UTF-8 XML) of ``parts`` (``book.book_parts`` / ``book.job_parts``)."""
    title = " ".join(xml_text(title).split()) or "document"
    ET.register_namespace("", FB2)
    ET.register_namespace("l", XLINK)
    root = ET.Element(_e("FictionBook"))
    _description(root, title, language or "und", identifier or _identifier(title, parts))
    body = ET.SubElement(root, _e("body"))
    _paragraph(ET.SubElement(body, _e("title")), title)
    tree = _tree(parts)
    pictures: list[Picture] = []
    sections = ([_Section(1, None, tree.content)] if tree.content else []) + tree.children
    for section in sections or [_Section(1, None)]:
        _section(body, section, pictures)
    for picture in pictures:
        binary = ET.SubElement(root, _e("binary"), {"id": _image_id(picture), "content-type": "image/png"})
        binary.text = base64.b64encode(picture.png).decode("ascii")
    markup = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + markup + "\n").encode("utf-8")


def _e(tag: str) -> str:
    return f"{{{FB2}}}{tag}"


def _identifier(title: str, parts: Sequence[Part]) -> str:
    digest = hashlib.sha256(title.encode("utf-8"))
    for part in parts:
        digest.update(repr(part if not isinstance(part, Picture) else (part.name, len(part.png))).encode("utf-8"))
    return str(uuid.UUID(bytes=digest.digest()[:16], version=5))


def _description(root: ET.Element, title: str, language: str, identifier: str) -> None:
    today = _dt.date.today().isoformat()
    description = ET.SubElement(root, _e("description"))
    info = ET.SubElement(description, _e("title-info"))
    ET.SubElement(info, _e("genre")).text = GENRE
    author = ET.SubElement(info, _e("author"))  # unknown: FictionBook wants the element, names may be empty
    ET.SubElement(author, _e("first-name"))
    ET.SubElement(author, _e("last-name"))
    ET.SubElement(info, _e("book-title")).text = title
    ET.SubElement(info, _e("lang")).text = language
    document = ET.SubElement(description, _e("document-info"))
    ET.SubElement(ET.SubElement(document, _e("author")), _e("nickname")).text = "OCR Studio"
    ET.SubElement(document, _e("program-used")).text = f"OCR Studio {__version__}"
    ET.SubElement(document, _e("date"), {"value": today}).text = today
    ET.SubElement(document, _e("id")).text = identifier
    ET.SubElement(document, _e("version")).text = "1.0"


def _tree(parts: Sequence[Part]) -> _Section:
    """Headings as nested sections: each heading closes the sections of its level and deeper."""
    root = _Section(0, None)
    stack = [root]
    for part in parts:
        if isinstance(part, Heading):
            while len(stack) > 1 and stack[-1].level >= part.level:
                stack.pop()
            section = _Section(part.level, part.text)
            stack[-1].children.append(section)
            stack.append(section)
        elif not isinstance(part, PageStart):
            stack[-1].content.append(part)
    return root


def _section(parent: ET.Element, section: _Section, pictures: list[Picture]) -> None:
    element = ET.SubElement(parent, _e("section"))
    if section.title:
        _paragraph(ET.SubElement(element, _e("title")), section.title)
    if section.children:
        if section.content:  # text before the first sub-section: a section may not hold both
            _section(element, _Section(section.level + 1, None, section.content), pictures)
        for child in section.children:
            _section(element, child, pictures)
        return
    _content(element, section.content, pictures)


def _content(section: ET.Element, parts: list[Part], pictures: list[Picture]) -> None:
    """A section's text. FictionBook wants a section to hold something besides an image, and
    allows an image first only in its own slot: an empty line fills in where needed."""
    written = 0
    for part in parts:
        if isinstance(part, Picture):
            ET.SubElement(section, _e("image"), {f"{{{XLINK}}}href": f"#{_image_id(part)}"})
            pictures.append(part)
            if written == 0:
                ET.SubElement(section, _e("empty-line"))
            written += 1
            continue
        if isinstance(part, Paragraph):
            for line in part.lines:
                paragraph = ET.SubElement(section, _e("p"))
                _inline(ET.SubElement(paragraph, _e("emphasis")) if part.kind == "caption" else paragraph, line)
        elif isinstance(part, ListItems):
            for number, item in enumerate(part.items, start=1):
                _inline(ET.SubElement(section, _e("p")), (f"{number}. " if part.ordered else "• ") + item)
        elif isinstance(part, TableGrid):
            if not _table(section, part):
                continue
        elif isinstance(part, Formula):
            ET.SubElement(ET.SubElement(section, _e("p")), _e("code")).text = part.latex
        else:
            continue
        written += 1
    if written == 0:
        ET.SubElement(section, _e("empty-line"))


def _table(section: ET.Element, part: TableGrid) -> bool:
    rows: dict[int, list] = {}
    for cell in part.table.cells:
        rows.setdefault(cell.row, []).append(cell)
    if not rows:
        return False
    table = ET.SubElement(section, _e("table"))
    for number in sorted(rows):
        row = ET.SubElement(table, _e("tr"))
        for cell in sorted(rows[number], key=lambda c: c.column):
            attrs = {}
            if cell.colspan > 1:
                attrs["colspan"] = str(cell.colspan)
            if cell.rowspan > 1:
                attrs["rowspan"] = str(cell.rowspan)
            _inline(ET.SubElement(row, _e("th" if cell.header else "td"), attrs), " ".join(cell.text.split()))
    return True


def _paragraph(parent: ET.Element, text: str) -> None:
    _inline(ET.SubElement(parent, _e("p")), text)


def _inline(parent: ET.Element, text: str) -> None:
    last: ET.Element | None = parent[-1] if len(parent) else None
    for style, run in inline_runs(xml_text(text)):
        if not style:
            if last is None:
                parent.text = (parent.text or "") + run
            else:
                last.tail = (last.tail or "") + run
            continue
        last = ET.SubElement(parent, _e(_STYLES[style]))
        last.text = run


def _image_id(picture: Picture) -> str:
    return "img-" + picture.name.replace(".", "-")
