"""The dots models' prompt modes, the tasks they serve, and their resize rule.

The prompt strings are the exact ones the models were trained on (see
shared/reference/models.md); a single changed character measurably hurts their output,
so they are kept verbatim here and nowhere else. Which modes a model knows is a row of
``dots_families`` (dots.mocr adds web parsing and scene spotting to dots.ocr's four).
"""

from __future__ import annotations

from collections.abc import Mapping

from ..i18n import LocalizedError, message
from ..models.resize import fit_to_grid
from .base import Task

CATEGORY_LIST = "['Caption', 'Footnote', 'Formula', 'List-item', 'Page-footer', 'Page-header', 'Picture', 'Section-header', 'Table', 'Text', 'Title']"  # noqa: E501

PROMPT_LAYOUT_ALL_EN = f"""Please output the layout information from the PDF image, including each layout element's bbox, its category, and the corresponding text content within the bbox.

1. Bbox format: [x1, y1, x2, y2]

2. Layout Categories: The possible categories are {CATEGORY_LIST}.

3. Text Extraction & Formatting Rules:
    - Picture: For the 'Picture' category, the text field should be omitted.
    - Formula: Format its text as LaTeX.
    - Table: Format its text as HTML.
    - All Others (Text, Title, etc.): Format their text as Markdown.

4. Constraints:
    - The output text must be the original text from the image, with no translation.
    - All layout elements must be sorted according to human reading order.

5. Final Output: The entire output must be a single JSON object.
"""  # noqa: E501

PROMPT_LAYOUT_ONLY_EN = (
    "Please output the layout information from this PDF image, including each layout's bbox and its category. "
    "The bbox should be in the format [x1, y1, x2, y2]. "
    f"The layout categories for the PDF document include {CATEGORY_LIST}. "
    "Do not output the corresponding text. The layout result should be in JSON format."
)

PROMPT_OCR = "Extract the text content from this image."

PROMPT_GROUNDING_OCR = (
    "Extract text from the given bounding box on the image (format: [x1, y1, x2, y2]).\nBounding Box:\n"
)

# dots.mocr only: a web page screenshot read as layout JSON (its parser reads it as the layout modes' answer)
PROMPT_WEB_PARSING = "Parsing the layout info of this webpage image with format json:\n"

# dots.mocr only: text in a photo, one "(x1, y1), (x2, y2), (x3, y3), (x4, y4) text" per spotted line
PROMPT_SCENE_SPOTTING = "Detect and recognize the text in the image."

# dots.ocr's official names of the modes, by task (the names appear in job files and logs).
PROMPT_MODES: dict[Task, str] = {
    Task.LAYOUT_TEXT: "prompt_layout_all_en",
    Task.LAYOUT: "prompt_layout_only_en",
    Task.TEXT: "prompt_ocr",
    Task.REGION: "prompt_grounding_ocr",
}
PROMPTS: dict[str, str] = {
    "prompt_layout_all_en": PROMPT_LAYOUT_ALL_EN,
    "prompt_layout_only_en": PROMPT_LAYOUT_ONLY_EN,
    "prompt_ocr": PROMPT_OCR,
    "prompt_grounding_ocr": PROMPT_GROUNDING_OCR,
    "prompt_web_parsing": PROMPT_WEB_PARSING,
    "prompt_scene_spotting": PROMPT_SCENE_SPOTTING,
}
TASKS: tuple[Task, ...] = tuple(PROMPT_MODES)

# Tasks whose output is a JSON list of layout elements (the others answer in plain text or, SCENE, in quads).
LAYOUT_TASKS = (Task.LAYOUT_TEXT, Task.LAYOUT, Task.WEB)

# Layout box colours for the page view and its legend, one per category (hex, readable on white).

# Resize rule: both sides multiples of the patch size × merge size, total pixels kept in bounds.
RESIZE_FACTOR = 28
MIN_PIXELS = 3136
MAX_PIXELS = 11_289_600


class UnsupportedTaskError(LocalizedError, ValueError):
    pass


def prompt_for(
    task: Task, region: tuple[int, int, int, int] | None = None, modes: Mapping[Task, str] = PROMPT_MODES
) -> str:
    """The prompt for ``task`` among ``modes`` (a model's task -> mode table, dots.ocr's by default);
    REGION needs ``region`` in the resized image's pixels."""
    try:
        mode = modes[task]
    except KeyError:
        supported = ", ".join(t.value for t in modes)
        raise UnsupportedTaskError(message("core.dots.cannot_do", task=repr(task.value), tasks=supported)) from None
    prompt = PROMPTS[mode]
    if task is Task.REGION:
        if region is None:
            raise UnsupportedTaskError(message("core.dots.region_needs_box"))
        prompt += "[" + ", ".join(str(int(v)) for v in region) + "]"
    return prompt


def smart_resize(
    width: int, height: int, *, min_pixels: int = MIN_PIXELS, max_pixels: int = MAX_PIXELS, factor: int = RESIZE_FACTOR
) -> tuple[int, int]:
    """(width, height) the model sees: both multiples of ``factor``, as close to the original
    aspect ratio as the rounding allows, the area within [min_pixels, max_pixels]."""
    return fit_to_grid(width, height, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
