"""Fast greedy generation for vision-language models: one prefill, then a tight decode loop.

Why: ``model.generate`` with a dynamic cache is bound by the CPU launching
~1,400 small kernels per token. Here the KV cache is a transformers
``StaticCache`` (fixed addresses), the decode step is captured once as a CUDA
graph (the fused step of decode_kernels where the model allows) and replayed per token, tokens
stay on the GPU, and the host looks at them only every ``check_every`` steps
(EOS, runaway repetition, streaming: ``stopping``).

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

This module is the path policy: which path runs, what happens when one fails, and the loop retry
(``GenerationConfig.loop_retry``): rows the repetition guard stopped are cut out of the batch
(``inputs.select_rows``) and read once more with ``repetition.LoopPenalty``, computed on the
device inside the step (so inside the captured graph) or, on the ``generate`` path, as a logits
processor; per row, the reading with more tokens is kept (``loop_retries`` says how). The static
loop's runner is ``static_runner``; continuous batching is ``scheduler`` over ``paged_runner``
and ``block_pool``, sized by ``memory_plan``.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

import torch

from .. import repetition
from .inputs import on_device, select_rows
from .memory_plan import measure_prefill, plan_pool
from .notes import note
from .paged_runner import PagedRunner
from .requests import (
    CACHE_BUCKET,
    PATHS,
    GenerationConfig,
    GenerationResult,
    PageRequest,
    PageTokenCallback,
    PageTokens,
    SlotsOutOfMemory,
    TokenCallback,
)
from .scheduler import CallerError, Scheduler
from .static_runner import StaticRunner
from .stopping import SlotPage, check_row, further_reading, is_check_point

log = logging.getLogger(__name__)


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
        self._state: StaticRunner | None = None
        self._slots: PagedRunner | None = None  # continuous batching's cache and graph (``stream``)
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
            self.fuse_note = note("decoding.fused_not_used", "Fused decode step not used: {reason}.", reason=reason)
            return False
        if self.device.type == "cuda" and not self.triton:
            self.fuse_note = note(
                "decoding.no_triton_backend",
                "Fused decode step runs without Triton kernels: the compile backend is not inductor.",
            )
        elif self.device.type == "cuda":
            self.compile_kernels, why_not = kernels.triton_available()
            if not self.compile_kernels:
                self.fuse_note = note(
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
            result.tokens[row], result.stop_reasons[row], result.loop_retries[row] = further_reading(
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
                    reason = note(
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
                reason = note(
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
        except CallerError as failed:
            raise failed.__cause__ from None  # not a failure of batching: the caller's error, as it was
        except torch.OutOfMemoryError as exc:
            detail = str(exc).split("\n")[0]
            log.warning("Continuous batching ran out of GPU memory: %s", detail)
            self.release()
            raise SlotsOutOfMemory([request.key for request in in_flight], detail) from None
        except Exception as exc:  # noqa: BLE001 - a failure of the fast path means: read one by one
            reason = note(
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
            budget = request.budget(config)
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

        def make_runner(first: PageRequest, slots: int, longest: int) -> PagedRunner:
            self._slots = None  # free the old cache first
            return self._slot_state(first, slots, longest, prefill_bytes, graphs)

        scheduler = Scheduler(
            requests,
            config,
            slots=slots,
            runner=self._slots,
            make_runner=make_runner,
            finish_page=lambda page, reason: self._page_tokens(page, reason, config, warnings, graphs),
            on_tokens=on_tokens,
            reserve_tokens=reserve_tokens,
            cache_bucket=self.cache_bucket,
            graphs=graphs,
            overlap=bool(self.overlap_prefill),
            in_flight=in_flight,
        )
        self.stream_report = scheduler.report
        yield from scheduler.run()

    def _slot_state(
        self, first: PageRequest, slots: int, longest: int, prefill_bytes: int, graphs: bool
    ) -> PagedRunner:
        """A new paged cache for pages of up to ``longest`` positions, sized by ``memory_plan``."""
        step = decode_kernels().FusedDecoder(self.model, compile_kernels=self.compile_kernels)
        if self.device.type == "cuda":
            prefill_bytes = max(prefill_bytes, self._prefill_workspace(first.inputs))
        plan = plan_pool(
            step,
            first,
            slots=slots,
            longest=longest,
            cache_bucket=self.cache_bucket,
            pool_tokens=self.pool_tokens,
            prefill_bytes=prefill_bytes,
            device=self.device,
            dtype=self.dtype,
        )
        runner = PagedRunner(self.model, step, plan.slots, plan.cache_len, self.device, self.dtype, graphs, plan.blocks)
        self._slots = runner
        return runner

    def _prefill_workspace(self, inputs: dict[str, torch.Tensor]) -> int:
        """On the GPU, what one page's prefill really takes (measured once per generator on the first
        page, with a margin of a fifth for larger pages); 0 elsewhere."""
        if self.device.type != "cuda":
            return 0
        if self._prefill_peak is None:
            self._prefill_peak = measure_prefill(self.model, inputs, self.device)
        return int(1.2 * self._prefill_peak)

    def _page_tokens(
        self, page: SlotPage, reason: str, config: GenerationConfig, warnings: list[str], graphs: bool
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
        done.tokens, done.stop_reason, done.loop_retry = further_reading(
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

            processor = repetition.PenaltyProcessor(config.penalty, inputs["input_ids"].shape[1])
            kwargs["logits_processor"] = LogitsProcessorList([processor])
        sequences = self.model.generate(**on_device(inputs, self.device), **kwargs)
        new = sequences[:, inputs["input_ids"].shape[1] :].tolist()
        tokens, reasons = [], []
        for row in new:
            kept, reason = check_row(row, len(row), len(row), config)  # the whole reading: its end is its budget
            tokens.append(kept)
            reasons.append(reason or "max_tokens")
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
        inputs = on_device(inputs, self.device)
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
            state = StaticRunner(self.model, batch, cache_len, self.device, self.dtype, graphs, step)
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
            if is_check_point(produced, max_new, config.check_every):
                host = out[:, :produced].tolist()
                for row in range(batch):
                    if row in done_rows:
                        continue
                    kept, reason = check_row(host[row], produced, max_new, config)
                    if reason is not None:
                        done_rows[row] = reason
                        if reason == "repetition":
                            state.stop_row(row)
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


def decode_kernels():
    """The fused-step module, imported when first needed (its Triton pieces compile lazily too)."""
    return importlib.import_module("ocr_studio.models.decode_kernels")


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
