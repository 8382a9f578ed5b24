"""Word (.docx): a document's blocks as an editable Word file, one section per page.

Titles and section headers become Word headings, paragraphs and list items keep their
Markdown's bold/italic and list kind, tables become real Word tables (row and column spans
merged), pictures are the page crops at their share of the page's width, page headers and
footers go into each section's own header and footer (``clean`` leaves them out).

Formulas are written as their LaTeX in an "Equation" paragraph (Cambria Math, centred),
not as Word equations (OMML): converting LaTeX to OMML needs either Microsoft's MML2OMML
XSLT, which cannot be shipped, or a young third-party converter that would silently drop
what it does not understand. The LaTeX is exact and Word's equation editor accepts it
(Alt+= then paste, "LaTeX" mode) where a user wants a rendered equation.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from .html_table import Table, looks_like_markdown_table, looks_like_table, parse_markdown_table, parse_table
from .results import PAGE_FURNITURE, Block, DocumentResult, PageResult, document_language

if TYPE_CHECKING:
    from docx.document import Document as WordDocument
    from docx.section import Section

log = logging.getLogger(__name__)

# (page, block index) -> the PNG of that picture block, or None
PictureSource = Callable[[PageResult, int], "bytes | None"]

EQUATION_STYLE = "Equation"
_MAX_COLUMNS = 63  # Word's own limit
# Characters XML 1.0 cannot hold (model output may contain them): dropped, or Word refuses the file.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$", re.S)
_LIST_ITEM = re.compile(r"^(\s*)([-*+•]|\d{1,3}[.)])\s+")
_INLINE = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1|(?<![\w*])\*(?=\S)([^*]+?)(?<=\S)\*(?!\w)|`([^`]+)`")


def word_document(doc: DocumentResult, *, picture: PictureSource | None = None, clean: bool = False) -> bytes:
    """``doc`` as the bytes of a .docx file."""
    import docx

    word = docx.Document()
    word.core_properties.title = _xml(doc.name)
    word.core_properties.author = "OCR Studio"
    word.core_properties.comments = "Recognised by OCR Studio"
    _set_language(word, document_language(doc))
    _add_equation_style(word)
    if doc.error:
        word.add_paragraph().add_run(_xml(doc.error)).italic = True
    for number, page in enumerate(doc.pages):
        section = word.sections[0] if number == 0 else word.add_section()
        _shape_section(section, page)
        _add_page(word, section, page, picture, clean)
    buffer = io.BytesIO()
    word.save(buffer)
    return buffer.getvalue()


WORD_LANGUAGES = {"en": "en-US", "ru": "ru-RU"}  # BCP 47 as Word's proofing tools name them


def _set_language(word: WordDocument, lang: str) -> None:
    """The document's language for Word's spelling, hyphenation and voice: the default of every
    run (``w:lang`` in the styles' defaults) and the file's own property; none when unknown."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    tag = WORD_LANGUAGES.get(lang)
    if tag is None:
        return
    word.core_properties.language = tag
    defaults = word.styles.element.find(qn("w:docDefaults"))
    if defaults is None:
        defaults = OxmlElement("w:docDefaults")
        word.styles.element.insert(0, defaults)
    run_defaults = defaults.find(qn("w:rPrDefault"))
    if run_defaults is None:
        run_defaults = OxmlElement("w:rPrDefault")
        defaults.insert(0, run_defaults)
    properties = run_defaults.find(qn("w:rPr"))
    if properties is None:
        properties = OxmlElement("w:rPr")
        run_defaults.append(properties)
    language = properties.find(qn("w:lang"))
    if language is None:
        language = OxmlElement("w:lang")
        properties.append(language)
    language.set(qn("w:val"), tag)


def _add_equation_style(word: WordDocument) -> None:
    from docx.enum.style import WD_STYLE_TYPE
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    style = word.styles.add_style(EQUATION_STYLE, WD_STYLE_TYPE.PARAGRAPH)
    style.base_style = word.styles["Normal"]
    style.font.name = "Cambria Math"
    style.font.size = Pt(11)
    style.paragraph_format.alignment = WD_ALIGN_PARAGRAPH.CENTER


def _shape_section(section: Section, page: PageResult) -> None:
    """A landscape page gets a landscape section; every section has its own header/footer."""
    from docx.enum.section import WD_ORIENT

    width, height = section.page_width, section.page_height
    landscape = page.width > page.height
    if landscape != (width > height):
        section.page_width, section.page_height = height, width
    section.orientation = WD_ORIENT.LANDSCAPE if landscape else WD_ORIENT.PORTRAIT
    section.header.is_linked_to_previous = False
    section.footer.is_linked_to_previous = False


def _add_page(
    word: WordDocument, section: Section, page: PageResult, picture: PictureSource | None, clean: bool
) -> None:
    if page.truncated:
        word.add_paragraph("The engine stopped early on this page; the text may be incomplete.").runs[0].italic = True
    content_width = section.page_width - section.left_margin - section.right_margin
    for index, block in enumerate(page.blocks):
        if block.category in PAGE_FURNITURE:
            if not clean and block.text.strip():
                part = section.header if block.category == "Page-header" else section.footer
                _add_furniture(part, _xml(block.text))
            continue
        if block.category == "Picture":
            data = picture(page, index) if picture is not None else None
            if data:
                share = _width_share(block, page)
                word.add_picture(io.BytesIO(data), width=int(content_width * share))
            continue
        _add_block(word, block, literal=page.literal)


def _width_share(block: Block, page: PageResult) -> float:
    """A picture's share of the page's width (so a small logo stays small), 5-100 %."""
    if block.bbox is None or page.width <= 0:
        return 1.0
    return max(0.05, min(1.0, abs(block.bbox[2] - block.bbox[0]) / page.width))


def _add_furniture(part: object, text: str) -> None:
    paragraphs = part.paragraphs  # type: ignore[attr-defined]
    first = paragraphs[0] if paragraphs and not paragraphs[0].text else part.add_paragraph()  # type: ignore[attr-defined]
    first.text = " ".join(text.split())


def _xml(text: str) -> str:
    return _NOT_XML.sub("", text)


def _add_block(word: WordDocument, block: Block, *, literal: bool = False) -> None:
    """One block; ``literal`` text (a text layer, Tesseract) is written as printed, never read as
    Markdown: its "# " is a character, its "*" no emphasis."""
    text = _xml(block.text).strip()
    if not text:
        return
    if block.category == "Formula":
        word.add_paragraph(_latex(text), style=EQUATION_STYLE)
        return
    if block.category == "Table" and looks_like_table(text):
        _add_table(word, text)
        return
    if block.category == "Code":
        _add_code(word, _xml(block.text).strip("\n"))
        return
    if literal:
        _add_literal(word, block.category, text)
        return
    if block.category in ("Title", "Section-header"):
        heading = _HEADING.match(text)
        level = len(heading.group(1)) if heading else (1 if block.category == "Title" else 2)
        word.add_heading(" ".join((heading.group(2) if heading else text).split()), level=level)
        return
    if block.category == "Caption":
        _add_runs(word.add_paragraph(style="Caption"), " ".join(text.split()))
        return
    if block.category == "List-item":
        _add_list_item(word, text if _LIST_ITEM.match(text) else f"- {text}")
        return
    for chunk in re.split(r"(<table\b.*?</table>)|\n\s*\n", text, flags=re.I | re.S):
        if chunk and chunk.strip():
            _add_markdown_chunk(word, chunk.strip(), footnote=block.category == "Footnote")


def _add_code(word: WordDocument, text: str) -> None:
    """A code listing: one monospace paragraph, its printed lines kept as line breaks."""
    from docx.shared import Pt

    paragraph = word.add_paragraph()
    for number, line in enumerate(text.split("\n")):
        if number:
            paragraph.add_run().add_break()
        run = paragraph.add_run(line)
        run.font.name = "Consolas"
        run.font.size = Pt(9)


def _add_literal(word: WordDocument, category: str, text: str) -> None:
    flat = " ".join(text.split())
    if category in ("Title", "Section-header"):
        word.add_heading(flat, level=1 if category == "Title" else 2)
    elif category == "Caption":
        word.add_paragraph(flat, style="Caption")
    elif category == "List-item":
        number = re.match(r"^(\d{1,9})[.)]\s+", flat)
        bullet = re.match(r"^[•·▪◦‣●○■□➢►✓*–—-]\s+", flat)
        style = "List Number" if number else "List Bullet"
        paragraph = word.add_paragraph((flat[(number or bullet).end() :] if number or bullet else flat), style=style)
        if number:
            _number_from_one(word, paragraph)
    else:
        paragraph = word.add_paragraph()
        for number, line in enumerate(line for line in text.split("\n") if line.strip()):
            if number:
                paragraph.add_run().add_break()
            paragraph.add_run(line.strip())
        if category == "Footnote":
            from docx.shared import Pt

            for run in paragraph.runs:
                run.font.size = Pt(8)


def _latex(text: str) -> str:
    text = text.strip()
    if text.startswith("$$") and text.endswith("$$") and len(text) >= 4:
        text = text[2:-2]
    return text.strip()


def _add_markdown_chunk(word: WordDocument, chunk: str, *, footnote: bool = False) -> None:
    """One paragraph of Markdown: a table, a formula, a heading, a list, or a paragraph."""
    if looks_like_table(chunk):
        _add_table(word, chunk)
        return
    if looks_like_markdown_table(chunk):
        _add_grid(word, parse_markdown_table(chunk))
        return
    if chunk.startswith("$$") and chunk.endswith("$$") and len(chunk) >= 4:
        word.add_paragraph(_latex(chunk), style=EQUATION_STYLE)
        return
    heading = _HEADING.match(chunk)
    if heading:
        word.add_heading(" ".join(heading.group(2).split()), level=len(heading.group(1)))
        return
    lines = [line for line in chunk.split("\n") if line.strip()]
    if lines and all(_LIST_ITEM.match(line) for line in lines):
        for line in lines:
            _add_list_item(word, line)
        return
    paragraph = word.add_paragraph()
    for number, line in enumerate(lines):
        if number:
            paragraph.add_run().add_break()
        _add_runs(paragraph, line.strip())
    if footnote:
        from docx.shared import Pt

        for run in paragraph.runs:
            run.font.size = Pt(8)


def _add_list_item(word: WordDocument, line: str) -> None:
    match = _LIST_ITEM.match(line)
    indent, marker = (match.group(1), match.group(2)) if match else ("", "-")
    level = min(3, 1 + len(indent.replace("\t", "    ")) // 2)
    kind = "List Number" if marker[0].isdigit() else "List Bullet"
    style = kind if level == 1 else f"{kind} {level}"
    paragraph = word.add_paragraph(style=style)
    if kind == "List Number":
        _number_from_one(word, paragraph)
    _add_runs(paragraph, _LIST_ITEM.sub("", line, count=1).strip())


def _number_from_one(word: WordDocument, paragraph: object) -> None:
    """Every numbered list starts at 1: Word's "List Number" style numbers all its paragraphs
    as one list, so a list that does not follow another item of its style gets its own
    numbering instance (restarting at 1); the items after it share that instance."""
    from docx.oxml.ns import qn

    p = paragraph._p  # type: ignore[attr-defined]
    previous = p.getprevious()
    try:
        if previous is not None and previous.tag == qn("w:p") and previous.style == p.style:
            numbering = previous.pPr.numPr if previous.pPr is not None else None
            if numbering is None or numbering.numId is None:
                return  # continuing a list that uses the style's own numbering
            num_id = numbering.numId.val
        else:
            definitions = word.part.numbering_part.numbering_definitions._numbering
            style_num = paragraph.style.element.pPr.numPr.numId.val  # type: ignore[attr-defined]
            abstract = definitions.num_having_numId(style_num).abstractNumId.val
            num = definitions.add_num(abstract)
            num.add_lvlOverride(ilvl=0).add_startOverride(1)
            num_id = num.numId
        numbering = p.get_or_add_pPr().get_or_add_numPr()
        numbering.get_or_add_ilvl().val = 0
        numbering.get_or_add_numId().val = num_id
    except (AttributeError, KeyError) as exc:  # a template without list numbering: one running list
        log.debug("Word: numbered list not restarted: %s", exc)


def _add_runs(paragraph: object, text: str) -> None:
    """``text``'s Markdown bold, italic and code as runs."""
    at = 0
    for match in _INLINE.finditer(text):
        if match.start() > at:
            paragraph.add_run(text[at : match.start()])  # type: ignore[attr-defined]
        if match.group(2) is not None:
            paragraph.add_run(match.group(2)).bold = True  # type: ignore[attr-defined]
        elif match.group(3) is not None:
            paragraph.add_run(match.group(3)).italic = True  # type: ignore[attr-defined]
        else:
            paragraph.add_run(match.group(4)).font.name = "Consolas"  # type: ignore[attr-defined]
        at = match.end()
    if at < len(text):
        paragraph.add_run(text[at:])  # type: ignore[attr-defined]


def _add_table(word: WordDocument, markup: str) -> None:
    _add_grid(word, parse_table(markup))


def _add_grid(word: WordDocument, table: Table) -> None:
    """A real Word table: each cell in its grid slot, spanning cells merged."""
    if not table.rows or not table.columns:
        return
    if table.columns > _MAX_COLUMNS:  # more than Word allows: the rows as text
        for row in table.row_texts():
            word.add_paragraph(" | ".join(row))
        return
    grid = word.add_table(rows=table.rows, cols=table.columns)
    grid.style = word.styles["Table Grid"]
    for cell in table.cells:
        target = grid.cell(cell.row, cell.column)
        if cell.rowspan > 1 or cell.colspan > 1:
            last_row = min(table.rows, cell.row + cell.rowspan) - 1
            last_column = min(table.columns, cell.column + cell.colspan) - 1
            try:
                target = target.merge(grid.cell(last_row, last_column))
            except Exception:  # overlapping spans in sloppy HTML: the cell stays unmerged
                pass
        lines = cell.text.split("\n") if cell.text else [""]
        paragraph = target.paragraphs[0]
        for number, line in enumerate(lines):
            if number:
                paragraph = target.add_paragraph()
            _add_runs(paragraph, line)
            if cell.header:
                for run in paragraph.runs:
                    run.bold = True
