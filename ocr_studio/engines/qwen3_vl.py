"""Qwen3-VL (2B / 4B / 8B Instruct) as an OCR engine: plain text, Markdown, and text with boxes.

Pages are resized to multiples of 32 (patch 16 × merge 2) within a pixel budget,
batched with left padding and decoded greedily by ``models.generation`` (static
cache + CUDA graphs on a GPU). Boxes come back as ``bbox_2d`` in relative 0–1000
coordinates and are mapped to page pixels; output that is not valid JSON is
salvaged element by element, and never dropped.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import i18n
from ..i18n import message
from ..models.families import qwen3_vl_size
from ..models.resize import fit_to_grid
from ..recognition import EngineError, EngineInfo, PreparedPage, RecognizeRequest, Task
from ..results import Block, PageResult
from ..runtime.local import VisionEngine, stop_warning, token_streamer

if TYPE_CHECKING:
    from PIL import Image

    from ..documents import Page

log = logging.getLogger(__name__)

FACTOR = 32  # vision patch 16 × spatial merge 2: image sides must be multiples of this
# ~2.5 MP keeps 8–9 pt text of a 200-DPI Letter/A4 page readable (the page is scaled to ~82 %)
# at ~2,450 visual tokens; settings.max_pixels overrides it.
DEFAULT_MAX_PIXELS = 2_500_000
MIN_PIXELS = 64 * FACTOR * FACTOR
STREAM_EVERY = 8  # tokens between two streamed text updates

PROMPTS = {
    Task.TEXT: (
        "Read all the text in the image. Output it in natural reading order, line by line, "
        "exactly as written, without translating, summarising or commenting."
    ),
    Task.MARKDOWN: (
        "Convert this page to Markdown. Keep the reading order and the original text without translation. "
        "Use # headings for titles and section headers, Markdown lists for lists, HTML <table> markup for "
        "tables, and LaTeX between $$ for formulas. Leave out nothing and add nothing."
    ),
    Task.LAYOUT_TEXT: (
        "Find every layout element on this page (title, section header, text paragraph, list item, table, "
        "formula, caption, footnote, page header, page footer, picture) in reading order. Output only a JSON "
        'list, one object per element: {"bbox_2d": [x1, y1, x2, y2], "category": "...", "text": "..."}. '
        "Coordinates are relative, 0 to 1000. Category is one of Title, Section-header, Text, List-item, "
        "Table, Formula, Caption, Footnote, Page-header, Page-footer, Picture. Text is the element's original "
        "text: HTML for tables, LaTeX for formulas, empty for pictures."
    ),
}
CATEGORY_ALIASES = {
    "title": "Title",
    "section-header": "Section-header",
    "section_header": "Section-header",
    "header": "Section-header",
    "heading": "Section-header",
    "text": "Text",
    "paragraph": "Text",
    "list-item": "List-item",
    "list_item": "List-item",
    "list": "List-item",
    "table": "Table",
    "formula": "Formula",
    "equation": "Formula",
    "caption": "Caption",
    "footnote": "Footnote",
    "page-header": "Page-header",
    "page_header": "Page-header",
    "page-footer": "Page-footer",
    "page_footer": "Page-footer",
    "picture": "Picture",
    "figure": "Picture",
    "image": "Picture",
}


# ----------------------------------------------------------------------------- sizes


def fit_size(width: int, height: int, max_pixels: int, min_pixels: int = MIN_PIXELS) -> tuple[int, int]:
    """(width, height) rounded to multiples of 32 with the area inside [min_pixels, max_pixels],
    aspect ratio kept as closely as the rounding allows."""
    return fit_to_grid(width, height, factor=FACTOR, min_pixels=min_pixels, max_pixels=max_pixels, max_aspect=None)


# ----------------------------------------------------------------------------- output parsing


def _strip_fences(text: str) -> str:
    text = text.strip()
    fence = re.match(r"^```[a-zA-Z]*\s*\n?(.*?)(?:\n?```\s*)?$", text, re.DOTALL)
    return fence.group(1).strip() if fence else text


def _json_objects(text: str) -> list[dict[str, Any]]:
    """Every complete JSON object in ``text`` (a truncated list keeps its complete items)."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    index = text.find("{")
    while index != -1:
        try:
            value, end = decoder.raw_decode(text, index)
        except ValueError:
            index = text.find("{", index + 1)
            continue
        if isinstance(value, dict):
            found.append(value)
        index = text.find("{", end)
    return found


def parse_layout(raw: str, width: int, height: int) -> tuple[list[Block], list[str]]:
    """Blocks from the model's grounding output, bbox_2d (0–1000) mapped to page pixels.
    Returns (blocks, warnings); unparseable output becomes one Text block with the raw text."""
    body = _strip_fences(raw)
    items: list[Any] | None = None
    try:
        value = json.loads(body)
        items = value if isinstance(value, list) else [value]
    except ValueError:
        items = None
    warnings: list[str] = []
    if items is None:
        items = _json_objects(body)
        if items:
            warnings.append(i18n.text("core.vision.json_malformed"))
    blocks: list[Block] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        bbox = _bbox(item.get("bbox_2d", item.get("bbox")), width, height)
        category = CATEGORY_ALIASES.get(str(item.get("category") or item.get("label") or "text").strip().lower())
        text = item.get("text", item.get("content", ""))
        blocks.append(Block(bbox=bbox, category=category or "Text", text="" if text is None else str(text)))
    if not blocks and raw.strip():
        warnings.append(i18n.text("core.vision.not_json"))
        blocks = [Block(bbox=None, category="Text", text=raw.strip())]
    return blocks, warnings


def _bbox(value: Any, width: int, height: int) -> tuple[float, float, float, float] | None:
    if not isinstance(value, list | tuple) or len(value) != 4:
        return None
    try:
        x1, y1, x2, y2 = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    sx, sy = width / 1000.0, height / 1000.0

    def clamp(v: float, limit: int) -> float:
        return round(min(max(v, 0.0), float(limit)), 1)

    return (
        clamp(min(x1, x2) * sx, width),
        clamp(min(y1, y2) * sy, height),
        clamp(max(x1, x2) * sx, width),
        clamp(max(y1, y2) * sy, height),
    )


def text_blocks(raw: str, task: Task) -> list[Block]:
    """Plain text / Markdown output as one block (the page's whole text)."""
    text = _strip_fences(raw) if task == Task.MARKDOWN else raw.strip()
    return [Block(bbox=None, category="Text", text=text)] if text else []


# ----------------------------------------------------------------------------- the loaded model


@dataclass
class LoadedQwen:
    """What the model manager keeps for one key: model, processor and its fast generator."""

    model: Any
    processor: Any
    generator: Any  # models.generation.FastGenerator
    eos_token_ids: tuple[int, ...]
    pad_token_id: int
    weight_bytes: int


class Qwen3VLEngine(VisionEngine):
    name = "qwen3-vl"
    label = "Qwen3-VL 2B"
    model_name = "Qwen3-VL"
    default_model = "Qwen/Qwen3-VL-2B-Instruct"
    model_setting = "qwen_model"  # the setting naming the checkpoint (registry row); the 4B and 8B are fixed

    @property
    def min_vram_gb(self) -> float:
        """Below this total VRAM the engine is offered with a warning (models/families.py)."""
        return qwen3_vl_size(self.model_id).min_vram_gb

    @property
    def model_id(self) -> str:
        return self.settings.qwen_model if type(self) is Qwen3VLEngine else self.default_model

    @property
    def max_pixels(self) -> int:
        return int(self.settings.max_pixels) if self.settings.max_pixels else DEFAULT_MAX_PIXELS

    # -- Engine interface

    def info(self) -> EngineInfo:
        reason = ""
        gpu = self.gpu()
        if not gpu.available or self.settings.device == "cpu":
            reason = i18n.text("core.vision.no_gpu_will_be_slow")
        elif self.min_vram_gb and gpu.total_memory_bytes < self.min_vram_gb * 1024**3:
            reason = i18n.text(
                "core.vision.needs_vram",
                model=self.label,
                needed=f"{self.min_vram_gb:.0f}",
                has=f"{gpu.total_memory_bytes / 1024**3:.0f}",
            )
        return EngineInfo(
            name=self.name,
            label=self.label,
            tasks=(Task.TEXT, Task.MARKDOWN, Task.LAYOUT_TEXT),
            needs_gpu=True,
            available=True,
            reason=reason,
            default_task=Task.MARKDOWN,
            runs="local",
            model_id=self.model_id,
            model_setting=self.model_setting,
        )

    def settings_key(self) -> dict[str, object]:
        key: dict[str, object] = {
            "engine": self.name,
            "model": self.model_id,
            "max_pixels": self.max_pixels,
            "max_new_tokens": self.max_new_tokens,
        }
        if self.loop_penalty is None:
            key["loop_retry"] = False  # a looping page reads differently; named only when off (keys stay as they were)
        return key

    @property
    def kv_bytes_per_token(self) -> int:  # type: ignore[override]
        return qwen3_vl_size(self.model_id).kv_bytes_per_token

    @property
    def weight_bytes(self) -> int:  # type: ignore[override]
        return qwen3_vl_size(self.model_id).weight_bytes

    def plan_prompt_tokens(self) -> int:
        return self.max_pixels // (FACTOR * FACTOR) + 200

    def plan_prefill_bytes(self) -> int:
        return self.max_pixels * qwen3_vl_size(self.model_id).prefill_bytes_per_pixel

    def batch_size(self, task: Task) -> int:
        tokens = self.max_pixels // (FACTOR * FACTOR) + 200 + self.max_new_tokens
        per_page = tokens * self.kv_bytes_per_token + self.plan_prefill_bytes()  # KV cache + prefill activations
        return self.batch_pages_for_memory(per_page, self.weight_bytes)

    # -- remote runtime: the same prompt and parser, the model on a server (runtime/remote.py)

    def prepare(self, page: Page, request: RecognizeRequest, max_pixels: int | None = None) -> PreparedPage:
        """The one prepare of Qwen3-VL, for both runtimes: the page resized to multiples of 32 within
        the pixel budget (``max_pixels``: the local runtime's, lower after running out of memory),
        and the task's prompt."""
        if request.task not in PROMPTS:
            raise EngineError(
                message("core.vision.cannot_do_task", model=self.label, task=message(f"core.task.{request.task.value}"))
            )
        budget = self.max_pixels if max_pixels is None else max_pixels
        image = page.image.convert("RGB")
        size = fit_size(image.width, image.height, budget)
        resized = image.resize(size) if size != image.size else image
        return PreparedPage(page.number, image.size, resized, PROMPTS[request.task], context=request.task)

    def parse(
        self, prepared, text: str, *, stop_reason: str, request: RecognizeRequest, warnings: Sequence[str] = ()
    ) -> PageResult:
        """The model's answer for one prepared page, parsed as the local path parses it
        (``stop_reason``: "eos", "max_tokens" or "repetition", as the local generator says)."""
        return self._page_result(prepared.page_number, prepared.page_size, text, stop_reason, request, warnings)

    def _page_result(
        self,
        page_number: int,
        page_size: tuple[int, int],
        text: str,
        stop_reason: str,
        request: RecognizeRequest,
        warnings: Sequence[str] = (),
        seconds: float = 0.0,
    ) -> PageResult:
        """One page's answer as blocks (``bbox_2d`` mapped to page pixels), with why it may be incomplete."""
        width, height = page_size
        notes = list(warnings)
        stopped = stop_warning(stop_reason, self.max_new_tokens)
        if stopped:
            notes.append(stopped)
        if request.task == Task.LAYOUT_TEXT:
            blocks, parse_warnings = parse_layout(text, width, height)
            notes += parse_warnings
        else:
            blocks = text_blocks(text, request.task)
        return PageResult(
            page_number=page_number,
            width=width,
            height=height,
            blocks=blocks,
            engine=self.name,
            task=request.task.value,
            truncated=stopped is not None,
            warnings=notes,
            raw_text=text,
            seconds=seconds,
        )

    # -- the model

    def _load_model(self, folder, key, profile) -> LoadedQwen:
        return _load_qwen(folder, key, profile)

    def _page_inputs(self, loaded: LoadedQwen, page: Page, request: RecognizeRequest, max_pixels: int):
        prepared = self.prepare(page, request, max_pixels)
        return model_inputs(loaded.processor, [prepared.image], prepared.prompt, max_pixels), None

    def _tokens_result(self, loaded, page, context, raw, stop_reason, request, warnings, seconds) -> PageResult:
        return self._page_result(page.number, page.image.size, raw, stop_reason, request, warnings, seconds)

    def _decode(self, loaded: LoadedQwen, tokens: list[int]) -> str:
        return loaded.processor.tokenizer.decode(tokens, skip_special_tokens=True)

    def _run_batch(
        self, loaded: LoadedQwen, pages: list[Page], request: RecognizeRequest, stream, max_pixels: int
    ) -> list[PageResult]:
        from ..models.generation import GenerationConfig

        started = time.perf_counter()
        prepared = [self.prepare(page, request, max_pixels) for page in pages]
        inputs = model_inputs(loaded.processor, [p.image for p in prepared], PROMPTS[request.task], max_pixels)
        config = GenerationConfig(
            max_new_tokens=self.max_new_tokens,
            eos_token_ids=loaded.eos_token_ids,
            pad_token_id=loaded.pad_token_id,
            loop_retry=self.loop_penalty,
        )
        tokenizer = loaded.processor.tokenizer
        on_tokens = token_streamer(lambda tokens: tokenizer.decode(tokens, skip_special_tokens=True), stream)
        result = loaded.generator.generate(inputs, config, on_tokens)
        seconds = (time.perf_counter() - started) / len(pages)
        results = []
        for row, page in enumerate(pages):
            raw = tokenizer.decode(result.tokens[row], skip_special_tokens=True)
            if row == 0 and stream is not None:
                stream(raw)  # the final text, so the stream always ends on what is kept
            warnings = self._with_retry_note(result.warnings, result.loop_retries[row])
            results.append(
                self._page_result(
                    page.number, page.image.size, raw, result.stop_reasons[row], request, warnings, seconds
                )
            )
        return results


class Qwen3VL4BEngine(Qwen3VLEngine):
    name = "qwen3-vl-4b"
    label = "Qwen3-VL 4B"
    default_model = "Qwen/Qwen3-VL-4B-Instruct"


class Qwen3VL8BEngine(Qwen3VLEngine):
    name = "qwen3-vl-8b"
    label = "Qwen3-VL 8B"
    default_model = "Qwen/Qwen3-VL-8B-Instruct"


# ----------------------------------------------------------------------------- helpers


def build_inputs(processor: Any, images: list[Image.Image], prompt: str, max_pixels: int) -> dict[str, Any]:
    """Left-padded processor inputs for a batch of page images, each resized to multiples of 32."""
    resized = []
    for image in images:
        w, h = fit_size(image.width, image.height, max_pixels)
        resized.append(image.convert("RGB").resize((w, h)) if (w, h) != image.size else image.convert("RGB"))
    return model_inputs(processor, resized, prompt, max_pixels)


def model_inputs(processor: Any, resized: list[Image.Image], prompt: str, max_pixels: int) -> dict[str, Any]:
    """Left-padded processor inputs for a batch of pages already resized (``prepare``)."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    processor.tokenizer.padding_side = "left"
    # bounds that let every page through as resized above: the processor must not resize again
    # (a page under a max_pixels set below MIN_PIXELS stays under it, and a batch never changes a page)
    areas = [im.width * im.height for im in resized]
    size = {"shortest_edge": min(areas), "longest_edge": max(max(areas), max_pixels)}
    return dict(processor(text=[text] * len(resized), images=resized, padding=True, return_tensors="pt", size=size))


def _load_qwen(folder, key, profile) -> LoadedQwen:
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from ..models.generation import FastGenerator, GenerationConfig
    from ..models.stop_tokens import read_stop_tokens

    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(
        folder, dtype=getattr(torch, key.dtype), attn_implementation=key.attention
    )
    model = model.to(profile.device).eval()
    tokenizer = processor.tokenizer
    stop = read_stop_tokens(
        folder,
        fallback_eos=(tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.eos_token_id),
        fallback_pad=tokenizer.pad_token_id,
    )
    eos_ids, pad = stop.eos_token_ids, stop.pad_token_id
    path = "graphs" if profile.device == "cuda" and profile.compiled_decode else "eager"
    # graphs: the decode step (fused, with Triton kernels when the backend is inductor) replayed as a CUDA graph
    generator = FastGenerator(model, path=path, triton=profile.compile_backend == "inductor")
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    loaded = LoadedQwen(model, processor, generator, eos_ids, pad, weight_bytes)
    if profile.device == "cuda" and path == "graphs":
        # compile/capture now, at load, instead of on the user's first page
        from PIL import Image

        log.info("Preparing fast decoding for %s (first time compiles; later launches reuse the cache)", key.model_id)
        dummy = build_inputs(processor, [Image.new("RGB", (256, 256), "white")], PROMPTS[Task.TEXT], 256 * 256)
        generator.warm_up(dummy, GenerationConfig(max_new_tokens=32, eos_token_ids=eos_ids, pad_token_id=pad))
    return loaded
