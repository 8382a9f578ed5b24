"""dots.ocr answers → blocks: repaired, salvaged, de-duplicated, mapped to page pixels, never lost.

The answers below are written to look like what the model emits for a US Letter page
rendered at 200 DPI (1700×2200 px, resized to 1708×2212 for the model).
"""

from __future__ import annotations

import json

import pytest

from ocr_studio.engines.base import Task
from ocr_studio.engines.dots_parsing import (
    normalize_bbox,
    parse_layout,
    read_page,
    repair_json,
    to_page_bbox,
    to_resized_box,
)
from ocr_studio.engines.dots_prompts import (
    MAX_PIXELS,
    MIN_PIXELS,
    PROMPT_GROUNDING_OCR,
    PROMPT_LAYOUT_ALL_EN,
    PROMPT_LAYOUT_ONLY_EN,
    PROMPT_OCR,
    UnsupportedTaskError,
    prompt_for,
    smart_resize,
)
from ocr_studio.results import CATEGORIES, CATEGORY_COLORS, PageResult

PAGE = (1700, 2200)
RESIZED = (1708, 2212)

# A full page with every category, as the model writes it: LaTeX with doubled backslashes,
# escaped quotes in table HTML, Cyrillic and CJK as plain UTF-8, Picture without text.
FULL_PAGE = r"""[{"bbox": [140, 60, 1560, 100], "category": "Page-header", "text": "Journal of Examples — Vol. 3"},
{"bbox": [200, 160, 1500, 260], "category": "Title", "text": "On Reading Pages"},
{"bbox": [200, 300, 1500, 360], "category": "Section-header", "text": "## 1. Введение"},
{"bbox": [200, 380, 1500, 560], "category": "Text", "text": "Текст на русском языке и 中文文本。\nA second line with **bold**."},
{"bbox": [200, 580, 1500, 640], "category": "List-item", "text": "- first point"},
{"bbox": [600, 660, 1100, 760], "category": "Formula", "text": "\\frac{a}{b} = \\alpha + \\text{\"quoted\"}"},
{"bbox": [200, 800, 1500, 1200], "category": "Picture"},
{"bbox": [200, 1210, 1500, 1260], "category": "Caption", "text": "Figure 1: 图表 and a caption."},
{"bbox": [200, 1300, 1500, 1700], "category": "Table", "text": "<table border=\"1\"><tr><th colspan=\"2\">Name</th></tr><tr><td>α</td><td>β</td></tr></table>"},
{"bbox": [200, 1900, 1500, 1960], "category": "Footnote", "text": "¹ A footnote."},
{"bbox": [800, 2100, 900, 2140], "category": "Page-footer", "text": "7"}]"""  # noqa: E501


def _layout(raw: str) -> PageResult:
    reading = read_page(raw, Task.LAYOUT_TEXT, resized_size=RESIZED, page_size=PAGE)
    return PageResult(
        page_number=1,
        width=PAGE[0],
        height=PAGE[1],
        blocks=reading.blocks,
        truncated=reading.truncated,
        warnings=reading.warnings,
        raw_text=raw,
    )


def _element(text: str, *, category: str = "Text", top: int = 100) -> str:
    return json.dumps({"bbox": [100, top, 900, top + 40], "category": category, "text": text}, ensure_ascii=False)


# --- a full, valid page ------------------------------------------------------------------------


def test_a_full_page_reads_every_category_in_reading_order() -> None:
    page = _layout(FULL_PAGE)
    assert [b.category for b in page.blocks] == [
        "Page-header",
        "Title",
        "Section-header",
        "Text",
        "List-item",
        "Formula",
        "Picture",
        "Caption",
        "Table",
        "Footnote",
        "Page-footer",
    ]
    assert set(CATEGORIES) == {b.category for b in page.blocks}
    assert page.warnings == [] and not page.truncated
    texts = {b.category: b.text for b in page.blocks}
    assert texts["Text"] == "Текст на русском языке и 中文文本。\nA second line with **bold**."
    assert texts["Formula"] == r'\frac{a}{b} = \alpha + \text{"quoted"}'
    assert texts["Table"].startswith('<table border="1"><tr><th colspan="2">Name</th>')
    assert texts["Picture"] == ""
    assert texts["Caption"] == "Figure 1: 图表 and a caption."


def test_page_markdown_renders_formulas_tables_headings_and_optional_furniture() -> None:
    page = _layout(FULL_PAGE)
    with_furniture = page.markdown(furniture=True)
    clean = page.markdown(furniture=False)
    assert '$$\n\\frac{a}{b} = \\alpha + \\text{"quoted"}\n$$' in with_furniture
    assert '<table border="1"><tr><th colspan="2">Name</th></tr><tr><td>α</td><td>β</td></tr></table>' in clean
    assert "# On Reading Pages" in clean
    assert "## 1. Введение" in clean and "### 1. Введение" not in clean  # the model's own '#' kept once
    assert with_furniture.startswith("Journal of Examples — Vol. 3")
    assert with_furniture.rstrip().endswith("7")
    assert "Journal of Examples" not in clean and not clean.rstrip().endswith("7")
    assert clean.index("On Reading Pages") < clean.index("Введение") < clean.index("<table") < clean.index("footnote")


def test_boxes_map_from_the_resized_image_back_to_page_pixels() -> None:
    page = _layout(FULL_PAGE)
    picture = next(b for b in page.blocks if b.category == "Picture")
    sx, sy = PAGE[0] / RESIZED[0], PAGE[1] / RESIZED[1]
    assert picture.bbox == pytest.approx((200 * sx, 800 * sy, 1500 * sx, 1200 * sy), abs=0.01)


# --- LaTeX and JSON escapes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (r"\\frac{a}{b}", r"\frac{a}{b}"),  # correct JSON
        (r"\frac{a}{b}", r"\frac{a}{b}"),  # \f is a valid JSON escape (form feed): must stay LaTeX
        (r"\alpha + \beta_{1}", r"\alpha + \beta_{1}"),  # \a is invalid JSON, \b is backspace
        (r"\nabla \cdot \vec{E} \neq 0", r"\nabla \cdot \vec{E} \neq 0"),  # \n... that is LaTeX
        (r"\theta \times \tau \to \infty", r"\theta \times \tau \to \infty"),  # \t... that is LaTeX
        (r"\left( \rho \right) \{x\} \, \%", r"\left( \rho \right) \{x\} \, \%"),
        (r"\text{\"quoted\"}", r'\text{"quoted"}'),
        (r"\\text{\"quoted\"}", r'\text{"quoted"}'),
        (r'\text{"quoted"}', r'\text{"quoted"}'),  # quotes the model forgot to escape
        (r"\underline{x} \uparrow", r"\underline{x} \uparrow"),  # \u that is not a unicode escape
        (r"\u041f\u0440\u0438 \u4e2d", "При 中"),  # real unicode escapes
        (r"first line\nsecond line\tcell", "first line\nsecond line\tcell"),  # real newline and tab
    ],
)
def test_latex_backslashes_survive_and_real_escapes_still_work(written: str, expected: str) -> None:
    raw = '[{"bbox": [10, 10, 200, 60], "category": "Formula", "text": "' + written + '"}]'
    output = parse_layout(raw)
    assert [e.text for e in output.elements] == [expected]
    assert output.warnings == [] and not output.truncated


def test_repair_leaves_valid_json_without_latex_unchanged() -> None:
    text = json.dumps([{"bbox": [1, 2, 3, 4], "category": "Text", "text": 'a "quote", a\nnewline, a \\ slash'}])
    assert repair_json(text) == text


def test_table_html_with_unescaped_attribute_quotes_is_kept_whole() -> None:
    raw = (
        '[{"bbox": [10, 10, 900, 400], "category": "Table", "text": "<table><tr><td colspan="2" align="center">'
        'Σ</td></tr></table>"}, {"bbox": [10, 420, 900, 460], "category": "Text", "text": "After the table."}]'
    )
    output = parse_layout(raw)
    assert [e.text for e in output.elements] == [
        '<table><tr><td colspan="2" align="center">Σ</td></tr></table>',
        "After the table.",
    ]


# --- broken answers: cut off, looping, garbage -----------------------------------------------------


def test_an_answer_cut_mid_element_keeps_every_complete_element_and_the_cut_text() -> None:
    cut = FULL_PAGE[: FULL_PAGE.index("Figure 1: 图表") + len("Figure 1: 图")]
    page = _layout(cut)
    assert page.truncated
    assert [b.category for b in page.blocks][-3:] == ["Formula", "Picture", "Caption"]
    assert len(page.blocks) == 8
    assert page.blocks[-1].text == "Figure 1: 图"  # the element being written when the cut came
    assert page.blocks[-1].bbox is not None
    assert any("cut off" in w and "7 complete element(s)" in w for w in page.warnings)


def test_an_answer_cut_between_elements_is_truncated_and_keeps_all_elements() -> None:
    cut = FULL_PAGE[: FULL_PAGE.index('{"bbox": [200, 1210')]
    page = _layout(cut)
    assert page.truncated and len(page.blocks) == 7
    assert page.blocks[-1].category == "Picture"


def test_an_answer_cut_inside_an_escape_keeps_the_text_before_it() -> None:
    raw = '[{"bbox": [10, 10, 200, 60], "category": "Formula", "text": "x = \\\\fr'
    output = parse_layout(raw)
    assert output.truncated and [e.text for e in output.elements] == ["x = \\fr"]


def test_a_looping_answer_is_deduplicated_and_flagged() -> None:
    head = [_element("Intro paragraph.", top=100), _element("Second paragraph.", top=200)]
    loop = [_element("Row 1 | Row 1 | Row 1", top=300)] * 50
    raw = "[" + ", ".join(head + loop)  # looping until the token limit: never closed
    raw = raw[: len(raw) - 10]  # and cut mid-element
    page = _layout(raw)
    assert [b.text for b in page.blocks] == ["Intro paragraph.", "Second paragraph.", "Row 1 | Row 1 | Row 1"]
    assert page.truncated
    assert any("repeated" in w and "49" in w for w in page.warnings)


def test_a_loop_that_moves_its_box_down_the_page_is_deduplicated_too() -> None:
    elements = [_element("Same line again.", top=100 + 10 * i) for i in range(50)]
    output = parse_layout("[" + ", ".join(elements) + "]")
    assert len(output.elements) == 3
    assert any("repeated" in w for w in output.warnings)


def test_legitimately_equal_texts_in_different_places_are_kept() -> None:
    elements = [_element("Total", top=100), _element("Another line", top=200), _element("Total", top=300)]
    output = parse_layout("[" + ", ".join(elements) + "]")
    assert [e.text for e in output.elements] == ["Total", "Another line", "Total"]
    assert output.warnings == []


def test_garbage_is_kept_as_one_raw_text_block_with_a_warning() -> None:
    raw = "I cannot read this page. Лист 3 / 第三页 ]] {{"
    page = _layout(raw)
    assert [(b.category, b.text, b.bbox) for b in page.blocks] == [("Text", raw, None)]
    assert page.warnings and any("raw text is kept" in w for w in page.warnings)
    assert page.markdown() == raw


def test_an_empty_answer_gives_no_blocks_and_says_so() -> None:
    page = _layout("  \n")
    assert page.blocks == [] and page.warnings


def test_an_empty_list_is_a_blank_page_not_an_error() -> None:
    page = _layout("[]")
    assert page.blocks == [] and page.warnings == [] and not page.truncated


def test_a_lone_broken_object_is_kept_as_raw_text() -> None:
    raw = "{this is not json at all}"
    page = _layout(raw)
    assert [b.text for b in page.blocks] == [raw] and page.warnings


def test_a_broken_element_in_the_middle_is_read_field_by_field_and_the_rest_kept() -> None:
    raw = (
        '[{"bbox": [10, 10, 200, 60], "category": "Text", "text": "Before."}, '
        '{"bbox": [10, 70, 200 120], "category": "Text", "text": "Broken box syntax."}, '
        '{"bbox": [10, 130, 200, 180], "category": "Text", "text": "After."}]'
    )
    output = parse_layout(raw)
    assert [e.text for e in output.elements] == ["Before.", "Broken box syntax.", "After."]
    assert output.elements[1].bbox == (10, 70, 200, 120)
    assert not output.truncated
    assert any("broken JSON" in w for w in output.warnings)


# --- shapes of the answer ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "wrapper",
    [
        "```json\n{body}\n```",
        "```\n{body}\n```\n",
        "```json\n{body}",  # the closing fence never came
        '{{"layout": {body}}}',  # a dict wrapping the list
        "Here is the layout:\n{body}",  # chatter before the list
    ],
)
def test_fenced_or_wrapped_json_is_read(wrapper: str) -> None:
    body = "[" + ", ".join([_element("One."), _element("Two.", top=200)]) + "]"
    output = parse_layout(wrapper.format(body=body))
    assert [e.text for e in output.elements] == ["One.", "Two."]
    assert not output.truncated


def test_a_single_object_instead_of_a_list_is_one_element() -> None:
    output = parse_layout('{"bbox": [1, 2, 3, 4], "category": "Title", "text": "Only one"}')
    assert [(e.category, e.text) for e in output.elements] == [("Title", "Only one")]


def test_odd_fields_are_normalised_and_text_is_kept() -> None:
    raw = json.dumps(
        [
            {"bbox": "[300, 400, 100, 200]", "category": "section_header", "text": "Swapped corners"},
            {"bbox": ["10", "20", "30", "40"], "category": "Picture"},
            {"bbox": [1, 2, 3], "category": "Text", "text": "Bad box, text kept"},
            {"bbox": [5, 5, 50, 50], "category": "Marginalia", "text": "Unknown category"},
            {"bbox": [5, 60, 50, 90], "category": "Text", "text": 42},
        ]
    )
    output = parse_layout(raw)
    assert [(e.bbox, e.category, e.text) for e in output.elements] == [
        ((100, 200, 300, 400), "Section-header", "Swapped corners"),
        ((10, 20, 30, 40), "Picture", ""),
        (None, "Text", "Bad box, text kept"),
        ((5, 5, 50, 50), "Text", "Unknown category"),
        ((5, 60, 50, 90), "Text", "42"),
    ]
    assert any("'Marginalia'" in w for w in output.warnings)
    assert any("no usable bbox" in w for w in output.warnings)


def test_boxes_out_of_range_are_clamped_to_the_page() -> None:
    raw = json.dumps(
        [
            {"bbox": [-20, 2000, 1800, 2300], "category": "Page-footer", "text": "over the edge"},
            {"bbox": [1800, 2300, 1900, 2400], "category": "Text", "text": "fully outside"},
        ]
    )
    page = _layout(raw)
    assert page.blocks[0].bbox == pytest.approx((0, 2000 * PAGE[1] / RESIZED[1], PAGE[0], PAGE[1]))
    assert page.blocks[1].bbox is None and page.blocks[1].text == "fully outside"


def test_layout_only_answers_give_boxes_without_text() -> None:
    raw = '[{"bbox": [10, 10, 500, 80], "category": "Title"}, {"bbox": [10, 100, 500, 400], "category": "Text"}]'
    reading = read_page(raw, Task.LAYOUT, resized_size=RESIZED, page_size=PAGE)
    assert [(b.category, b.text) for b in reading.blocks] == [("Title", ""), ("Text", "")]
    assert all(b.bbox is not None for b in reading.blocks)


def test_plain_text_answers_become_one_block() -> None:
    raw = "```markdown\n# Заголовок\n\nParagraph with $\\alpha$.\n```"
    reading = read_page(raw, Task.TEXT, resized_size=RESIZED, page_size=PAGE)
    assert [(b.bbox, b.text) for b in reading.blocks] == [(None, "# Заголовок\n\nParagraph with $\\alpha$.")]


def test_region_answers_carry_the_users_box_in_page_pixels() -> None:
    reading = read_page(
        "Text in the box", Task.REGION, resized_size=RESIZED, page_size=PAGE, region=(900, 500, 100, 2500)
    )
    assert [(b.bbox, b.text) for b in reading.blocks] == [((100, 500, 900, PAGE[1]), "Text in the box")]


# --- coordinates and resizing ---------------------------------------------------------------------


def test_to_page_bbox_scales_and_clamps() -> None:
    assert to_page_bbox((0, 0, 1708, 2212), RESIZED, PAGE) == (0, 0, 1700, 2200)
    assert to_page_bbox((854, 1106, 2000, 3000), RESIZED, PAGE) == (850, 1100, 1700, 2200)
    assert to_page_bbox((100, 100, 100, 300), RESIZED, PAGE) is None  # no width


def test_a_region_in_page_pixels_maps_into_the_resized_image_and_into_the_prompt() -> None:
    box = to_resized_box((850, 1100, 1700, 2200), PAGE, RESIZED)
    assert box == (854, 1106, 1708, 2212)
    assert to_resized_box((-5, 1100, 99999, 1000), PAGE, RESIZED) == (0, 1005, 1708, 1106)
    assert prompt_for(Task.REGION, box) == PROMPT_GROUNDING_OCR + "[854, 1106, 1708, 2212]"


def test_a_region_is_truncated_into_the_resized_image_as_the_official_parser_does() -> None:
    """The official pre_process_bboxes divides by the page/resized scale and truncates:
    120 px on this page is 120.56 resized, so the prompt says 120 (rounding said 121)."""
    assert to_resized_box((120, 250, 1000, 1500), PAGE, RESIZED) == (120, 251, 1004, 1508)
    scale_x, scale_y = PAGE[0] / RESIZED[0], PAGE[1] / RESIZED[1]
    for box in [(120, 250, 1000, 1500), (7.9, 13.5, 333.3, 444.4), (1, 1, 1699, 2199)]:
        expected = tuple(int(float(v) / s) for v, s in zip(box, (scale_x, scale_y) * 2, strict=True))
        assert to_resized_box(box, PAGE, RESIZED) == expected


def test_smart_resize_keeps_multiples_of_28_within_the_pixel_bounds() -> None:
    assert smart_resize(1700, 2200) == RESIZED
    for width, height in [(1700, 2200), (2480, 3508), (10000, 14000), (30, 40), (5000, 200), (27, 27)]:
        w, h = smart_resize(width, height)
        assert w % 28 == 0 and h % 28 == 0
        assert MIN_PIXELS <= w * h <= MAX_PIXELS
        assert abs(w / h - width / height) / (width / height) < 0.25
    w, h = smart_resize(2480, 3508, max_pixels=1_000_000)
    assert w * h <= 1_000_000 and w % 28 == 0 and h % 28 == 0
    with pytest.raises(ValueError, match="too long and thin"):
        smart_resize(30000, 100)


def test_normalize_bbox_rejects_what_is_not_four_numbers() -> None:
    assert normalize_bbox([1, 2, 3, 4]) == (1, 2, 3, 4)
    assert normalize_bbox("1, 2, 3, 4") == (1, 2, 3, 4)
    for bad in ([1, 2, 3], ["a", 1, 2, 3], None, {"x": 1}, [True, 1, 2, 3]):
        assert normalize_bbox(bad) is None


# --- prompts -----------------------------------------------------------------------------------------


def test_each_task_uses_its_official_prompt_mode() -> None:
    assert prompt_for(Task.LAYOUT_TEXT) == PROMPT_LAYOUT_ALL_EN
    assert prompt_for(Task.LAYOUT) == PROMPT_LAYOUT_ONLY_EN
    assert prompt_for(Task.TEXT) == PROMPT_OCR == "Extract the text content from this image."
    assert PROMPT_LAYOUT_ALL_EN.startswith("Please output the layout information from the PDF image")
    assert PROMPT_LAYOUT_ALL_EN.endswith("The entire output must be a single JSON object.\n")
    assert "['Caption', 'Footnote', 'Formula', 'List-item', 'Page-footer', 'Page-header', 'Picture'," in (
        PROMPT_LAYOUT_ONLY_EN
    )
    with pytest.raises(UnsupportedTaskError, match="box"):
        prompt_for(Task.REGION)
    with pytest.raises(UnsupportedTaskError, match="markdown"):
        prompt_for(Task.MARKDOWN)


def test_every_category_has_a_distinct_colour() -> None:
    assert set(CATEGORY_COLORS) == set(CATEGORIES)
    assert len(set(CATEGORY_COLORS.values())) == len(CATEGORIES)
    assert all(len(c) == 7 and c.startswith("#") for c in CATEGORY_COLORS.values())
