"""Continuous batching's scheduler: which pages are in flight, which waits, which is put back.

Up to ``slots`` pages decode together. When one stops (EOS, its budget, the repetition guard) its
row takes the next request's prefill while the others keep decoding; pages leave as they finish,
and requests are taken only when a row is free. A page is admitted while the pool has its
prompt's blocks and one more block for each page in flight; when the pool runs short, the page
admitted last gives its blocks back and is read again later, and the limit on pages in flight
drops to those still running, growing back by one per page done.

The scheduler decides; the runner (``paged_runner``) runs the device work and the block pool
(``block_pool``) keeps the books. Everything the host checks per page is in ``stopping``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import torch

from .. import paged_attention as paged
from .paged_runner import PagedRunner, Prefill
from .requests import GenerationConfig, PageRequest, PageTokenCallback, PageTokens
from .stopping import SlotPage

log = logging.getLogger(__name__)

RunnerFactory = Callable[[PageRequest, int, int], PagedRunner]  # (first page, slots, longest positions)


class CallerError(Exception):
    """Wraps an exception raised by the caller's request iterator, so ``stream`` re-raises it as it
    was instead of taking it for a failure of continuous batching."""


class Scheduler:
    def __init__(
        self,
        requests: Iterator[PageRequest],
        config: GenerationConfig,
        *,
        slots: int,
        runner: PagedRunner | None,
        make_runner: RunnerFactory,
        finish_page: Callable[[SlotPage, str], PageTokens],
        on_tokens: PageTokenCallback | None,
        reserve_tokens: int,
        cache_bucket: int,
        graphs: bool,
        overlap: bool,
        in_flight: list[PageRequest],
    ):
        self.requests = requests
        self.config = config
        self.check = config.check_every
        self.slots = slots
        # pages in flight; after a page is put back, as many as there were, growing by one per page done
        self.limit = slots
        self.runner = runner
        self.make_runner = make_runner
        self.finish_page = finish_page
        self.on_tokens = on_tokens
        self.reserve_tokens = reserve_tokens
        self.cache_bucket = cache_bucket
        self.graphs = graphs
        # one prefill at a time beside the decode steps, or every free slot's prefill in line (the default:
        # on an H100 running them beside each other gave no more pages/min, benchmarks/README.md)
        self.overlap = overlap
        self.in_flight = in_flight  # taken and not yet yielded (what an out-of-memory error names)
        self.active: dict[int, SlotPage] = {}
        self.pending: dict[int, tuple[SlotPage, Prefill]] = {}  # slot -> a page whose prefill runs
        self.waiting: PageRequest | None = None
        self.put_back: list[PageRequest] = []  # pages whose blocks another page needed: read again from the start
        self.exhausted = False
        self.admitted = 0  # a page's order of admission: the youngest is put back first
        self.report = {"most_in_flight": 0, "put_back": 0}

    # -- the loop -------------------------------------------------------------------------
    def run(self) -> Iterator[PageTokens]:
        while True:
            yield from self._join_ready()
            if not self.overlap:  # freed slots take their next pages now, before the next steps
                self._fill_free_slots()
                yield from self._join_ready()
            if self.active:
                self._grow()
                self.runner.pool.send_table()
                self.report["most_in_flight"] = max(self.report["most_in_flight"], len(self.active))
                # no page reaches past this position by the next check (the gathered fallback's window)
                furthest = max(self._reach(page) for page in self.active.values())
                rows = max(self.active) + 1  # new pages take the lowest free row: the step covers the rows up to here
                for index in range(self.check):
                    self.runner.step(index, furthest, rows)
            if self.overlap:  # the steps are queued first, so the prefill started here runs beside them
                self._fill_free_slots()
            if not self.active:
                if not self.pending and self.exhausted and self.waiting is None and not self.put_back:
                    return
                continue  # join the prefills (or remake the cache for the waiting page)
            host = self.runner.chunk.tolist()  # the host reads the steps' tokens
            for slot, page in list(self.active.items()):
                page.tokens.extend(host[slot])
                finished = page.check(self.config, self.on_tokens)
                if finished is not None:
                    yield self._finish(slot, page, finished)

    # -- pages ----------------------------------------------------------------------------
    def _reach(self, page: SlotPage) -> int:
        """Positions the page may hold by the next check (its cache so far and ``check`` more steps)."""
        return page.prompt_len + len(page.tokens) - 1 + self.check

    def _needed(self, request: PageRequest) -> int:
        return request.prompt_len + request.budget(self.config) + self.check  # a page may run k-1 steps past its budget

    def _take(self) -> PageRequest | None:
        if self.put_back:
            return self.put_back.pop()
        try:
            request = next(self.requests, None)
        except Exception as exc:  # the caller's own failure (a page it could not prepare)
            raise CallerError() from exc
        if request is not None:
            self.in_flight.append(request)
        return request

    def _finish(self, slot: int, page: SlotPage, reason: str) -> PageTokens:
        self.runner.free(slot)
        del self.active[slot]
        self.in_flight.remove(page.request)
        self.limit = min(self.slots, self.limit + 1)
        return self.finish_page(page, reason)

    def _join_ready(self) -> Iterator[PageTokens]:
        """Pages whose prefill is done join the decoding (waiting for one when nothing else runs)."""
        for slot, (page, prefill) in sorted(self.pending.items()):
            if not self.active or prefill.done():
                del self.pending[slot]
                page.tokens = [self.runner.join(slot, prefill)]
                page.prefill_seconds = time.perf_counter() - prefill.started
                self.active[slot] = page
                finished = page.check(self.config, self.on_tokens)
                if finished is not None:
                    yield self._finish(slot, page, finished)

    # -- blocks ---------------------------------------------------------------------------
    def _put_back_youngest(self) -> bool:
        """Free the blocks of the page admitted last (it is read again later); False when only one runs."""
        everyone: dict[int, SlotPage] = {**self.active, **{s: p for s, (p, _) in self.pending.items()}}
        if len(everyone) <= 1:
            return False
        slot, page = max(everyone.items(), key=lambda item: item[1].order)
        prefill = self.pending.pop(slot)[1] if slot in self.pending else None
        self.active.pop(slot, None)
        self.runner.free(slot, prefill)
        self.put_back.append(page.request)
        self.limit = max(1, len(everyone) - 1)
        self.report["put_back"] += 1
        log.info("The cache is full: page %s is put back and read again later", page.request.key)
        return True

    def _grow(self) -> None:
        """Blocks for every page in flight up to where the next steps can take it (oldest first)."""
        for slot, page in sorted(self.active.items(), key=lambda item: item[1].order):
            if slot not in self.active:
                continue  # put back meanwhile
            while not self.runner.pool.reserve(slot, self._reach(page)):
                if not self._put_back_youngest():
                    raise torch.OutOfMemoryError(
                        "The KV cache cannot hold one page: the GPU memory left for it is too small."
                    )
                if slot not in self.active:
                    break

    def _fill_free_slots(self) -> None:
        """New pages into free slots (every page joins on a check boundary) while the pool has their
        prompt's blocks and one more block for each page in flight."""
        while len(self.active) + len(self.pending) < min(self.slots, self.limit) and not (
            self.overlap and self.pending
        ):
            if self.waiting is None:
                self.waiting = self._take()
                if self.waiting is None:
                    self.exhausted = True
                    break
            need = self._needed(self.waiting)
            runner = self.runner
            if runner is None or runner.slots != self.slots or runner.graphs != self.graphs:
                if self.active or self.pending:
                    break  # let the pages in flight finish, then make the cache anew
                self.runner = None  # free the old cache first
                runner = self.runner = self.make_runner(self.waiting, self.slots, max(need, self.reserve_tokens))
                self.slots = self.limit = runner.slots
            elif need > runner.cache_len:  # a longer page: a wider block table, the same pool
                runner.widen(-(-need // self.cache_bucket) * self.cache_bucket)
            prompt_len = self.waiting.prompt_len
            slot = next(index for index in range(self.slots) if index not in self.active and index not in self.pending)
            spare = runner.pool.spare_blocks() - (len(self.active) + len(self.pending))
            if (self.active or self.pending) and paged.blocks_for(prompt_len + self.check) > spare:
                break  # the pool is full for now: the page waits for blocks to come back
            if not runner.pool.reserve(slot, prompt_len + self.check):
                raise torch.OutOfMemoryError("The KV cache cannot hold one page's prompt.")
            request, self.waiting = self.waiting, None
            runner.configure(self.config)
            page = SlotPage(request, request.budget(self.config), [])
            page.prompt_len = prompt_len
            self.admitted += 1
            page.order = self.admitted
            self.pending[slot] = (page, runner.prefill(slot, request.inputs, beside=self.overlap))
