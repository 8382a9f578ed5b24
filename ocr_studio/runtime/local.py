"""The local runtime: what the model-backed engines (Qwen3-VL, dots.ocr) share when the model
runs on this machine: the model from the cached manager with the runtime profile's dtype and
attention, the VRAM plan, batches of pages, continuous batching, out-of-memory retries that never
lose a page, token streaming, and the words for why a page stopped.

A model engine (``engines/``) subclasses it and says which model (``model_id``), how to load it
(``_load_model``), what one page gives the model (``_page_inputs``, from the engine's ``prepare``)
and how to read one batch of pages with it (``_run_batch``); everything else lives here once.
Moved here from ``engines/vision.py`` as it was.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .. import i18n
from ..i18n import error_message, message
from ..recognition import Engine, EngineError, RecognizeRequest, Task
from ..results import PageResult

if TYPE_CHECKING:
    from ..documents import Page
    from ..hardware import GpuInfo, RuntimeProfile
    from ..models.manager import ModelKey
    from ..settings import Settings

LOWER_RESOLUTION_TRIES = 2  # after a single page runs out of memory: halve its pixels this many times
STREAM_EVERY = 8  # tokens between two streamed text updates


class VisionEngine(Engine):
    """An engine whose pages go through a vision-language model on this machine."""

    name: str
    label: str
    model_name: str  # for messages: "Qwen3-VL", "dots.ocr"

    def __init__(self, settings: Settings):
        self.settings = settings

    # -- what a subclass provides

    @property
    @abstractmethod
    def model_id(self) -> str: ...

    @property
    @abstractmethod
    def max_pixels(self) -> int: ...

    @property
    def max_new_tokens(self) -> int:
        """The generation budget per page (dots.ocr raises the generic default)."""
        return int(self.settings.max_new_tokens)

    @property
    def loop_penalty(self) -> Any:
        """What a looping page is read again with (``models.repetition.LoopPenalty``), or None
        when the loop_retry setting is off."""
        from ..models.repetition import LOOP_RETRY

        return LOOP_RETRY if getattr(self.settings, "loop_retry", True) else None

    def _with_retry_note(self, warnings: Sequence[str], outcome: str) -> list[str]:
        """A page's generation warnings plus what the loop retry did for it (``outcome`` from
        ``GenerationResult.loop_retries``)."""
        note = loop_retry_warning(outcome, self.loop_penalty.describe()) if outcome else None
        return [*warnings, note] if note else list(warnings)

    @abstractmethod
    def _load_model(self, folder: Any, key: ModelKey, profile: RuntimeProfile) -> Any:
        """Model, processor and fast generator for a checkpoint folder (kept by the manager)."""

    @abstractmethod
    def _run_batch(
        self,
        loaded: Any,
        pages: list[Page],
        request: RecognizeRequest,
        stream: Callable[[str], None] | None,
        max_pixels: int,
    ) -> list[PageResult]:
        """One batch through the model; may raise torch.OutOfMemoryError."""

    @abstractmethod
    def _page_inputs(
        self, loaded: Any, page: Page, request: RecognizeRequest, max_pixels: int
    ) -> tuple[dict[str, Any], Any] | PageResult:
        """One page's batch-1 model inputs and what ``_tokens_result`` needs back about it;
        or, for a page the model cannot take, its result saying why (the others go on)."""

    @abstractmethod
    def _tokens_result(
        self,
        loaded: Any,
        page: Page,
        context: Any,
        raw: str,
        stop_reason: str,
        request: RecognizeRequest,
        warnings: Sequence[str],
        seconds: float,
    ) -> PageResult:
        """One page's decoded answer as a result (``context`` from ``_page_inputs``)."""

    def _decode(self, loaded: Any, tokens: list[int]) -> str:
        return loaded.processor.decode(tokens, skip_special_tokens=True)

    def _generation_config(self, loaded: Any) -> Any:
        from ..models.generation import GenerationConfig

        return GenerationConfig(
            max_new_tokens=self.max_new_tokens,
            eos_token_ids=loaded.eos_token_ids,
            pad_token_id=loaded.pad_token_id,
            loop_retry=self.loop_penalty,
        )

    def _check(self, request: RecognizeRequest) -> None:
        """Refuse a request this engine cannot do, before anything loads."""
        if request.task not in self.info().tasks:
            supported = [message(f"core.task.{task.value}") for task in self.info().tasks]
            raise EngineError(
                message(
                    "core.vision.cannot_do",
                    model=self.model_name,
                    task=message(f"core.task.{request.task.value}"),
                    tasks=supported,
                )
            )

    # -- the shared machinery

    @staticmethod
    def gpu() -> GpuInfo:
        """The GPU this process found (probed once; never raises)."""
        from .. import hardware

        return hardware.probe()

    def recognize(self, pages: Sequence[Page], request: RecognizeRequest) -> list[PageResult]:
        self._check(request)
        if not pages:
            return []
        loaded = self._load(request.status)
        results: list[PageResult] = []
        size = max(1, self.batch_size(request.task))
        for start in range(0, len(pages), size):
            chunk = list(pages[start : start + size])
            stream = request.on_text if start == 0 else None
            results.extend(self._recognize_with_retries(loaded, chunk, request, stream, self.max_pixels))
        return results

    def recognize_stream(self, pages: Iterable[Page], request: RecognizeRequest) -> Iterator[PageResult]:
        """Results in page order, as soon as each is ready. On a GPU the pages stream through
        decode slots (continuous batching): a page that stops frees its slot for the next page
        while the others keep decoding. Elsewhere (one page at a time on the CPU, a model the
        fused step does not support) pages go in batches as before."""
        self._check(request)
        pages = iter(pages)
        first = next(pages, None)
        if first is None:
            return
        pages = itertools.chain([first], pages)
        loaded = self._load(request.status)
        slots = self.pages_in_flight(request.task)
        if slots <= 1 or loaded.generator.stream_unsupported():
            yield from super().recognize_stream(pages, request)
            return
        yield from self._stream_pages(loaded, pages, request, slots)

    def pages_in_flight(self, task: Task) -> int:
        """Decode slots for continuous batching: the batch_size setting, else the VRAM plan (1 on the CPU)."""
        fixed = self._pages_without_a_plan()
        return fixed if fixed is not None else self.slot_plan().slots

    def _pages_without_a_plan(self) -> int | None:
        """Pages at once where no memory plan is needed: the batch_size setting, or 1 without a usable
        CUDA GPU; None where the GPU's memory decides."""
        if self.settings.batch_size:
            return max(1, int(self.settings.batch_size))
        try:
            import torch
        except ImportError:
            return 1
        if self.settings.device == "cpu" or not torch.cuda.is_available():
            return 1
        return None

    # what the VRAM plan needs to know of a model (engines give their figures)
    kv_bytes_per_token: int = 0
    weight_bytes: int = 0

    def plan_prompt_tokens(self) -> int:
        """Prompt tokens of a typical full page (image + prompt text), for the plan."""
        return 0

    def plan_prefill_bytes(self) -> int:
        """Workspace of one page's prefill (vision encoder, prompt), for the plan."""
        return 0

    def plan_tokens(self) -> int:
        """Cache positions one page in flight takes: prompt, budget, the steps between two checks."""
        from ..models.generation import GenerationConfig

        check = next(f.default for f in dataclasses.fields(GenerationConfig) if f.name == "check_every")
        return self.plan_prompt_tokens() + self.max_new_tokens + int(check)

    def plan_workspace_bytes(self) -> int:
        """One page's prefill: its activations, and the prompt's own cache before it moves into a slot."""
        return self.plan_prefill_bytes() + self.plan_prompt_tokens() * self.kv_bytes_per_token

    def slot_plan(self, total_bytes: int | None = None) -> Any:
        """The VRAM plan (``models.slot_plan.SlotPlan``): live, from what this process can still
        allocate; or, with ``total_bytes``, for a card of that size before anything is loaded."""
        from ..models.slot_plan import TYPICAL_ANSWER_TOKENS, card_bytes, plan_slots, usable_cuda_bytes

        if total_bytes is None:
            usable, weights = usable_cuda_bytes(), (0 if self._is_loaded() else self.weight_bytes)
        else:
            usable, weights = card_bytes(total_bytes), self.weight_bytes
        # the cache is paged: a page in flight holds its prompt and its answer so far, not its whole budget
        answer = min(self.max_new_tokens, TYPICAL_ANSWER_TOKENS)
        return plan_slots(
            usable,
            weight_bytes=weights,
            slot_bytes=(self.plan_prompt_tokens() + answer) * self.kv_bytes_per_token,
            prefill_bytes=self.plan_workspace_bytes(),
        )

    def _stream_pages(
        self, loaded: Any, pages: Iterator[Page], request: RecognizeRequest, slots: int
    ) -> Iterator[PageResult]:
        """Continuous batching through ``FastGenerator.stream``, results put back in page order.
        Out of GPU memory: the pages in flight are read again alone (with the batch path's own
        fallbacks, down to a lower resolution) and the rest go on with half the slots."""
        from ..models.generation import PageRequest, SlotsOutOfMemory

        numbered = enumerate(pages)
        in_flight: dict[int, tuple[Page, Any, float]] = {}
        ready: dict[int, PageResult] = {}
        streamed: dict[int, int] = {}
        next_out = 0
        config = self._generation_config(loaded)
        # The next page's inputs are made on a worker thread while the GPU reads, so the processor's
        # resize and normalisation never stall the slots; the lock keeps the tokenizer to one thread.
        tokenizer_lock = threading.Lock()
        preparing = ThreadPoolExecutor(1, thread_name_prefix="page-inputs")

        def prepare(page: Page) -> tuple[dict[str, Any], Any] | PageResult:
            with tokenizer_lock:
                return self._page_inputs(loaded, page, request, self.max_pixels)

        def decode(tokens: list[int]) -> str:
            with tokenizer_lock:
                return self._decode(loaded, tokens)

        def prepared_pages() -> Iterator[tuple[int, Page, Any]]:
            ahead = None
            for index, page in numbered:
                future = preparing.submit(prepare, page)
                if ahead is not None:
                    yield ahead[0], ahead[1], ahead[2].result()
                ahead = (index, page, future)
            if ahead is not None:
                yield ahead[0], ahead[1], ahead[2].result()

        upcoming = prepared_pages()  # one for the whole run: a restart after out of memory goes on from it

        def requests() -> Iterator[PageRequest]:
            for index, page, prepared in upcoming:
                if isinstance(prepared, PageResult):
                    ready[index] = prepared
                    continue
                inputs, context = prepared
                in_flight[index] = (page, context, time.perf_counter())
                yield PageRequest(index, inputs)

        def on_tokens(key: int, tokens: list[int]) -> None:
            # the job shows the text of its earliest unfinished page
            if request.on_text is not None and key == next_out and len(tokens) - streamed.get(key, 0) >= STREAM_EVERY:
                streamed[key] = len(tokens)
                request.on_text(decode(tokens))

        try:
            while True:
                try:
                    stream = loaded.generator.stream(
                        requests(),
                        config,
                        slots=slots,
                        on_tokens=on_tokens,
                        reserve_tokens=self.plan_tokens(),
                        prefill_bytes=self.plan_workspace_bytes(),
                    )
                    for done in stream:
                        page, context, started = in_flight.pop(done.key)
                        raw = decode(done.tokens)
                        if done.key == next_out and request.on_text is not None:
                            request.on_text(raw)  # the final text, so the stream always ends on what is kept
                        warnings = self._with_retry_note(done.warnings, done.loop_retry)
                        seconds = time.perf_counter() - started
                        ready[done.key] = self._tokens_result(
                            loaded, page, context, raw, done.stop_reason, request, warnings, seconds
                        )
                        while next_out in ready:
                            yield ready.pop(next_out)
                            next_out += 1
                    break
                except SlotsOutOfMemory as exc:
                    for key in sorted(exc.keys):
                        page, _context, _started = in_flight.pop(key)
                        with tokenizer_lock:
                            [result] = self._recognize_with_retries(loaded, [page], request, None, self.max_pixels)
                        result.warnings.append(i18n.text("core.vision.oom_in_flight", slots=slots))
                        ready[key] = result
                    while next_out in ready:
                        yield ready.pop(next_out)
                        next_out += 1
                    slots = max(1, slots // 2)
            while next_out in ready:  # pages the model could not take, after the last one read
                yield ready.pop(next_out)
                next_out += 1
        finally:
            upcoming.close()
            preparing.shutdown(wait=True, cancel_futures=True)

    def batch_pages_for_memory(self, per_page_bytes: int, weight_bytes: int, most: int = 8) -> int:
        """Pages per batch: the setting, else what fits the free GPU memory (1 on the CPU)."""
        fixed = self._pages_without_a_plan()
        if fixed is not None:
            return fixed
        import torch

        free, _total = torch.cuda.mem_get_info()
        if not self._is_loaded():  # the weights will still take their share of what is free now
            free -= weight_bytes
        usable = free - int(1.5 * 1024**3)
        return int(max(1, min(most, usable // max(1, per_page_bytes))))

    def _key(self) -> tuple[ModelKey, RuntimeProfile]:
        from ..hardware import runtime_profile
        from ..models.manager import ModelKey

        profile = runtime_profile(self.settings)
        attention = profile.attention if profile.attention in ("sdpa", "eager", "flash_attention_2") else "sdpa"
        return ModelKey(self.model_id, None, profile.dtype, attention), profile

    def _is_loaded(self) -> bool:
        from ..models.manager import model_manager

        return model_manager().is_loaded(self._key()[0])

    def _load(self, status: Callable[[str], None] | None = None) -> Any:
        """The cached model; the first call downloads and loads it, telling ``status`` how far it got."""
        from ..models.manager import ModelError, model_manager, status_progress

        key, profile = self._key()

        def loader(key: ModelKey, folder: Any) -> Any:
            if status is not None:
                status(
                    i18n.text("core.vision.loading", model=key.model_id, dtype=key.dtype, device=profile.device.upper())
                )
            return self._load_model(folder, key, profile)

        try:
            return model_manager(self.settings).get(key, loader, progress=status_progress(status))
        except ModelError as exc:
            raise EngineError(
                message("core.vision.cannot_load", model=self.model_name, detail=error_message(exc))
            ) from exc

    def _recognize_with_retries(
        self,
        loaded: Any,
        pages: list[Page],
        request: RecognizeRequest,
        stream: Callable[[str], None] | None,
        max_pixels: int,
    ) -> list[PageResult]:
        """Run a batch; on out-of-memory split it, then lower the page's resolution, and say so.
        A page that never fits comes back empty with a warning: the other pages are kept."""
        import torch

        from ..models.manager import free_cuda_memory

        def release() -> None:
            loaded.generator.release()
            free_cuda_memory()

        try:
            return self._run_batch(loaded, pages, request, stream, max_pixels)
        except torch.OutOfMemoryError:
            release()
        if len(pages) > 1:
            half = len(pages) // 2
            results = self._recognize_with_retries(loaded, pages[:half], request, stream, max_pixels)
            results += self._recognize_with_retries(loaded, pages[half:], request, None, max_pixels)
            for result in results:
                result.warnings.append(i18n.text("core.vision.oom_batch"))
            return results
        width, height = pages[0].size
        pixels = min(max_pixels, width * height)  # halve what the page really had, not an unused budget
        for _attempt in range(LOWER_RESOLUTION_TRIES):
            pixels //= 2
            try:
                results = self._run_batch(loaded, pages, request, stream, pixels)
            except torch.OutOfMemoryError:
                release()
                continue
            for result in results:
                result.warnings.append(i18n.text("core.vision.oom_lower_resolution", megapixels=pixels / 1e6))
            return results
        return [
            PageResult(
                page_number=pages[0].number,
                width=width,
                height=height,
                engine=self.name,
                task=request.task.value,
                truncated=True,
                warnings=[i18n.text("core.vision.oom_skipped")],
            )
        ]


def stop_warning(reason: str, max_new_tokens: int) -> str | None:
    """Why a page's text may be incomplete, in the user's words (None when it ended normally)."""
    if reason == "repetition":
        return i18n.text("core.vision.stop_repetition")
    if reason in ("max_tokens", "length"):
        return i18n.text("core.vision.stop_max_tokens", max_new_tokens=max_new_tokens)
    return None


def loop_retry_warning(outcome: str, penalty: str) -> str | None:
    """What the loop retry did for a page (``GenerationResult.loop_retries``: "recovered",
    "retry_looped", "first_kept" or ""), in the user's words; ``penalty`` says what it ran with."""
    if outcome in ("recovered", "retry_looped", "first_kept"):
        return i18n.text(f"core.vision.loop_{outcome}", penalty=penalty)
    return None


def token_streamer(
    decode: Callable[[list[int]], str], stream: Callable[[str], None] | None, row: int = 0
) -> Callable[[int, list[int]], None] | None:
    """An ``on_tokens`` callback that sends ``row``'s growing text every few tokens."""
    if stream is None:
        return None
    last = [0]

    def on_tokens(current: int, tokens: list[int]) -> None:
        if current == row and len(tokens) - last[0] >= STREAM_EVERY:
            last[0] = len(tokens)
            stream(decode(tokens))

    return on_tokens
