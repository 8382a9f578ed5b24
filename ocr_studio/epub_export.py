"""EPUB 3: a document (or a whole job) as an e-book, with its headings as the table of contents.

Built from the reading flow of ``book.py``: one XHTML file per top-level heading (readers load a
chapter at a time), headings nested in the navigation document (and in an NCX for EPUB 2
readers), picture crops as PNG files, the printed page numbers as a page list (so a reader can
cite "p. 12"), the book's language on the package and every page. XHTML is built as XML
elements (``xml.etree``), never by pasting text together, so model output cannot break out of
the markup; tables are rebuilt from their parsed grid. The result validates with ``epubcheck``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.etree import ElementTree as ET

from . import __version__
from .book import (
    Formula,
    Heading,
    ListItems,
    PageStart,
    Paragraph,
    Part,
    Picture,
    TableGrid,
    inline_runs,
    xml_text,
)
from .i18n import LANGUAGES, t

XHTML = "http://www.w3.org/1999/xhtml"
EPUB_NS = "http://www.idpf.org/2007/ops"
OPF = "http://www.idpf.org/2007/opf"
DC = "http://purl.org/dc/elements/1.1/"
NCX = "http://www.daisy.org/z3986/2005/ncx/"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
PAGES_PER_FILE = 20

_STYLE = """body { font-family: serif; line-height: 1.5; margin: 0 1em; }
h1, h2, h3, h4, h5, h6 { font-family: sans-serif; line-height: 1.25; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #999; padding: .2em .4em; vertical-align: top; }
figure { margin: 1em 0; text-align: center; }
img { max-width: 100%; }
pre.formula { white-space: pre-wrap; font-family: monospace; }
p.caption, p.footnote, p.page-header, p.page-footer { font-size: .9em; color: #555; }
"""


@dataclass
class _Chapter:
    file: str
    parts: list[Part] = field(default_factory=list)


def epub_book(parts: Sequence[Part], *, title: str, language: str, identifier: str | None = None) -> bytes:
    """The EPUB file of ``parts`` (``book.book_parts`` / ``book.job_parts``)."""
    title = " ".join(xml_text(title).split()) or "document"
    language = language or "und"
    words = language if language in LANGUAGES else "en"  # the book's own words (contents, alt texts)
    identifier = identifier or _identifier(title, parts)
    chapters = _chapters(list(parts))
    headings: list[tuple[int, str, str]] = []  # (level, text, href)
    pages: list[tuple[int, str]] = []  # (page number, href)
    pictures: list[Picture] = []
    documents: dict[str, bytes] = {}
    for chapter in chapters:
        documents[chapter.file] = _chapter_xhtml(chapter, title, language, words, headings, pages, pictures)
    if not headings:  # a book without headings: its title is the one entry of the contents
        headings.append((1, title, chapters[0].file))

    files: dict[str, bytes] = {
        "OEBPS/nav.xhtml": _nav_xhtml(title, language, words, headings, pages),
        "OEBPS/toc.ncx": _ncx(title, identifier, headings),
        "OEBPS/style.css": _STYLE.encode("utf-8"),
        **{f"OEBPS/{name}": data for name, data in documents.items()},
        **{f"OEBPS/images/{p.name}": p.png for p in pictures},
    }
    files["OEBPS/content.opf"] = _package(title, language, identifier, chapters, pictures)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), b"application/epub+zip", compress_type=zipfile.ZIP_STORED)
        archive.writestr("META-INF/container.xml", _CONTAINER, compress_type=zipfile.ZIP_DEFLATED)
        for name, data in files.items():
            kind = zipfile.ZIP_STORED if name.endswith(".png") else zipfile.ZIP_DEFLATED
            archive.writestr(name, data, compress_type=kind)
    return buffer.getvalue()


_CONTAINER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">\n'
    '  <rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles>\n'
    "</container>\n"
)


def _identifier(title: str, parts: Sequence[Part]) -> str:
    """A stable id from the content: the same results give the same book id."""
    digest = hashlib.sha256(title.encode("utf-8"))
    for part in parts:
        digest.update(repr(part if not isinstance(part, Picture) else (part.name, len(part.png))).encode("utf-8"))
    return f"urn:uuid:{uuid.UUID(bytes=digest.digest()[:16], version=5)}"


def _chapters(parts: list[Part]) -> list[_Chapter]:
    """A new chapter file at every heading of the top level in use, and at a page start after
    ``PAGES_PER_FILE`` pages without one (a reader opens one file at a time: a 500-page scan
    without headings must not be one file); page markers just before a heading move with it."""
    levels = [p.level for p in parts if isinstance(p, Heading)]
    top = min(levels, default=1)
    chapters = [_Chapter("chapter-001.xhtml")]
    for part in parts:
        current = chapters[-1]
        pages = sum(1 for p in current.parts if isinstance(p, PageStart))
        if isinstance(part, PageStart) and pages >= PAGES_PER_FILE and _has_content(current.parts):
            chapters.append(_Chapter(f"chapter-{len(chapters) + 1:03d}.xhtml"))
            current = chapters[-1]
        elif isinstance(part, Heading) and part.level <= top and _has_content(current.parts):
            moved: list[Part] = []
            while current.parts and isinstance(current.parts[-1], PageStart):
                moved.insert(0, current.parts.pop())
            current = _Chapter(f"chapter-{len(chapters) + 1:03d}.xhtml", moved)
            chapters.append(current)
        current.parts.append(part)
    return chapters


def _has_content(parts: list[Part]) -> bool:
    return any(not isinstance(p, PageStart) for p in parts)


def _xhtml(title: str, language: str) -> tuple[ET.Element, ET.Element]:
    root = ET.Element(f"{{{XHTML}}}html", {"lang": language, XML_LANG: language})
    head = ET.SubElement(root, f"{{{XHTML}}}head")
    ET.SubElement(head, f"{{{XHTML}}}title").text = title
    ET.SubElement(head, f"{{{XHTML}}}link", {"rel": "stylesheet", "type": "text/css", "href": "style.css"})
    body = ET.SubElement(root, f"{{{XHTML}}}body")
    return root, body


def _serialize(root: ET.Element, doctype: bool = True) -> bytes:
    ET.register_namespace("", XHTML)
    ET.register_namespace("epub", EPUB_NS)
    markup = ET.tostring(root, encoding="unicode")
    head = '<?xml version="1.0" encoding="utf-8"?>\n' + ("<!DOCTYPE html>\n" if doctype else "")
    return (head + markup + "\n").encode("utf-8")


def _h(parent: ET.Element, tag: str, attrs: dict[str, str] | None = None, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, f"{{{XHTML}}}{tag}", attrs or {})
    if text is not None:
        element.text = text
    return element


def _inline(parent: ET.Element, text: str) -> None:
    """``text`` into ``parent`` (after what it holds) with its bold, italic and code as elements."""
    last: ET.Element | None = parent[-1] if len(parent) else None
    for style, run in inline_runs(text):
        if not style:
            if last is None:
                parent.text = (parent.text or "") + run
            else:
                last.tail = (last.tail or "") + run
            continue
        last = _h(parent, style, text=run)


def _chapter_xhtml(
    chapter: _Chapter,
    title: str,
    language: str,
    words: str,
    headings: list[tuple[int, str, str]],
    pages: list[tuple[int, str]],
    pictures: list[Picture],
) -> bytes:
    root, body = _xhtml(title, language)
    section = _h(body, "section")
    for part in chapter.parts:
        if isinstance(part, PageStart):
            anchor = f"page-{len(pages) + 1}"
            label = str(part.number)
            attrs = {f"{{{EPUB_NS}}}type": "pagebreak", "role": "doc-pagebreak", "id": anchor, "aria-label": label}
            _h(section, "span", attrs)
            pages.append((part.number, f"{chapter.file}#{anchor}"))
        elif isinstance(part, Heading):
            anchor = f"h-{len(headings) + 1}"
            _inline(_h(section, f"h{part.level}", {"id": anchor}), part.text)
            headings.append((part.level, part.text, f"{chapter.file}#{anchor}"))
        elif isinstance(part, Paragraph):
            paragraph = _h(section, "p", {"class": part.kind} if part.kind else None)
            for number, line in enumerate(part.lines):
                if number:
                    _h(paragraph, "br")
                _inline(paragraph, line)
        elif isinstance(part, ListItems):
            listing = _h(section, "ol" if part.ordered else "ul")
            for item in part.items:
                _inline(_h(listing, "li"), item)
        elif isinstance(part, TableGrid):
            _table(section, part)
        elif isinstance(part, Formula):
            _h(section, "pre", {"class": "formula"}, part.latex)
        elif isinstance(part, Picture):
            figure = _h(section, "figure")
            _h(figure, "img", {"src": f"images/{part.name}", "alt": t("book.picture", words, page=part.page)})
            pictures.append(part)
    if not _has_content(chapter.parts):
        _h(section, "p", text=title)  # an empty document still opens on something
    return _serialize(root)


def _table(parent: ET.Element, part: TableGrid) -> None:
    table = _h(parent, "table")
    rows: dict[int, list] = {}
    for cell in part.table.cells:
        rows.setdefault(cell.row, []).append(cell)
    for number in range(part.table.rows):
        row = _h(table, "tr")
        for cell in sorted(rows.get(number, []), key=lambda c: c.column):
            attrs = {}
            if cell.colspan > 1:
                attrs["colspan"] = str(cell.colspan)
            if cell.rowspan > 1:
                attrs["rowspan"] = str(cell.rowspan)
            element = _h(row, "th" if cell.header else "td", attrs)
            for index, line in enumerate(cell.text.split("\n")):
                if index:
                    _h(element, "br")
                _inline(element, xml_text(line))


def _nav_xhtml(
    title: str, language: str, words: str, headings: list[tuple[int, str, str]], pages: list[tuple[int, str]]
) -> bytes:
    root, body = _xhtml(title, language)
    toc = _h(body, "nav", {f"{{{EPUB_NS}}}type": "toc", "id": "toc"})
    _h(toc, "h1", text=t("book.contents", words))
    _nested_list(toc, headings)
    if pages:
        page_list = _h(body, "nav", {f"{{{EPUB_NS}}}type": "page-list", "id": "pages", "hidden": "hidden"})
        _h(page_list, "h2", text=t("book.pages", words))
        listing = _h(page_list, "ol")
        for number, href in pages:
            _h(_h(listing, "li"), "a", {"href": href}, str(number))
    return _serialize(root)


def _nested_list(parent: ET.Element, headings: list[tuple[int, str, str]]) -> None:
    """Headings as nested ordered lists; a level skipped (h1 then h3) nests one step only."""
    root = _h(parent, "ol")
    stack: list[tuple[int, ET.Element]] = [(0, root)]  # (heading level, the list its children go in)
    for level, text, href in headings:
        while len(stack) > 1 and stack[-1][0] >= level:
            stack.pop()
        item = _h(stack[-1][1], "li")
        _h(item, "a", {"href": href}, text)
        stack.append((level, _h(item, "ol")))
    _prune_empty_lists(root)


def _prune_empty_lists(element: ET.Element) -> None:
    for child in list(element):
        _prune_empty_lists(child)
        if child.tag == f"{{{XHTML}}}ol" and len(child) == 0:
            element.remove(child)


def _ncx(title: str, identifier: str, headings: list[tuple[int, str, str]]) -> bytes:
    ET.register_namespace("", NCX)
    root = ET.Element(f"{{{NCX}}}ncx", {"version": "2005-1"})
    head = ET.SubElement(root, f"{{{NCX}}}head")
    ET.SubElement(head, f"{{{NCX}}}meta", {"name": "dtb:uid", "content": identifier})
    ET.SubElement(ET.SubElement(root, f"{{{NCX}}}docTitle"), f"{{{NCX}}}text").text = title
    nav_map = ET.SubElement(root, f"{{{NCX}}}navMap")
    stack: list[tuple[int, ET.Element]] = [(0, nav_map)]
    for order, (level, text, href) in enumerate(headings, start=1):
        while len(stack) > 1 and stack[-1][0] >= level:
            stack.pop()
        point = ET.SubElement(stack[-1][1], f"{{{NCX}}}navPoint", {"id": f"nav-{order}", "playOrder": str(order)})
        ET.SubElement(ET.SubElement(point, f"{{{NCX}}}navLabel"), f"{{{NCX}}}text").text = text
        ET.SubElement(point, f"{{{NCX}}}content", {"src": href})
        stack.append((level, point))
    markup = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + markup + "\n").encode("utf-8")


def _package(title: str, language: str, identifier: str, chapters: list[_Chapter], pictures: list[Picture]) -> bytes:
    ET.register_namespace("", OPF)
    ET.register_namespace("dc", DC)
    root = ET.Element(f"{{{OPF}}}package", {"version": "3.0", "unique-identifier": "book-id", XML_LANG: language})
    metadata = ET.SubElement(root, f"{{{OPF}}}metadata")
    ET.SubElement(metadata, f"{{{DC}}}identifier", {"id": "book-id"}).text = identifier
    ET.SubElement(metadata, f"{{{DC}}}title").text = title
    ET.SubElement(metadata, f"{{{DC}}}language").text = language
    ET.SubElement(metadata, f"{{{DC}}}creator").text = "OCR Studio"
    modified = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ET.SubElement(metadata, f"{{{OPF}}}meta", {"property": "dcterms:modified"}).text = modified
    ET.SubElement(metadata, f"{{{OPF}}}meta", {"name": "generator", "content": f"OCR Studio {__version__}"})
    manifest = ET.SubElement(root, f"{{{OPF}}}manifest")

    def item(item_id: str, href: str, media_type: str, **extra: str) -> None:
        ET.SubElement(manifest, f"{{{OPF}}}item", {"id": item_id, "href": href, "media-type": media_type, **extra})

    item("nav", "nav.xhtml", "application/xhtml+xml", properties="nav")
    item("ncx", "toc.ncx", "application/x-dtbncx+xml")
    item("style", "style.css", "text/css")
    for number, chapter in enumerate(chapters, start=1):
        item(f"c{number:03d}", chapter.file, "application/xhtml+xml")
    for number, picture in enumerate(pictures, start=1):
        item(f"img{number:04d}", f"images/{picture.name}", "image/png")
    spine = ET.SubElement(root, f"{{{OPF}}}spine", {"toc": "ncx"})
    for number in range(1, len(chapters) + 1):
        ET.SubElement(spine, f"{{{OPF}}}itemref", {"idref": f"c{number:03d}"})
    markup = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + markup + "\n").encode("utf-8")
