"""Fast greedy generation for vision-language models: one prefill, then a tight decode loop.

Why: ``model.generate`` with a dynamic cache is bound by the CPU launching
~1,400 small kernels per token. Here the KV cache is a transformers
``StaticCache`` (fixed addresses), the decode step is captured once as a CUDA
graph (the fused step of decode_kernels where the model allows) and replayed per token, tokens
stay on the GPU, and the host looks at them only every ``check_every`` steps
(EOS, runaway repetition, streaming).

Model-agnostic: the model only needs the usual transformers forward
(``input_ids``, ``attention_mask``, ``position_ids``, ``past_key_values``,
vision inputs) returning ``.logits``. Positions during decode continue from the
prefill: plain 1-D positions (count of real tokens) for Qwen2-style models, or
M-RoPE positions (one past the prompt's highest position, from the model's
``get_rope_index``) when the model exposes ``rope_deltas`` after prefill (Qwen2/2.5/3-VL). Paths, fastest first:
``graphs`` (CUDA graph of the step), ``eager`` (the same static-cache loop without
graphs: CPU and the fallback), and ``generate`` (plain ``model.generate``), chosen
automatically where a faster one fails, with the reason kept in
``GenerationResult.warnings``. On the graphs path the captured step is, for
Qwen3-style decoders, ``decode_kernels.FusedDecoder`` (fused projections, Triton
kernels for the small pieces where Triton works, grouped-query attention without
KV copies); for other models, or where it fails, the model's own forward.

Loop retry (``GenerationConfig.loop_retry``): rows the repetition guard stopped are cut out
of the batch (``select_rows``) and read once more with ``repetition.LoopPenalty``, computed on
the device inside the step (so inside the captured graph) or, on the ``generate`` path, as a
logits processor; per row, the reading with more tokens is kept (``loop_retries`` says how).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

import torch

log = logging.getLogger(__name__)


def _sibling(name: str):
    """A module of this package, also where the package's other imports are missing (benchmarks load
    this file by path on the GPU machine)."""
    import importlib

    try:
        return importlib.import_module(f"ocr_studio.models.{name}")
    except ImportError:
        import importlib.util
        import sys
        from pathlib import Path

        key = f"ocr_studio_{name}"
        module = sys.modules.get(key)
        if module is None:
            spec = importlib.util.spec_from_file_location(key, Path(__file__).with_name(f"{name}.py"))
            module = importlib.util.module_from_spec(spec)
            sys.modules[key] = module
            spec.loader.exec_module(module)
        return module


def _note(msg_id: str, english: str, **args: Any) -> str:
    """A warning the user reads (a page's warnings): the catalog's message where the package is
    there (``i18n.Text``: English as a str, rendered in the reader's language), plain English where
    this file was loaded alone (benchmarks on the GPU machine)."""
    try:
        from ocr_studio import i18n
    except ImportError:
        return english.format(**args)
    return i18n.text(msg_id, **args)


_repetition = _sibling("repetition")
RepetitionGuard = _repetition.RepetitionGuard
LoopPenalty = _repetition.LoopPenalty
_paged = _sibling("paged_attention")  # continuous batching's block pool and its attention

PATHS = ("graphs", "eager", "generate")
CACHE_BUCKET = 256  # the default rounding of a cache's length (memory plans round the same way)
# what get_rope_index reads, where the model's version takes it (mm_token_type_ids: transformers 5.x)
ROPE_INDEX_INPUTS = ("input_ids", "mm_token_type_ids", "image_grid_thw", "video_grid_thw", "attention_mask")


@dataclass
class GenerationConfig:
    max_new_tokens: int
    eos_token_ids: tuple[int, ...]
    pad_token_id: int
    suppress_token_ids: tuple[int, ...] = ()  # never generated (benchmarks force lengths by suppressing EOS)
    check_every: int = 16  # host looks at the tokens (EOS, repetition, streaming) every k steps
    repetition: RepetitionGuard | None = field(default_factory=RepetitionGuard)
    penalty: LoopPenalty | None = None  # applied to every step (what a retry runs with)
    loop_retry: LoopPenalty | None = None  # rows the guard stopped are read again with this penalty


@dataclass
class GenerationResult:
    tokens: list[list[int]]  # new tokens per row, without EOS/padding
    stop_reasons: list[str]  # "eos" | "max_tokens" | "repetition"
    path: str  # the path that produced the tokens
    warnings: list[str] = field(default_factory=list)
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    steps: int = 0  # decode steps run (batch-wide)
    fused: bool = False  # the decode step was decode_kernels.FusedDecoder
    # per row: "" (no retry), or how the loop retry went: "recovered" (the retry did not loop and was
    # kept), "retry_looped" (it looped too but read further, kept), "first_kept" (it read less far)
    loop_retries: list[str] = field(default_factory=list)


# on_tokens(row, tokens_so_far) is called every check_every steps for each running row
TokenCallback = Callable[[int, list[int]], None]


@dataclass
class PageRequest:
    """One page for continuous batching: its batch-1 model inputs (no padding), under a key the
    caller chooses; ``max_new_tokens`` overrides the config's budget for this page alone."""

    key: Any
    inputs: dict[str, torch.Tensor]
    max_new_tokens: int | None = None


@dataclass
class PageTokens:
    """One page's reading from continuous batching, yielded as soon as the page stops."""

    key: Any
    tokens: list[int]  # new tokens without EOS
    stop_reason: str  # "eos" | "max_tokens" | "repetition"
    path: str
    warnings: list[str] = field(default_factory=list)
    loop_retry: str = ""  # as GenerationResult.loop_retries
    prefill_seconds: float = 0.0


class SlotsOutOfMemory(RuntimeError):
    """Continuous batching ran out of GPU memory; ``keys`` are the pages in flight then (none of
    them was yielded), in the order they were taken. Pages not yet taken stay with the caller."""

    def __init__(self, keys: list[Any], detail: str = ""):
        super().__init__(f"out of GPU memory with {len(keys)} pages in flight" + (f": {detail}" if detail else ""))
        self.keys = keys


class _CallerError(Exception):
    """Wraps an exception raised by the caller's request iterator, so ``stream`` re-raises it as it
    was instead of taking it for a failure of continuous batching."""


# on_page_tokens(key, tokens_so_far) is called every check_every steps for each page in flight
PageTokenCallback = Callable[[Any, list[int]], None]


class FastGenerator:
    """Greedy generation for one loaded model; keeps its static cache and captured
    graph between calls of the same shape (batch size, cache length)."""

    def __init__(
        self,
        model: Any,
        *,
        path: str = "auto",  # auto | graphs | eager | generate
        cache_bucket: int = CACHE_BUCKET,  # cache lengths are rounded up to this, so graphs get reused
        fuse: bool | str = "auto",  # fused decode step: auto (graphs path, supported models) | True | False
        triton: bool = True,  # let the fused step compile Triton kernels (the profile's compile backend "inductor")
    ):
        self.model = model
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        if path == "auto":
            path = "graphs" if self.device.type == "cuda" else "eager"
        if path not in PATHS:
            raise ValueError(f"Unknown generation path {path!r}; choose one of {', '.join(PATHS)}")
        self.path = path
        self.cache_bucket = cache_bucket
        self.disabled_reason = ""  # why the fast path was given up (shown to the user)
        self._state: _DecodeState | None = None
        self._slots: _SlotState | None = None  # continuous batching's cache and graph (``stream``)
        self.continuous_off = ""  # why continuous batching was given up after it failed (``stream``)
        self.overlap_prefill = False  # ``stream``: one prefill at a time on a side stream, beside decoding
        self.pool_tokens: int | None = None  # ``stream``: a cap on the paged cache's size (else memory decides)
        self.stream_report: dict[str, int] = {}  # the last ``stream``: most pages in flight, pages put back
        self._prefill_peak: int | None = None  # bytes one page's prefill took (measured on the GPU)
        self._reserve = 0  # new tokens to size the cache for (warm_up sizes it for the real run)
        self.fuse_note = ""  # why the fused step is off or runs without Triton kernels
        self.fuse_warning = ""  # the same, where it costs speed the user would otherwise get
        self.compile_kernels = False
        self.triton = triton
        self.fused = self._choose_fused(fuse)

    def _choose_fused(self, fuse: bool | str) -> bool:
        """Use the fused step where it can run; keep the reason where it cannot."""
        if fuse not in (True, False, "auto"):
            raise ValueError(f"fuse must be True, False or 'auto', not {fuse!r}")
        if fuse is False or (fuse == "auto" and self.path != "graphs"):
            return False
        kernels = decode_kernels()
        reason = kernels.unsupported_reason(self.model)
        if reason:
            self.fuse_note = _note("decoding.fused_not_used", "Fused decode step not used: {reason}.", reason=reason)
            return False
        if self.device.type == "cuda" and not self.triton:
            self.fuse_note = _note(
                "decoding.no_triton_backend",
                "Fused decode step runs without Triton kernels: the compile backend is not inductor.",
            )
        elif self.device.type == "cuda":
            self.compile_kernels, why_not = kernels.triton_available()
            if not self.compile_kernels:
                self.fuse_note = _note(
                    "decoding.no_triton",
                    "Fused decode step runs without Triton kernels (slower): {reason}.",
                    reason=why_not,
                )
                self.fuse_warning = self.fuse_note
        return True

    # -- public -----------------------------------------------------------------------
    @torch.inference_mode()
    def generate(
        self,
        inputs: dict[str, torch.Tensor],
        config: GenerationConfig,
        on_tokens: TokenCallback | None = None,
    ) -> GenerationResult:
        """Greedy continuation of a left-padded batch (``input_ids``, ``attention_mask`` and
        the model's vision inputs). Falls back to a slower path where a faster one fails.
        With ``config.loop_retry``, rows the repetition guard stopped are read once more with
        that penalty, and the reading that goes further is kept (``loop_retries`` says which)."""
        result = self._generate_once(inputs, config, on_tokens)
        result.loop_retries = [""] * len(result.tokens)
        looped = [row for row, reason in enumerate(result.stop_reasons) if reason == "repetition"]
        if config.loop_retry is None or not looped:
            return result
        retry_config = replace(config, penalty=config.loop_retry, loop_retry=None)
        sub_inputs, sub_rows = select_rows(inputs, looped)

        def forward(sub_row: int, tokens: list[int]) -> None:
            row = sub_rows[sub_row]
            if on_tokens is not None and row in looped:
                on_tokens(row, tokens)

        log.info("Rows %s looped; reading them again with %s", looped, config.loop_retry.describe())
        retry = self._generate_once(sub_inputs, retry_config, forward if on_tokens is not None else None)
        for sub_row, row in enumerate(sub_rows):
            if row not in looped:
                continue  # a row that came along only because the inputs could not be split
            result.tokens[row], result.stop_reasons[row], result.loop_retries[row] = _further_reading(
                result.tokens[row], result.stop_reasons[row], retry.tokens[sub_row], retry.stop_reasons[sub_row]
            )
        result.warnings += [w for w in retry.warnings if w not in result.warnings]
        result.decode_seconds += retry.prefill_seconds + retry.decode_seconds
        result.steps += retry.steps
        return result

    def _standing_warnings(self) -> list[str]:
        """Why this generator runs slower than it could (a fast path given up), for every reading."""
        return [w for w in (self.disabled_reason, self.fuse_warning) if w]

    def _generate_once(
        self,
        inputs: dict[str, torch.Tensor],
        config: GenerationConfig,
        on_tokens: TokenCallback | None = None,
    ) -> GenerationResult:
        """One reading of the batch, on the fastest path that works."""
        warnings = self._standing_warnings()
        path = self.path
        while True:
            try:
                if path == "generate":
                    result = self._generate_plain(inputs, config, on_tokens)
                else:
                    result = self._generate_static(inputs, config, on_tokens, graphs=path == "graphs")
                result.warnings = warnings + result.warnings
                return result
            except torch.OutOfMemoryError:
                self.release()
                raise  # the caller retries with a smaller batch; not a reason to leave the fast path
            except Exception as exc:  # noqa: BLE001 - any failure of a fast path means: use a slower one
                if path == "generate":
                    raise
                if path == "graphs" and self.fused:
                    reason = _note(
                        "decoding.fused_failed",
                        "Fused decode step failed ({error}); using the model's own step.",
                        error=f"{type(exc).__name__}: {exc}",
                    )
                    log.warning(reason)
                    self.release()
                    self.fused = False
                    self.fuse_note = self.fuse_warning = reason
                    warnings.append(reason)
                    continue
                slower = "eager" if path == "graphs" else "generate"
                reason = _note(
                    "decoding.path_failed",
                    "Fast decoding ({path}) failed ({error}); using the {slower} path.",
                    path=path,
                    slower=slower,
                    error=f"{type(exc).__name__}: {exc}",
                )
                log.warning(reason)
                self.release()
                self.path = slower
                self.disabled_reason = reason
                warnings.append(reason)
                path = slower

    def warm_up(self, inputs: dict[str, torch.Tensor], config: GenerationConfig) -> GenerationResult:
        """Run a short generation so compilation and graph capture happen now (at model load,
        with visible progress) instead of on the user's first page."""
        short = GenerationConfig(
            max_new_tokens=min(config.max_new_tokens, 2 * config.check_every),
            eos_token_ids=config.eos_token_ids,
            pad_token_id=config.pad_token_id,
            suppress_token_ids=config.suppress_token_ids,
            check_every=config.check_every,
            repetition=None,
        )
        self._reserve = config.max_new_tokens  # size the cache (and so the graph) for the real run
        try:
            result = self.generate(inputs, short)
        finally:
            self._reserve = 0
        if self.device.type == "cuda":
            self.warm_up_stream(inputs, short)
        return result

    def warm_up_stream(self, inputs: dict[str, torch.Tensor], config: GenerationConfig) -> None:
        """Continuous batching (a GPU's default) on two copies of a short page, so its kernels compile
        now for one row and for several (the fused step's symbolic shapes: seconds the first time) rather
        than in the middle of the user's first job. Keeps no cache: the job sizes its own."""
        if self.stream_unsupported():
            return
        short = replace(config, max_new_tokens=min(config.max_new_tokens, 2 * config.check_every), repetition=None)
        try:
            for _page in self.stream([PageRequest(key, inputs) for key in (0, 1)], short, slots=2):
                pass
        finally:
            self._slots = None

    def release(self) -> None:
        """Drop the static caches and graphs (frees their memory)."""
        self._state = None
        self._slots = None

    # -- continuous batching --------------------------------------------------------------
    def stream_unsupported(self) -> str:
        """Empty when ``stream`` can batch continuously here, else why not (it then reads pages one by one)."""
        if self.continuous_off:
            return self.continuous_off
        if self.path == "generate":
            return "the plain generate path is in use"
        reason = decode_kernels().unsupported_reason(self.model)
        return f"the decode step cannot be fused: {reason}" if reason else ""

    @torch.inference_mode()
    def stream(
        self,
        requests: Iterable[PageRequest],
        config: GenerationConfig,
        *,
        slots: int,
        on_tokens: PageTokenCallback | None = None,
        reserve_tokens: int = 0,
        prefill_bytes: int = 0,
    ) -> Iterator[PageTokens]:
        """Continuous batching: up to ``slots`` pages decode together; when one stops (EOS, its
        budget, the repetition guard) its slot takes the next request's prefill while the others keep
        decoding. Pages come out as they finish, not in request order; requests are taken only when
        a slot is free. Each page reads exactly as it would alone (``generate`` on its inputs): same
        checks at the same points, same loop retry. The cache is paged (``paged_attention``): a page
        holds blocks for the tokens it has, and gives them back when it stops; ``reserve_tokens`` is the
        longest page expected (prompt + budget), so later pages need no new cache. On the GPU the pool
        takes what this process may still allocate less ``prefill_bytes`` (one page's prefill workspace)
        and a margin, and the slots are no more than the pool holds at prompt + a typical answer. When
        the pool runs short, the page admitted last gives its blocks back and is read again later.

        Where it cannot run (``stream_unsupported``), pages are read one by one with ``generate``.
        Out of GPU memory raises ``SlotsOutOfMemory`` naming the pages in flight; any other failure
        turns continuous batching off for this generator and reads the rest one by one, saying why."""
        requests = iter(requests)
        if self.stream_unsupported():
            yield from self._one_by_one(requests, config, on_tokens)
            return
        in_flight: list[PageRequest] = []
        try:
            yield from self._stream(
                requests, config, max(1, slots), on_tokens, reserve_tokens, in_flight, prefill_bytes
            )
            return
        except _CallerError as failed:
            raise failed.__cause__ from None  # not a failure of batching: the caller's error, as it was
        except torch.OutOfMemoryError as exc:
            detail = str(exc).split("\n")[0]
            log.warning("Continuous batching ran out of GPU memory: %s", detail)
            self.release()
            raise SlotsOutOfMemory([request.key for request in in_flight], detail) from None
        except Exception as exc:  # noqa: BLE001 - a failure of the fast path means: read one by one
            reason = _note(
                "decoding.continuous_failed",
                "Continuous batching failed ({error}); pages are read one by one.",
                error=f"{type(exc).__name__}: {exc}",
            )
            log.warning(reason, exc_info=True)
        # outside the handler, so the failed frame (and the slots' cache it holds) is gone
        self.release()
        self.continuous_off = reason
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        yield from self._one_by_one(iter([*in_flight, *requests]), config, on_tokens, note=reason)

    def _one_by_one(
        self,
        requests: Iterator[PageRequest],
        config: GenerationConfig,
        on_tokens: PageTokenCallback | None,
        note: str = "",
    ) -> Iterator[PageTokens]:
        for request in requests:
            budget = request.max_new_tokens or config.max_new_tokens
            forward = None
            if on_tokens is not None:

                def forward(_row: int, tokens: list[int], key: Any = request.key) -> None:
                    on_tokens(key, tokens)

            result = self.generate(request.inputs, replace(config, max_new_tokens=budget), forward)
            warnings = [note, *result.warnings] if note and note not in result.warnings else list(result.warnings)
            yield PageTokens(
                request.key,
                result.tokens[0],
                result.stop_reasons[0],
                result.path,
                warnings,
                result.loop_retries[0],
                result.prefill_seconds,
            )

    def _stream(
        self,
        requests: Iterator[PageRequest],
        config: GenerationConfig,
        slots: int,
        on_tokens: PageTokenCallback | None,
        reserve_tokens: int,
        in_flight: list[PageRequest],
        prefill_bytes: int = 0,
    ) -> Iterator[PageTokens]:
        warnings = self._standing_warnings()
        graphs = self.path == "graphs"
        check = config.check_every
        active: dict[int, _SlotPage] = {}
        waiting: PageRequest | None = None
        put_back: list[PageRequest] = []  # pages whose blocks another page needed: read again from the start
        exhausted = False
        state = self._slots
        admitted = 0  # a page's order of admission: the youngest is put back first
        limit = slots  # pages in flight; after a page is put back, as many as there were, growing one per page done
        report = self.stream_report = {"most_in_flight": 0, "put_back": 0}

        def reach(page: _SlotPage) -> int:
            """Positions the page may hold by the next check (its cache so far and ``check`` more steps)."""
            return page.prompt_len + len(page.tokens) - 1 + check

        def needed(request: PageRequest) -> int:
            budget = request.max_new_tokens or config.max_new_tokens
            return request.inputs["input_ids"].shape[1] + budget + check  # a page may run k-1 steps past its budget

        pending: dict[int, tuple[_SlotPage, _Prefill]] = {}  # slot -> a page whose prefill runs
        # one prefill at a time beside the decode steps, or every free slot's prefill in line (the default:
        # on an H100 running them beside each other gave no more pages/min, benchmarks/README.md)
        overlap = bool(self.overlap_prefill)

        def take() -> PageRequest | None:
            if put_back:
                return put_back.pop()
            try:
                request = next(requests, None)
            except Exception as exc:  # the caller's own failure (a page it could not prepare)
                raise _CallerError() from exc
            if request is not None:
                in_flight.append(request)
            return request

        def finish(slot: int, page: _SlotPage, reason: str) -> PageTokens:
            nonlocal limit
            state.free(slot)
            del active[slot]
            in_flight.remove(page.request)
            limit = min(slots, limit + 1)
            return self._page_tokens(page, reason, config, warnings, graphs)

        def join_ready() -> Iterator[PageTokens]:
            """Pages whose prefill is done join the decoding (waiting for one when nothing else runs)."""
            for slot, (page, prefill) in sorted(pending.items()):
                if not active or prefill.done():
                    del pending[slot]
                    page.tokens = [state.join(slot, prefill)]
                    page.prefill_seconds = time.perf_counter() - prefill.started
                    active[slot] = page
                    finished = self._check_page(page, config, on_tokens)
                    if finished is not None:
                        yield finish(slot, page, finished)

        def put_back_youngest() -> bool:
            """Free the blocks of the page admitted last (it is read again later); False when only one runs."""
            nonlocal limit
            everyone = {**active, **{s: p for s, (p, _) in pending.items()}}
            if len(everyone) <= 1:
                return False
            slot, page = max(everyone.items(), key=lambda item: item[1].order)
            prefill = pending.pop(slot)[1] if slot in pending else None
            active.pop(slot, None)
            state.free(slot, prefill)
            put_back.append(page.request)
            limit = max(1, len(everyone) - 1)
            report["put_back"] += 1
            log.info("The cache is full: page %s is put back and read again later", page.request.key)
            return True

        def grow() -> None:
            """Blocks for every page in flight up to where the next steps can take it (oldest first)."""
            for slot, page in sorted(active.items(), key=lambda item: item[1].order):
                if slot not in active:
                    continue  # put back meanwhile
                while not state.reserve(slot, reach(page)):
                    if not put_back_youngest():
                        raise torch.OutOfMemoryError(
                            "The KV cache cannot hold one page: the GPU memory left for it is too small."
                        )
                    if slot not in active:
                        break

        def fill_free_slots() -> None:
            """New pages into free slots (every page joins on a check boundary) while the pool has their
            prompt's blocks and one more block for each page in flight."""
            nonlocal waiting, exhausted, state, slots, limit, admitted
            while len(active) + len(pending) < min(slots, limit) and not (overlap and pending):
                if waiting is None:
                    waiting = take()
                    if waiting is None:
                        exhausted = True
                        break
                need = needed(waiting)
                if state is None or state.slots != slots or state.graphs != graphs:
                    if active or pending:
                        break  # let the pages in flight finish, then make the cache anew
                    self._slots = state = None  # free the old cache first
                    state = self._slot_state(waiting, slots, max(need, reserve_tokens), prefill_bytes, graphs)
                    slots = limit = state.slots
                elif need > state.cache_len:  # a longer page: a wider block table, the same pool
                    state.widen(-(-need // self.cache_bucket) * self.cache_bucket)
                prompt_len = waiting.inputs["input_ids"].shape[1]
                slot = next(index for index in range(slots) if index not in active and index not in pending)
                spare = state.spare_blocks() - (len(active) + len(pending))
                if (active or pending) and _paged.blocks_for(prompt_len + check) > spare:
                    break  # the pool is full for now: the page waits for blocks to come back
                if not state.reserve(slot, prompt_len + check):
                    raise torch.OutOfMemoryError("The KV cache cannot hold one page's prompt.")
                request, waiting = waiting, None
                state.configure(config)
                page = _SlotPage(request, request.max_new_tokens or config.max_new_tokens, [])
                page.prompt_len = prompt_len
                page.order = admitted = admitted + 1
                pending[slot] = (page, state.prefill(slot, request.inputs, beside=overlap))

        while True:
            yield from join_ready()
            if not overlap:  # freed slots take their next pages now, before the next steps
                fill_free_slots()
                yield from join_ready()
            if active:
                grow()
                state.send_table()
                report["most_in_flight"] = max(report["most_in_flight"], len(active))
                # no page reaches past this position by the next check (the gathered fallback's window)
                furthest = max(reach(page) for page in active.values())
                rows = max(active) + 1  # new pages take the lowest free row: the step covers the rows up to here
                for index in range(check):
                    state.step(index, furthest, rows)
            if overlap:  # the steps are queued first, so the prefill started here runs beside them
                fill_free_slots()
            if not active:
                if not pending and exhausted and waiting is None and not put_back:
                    return
                continue  # join the prefills (or remake the cache for the waiting page)
            host = state.chunk.tolist()  # the host reads the steps' tokens
            for slot, page in list(active.items()):
                page.tokens.extend(host[slot])
                finished = self._check_page(page, config, on_tokens)
                if finished is not None:
                    yield finish(slot, page, finished)

    def _slot_state(self, first: PageRequest, slots: int, longest: int, prefill_bytes: int, graphs: bool) -> _SlotState:
        """A new paged cache for pages of up to ``longest`` positions: on the GPU, as many blocks as
        leave one prefill's workspace and the margin free (never more than every slot's longest page),
        and no more slots than the pool holds pages with an answer of typical length."""
        plan = _sibling("slot_plan")
        block = _paged.BLOCK
        cache_len = -(-longest // self.cache_bucket) * self.cache_bucket
        cache_len = -(-cache_len // block) * block
        step = decode_kernels().FusedDecoder(self.model, compile_kernels=self.compile_kernels)
        blocks = slots * _paged.blocks_for(cache_len)
        if self.pool_tokens is not None:
            blocks = min(blocks, max(1, self.pool_tokens // block))
        if self.device.type == "cuda":
            per_block = len(step.layers) * 2 * step.kv_heads * step.head_dim * block * self.dtype.itemsize
            workspace = max(prefill_bytes, self._prefill_workspace(first.inputs))
            free = plan.usable_cuda_bytes(self.device)
            usable = free - workspace - plan.MARGIN_BYTES - free // 10  # a tenth for the allocator's fragmentation
            if not _paged.kernels_available(self.device):  # attention gathers every row's window of K and V per layer
                usable -= 2 * slots * step.kv_heads * step.head_dim * cache_len * self.dtype.itemsize
            blocks = max(1, min(blocks, usable // per_block))
            prompt = first.inputs["input_ids"].shape[1]
            budget = first.max_new_tokens or (longest - prompt)
            typical = prompt + min(budget, plan.TYPICAL_ANSWER_TOKENS)
            fit = max(1, min(slots, blocks * block // typical))
            log.info(
                "Paged KV cache: %.2f GB (%d tokens), %d pages in flight (asked for %d)",
                blocks * per_block / 1024**3,
                blocks * block,
                fit,
                slots,
            )
            slots = int(fit)
        state = _SlotState(self.model, step, slots, cache_len, self.device, self.dtype, graphs, int(blocks))
        self._slots = state
        return state

    def _prefill_workspace(self, inputs: dict[str, torch.Tensor]) -> int:
        """On the GPU, what one page's prefill really takes (measured once per generator on the first
        page, with a margin of a fifth for larger pages); 0 elsewhere."""
        if self.device.type != "cuda":
            return 0
        if self._prefill_peak is None:
            torch.cuda.synchronize(self.device)
            base = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            _prompt_forward(self.model, inputs, self.device)  # its outputs and cache are dropped at once
            torch.cuda.synchronize(self.device)
            self._prefill_peak = torch.cuda.max_memory_allocated(self.device) - base
            torch.cuda.empty_cache()
            log.info("One page's prefill takes %.2f GB", self._prefill_peak / 1024**3)
        return int(1.2 * self._prefill_peak)

    @staticmethod
    def _check_page(page: _SlotPage, config: GenerationConfig, on_tokens: PageTokenCallback | None) -> str | None:
        """The host checks the static loop makes for a row (after the first token, every
        ``check_every`` tokens, at the budget), at the same points of this page's own count, so a
        page stops where it would alone; the stop reason, or None while it runs."""
        count, budget = len(page.tokens), page.budget
        points = [
            p
            for p in range(page.checked + 1, min(count, budget) + 1)
            if p == 1 or p % config.check_every == 0 or p == budget
        ]
        for point in points:
            page.checked = point
            kept, reason = _cut_at_eos(page.tokens[:point], config.eos_token_ids)
            stop = None
            if reason == "eos":
                stop = "eos"
            elif config.repetition is not None and (at := config.repetition.check(kept)) is not None:
                kept, stop = kept[: at + 1], "repetition"
            elif point == budget:
                stop = "max_tokens"
            page.kept = kept
            if on_tokens is not None:
                on_tokens(page.request.key, kept)
            if stop is not None:
                return stop
        return None

    def _page_tokens(
        self, page: _SlotPage, reason: str, config: GenerationConfig, warnings: list[str], graphs: bool
    ) -> PageTokens:
        """A finished page; one stopped by the repetition guard is read again alone with the loop
        retry's penalty (as ``generate`` does), and the reading that goes further is kept."""
        done = PageTokens(
            page.request.key,
            page.kept,
            reason,
            "graphs" if graphs else "eager",
            list(warnings),
            prefill_seconds=page.prefill_seconds,
        )
        if reason != "repetition" or config.loop_retry is None:
            return done
        retry_config = replace(config, max_new_tokens=page.budget, penalty=config.loop_retry, loop_retry=None)
        log.info("Page %s looped; reading it again with %s", page.request.key, config.loop_retry.describe())
        try:
            retry = self._generate_once(page.request.inputs, retry_config)
        finally:
            self._state = None  # the retry's cache is not kept beside the slots'
        done.tokens, done.stop_reason, done.loop_retry = _further_reading(
            done.tokens, done.stop_reason, retry.tokens[0], retry.stop_reasons[0]
        )
        done.warnings += [w for w in retry.warnings if w not in done.warnings]
        return done

    # -- plain generate -------------------------------------------------------------------
    def _generate_plain(
        self, inputs: dict[str, torch.Tensor], config: GenerationConfig, on_tokens: TokenCallback | None
    ) -> GenerationResult:
        start = time.perf_counter()
        kwargs: dict[str, Any] = {
            "max_new_tokens": config.max_new_tokens,
            "do_sample": False,
            "eos_token_id": list(config.eos_token_ids),
            "pad_token_id": config.pad_token_id,
        }
        if config.suppress_token_ids:
            kwargs["suppress_tokens"] = list(config.suppress_token_ids)
        if config.penalty is not None:
            from transformers import LogitsProcessorList

            processor = _repetition.PenaltyProcessor(config.penalty, inputs["input_ids"].shape[1])
            kwargs["logits_processor"] = LogitsProcessorList([processor])
        sequences = self.model.generate(**_on_device(inputs, self.device), **kwargs)
        new = sequences[:, inputs["input_ids"].shape[1] :].tolist()
        tokens, reasons = [], []
        for row in new:
            kept, reason = _cut_at_eos(row, config.eos_token_ids)
            if reason != "eos" and config.repetition is not None:
                at = config.repetition.check(kept)
                if at is not None:
                    kept, reason = kept[: at + 1], "repetition"
            tokens.append(kept)
            reasons.append(reason)
            if on_tokens is not None:
                on_tokens(len(tokens) - 1, kept)
        elapsed = time.perf_counter() - start
        return GenerationResult(tokens, reasons, "generate", decode_seconds=elapsed, steps=len(new[0]) if new else 0)

    # -- static cache loop ----------------------------------------------------------------
    def _generate_static(
        self,
        inputs: dict[str, torch.Tensor],
        config: GenerationConfig,
        on_tokens: TokenCallback | None,
        *,
        graphs: bool,
    ) -> GenerationResult:
        inputs = _on_device(inputs, self.device)
        input_ids = inputs["input_ids"]
        attention_mask = inputs.get("attention_mask")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
            inputs = {**inputs, "attention_mask": attention_mask}
        batch, prompt_len = input_ids.shape
        needed = prompt_len + max(config.max_new_tokens, self._reserve)
        cache_len = -(-needed // self.cache_bucket) * self.cache_bucket
        state = self._state
        fused = self.fused
        if (
            state is None
            or state.batch != batch
            or state.cache_len < needed
            or state.graphs != graphs
            or (state.fused is not None) != fused
        ):
            self._state = None  # free the old cache before allocating the new one
            step = decode_kernels().FusedDecoder(self.model, compile_kernels=self.compile_kernels) if fused else None
            state = _DecodeState(self.model, batch, cache_len, self.device, self.dtype, graphs, step)
            self._state = state
        state.reset()

        sync = self.device.type == "cuda"
        t0 = time.perf_counter()
        first = state.prefill(inputs, config)
        if sync:
            torch.cuda.synchronize(self.device)
        t1 = time.perf_counter()

        max_new = config.max_new_tokens
        out = torch.full((batch, max_new), config.pad_token_id, dtype=torch.long, device=self.device)
        out[:, 0] = first
        done_rows: dict[int, str] = {}
        rows: list[list[int]] = [[] for _ in range(batch)]
        produced = 1
        steps = 0
        while True:
            # host check every k tokens: EOS, repetition, streaming, end of budget
            if produced == max_new or produced % config.check_every == 0 or produced == 1:
                host = out[:, :produced].tolist()
                for row in range(batch):
                    if row in done_rows:
                        continue
                    kept, reason = _cut_at_eos(host[row], config.eos_token_ids)
                    if reason == "eos":
                        done_rows[row] = "eos"
                    elif config.repetition is not None and (at := config.repetition.check(kept)) is not None:
                        kept = kept[: at + 1]
                        done_rows[row] = "repetition"
                        state.stop_row(row)
                    elif produced == max_new:
                        done_rows[row] = "max_tokens"
                    rows[row] = kept
                    if on_tokens is not None:
                        on_tokens(row, kept)
                if len(done_rows) == batch:
                    break
            state.step(out, produced)
            produced += 1
            steps += 1
        if sync:
            torch.cuda.synchronize(self.device)
        t2 = time.perf_counter()
        return GenerationResult(
            tokens=rows,
            stop_reasons=[done_rows[row] for row in range(batch)],
            path="graphs" if graphs else "eager",
            fused=fused,
            prefill_seconds=t1 - t0,
            decode_seconds=t2 - t1,
            steps=steps,
        )


class _DecodeState:
    """The static cache, the step's input/output buffers and (on CUDA) the captured graph."""

    def __init__(self, model, batch: int, cache_len: int, device, dtype, graphs: bool, fused=None):
        from transformers import StaticCache

        self.model = model
        self.fused = fused  # decode_kernels.FusedDecoder, or None for the model's own forward
        self.batch = batch
        self.cache_len = cache_len
        self.device = device
        self.graphs = graphs
        self.cache = StaticCache(config=model.config, max_cache_len=cache_len)
        self.mask = torch.zeros(batch, cache_len, dtype=dtype, device=device)  # additive: 0 attend, min masked
        self.masked = torch.finfo(dtype).min
        self.token = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.position = torch.zeros(batch, dtype=torch.long, device=device)  # next position per row
        self.write_at = torch.zeros(1, dtype=torch.long, device=device)  # next cache slot (same for all rows)
        self.stopped = torch.zeros(batch, dtype=torch.bool, device=device)
        self.eos = torch.zeros(0, dtype=torch.long, device=device)
        self.suppress = torch.zeros(0, dtype=torch.long, device=device)
        self.pad = 0
        self.stop_tokens: tuple = ((), (), 0, None)  # the values eos / suppress / pad / penalty were built from
        self.penalty: LoopPenalty | None = None  # applied inside the step (a loop retry)
        self.history = torch.zeros(batch, cache_len, dtype=torch.long, device=device)  # tokens so far (penalty)
        self.count = torch.zeros(1, dtype=torch.long, device=device)  # how many of them
        self.mrope = False
        self.next_token = torch.zeros(batch, dtype=torch.long, device=device)
        self.graph: torch.cuda.CUDAGraph | None = None

    def reset(self) -> None:
        self.cache.reset()
        self.mask.fill_(self.masked)
        self.stopped.zero_()
        self.count.zero_()

    def prefill(self, inputs: dict[str, torch.Tensor], config: GenerationConfig) -> torch.Tensor:
        """Full forward with the vision inputs; fills the cache and returns the first new token per row."""
        attention_mask = inputs["attention_mask"]
        prompt_len = attention_mask.shape[1]
        base = getattr(self.model, "model", None)
        if base is not None and hasattr(base, "rope_deltas"):
            base.rope_deltas = None  # stale deltas from an earlier batch must not leak in
        outputs = self.model(**inputs, past_key_values=self.cache, use_cache=True, logits_to_keep=1)
        logits = outputs.logits[:, -1, :]
        real = attention_mask.sum(dim=1)
        deltas = getattr(base, "rope_deltas", None) if base is not None else None
        self.mrope = isinstance(deltas, torch.Tensor)
        self.position.copy_(next_mrope_positions(base, inputs) if self.mrope else real)
        self.mask[:, :prompt_len].masked_fill_(attention_mask.bool(), 0.0)
        self.write_at.fill_(prompt_len)
        # The captured graph reads eos/suppress through their addresses: keep the same tensors
        # while their values are unchanged (a new tensor would leave the graph reading freed
        # memory), and drop the graph when they change.
        eos_ids, suppress_ids = tuple(config.eos_token_ids), tuple(config.suppress_token_ids)
        if (eos_ids, suppress_ids, config.pad_token_id, config.penalty) != self.stop_tokens:
            self.graph = None
            self.eos = torch.tensor(eos_ids, dtype=torch.long, device=self.device)
            self.suppress = torch.tensor(suppress_ids, dtype=torch.long, device=self.device)
            self.pad = config.pad_token_id
            self.penalty = config.penalty
            self.stop_tokens = (eos_ids, suppress_ids, config.pad_token_id, config.penalty)
        first = self._pick(logits)
        self.stopped |= torch.isin(first, self.eos)
        self.token.copy_(first.view(-1, 1))
        self._remember(first)
        return first

    def _remember(self, chosen: torch.Tensor) -> None:
        """Append the chosen tokens to the history the penalty reads (only when there is one)."""
        if self.penalty is not None:
            self.history.scatter_(1, self.count.view(1, 1).expand(self.batch, 1), chosen.view(-1, 1))
            self.count.add_(1)

    def _pick(self, logits: torch.Tensor) -> torch.Tensor:
        if self.penalty is not None:
            logits = _repetition.penalize(logits, self.history, self.count, self.penalty)
        if self.suppress.numel():
            logits = logits.index_fill(1, self.suppress, torch.finfo(logits.dtype).min)
        return torch.argmax(logits, dim=-1)

    def _step_body(self) -> None:
        """One decode step, entirely on the device: no host reads, fixed shapes and addresses."""
        self.mask.index_fill_(1, self.write_at, 0.0)
        if self.mrope:
            position_ids = self.position.view(1, -1, 1).expand(3, -1, 1)
        else:
            position_ids = self.position.view(-1, 1)
        mask = self.mask.view(self.batch, 1, 1, -1)
        if self.fused is not None:
            logits = self.fused.logits(self.token, position_ids, mask, self.cache, self.write_at)
        else:
            outputs = self.model(
                input_ids=self.token,
                attention_mask=mask,
                position_ids=position_ids,
                past_key_values=self.cache,
                use_cache=True,
            )
            logits = outputs.logits[:, -1, :]
        chosen = self._pick(logits)
        chosen = torch.where(self.stopped, torch.full_like(chosen, self.pad), chosen)
        self.stopped |= torch.isin(chosen, self.eos)
        self.next_token.copy_(chosen)
        self.token.copy_(chosen.view(-1, 1))
        self._remember(chosen)
        self.position.add_(1)
        self.write_at.add_(1)

    def step(self, out: torch.Tensor, index: int) -> None:
        if not self.graphs:
            self._step_body()
        else:
            if self.graph is None:
                self._capture()
            self.graph.replay()
        out[:, index].copy_(self.next_token)

    def _capture(self) -> None:
        """Capture one step as a CUDA graph. Warm-up runs on a side stream first (as torch
        requires); the step's side effects are saved and restored around it."""
        saved = [t.clone() for t in self._step_buffers()]
        lengths = [layer.cumulative_length.clone() for layer in self.cache.layers]
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(2):
                self._restore(saved, lengths)
                self._step_body()
        torch.cuda.current_stream(self.device).wait_stream(stream)
        self._restore(saved, lengths)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._step_body()
        self._restore(saved, lengths)
        self.graph = graph

    def _step_buffers(self) -> tuple[torch.Tensor, ...]:
        """What a step changes besides the cache (saved and restored around the capture's warm-up)."""
        return (self.mask, self.token, self.position, self.write_at, self.stopped, self.history, self.count)

    def _restore(self, saved: list[torch.Tensor], lengths: list[torch.Tensor]) -> None:
        for target, value in zip(self._step_buffers(), saved, strict=True):
            target.copy_(value)
        for layer, value in zip(self.cache.layers, lengths, strict=True):
            layer.cumulative_length.copy_(value)

    def stop_row(self, row: int) -> None:
        self.stopped[row] = True


@dataclass
class _Prefill:
    """A page's prefill, started (on the GPU: queued on the side stream) but not yet joined."""

    length: int  # prompt tokens
    first: torch.Tensor  # [1] the first new token, on the device
    position: torch.Tensor  # the first new token's position (M-RoPE: one past the prompt's highest)
    mrope: bool
    event: Any  # torch.cuda.Event recorded after it on the side stream; None where it ran in line
    started: float

    def done(self) -> bool:
        return self.event is None or self.event.query()


@dataclass
class _SlotPage:
    """A page in a slot: its request, budget, tokens so far (host copy) and how far it was checked."""

    request: PageRequest
    budget: int
    tokens: list[int]
    checked: int = 0
    kept: list[int] = field(default_factory=list)
    prefill_seconds: float = 0.0
    prompt_len: int = 0
    order: int = 0  # when it was admitted (the youngest is put back first when blocks run out)


class _SlotState:
    """Continuous batching's decode state: a paged KV cache (``paged_attention``) shared by
    ``slots`` rows, each with its own write position and blocks, so a row can take a new page while
    the others decode; and the fused step, replayed as CUDA graphs on the GPU.

    Memory follows the tokens pages really hold: the pool is one set of fixed-size blocks, a page
    takes blocks as it grows (``reserve``, before each run of steps) and gives them all back when
    it stops (``free``). Block 0 is never lent: a free row writes there, and nothing reads it.

    A step costs what the pages in flight hold, not what the cache could: it runs over the rows up
    to the highest one in use (rounded up to a power of two; new pages take the lowest free row,
    so a lone page decodes as a batch of one), and attention reads each row's own blocks only as
    far as its own length (the gathered fallback reads a window of ``WINDOW_BUCKET`` multiples).
    One graph per (rows, window) pair, all sharing one memory pool."""

    WINDOW_BUCKET = 1024

    def __init__(self, model, fused, slots: int, cache_len: int, device, dtype, graphs: bool, pool_blocks: int):
        self.model = model
        self.fused = fused
        self.slots = slots
        self.cache_len = cache_len  # the most positions one page may take (a multiple of the block)
        self.device = device
        self.graphs = graphs
        self.pool_blocks = pool_blocks
        shape = (pool_blocks + 1, fused.kv_heads, _paged.BLOCK, fused.head_dim)
        self.cache = SimpleNamespace(
            layers=[
                SimpleNamespace(
                    keys=torch.zeros(shape, dtype=dtype, device=device),
                    values=torch.zeros(shape, dtype=dtype, device=device),
                )
                for _ in fused.layers
            ]
        )
        width = _paged.blocks_for(cache_len)
        self.table_host = torch.zeros(slots, width, dtype=torch.int32)
        self.table = torch.zeros(slots, width, dtype=torch.int32, device=device)
        self.table_changed = False
        self.free_blocks = list(range(pool_blocks, 0, -1))  # pop() lends the lowest first
        self.owned: list[list[int]] = [[] for _ in range(slots)]
        self.live = torch.zeros(slots, dtype=torch.bool, device=device)  # a page decodes in the row
        self.token = torch.zeros(slots, 1, dtype=torch.long, device=device)
        self.position = torch.zeros(slots, dtype=torch.long, device=device)
        self.write_at = torch.zeros(slots, dtype=torch.long, device=device)
        self.stopped = torch.ones(slots, dtype=torch.bool, device=device)
        self.next_token = torch.zeros(slots, dtype=torch.long, device=device)
        self.chunk = torch.zeros(slots, 1, dtype=torch.long, device=device)  # tokens since the last host check
        self.eos = torch.zeros(0, dtype=torch.long, device=device)
        self.suppress = torch.zeros(0, dtype=torch.long, device=device)
        self.pad = 0
        self.stop_tokens: tuple = ((), (), 0, 0)
        self.mrope: bool | None = None  # decided by the first prefill; the same model always answers the same
        self.side_stream: torch.cuda.Stream | None = None  # overlapped prefills run here, beside the decode steps
        self.warmup_stream: torch.cuda.Stream | None = None  # graph captures warm up here
        self.graphs_by_window: dict[tuple[int, int], torch.cuda.CUDAGraph] = {}  # by (rows, window)
        self.window = cache_len
        self.rows_in_step = slots

    # -- blocks ---------------------------------------------------------------------------
    @property
    def width(self) -> int:
        """Blocks one page may hold: the block table's width."""
        return self.table_host.shape[1]

    def reserve(self, slot: int, tokens: int) -> bool:
        """Blocks enough for ``tokens`` positions in ``slot`` (False, lending none, where the pool is short)."""
        wanted = min(_paged.blocks_for(tokens), self.width)
        owned = self.owned[slot]
        extra = wanted - len(owned)
        if extra <= 0:
            return True
        if extra > len(self.free_blocks):
            return False
        for _ in range(extra):
            self.table_host[slot, len(owned)] = block = self.free_blocks.pop()
            owned.append(block)
        self.table_changed = True
        return True

    def spare_blocks(self) -> int:
        return len(self.free_blocks)

    def widen(self, cache_len: int) -> None:
        """Room in the block table for pages of up to ``cache_len`` positions (a page larger than the
        first ones): the pool and the pages in flight stay; the graphs, which read the table by its
        address, are captured again."""
        width = _paged.blocks_for(cache_len)
        if width <= self.width:
            return
        table_host = torch.zeros(self.slots, width, dtype=torch.int32)
        table_host[:, : self.width] = self.table_host
        self.table_host, self.cache_len = table_host, width * _paged.BLOCK
        self.table = torch.zeros(self.slots, width, dtype=torch.int32, device=self.device)
        self.table_changed = True
        self.graphs_by_window = {}

    def send_table(self) -> None:
        """The block table to the device (before steps that may read a changed row)."""
        if self.table_changed:
            self.table.copy_(self.table_host)
            self.table_changed = False

    def configure(self, config: GenerationConfig) -> None:
        """Stop and suppressed tokens (the graph reads them by address: new values, new graph)."""
        eos_ids, suppress_ids = tuple(config.eos_token_ids), tuple(config.suppress_token_ids)
        wanted = (eos_ids, suppress_ids, config.pad_token_id, config.check_every)
        if wanted != self.stop_tokens:
            self.graphs_by_window = {}
            self.eos = torch.tensor(eos_ids, dtype=torch.long, device=self.device)
            self.suppress = torch.tensor(suppress_ids, dtype=torch.long, device=self.device)
            self.pad = config.pad_token_id
            self.chunk = torch.zeros(self.slots, config.check_every, dtype=torch.long, device=self.device)
            self.stop_tokens = wanted

    def prefill(self, slot: int, inputs: dict[str, torch.Tensor], *, beside: bool = False) -> _Prefill:
        """Start one page's prefill (batch 1, its own cache) and the move of its keys/values into the
        slot's blocks (``reserve`` them first). With ``beside`` (on the GPU) it runs on a side stream,
        so the other slots keep decoding meanwhile; ``join`` makes the slot decode it."""
        started = time.perf_counter()
        side = None
        if beside and self.device.type == "cuda":
            if self.side_stream is None:
                self.side_stream = torch.cuda.Stream(self.device)
            side = self.side_stream
        block = _paged.BLOCK
        with torch.cuda.stream(side) if side is not None else contextlib.nullcontext():
            inputs, outputs, prompt_cache = _prompt_forward(self.model, inputs, self.device)
            length = inputs["input_ids"].shape[1]
            count = -(-length // block)
            if len(self.owned[slot]) < count:
                raise RuntimeError("the prompt's cache blocks were not reserved")
            blocks = torch.tensor(self.owned[slot][:count], dtype=torch.long, device=self.device)
            base = getattr(self.model, "model", None)
            first = self._pick(outputs.logits[:, -1, :])
            for layer, prompt_layer in zip(self.cache.layers, prompt_cache.layers, strict=True):
                for pool, prompt in ((layer.keys, prompt_layer.keys[0]), (layer.values, prompt_layer.values[0])):
                    heads, _, dim = prompt.shape  # [kv_heads, length, D]
                    padded = prompt.new_zeros(heads, count * block, dim)
                    padded[:, :length] = prompt
                    pool[blocks] = padded.view(heads, count, block, dim).transpose(0, 1)
            del prompt_cache, outputs
            mrope = isinstance(getattr(base, "rope_deltas", None), torch.Tensor) if base is not None else False
            if mrope:
                position = next_mrope_positions(base, inputs)[0]
            else:
                position = torch.tensor(length, device=self.device)
            event = None
            if side is not None:
                event = torch.cuda.Event()
                event.record(side)
        return _Prefill(length, first, position, mrope, event, started)

    def join(self, slot: int, prefill: _Prefill) -> int:
        """The slot decodes the prefilled page from the next step on (waiting for its prefill if it
        is still running); returns the page's first new token."""
        if prefill.event is not None:
            torch.cuda.current_stream(self.device).wait_event(prefill.event)
        if self.mrope is None:
            self.mrope = prefill.mrope
        elif self.mrope != prefill.mrope:
            raise RuntimeError("the model switched between M-RoPE and plain positions")
        self.position[slot] = prefill.position
        self.write_at[slot] = prefill.length
        self.token[slot, 0] = prefill.first[0]
        self.stopped[slot] = torch.isin(prefill.first, self.eos).any()
        self.live[slot] = True
        return int(prefill.first[0])

    def free(self, slot: int, prefill: _Prefill | None = None) -> None:
        """The slot's page is done (or put back): the row stops and writes to block 0 from now on, and
        its blocks go back to the pool (after its prefill, where one still runs)."""
        if prefill is not None and prefill.event is not None:
            torch.cuda.current_stream(self.device).wait_event(prefill.event)
        self.live[slot] = False
        self.stopped[slot] = True
        self.write_at[slot] = 0
        owned = self.owned[slot]
        self.free_blocks.extend(reversed(owned))
        self.table_host[slot, : len(owned)] = 0
        owned.clear()
        self.table_changed = True

    def _pick(self, logits: torch.Tensor) -> torch.Tensor:
        if self.suppress.numel():
            logits = logits.index_fill(1, self.suppress, torch.finfo(logits.dtype).min)
        return torch.argmax(logits, dim=-1)

    def _step_body(self) -> None:
        """One decode step of the first ``rows_in_step`` rows, on the device alone: each row writes
        its own block and position and attends to its own blocks."""
        n = self.rows_in_step
        token, position, write_at, stopped = self.token[:n], self.position[:n], self.write_at[:n], self.stopped[:n]
        live, table = self.live[:n], self.table[:n]
        block = table.gather(1, (write_at // _paged.BLOCK).view(-1, 1)).view(-1).long()
        block = torch.where(live, block, torch.zeros_like(block))  # a free row writes to block 0
        paged = SimpleNamespace(
            attention=_paged,
            block=block,
            offset=write_at % _paged.BLOCK,
            table=table,
            lengths=torch.where(live, write_at + 1, torch.ones_like(write_at)).int(),
            window_blocks=_paged.blocks_for(self.window),
        )
        if self.mrope:
            position_ids = position.view(1, -1, 1).expand(3, -1, 1)
        else:
            position_ids = position.view(-1, 1)
        logits = self.fused.logits(token, position_ids, None, self.cache, write_at, paged=paged)
        chosen = self._pick(logits)
        chosen = torch.where(stopped, torch.full_like(chosen, self.pad), chosen)
        stopped |= torch.isin(chosen, self.eos)
        self.next_token[:n].copy_(chosen)
        token.copy_(chosen.view(-1, 1))
        moving = (~stopped).long()  # a stopped or free row stays where it is: it needs no new block
        position.add_(moving)
        write_at.add_(moving).clamp_(max=self.cache_len - 1)

    def step(self, index: int, reach: int, rows: int) -> None:
        """One decode step of the first ``rows`` rows (at least), no row reaching past ``reach`` positions."""
        self.window = min(self.cache_len, -(-reach // self.WINDOW_BUCKET) * self.WINDOW_BUCKET)
        self.rows_in_step = min(self.slots, 1 << max(0, rows - 1).bit_length())
        if not self.graphs:
            self._step_body()
        else:
            key = (self.rows_in_step, self.window)
            graph = self.graphs_by_window.get(key)
            if graph is None:
                graph = self.graphs_by_window[key] = self._capture()
            graph.replay()
        self.chunk[:, index].copy_(self.next_token)

    def _buffers(self) -> tuple[torch.Tensor, ...]:
        return (self.token, self.position, self.write_at, self.stopped, self.next_token)

    def _capture(self) -> torch.cuda.CUDAGraph:
        """Capture one step at the current window as a CUDA graph (warm-up on a side stream first,
        buffers restored; the warm-up's cache writes land where the real steps write next, or in
        block 0); all windows' graphs share one memory pool."""
        saved = [t.clone() for t in self._buffers()]

        def restore() -> None:
            for target, value in zip(self._buffers(), saved, strict=True):
                target.copy_(value)

        if self.warmup_stream is None:  # one for every capture: each new stream would keep its own cached memory
            self.warmup_stream = torch.cuda.Stream(self.device)
        stream = self.warmup_stream
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(2):
                restore()
                self._step_body()
        torch.cuda.current_stream(self.device).wait_stream(stream)
        restore()
        graph = torch.cuda.CUDAGraph()
        pool = next(iter(self.graphs_by_window.values())).pool() if self.graphs_by_window else None
        with torch.cuda.graph(graph, pool=pool):
            self._step_body()
        restore()
        return graph


def decode_kernels():
    """The fused-step module (see ``_sibling``)."""
    return _sibling("decode_kernels")


def next_mrope_positions(base: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The M-RoPE position of each row's first new token: one past the highest position of its
    real (unpadded) prompt tokens, from the model's own ``get_rope_index``.

    Why not ``attention_mask.sum() + rope_deltas``: what ``rope_deltas`` is relative to changed
    in transformers 5.3 (the padded row length before, the unpadded one after), so that sum is
    wrong for left-padded rows under one of them; the positions themselves mean the same in both."""
    import inspect

    rope_index = base.get_rope_index
    parameters = inspect.signature(rope_index).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    names = [n for n in ROPE_INDEX_INPUTS if n in inputs and (takes_any or n in parameters)]
    positions, _deltas = rope_index(**{name: inputs[name] for name in names})
    real = inputs["attention_mask"].to(positions.device).bool()
    return positions.masked_fill(~real.unsqueeze(0), 0).amax(dim=(0, 2)) + 1


def _further_reading(
    first: list[int], first_reason: str, second: list[int], second_reason: str
) -> tuple[list[int], str, str]:
    """Of a looped reading and its retry, the one that reads further (the retry on a tie): its
    tokens, its stop reason, and how the loop retry went ("recovered", "retry_looped", "first_kept")."""
    if len(second) >= len(first):
        return second, second_reason, "retry_looped" if second_reason == "repetition" else "recovered"
    return first, first_reason, "first_kept"


def _cut_at_eos(tokens: list[int], eos: tuple[int, ...]) -> tuple[list[int], str]:
    for index, token in enumerate(tokens):
        if token in eos:
            return tokens[:index], "eos"
    return tokens, "max_tokens"


def select_rows(inputs: dict[str, Any], rows: list[int]) -> tuple[dict[str, Any], list[int]]:
    """The inputs of some rows of a batch (one image per row: ``pixel_values`` holds each image's
    patches in row order, ``image_grid_thw`` its grid), with padding columns no kept row needs
    dropped; and the rows they are. Where the inputs cannot be split, all of them and all rows."""
    input_ids = inputs["input_ids"]
    batch, length = input_ids.shape
    everything = (inputs, list(range(batch)))
    if len(rows) == batch:
        return everything
    grid = inputs.get("image_grid_thw")
    pixels = inputs.get("pixel_values")
    spans = None
    if grid is not None and pixels is not None:
        sizes = grid.prod(dim=-1).tolist()
        if len(sizes) != batch or sum(sizes) != pixels.shape[0]:
            return everything
        starts = [sum(sizes[:row]) for row in range(batch)]
        spans = [(starts[row], starts[row] + sizes[row]) for row in rows]
    mask = inputs.get("attention_mask")
    keep_from = 0
    if mask is not None:
        used = mask[rows].bool().any(dim=0).nonzero()
        keep_from = int(used[0]) if used.numel() else 0
    index = torch.tensor(rows, device=input_ids.device)
    chosen: dict[str, Any] = {}
    for name, value in inputs.items():
        if name == "pixel_values" and spans is not None:
            chosen[name] = torch.cat([value[a:b] for a, b in spans])
        elif name == "image_grid_thw" and spans is not None:
            chosen[name] = value[index.to(value.device)]
        elif isinstance(value, torch.Tensor) and value.dim() >= 1 and value.shape[0] == batch:
            picked = value[index.to(value.device)]
            if picked.dim() >= 2 and picked.shape[1] == length:
                picked = picked[:, keep_from:]
            chosen[name] = picked
        elif isinstance(value, torch.Tensor):
            return everything  # a batch-wide tensor of unknown layout: do not guess
        else:
            chosen[name] = value
    return chosen, list(rows)


def _prompt_forward(model: Any, inputs: dict[str, Any], device) -> tuple[dict[str, Any], Any, Any]:
    """One page's prompt through the model into a cache of its own (logits of the last position
    only): the inputs as sent, the outputs, the cache."""
    from transformers import DynamicCache

    inputs = _on_device(inputs, device)
    if "attention_mask" not in inputs:
        inputs = {**inputs, "attention_mask": torch.ones_like(inputs["input_ids"])}
    base = getattr(model, "model", None)
    if base is not None and hasattr(base, "rope_deltas"):
        base.rope_deltas = None  # stale deltas from an earlier page must not leak in
    cache = DynamicCache(config=model.config)
    outputs = model(**inputs, past_key_values=cache, use_cache=True, logits_to_keep=1)
    return inputs, outputs, cache


def _on_device(inputs: dict[str, Any], device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}


def generate(
    model: Any,
    inputs: dict[str, torch.Tensor],
    config: GenerationConfig,
    *,
    path: str = "auto",
    on_tokens: TokenCallback | None = None,
) -> GenerationResult:
    """One-shot convenience: a FastGenerator for this call only (engines keep one per model)."""
    return FastGenerator(model, path=path).generate(inputs, config, on_tokens)
