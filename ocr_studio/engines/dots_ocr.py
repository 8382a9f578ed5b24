"""dots.ocr and dots.mocr as engines: layout + text, layout only, plain text, text in a region
(and, dots.mocr, web pages and text in photos).

One engine class serves the whole dots family: each model is a row of ``dots_families``
(name, checkpoint setting, prompt modes); the architecture, resize, parser and runtime are shared.

Runs on our own model implementation (``models.dots_ocr``), so no remote code is ever
trusted. Each page (rendered at 200 DPI by the job) is resized once to multiples of 28
within the pixel budget, sent with the official prompt of its task, decoded greedily by
``models.generation`` (static cache + CUDA graphs on a GPU, several pages per batch), and
its answer read by ``dots_parsing`` with every box mapped back to page-image pixels.

Token budget: dots.ocr writes a whole page as JSON, and a dense page (tables, two
columns) runs to 6,000–12,000 tokens, so the generic default of ``max_new_tokens`` (4,096,
right for Qwen3-VL) would cut many pages. When the setting is left at that default, dots.ocr
uses 16,384 (the published vLLM demo's value); any other value is used as it is. The
repetition guard stops a looping page early, so the large budget costs nothing on normal
pages beyond the static KV cache (28 KB per token).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import i18n
from ..models.families import DOTS
from ..recognition import EngineError, EngineInfo, PreparedPage, RecognizeRequest, Task
from ..results import PageResult
from ..runtime.local import VisionEngine, stop_warning, token_streamer
from ..settings import Settings
from .dots_families import DOTS_MOCR, DOTS_OCR, DotsFamily
from .dots_parsing import read_page, to_resized_box
from .dots_prompts import MAX_PIXELS, MIN_PIXELS, RESIZE_FACTOR, UnsupportedTaskError, prompt_for, smart_resize

if TYPE_CHECKING:
    from ..documents import Page

log = logging.getLogger(__name__)

NAME = DOTS_OCR.engine
LABEL = DOTS_OCR.label
DOTS_MAX_NEW_TOKENS = 16384  # used when settings.max_new_tokens is left at its generic default
MAX_BATCH = 8
TYPICAL_PAGE_PIXELS = 3_800_000  # a Letter/A4 page at 200 DPI after resizing, for memory estimates
KV_BYTES_PER_TOKEN = DOTS.kv_bytes_per_token  # models/families.py: layers × (k, v) × kv heads × head_dim × 2
WEIGHT_BYTES = DOTS.weight_bytes  # ~3.0 B parameters in bf16
PREFILL_BYTES_PER_PIXEL = DOTS.prefill_bytes_per_pixel  # 42-layer vision encoder, then the prompt
# what dots.ocr's own vLLM client puts in front of the prompt (the image itself goes as image_url)
REMOTE_IMAGE_PLACEHOLDER = "<|img|><|imgpad|><|endofimg|>"


def _generic_max_new_tokens() -> int:
    return next(f.default for f in dataclasses.fields(Settings) if f.name == "max_new_tokens")  # type: ignore[return-value]


@dataclass
class LoadedDots:
    """What the model manager keeps for one key: model, processor and its fast generator."""

    model: Any
    processor: Any  # models.dots_ocr.DotsOCRProcessor
    generator: Any  # models.generation.FastGenerator
    eos_token_ids: tuple[int, ...]
    pad_token_id: int


@dataclass(frozen=True)
class ResizeBounds:
    """The pixel bounds and grid of the processor that will see the page: the loaded checkpoint's
    (local runtime) or the published checkpoint's, which a server's processor uses (remote)."""

    min_pixels: int = MIN_PIXELS
    max_pixels: int = MAX_PIXELS
    factor: int = RESIZE_FACTOR

    @classmethod
    def of(cls, processor: Any) -> ResizeBounds:
        return cls(
            int(getattr(processor, "min_pixels", MIN_PIXELS)),
            int(getattr(processor, "max_pixels", MAX_PIXELS)),
            int(getattr(processor, "factor", RESIZE_FACTOR)),
        )


PUBLISHED_BOUNDS = ResizeBounds()


class DotsOcrEngine(VisionEngine):
    """A dots-family model (``family``: dots.ocr here; a subclass names another row)."""

    family: DotsFamily = DOTS_OCR

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.family.engine

    @property
    def label(self) -> str:  # type: ignore[override]
        return self.family.label

    @property
    def model_name(self) -> str:  # type: ignore[override]
        return self.family.model_name

    # -- configuration

    @property
    def model_id(self) -> str:
        return str(getattr(self.settings, self.family.setting))

    @property
    def model_setting(self) -> str:
        """The setting that points at this model's checkpoint (named in "not downloaded" advice)."""
        return self.family.setting

    @property
    def max_pixels(self) -> int:
        return int(self.settings.max_pixels) if self.settings.max_pixels else MAX_PIXELS

    @property
    def max_new_tokens(self) -> int:
        wanted = int(self.settings.max_new_tokens)
        return DOTS_MAX_NEW_TOKENS if wanted == _generic_max_new_tokens() else max(1, wanted)

    # -- Engine interface

    def info(self) -> EngineInfo:
        gpu = self.gpu()
        reason = ""
        if not gpu.available or self.settings.device == "cpu":
            reason = i18n.text("core.vision.no_gpu_slow")
        if self.family.licence:  # shown where the model is chosen (the UI's engine note, doctor)
            licence = i18n.text(self.family.licence)
            reason = i18n.text("mocr.note_and_licence", note=reason, licence=licence) if reason else licence
        return EngineInfo(
            name=self.name,
            label=self.label,
            tasks=self.family.tasks,
            needs_gpu=True,
            available=True,
            reason=reason,
            default_task=Task.LAYOUT_TEXT,
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

    kv_bytes_per_token = KV_BYTES_PER_TOKEN
    weight_bytes = WEIGHT_BYTES

    def plan_prompt_tokens(self) -> int:
        return min(self.max_pixels, TYPICAL_PAGE_PIXELS) // (28 * 28) + 400

    def plan_prefill_bytes(self) -> int:
        return min(self.max_pixels, TYPICAL_PAGE_PIXELS) * PREFILL_BYTES_PER_PIXEL

    def batch_size(self, task: Task) -> int:
        pixels = min(self.max_pixels, TYPICAL_PAGE_PIXELS)
        tokens = pixels // (28 * 28) + 400 + self.max_new_tokens
        per_page = tokens * KV_BYTES_PER_TOKEN + pixels * 150  # KV cache + vision/prefill activations
        return self.batch_pages_for_memory(per_page, WEIGHT_BYTES, MAX_BATCH)

    def _check(self, request: RecognizeRequest) -> None:
        super()._check(request)
        if request.task is Task.REGION and request.region is None:
            raise EngineError(i18n.text("core.vision.region_needs_box").message)

    def _load_model(self, folder, key, profile) -> LoadedDots:
        return _load_dots(folder, key, profile)

    # -- recognition

    def prepare(
        self,
        page: Page,
        request: RecognizeRequest,
        max_pixels: int | None = None,
        bounds: ResizeBounds = PUBLISHED_BOUNDS,
    ) -> PreparedPage:
        """The one prepare of the dots family, for both runtimes: the page resized once to what the
        model sees (within ``bounds``, the processor's, and ``max_pixels``, ours), and the task's
        official prompt (a region goes into it in the resized image's pixels). The local runtime
        gives image and prompt to the processor; the remote one sends the prompt behind the image
        placeholder, as dots.ocr's own vLLM client does, so the server's chat template builds the
        token sequence the local processor builds. Raises _PageError for a page the model cannot
        take (e.g. an impossible aspect ratio), EngineError for a task it cannot do."""
        image = page.image
        page_size = image.size
        low = max(MIN_PIXELS, bounds.min_pixels)
        high = min(self.max_pixels if max_pixels is None else max_pixels, bounds.max_pixels)
        try:
            size = smart_resize(*page_size, min_pixels=min(low, high), max_pixels=high, factor=bounds.factor)
        except ValueError as exc:
            raise _PageError(str(exc)) from exc
        from PIL import Image

        resized = image if size == page_size else image.resize(size, Image.Resampling.BICUBIC)
        # what the processor makes of it (its own bounds again): the pixels the model's boxes are in
        resized_size = smart_resize(
            *size, min_pixels=bounds.min_pixels, max_pixels=bounds.max_pixels, factor=bounds.factor
        )
        region = to_resized_box(request.region, page_size, resized_size) if request.region is not None else None
        try:
            prompt = prompt_for(request.task, region, self.family.modes)
        except UnsupportedTaskError as exc:
            raise EngineError(exc.message) from exc
        return PreparedPage(
            page.number, page_size, resized, prompt, context=resized_size, server_prefix=REMOTE_IMAGE_PLACEHOLDER
        )

    def _page_inputs(self, loaded: LoadedDots, page: Page, request: RecognizeRequest, max_pixels: int):
        try:
            prepared = self.prepare(page, request, max_pixels, ResizeBounds.of(loaded.processor))
        except _PageError as exc:  # one unreadable page must not fail the others
            return self._unreadable(page, request, exc)
        return dict(loaded.processor([prepared.image], [prepared.prompt])), prepared

    def _tokens_result(self, loaded, page, context, raw, stop_reason, request, warnings, seconds) -> PageResult:
        return self._page_result(
            page.number, context.page_size, context.context, raw, stop_reason, request, warnings, seconds
        )

    def _unreadable(self, page: Page, request: RecognizeRequest, exc: Exception) -> PageResult:
        width, height = page.size
        return PageResult(
            page_number=page.number,
            width=width,
            height=height,
            engine=self.name,
            task=request.task.value,
            warnings=[i18n.text("mocr.cannot_read_page", model=self.model_name, detail=str(exc))],
        )

    def _run_batch(
        self,
        loaded: LoadedDots,
        pages: list[Page],
        request: RecognizeRequest,
        stream: Callable[[str], None] | None,
        max_pixels: int,
    ) -> list[PageResult]:
        from ..models.generation import GenerationConfig

        started = time.perf_counter()
        results: dict[int, PageResult] = {}
        prepared: list[PreparedPage] = []
        bounds = ResizeBounds.of(loaded.processor)
        for index, page in enumerate(pages):
            try:
                prepared.append(self.prepare(page, request, max_pixels, bounds))
            except _PageError as exc:  # one unreadable page must not fail the others
                results[index] = self._unreadable(page, request, exc)
        if prepared:
            processor = loaded.processor
            inputs = dict(processor([p.image for p in prepared], [p.prompt for p in prepared]))
            config = GenerationConfig(
                max_new_tokens=self.max_new_tokens,
                eos_token_ids=loaded.eos_token_ids,
                pad_token_id=loaded.pad_token_id,
                loop_retry=self.loop_penalty,
            )
            streamed_row = 0 if stream is not None and 0 not in results else None
            on_tokens = token_streamer(
                lambda tokens: processor.decode(tokens, skip_special_tokens=True),
                stream if streamed_row is not None else None,
            )

            generated = loaded.generator.generate(inputs, config, on_tokens)
            seconds = (time.perf_counter() - started) / len(prepared)
            rows = iter(range(len(prepared)))
            for index in range(len(pages)):
                if index in results:
                    continue
                row = next(rows)
                raw = processor.decode(generated.tokens[row], skip_special_tokens=True)
                if row == streamed_row and stream is not None:
                    stream(raw)  # the final text, so the stream always ends on what is kept
                page = prepared[row]
                warnings = self._with_retry_note(generated.warnings, generated.loop_retries[row])
                results[index] = self._page_result(
                    page.page_number,
                    page.page_size,
                    page.context,
                    raw,
                    generated.stop_reasons[row],
                    request,
                    warnings,
                    seconds,
                )
        return [results[index] for index in range(len(pages))]

    def _page_result(
        self,
        page_number: int,
        page_size: tuple[int, int],
        resized_size: tuple[int, int],
        raw: str,
        stop_reason: str,
        request: RecognizeRequest,
        generation_warnings: Sequence[str] = (),
        seconds: float = 0.0,
    ) -> PageResult:
        """One page's answer read into blocks (boxes mapped from the resized image to the page),
        with why it may be incomplete."""
        reading = read_page(raw, request.task, resized_size=resized_size, page_size=page_size, region=request.region)
        warnings = list(generation_warnings)
        stopped = stop_warning(stop_reason, self.max_new_tokens)
        if stopped:
            warnings.append(stopped)
        warnings.extend(reading.warnings)
        width, height = page_size
        return PageResult(
            page_number=page_number,
            width=width,
            height=height,
            blocks=reading.blocks,
            engine=self.name,
            task=request.task.value,
            truncated=reading.truncated or stopped is not None,
            warnings=warnings,
            raw_text=raw,
            seconds=seconds,
        )

    # -- the answer, for both runtimes (runtime/local.py, runtime/remote.py)

    def parse(
        self, prepared, text: str, *, stop_reason: str, request: RecognizeRequest, warnings: Sequence[str] = ()
    ) -> PageResult:
        """The server's answer for one prepared page, read as the local path reads it
        (``stop_reason``: "eos", "max_tokens" or "repetition", as the local generator says)."""
        return self._page_result(
            prepared.page_number, prepared.page_size, prepared.context, text, stop_reason, request, warnings
        )


class DotsMocrEngine(DotsOcrEngine):
    """dots.mocr: dots.ocr's successor (same architecture), plus web pages and text in photos."""

    family = DOTS_MOCR


class _PageError(Exception):
    """One page cannot be given to the model (e.g. an impossible aspect ratio)."""


def _load_dots(folder, key, profile) -> LoadedDots:
    """Model, processor and fast generator for a checkpoint folder (our own classes: the
    checkpoint's ``auto_map`` to remote code is never used)."""
    import torch

    from ..models.dots_ocr import DotsOCRForCausalLM, DotsOCRProcessor
    from ..models.generation import FastGenerator
    from ..models.stop_tokens import read_stop_tokens

    processor = DotsOCRProcessor.from_pretrained(folder)
    model = DotsOCRForCausalLM.from_pretrained(
        folder, dtype=getattr(torch, key.dtype), attn_implementation=key.attention
    )
    model = model.to(profile.device).eval()
    # generation_config.json's stop tokens, not config.json's (which adds <|assistant|>, 151672)
    stop = read_stop_tokens(folder, fallback_eos=processor.eos_token_ids, fallback_pad=processor.pad_token_id)
    eos_ids, pad = stop.eos_token_ids, stop.pad_token_id
    path = "graphs" if profile.device == "cuda" and profile.compiled_decode else "eager"
    # graphs: the decode step (fused, with Triton kernels when the backend is inductor) replayed as a CUDA graph
    generator = FastGenerator(model, path=path, triton=profile.compile_backend == "inductor")
    # No static warm-up at load: the static cache (and so the captured graph) is sized per page by its
    # prompt length, so a warm-up on a dummy image would compile a shape no page reuses. Continuous
    # batching's step does not depend on the prompt's length: its kernels compile now.
    if profile.device == "cuda" and path == "graphs":
        from PIL import Image

        from ..models.generation import GenerationConfig

        log.info("Preparing fast decoding for %s (first time compiles; later launches reuse the cache)", key.model_id)
        dummy = dict(processor([Image.new("RGB", (224, 224), "white")], ["Read the page."]))
        generator.warm_up_stream(dummy, GenerationConfig(max_new_tokens=32, eos_token_ids=eos_ids, pad_token_id=pad))
    return LoadedDots(model, processor, generator, eos_ids, pad)
