"""Reading dots.ocr's answer into blocks without ever losing its text.

The model answers the layout prompts with a JSON list of ``{"bbox", "category", "text"}``
in the resized image's pixels. Real answers are often not valid JSON: LaTeX written with
single backslashes (``"\\frac"`` is a *valid* JSON escape for a form feed followed by
"rac"; ``"\\alpha"`` is an invalid one), quotes left unescaped inside table HTML, a list
cut off by the token limit, or the same element repeated until the limit by a looping
generation. The reader repairs what it can, salvages every complete element of what it
cannot, and keeps the raw text as one block when nothing else works, with a warning.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import i18n
from ..results import CATEGORIES, Block
from .base import Task

BBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class Element:
    """One layout element as the model wrote it: bbox in the resized image's pixels."""

    bbox: BBox | None
    category: str
    text: str


@dataclass
class LayoutOutput:
    """What could be read from one answer. ``parsed`` is False when no JSON was found at all."""

    elements: list[Element] = field(default_factory=list)
    truncated: bool = False
    parsed: bool = True
    warnings: list[str] = field(default_factory=list)


@dataclass
class PageReading:
    """One page's blocks in page-image pixels, plus what went wrong reading them."""

    blocks: list[Block]
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)


# --- cleaning the answer ----------------------------------------------------------------

_FENCE_OPEN = re.compile(r"^\s*```[\w-]*[ \t]*\n?")
_FENCE_CLOSE = re.compile(r"\n?[ \t]*```\s*$")


def strip_code_fence(text: str) -> str:
    """The answer without a Markdown code fence around it (also when the closing fence
    was never written because generation stopped)."""
    if _FENCE_OPEN.match(text):
        text = _FENCE_OPEN.sub("", text, count=1)
        text = _FENCE_CLOSE.sub("", text, count=1)
    return text.strip()


# LaTeX commands that begin with a letter JSON also uses as an escape (\n, \t). After a
# backslash these are read as LaTeX, not as a newline or tab. \b, \f and \r followed by a
# letter are always LaTeX: OCR text never holds backspace, form feed or carriage return.
_LATEX_N_T = frozenset(
    """
    nabla natural ne nearrow neg negthickspace negthinspace neq newcommand newline nexists ngeq ngtr ni nleftarrow
    nleq nless nmid noindent nolimits nonumber normalsize not notin nparallel nprec nrightarrow nsim nsubseteq
    nsucc nsupseteq ntriangleleft ntriangleright nu nwarrow
    tag tan tanh tau tbinom text textasciitilde textbackslash textbar textbf textbullet textcircled textcolor
    textdegree textendash textemdash textit textmu textnormal textperthousand textregistered textrm textsc textsf
    textsl textstyle textsubscript textsuperscript texttimes texttt textup tfrac th therefore theta thetasym
    thickapprox thicksim thinspace tilde times tiny to top triangle triangledown triangleleft trianglelefteq
    triangleq triangleright trianglerighteq tt twoheadleftarrow twoheadrightarrow
    """.split()
)
_HEX = frozenset("0123456789abcdefABCDEF")


def _letters(text: str, start: int) -> str:
    end = start
    while end < len(text) and text[end].isascii() and text[end].isalpha():
        end += 1
    return text[start:end]


def _closes_string(text: str, quote: int) -> bool:
    """Whether the quote at ``quote`` ends the JSON string it is in (else it is a quote the
    model forgot to escape, like ``<td colspan="2">`` or ``\\text{"a"}``): what follows a
    closing quote is what JSON allows after a key or a value in a list of elements."""
    rest = text[quote + 1 :].lstrip()
    if not rest:
        return True
    after = rest[1:].lstrip()
    if rest[0] == ":":
        return (
            not after
            or after[0] in '"[{-'
            or after[0].isdigit()
            or after[:4] in ("true", "null")
            or after[:5] == "false"
        )
    if rest[0] == ",":
        return not after or after[0] in '"{[-' or after[0].isdigit()
    if rest[0] in "}]":
        return not after or after[0] in ",}]`"
    return False


def repair_json(text: str) -> str:
    """JSON text with the model's usual mistakes inside strings fixed: backslashes that
    belong to LaTeX are doubled (so they survive as backslashes) and unescaped quotes are
    escaped. Valid JSON without LaTeX comes back unchanged."""
    out: list[str] = []
    in_string = False
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if not in_string:
            out.append(char)
            in_string = char == '"'
            i += 1
            continue
        if char == "\\":
            nxt = text[i + 1] if i + 1 < n else ""
            if nxt in ('"', "\\", "/"):
                out.append(char + nxt)
                i += 2
                continue
            if nxt == "u" and len(text) >= i + 6 and all(c in _HEX for c in text[i + 2 : i + 6]):
                out.append(text[i : i + 6])
                i += 6
                continue
            following = text[i + 2] if i + 2 < n else ""
            is_latex = (nxt in "bfr" and following.isascii() and following.isalpha()) or (
                nxt in "nt" and _letters(text, i + 1) in _LATEX_N_T
            )
            if nxt in "bfnrt" and not is_latex:
                out.append(char + nxt)
                i += 2
                continue
            out.append("\\\\")  # a literal backslash: LaTeX (\alpha, \frac, \{ ...) or a stray one
            i += 1
            continue
        if char == '"':
            if _closes_string(text, i):
                in_string = False
                out.append(char)
            else:
                out.append('\\"')
            i += 1
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _decode_string_body(body: str) -> str:
    """A JSON string's content, decoded leniently (for elements cut off or broken)."""
    simple = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        nxt = body[i + 1 : i + 2]
        if nxt == "u" and len(body) >= i + 6 and all(c in _HEX for c in body[i + 2 : i + 6]):
            out.append(chr(int(body[i + 2 : i + 6], 16)))
            i += 6
        elif nxt in simple and nxt:
            out.append(simple[nxt])
            i += 2
        else:  # a dangling backslash at a cut, or an unknown escape: keep it as written
            out.append(char + nxt)
            i += 2
    return "".join(out)


# --- elements ------------------------------------------------------------------------------

_CATEGORY_KEYS = {re.sub(r"[^a-z]", "", c.lower()): c for c in CATEGORIES}
_CATEGORY_SYNONYMS = {
    "figure": "Picture",
    "image": "Picture",
    "equation": "Formula",
    "header": "Page-header",
    "footer": "Page-footer",
    "heading": "Section-header",
    "list": "List-item",
    "paragraph": "Text",
}
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def normalize_category(value: Any) -> str | None:
    """The canonical category for what the model wrote, or None when it is not one."""
    key = re.sub(r"[^a-z]", "", str(value or "").lower())
    return _CATEGORY_KEYS.get(key) or _CATEGORY_SYNONYMS.get(key)


def normalize_bbox(value: Any) -> BBox | None:
    """[x1, y1, x2, y2] from numbers, numeric strings or a string holding four numbers;
    corners put in order (x1 <= x2, y1 <= y2); None when it is not a box."""
    if isinstance(value, str):
        numbers = [float(v) for v in _NUMBER.findall(value)]
    elif isinstance(value, (list, tuple)):
        numbers = []
        for item in value:
            if isinstance(item, bool):
                return None
            if isinstance(item, (int, float)):
                numbers.append(float(item))
            elif isinstance(item, str) and _NUMBER.fullmatch(item.strip()):
                numbers.append(float(item.strip()))
            else:
                return None
    else:
        return None
    if len(numbers) != 4:
        return None
    x1, y1, x2, y2 = numbers
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


def _text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    return json.dumps(value, ensure_ascii=False)


class _ElementReader:
    """Turns decoded JSON values into Elements, remembering what it had to guess."""

    def __init__(self) -> None:
        self.unknown_categories: list[str] = []
        self.bad_boxes = 0

    def read(self, value: Any) -> Element:
        if not isinstance(value, dict):
            return Element(None, "Text", _text_of(value))
        raw_category = value.get("category", value.get("type", ""))
        category = normalize_category(raw_category)
        if category is None:
            category = "Text"
            self.unknown_categories.append(str(raw_category))
        raw_bbox = value.get("bbox", value.get("box"))
        bbox = normalize_bbox(raw_bbox)
        if bbox is None and raw_bbox is not None:
            self.bad_boxes += 1
        return Element(bbox, category, _text_of(value.get("text", value.get("content"))))

    def warnings(self) -> list[str]:
        found: list[str] = []
        if self.unknown_categories:
            names = ", ".join(sorted({repr(c) for c in self.unknown_categories}))
            found.append(i18n.text("core.dots.unknown_categories", names=names))
        if self.bad_boxes:
            found.append(i18n.text("core.dots.bad_boxes", count=self.bad_boxes))
        return found


def _element_list(value: Any) -> list[Any] | None:
    """The list of elements inside a decoded answer: the list itself, a dict wrapping
    one (``{"layout": [...]}``), or a single element."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if "bbox" in value or "category" in value or "text" in value:
            return [value]
        for item in value.values():
            if isinstance(item, list) and all(isinstance(v, dict) for v in item):
                return item
    return None


# An element boundary: the end of one object and the start of the next one's first key.
_NEXT_ELEMENT = re.compile(r'\}\s*,\s*(?=\{\s*")')
_FIELD_BBOX = re.compile(r'"(?:bbox|box)"\s*:\s*(\[[^\]]*\]?|"[^"]*"?)')
_FIELD_CATEGORY = re.compile(r'"(?:category|type)"\s*:\s*"([^"\\]*)')
_FIELD_TEXT = re.compile(r'"(?:text|content)"\s*:\s*"')
_TEXT_END = re.compile(r'\s*(?:,\s*"(?:bbox|box|category|type)"\s*:|\}|$)')


def _salvage_element(segment: str) -> dict[str, Any] | None:
    """The fields of one element that json cannot read (broken or cut off), found one by
    one. Returns None when the segment holds none of them."""
    found: dict[str, Any] = {}
    bbox = _FIELD_BBOX.search(segment)
    if bbox:
        found["bbox"] = bbox.group(1)
    category = _FIELD_CATEGORY.search(segment)
    if category:
        found["category"] = category.group(1)
    text = _FIELD_TEXT.search(segment)
    if text:
        start = i = text.end()
        end = len(segment)
        while i < len(segment):
            if segment[i] == "\\":
                i += 2
                continue
            if segment[i] == '"' and _TEXT_END.match(segment, i + 1):
                end = i
                break
            i += 1
        found["text"] = _decode_string_body(segment[start:end])
    return found or None


def _skip(text: str, pos: int, chars: str) -> int:
    while pos < len(text) and text[pos] in chars:
        pos += 1
    return pos


@dataclass
class _Scan:
    values: list[Any] = field(default_factory=list)
    closed: bool = False  # the list (or single object) ended properly
    broken: int = 0  # elements that had to be read field by field
    cut_tail: bool = False  # the last value is an element cut off mid-way
    valid: bool = False  # the whole answer was valid JSON


def _scan_elements(text: str, start: int) -> _Scan:
    """Every element of the list whose first ``{`` is at ``start``, one at a time."""
    decoder = json.JSONDecoder(strict=False)
    scan = _Scan()
    pos = start
    while True:
        pos = _skip(text, pos, " \t\r\n,")
        if pos >= len(text):
            return scan
        if text[pos] != "{":  # "]", "}" or stray text: the list is over
            scan.closed = True
            return scan
        try:
            value, pos = decoder.raw_decode(text, pos)
            scan.values.append(value)
            continue
        except json.JSONDecodeError:
            pass
        boundary = _NEXT_ELEMENT.search(text, pos)
        segment = text[pos : boundary.start() + 1] if boundary else text[pos:]
        element = _salvage_element(segment)
        if boundary is not None:
            if element is not None:
                scan.values.append(element)
                scan.broken += 1
            pos = boundary.end()
            continue
        scan.closed = bool(re.search(r"\}\s*\]?\s*\}?\s*$", segment))
        if element is not None:
            scan.values.append(element)
            scan.cut_tail = not scan.closed
            scan.broken += scan.closed
        return scan


_REPEAT_RUN_LIMIT = 3  # identical consecutive elements allowed before the rest count as a loop


def drop_repeats(elements: list[Element]) -> tuple[list[Element], int]:
    """Elements without the copies a looping generation writes: exact duplicates (same
    category, text and box) anywhere, and runs of the same text longer than a few."""
    kept: list[Element] = []
    seen: set[tuple[Any, ...]] = set()
    run = 0
    dropped = 0
    for element in elements:
        text = element.text.strip()
        box = tuple(round(v) for v in element.bbox) if element.bbox else None
        key = (element.category, text, box)
        if (text or box) and key in seen:
            dropped += 1
            continue
        seen.add(key)
        previous = kept[-1] if kept else None
        if text and previous is not None and (previous.category, previous.text.strip()) == (element.category, text):
            run += 1
            if run >= _REPEAT_RUN_LIMIT:
                dropped += 1
                continue
        else:
            run = 0
        kept.append(element)
    return kept, dropped


_ELEMENTS_START = re.compile(r"\[\s*(?=\{)")


def _find_elements(repaired: str) -> _Scan | None:
    """The elements of an answer: the whole answer parsed at once when it is valid JSON,
    else scanned element by element from the start of the list. None when there is no list."""
    try:
        values = _element_list(json.loads(repaired, strict=False))
    except json.JSONDecodeError:
        values = None
    if values is not None:
        return _Scan(values=values, closed=True, valid=True)
    found = _ELEMENTS_START.search(repaired)
    if found is not None:
        return _scan_elements(repaired, found.end())
    stripped = repaired.lstrip()
    if stripped.startswith("{"):
        return _scan_elements(repaired, len(repaired) - len(stripped))
    return None


def parse_layout(raw: str) -> LayoutOutput:
    """The layout elements in a layout-prompt answer, repaired, salvaged and de-duplicated.
    ``parsed`` False means no element could be found (the caller keeps the raw text)."""
    text = strip_code_fence(raw)
    if not text:
        return LayoutOutput(parsed=False, warnings=[i18n.text("core.dots.no_text")])
    scan = _find_elements(repair_json(text))
    if scan is None:
        return LayoutOutput(parsed=False, warnings=[i18n.text("core.dots.not_layout_json")])
    if not scan.values and scan.valid:
        return LayoutOutput()  # "[]": the model found nothing on the page (a blank page)
    if not scan.values:
        return LayoutOutput(parsed=False, truncated=not scan.closed, warnings=[i18n.text("core.dots.no_element")])
    reader = _ElementReader()
    elements = [reader.read(v) for v in scan.values]
    cut: Element | None = elements[-1] if scan.cut_tail else None
    repeated_cut = cut is not None and any(
        e.category == cut.category and e.text.startswith(cut.text) for e in elements[:-1] if cut.text
    )
    if repeated_cut:
        elements.pop()  # the cut copy of an element already read (a loop): no new text
    elements, dropped = drop_repeats(elements)
    output = LayoutOutput(elements=elements, truncated=not scan.closed)
    if output.truncated:
        complete = len(scan.values) - scan.cut_tail
        tail = scan.cut_tail and not repeated_cut
        output.warnings.append(i18n.text("core.dots.cut_off_tail" if tail else "core.dots.cut_off", complete=complete))
    if scan.broken:
        output.warnings.append(i18n.text("core.dots.broken_json", count=scan.broken))
    if dropped or repeated_cut:
        output.warnings.append(i18n.text("core.dots.repeated", count=dropped + repeated_cut))
    output.warnings.extend(reader.warnings())
    return output


# --- coordinates -----------------------------------------------------------------------------


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def to_page_bbox(bbox: BBox, resized_size: tuple[int, int], page_size: tuple[int, int]) -> BBox | None:
    """A box in the resized image's pixels as page-image pixels, clamped to the page;
    None when nothing of it is on the page."""
    resized_w, resized_h = resized_size
    page_w, page_h = page_size
    x1, y1, x2, y2 = _within(bbox, resized_size)
    if x2 <= x1 or y2 <= y1:
        return None
    sx, sy = page_w / resized_w, page_h / resized_h
    return (round(x1 * sx, 2), round(y1 * sy, 2), round(x2 * sx, 2), round(y2 * sy, 2))


def to_resized_box(
    region: tuple[float, float, float, float], page_size: tuple[int, int], resized_size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """A box the user gave in page-image pixels as the resized image's integer pixels
    (what the grounding prompt expects), clamped and put in order. Each coordinate is
    divided by the page/resized scale and truncated, exactly as the official parser
    does (rounding would move the prompt's box by a pixel from what the model was trained on)."""
    page_w, page_h = page_size
    resized_w, resized_h = resized_size
    x1, y1, x2, y2 = _within(region, page_size)
    scale_x, scale_y = page_w / resized_w, page_h / resized_h
    return (int(x1 / scale_x), int(y1 / scale_y), int(x2 / scale_x), int(y2 / scale_y))


def page_region(region: tuple[float, float, float, float], page_size: tuple[int, int]) -> BBox | None:
    """The user's region clamped to the page, corners in order; None when it is off the page."""
    x1, y1, x2, y2 = _within(region, page_size)
    if x2 <= x1 or y2 <= y1:
        return None
    return (float(x1), float(y1), float(x2), float(y2))


def _within(box: Sequence[float], size: tuple[int, int]) -> tuple[float, float, float, float]:
    """A box clamped to a width × height image, corners put in order."""
    width, height = size
    x1, y1, x2, y2 = box
    x1, x2 = sorted((_clamp(x1, 0, width), _clamp(x2, 0, width)))
    y1, y2 = sorted((_clamp(y1, 0, height), _clamp(y2, 0, height)))
    return x1, y1, x2, y2


# --- scene spotting (dots.mocr) --------------------------------------------------------------------

_POINT = r"\(\s*-?\d+(?:\.\d+)?\s*,\s*-?\d+(?:\.\d+)?\s*\)"
_QUAD = r"\s*,\s*".join([_POINT] * 4)
# one spotted line: four corners, then its text up to the next line's corners (or the end)
_SCENE_LINE = re.compile(rf"({_QUAD})(.*?)(?={_POINT}\s*,\s*{_POINT}|\Z)", re.DOTALL)


def parse_scene(raw: str) -> list[Element]:
    """The lines of a scene-spotting answer (``(x1, y1), (x2, y2), (x3, y3), (x4, y4) text`` each,
    corners in the resized image's pixels) as elements whose box encloses the four corners.
    A line without text is dropped: there is nothing to read in it."""
    elements = []
    for match in _SCENE_LINE.finditer(raw):
        text = match.group(2).strip()
        if not text:
            continue
        numbers = [float(v) for v in _NUMBER.findall(match.group(1))]
        xs, ys = numbers[0::2], numbers[1::2]
        elements.append(Element((min(xs), min(ys), max(xs), max(ys)), "Text", text))
    return elements


# --- one page -----------------------------------------------------------------------------------


def read_page(
    raw: str,
    task: Task,
    *,
    resized_size: tuple[int, int],
    page_size: tuple[int, int],
    region: tuple[float, float, float, float] | None = None,
) -> PageReading:
    """The blocks of one page from the model's raw answer to ``task``'s prompt."""
    if task is Task.SCENE:
        return _read_scene(raw, resized_size=resized_size, page_size=page_size)
    if task in (Task.LAYOUT_TEXT, Task.LAYOUT, Task.WEB):
        layout = parse_layout(raw)
        if not layout.parsed:
            kept = strip_code_fence(raw)
            if not kept:
                return PageReading([], truncated=layout.truncated, warnings=layout.warnings)
            warnings = [i18n.text("core.dots.raw_kept", warning=w) for w in layout.warnings]
            return PageReading([Block(None, "Text", kept)], truncated=layout.truncated, warnings=warnings)
        blocks = [
            Block(to_page_bbox(e.bbox, resized_size, page_size) if e.bbox else None, e.category, e.text)
            for e in layout.elements
        ]
        return PageReading(blocks, truncated=layout.truncated, warnings=layout.warnings)
    text = strip_code_fence(raw)
    if not text:
        return PageReading([], warnings=[i18n.text("core.dots.no_text")])
    bbox = page_region(region, page_size) if task is Task.REGION and region is not None else None
    return PageReading([Block(bbox, "Text", text)])


def _read_scene(raw: str, *, resized_size: tuple[int, int], page_size: tuple[int, int]) -> PageReading:
    """Spotted lines as blocks in page pixels; an answer with no spotted line is kept whole, with a warning."""
    elements = parse_scene(raw)
    if elements:
        return PageReading(
            [
                Block(to_page_bbox(e.bbox, resized_size, page_size) if e.bbox else None, e.category, e.text)
                for e in elements
            ]
        )
    kept = strip_code_fence(raw)
    if not kept:
        return PageReading([], warnings=[i18n.text("core.dots.no_text")])
    warning = i18n.text("core.dots.raw_kept", warning=i18n.text("mocr.not_scene_lines"))
    return PageReading([Block(None, "Text", kept)], warnings=[warning])
