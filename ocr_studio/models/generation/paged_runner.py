"""Continuous batching's model runner: the paged cache's tensors, one page's prefill into its
blocks, and the decode step of every row in flight (a CUDA graph per shape on the GPU)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch

from .. import paged_attention as paged
from .block_pool import BlockPool
from .inputs import next_mrope_positions, prompt_forward
from .requests import GenerationConfig


@dataclass
class Prefill:
    """A page's prefill, started (on the GPU: queued on the side stream) but not yet joined."""

    length: int  # prompt tokens
    first: torch.Tensor  # [1] the first new token, on the device
    position: torch.Tensor  # the first new token's position (M-RoPE: one past the prompt's highest)
    mrope: bool
    event: Any  # torch.cuda.Event recorded after it on the side stream; None where it ran in line
    started: float

    def done(self) -> bool:
        return self.event is None or self.event.query()


class PagedRunner:
    """Continuous batching's model runner: the paged KV cache's tensors (blocks lent by a
    ``BlockPool``) shared by ``slots`` rows, each with its own write position, so a row can take a new
    page while the others decode; and the fused step, replayed as CUDA graphs on the GPU.

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
        self.device = device
        self.graphs = graphs
        shape = (pool_blocks + 1, fused.kv_heads, paged.BLOCK, fused.head_dim)
        self.cache = SimpleNamespace(
            layers=[
                SimpleNamespace(
                    keys=torch.zeros(shape, dtype=dtype, device=device),
                    values=torch.zeros(shape, dtype=dtype, device=device),
                )
                for _ in fused.layers
            ]
        )
        self.pool = BlockPool(slots, cache_len, pool_blocks, device)
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

    @property
    def cache_len(self) -> int:
        """The most positions one page may take (a multiple of the block)."""
        return self.pool.cache_len

    def widen(self, cache_len: int) -> None:
        """Room for pages of up to ``cache_len`` positions (a page larger than the first ones): the pool
        and the pages in flight stay; the graphs, which read the table by its address, are captured again."""
        if self.pool.widen(cache_len):
            self.graphs_by_window = {}

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

    def prefill(self, slot: int, inputs: dict[str, torch.Tensor], *, beside: bool = False) -> Prefill:
        """Start one page's prefill (batch 1, its own cache) and the move of its keys/values into the
        slot's blocks (``reserve`` them first). With ``beside`` (on the GPU) it runs on a side stream,
        so the other slots keep decoding meanwhile; ``join`` makes the slot decode it."""
        started = time.perf_counter()
        side = None
        if beside and self.device.type == "cuda":
            if self.side_stream is None:
                self.side_stream = torch.cuda.Stream(self.device)
            side = self.side_stream
        block = paged.BLOCK
        with torch.cuda.stream(side) if side is not None else contextlib.nullcontext():
            inputs, outputs, prompt_cache = prompt_forward(self.model, inputs, self.device)
            length = inputs["input_ids"].shape[1]
            owned = self.pool.blocks_of(slot, length)
            count = len(owned)
            blocks = torch.tensor(owned, dtype=torch.long, device=self.device)
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
        return Prefill(length, first, position, mrope, event, started)

    def join(self, slot: int, prefill: Prefill) -> int:
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

    def free(self, slot: int, prefill: Prefill | None = None) -> None:
        """The slot's page is done (or put back): the row stops and writes to block 0 from now on, and
        its blocks go back to the pool (after its prefill, where one still runs)."""
        if prefill is not None and prefill.event is not None:
            torch.cuda.current_stream(self.device).wait_event(prefill.event)
        self.live[slot] = False
        self.stopped[slot] = True
        self.write_at[slot] = 0
        self.pool.release(slot)

    def _pick(self, logits: torch.Tensor) -> torch.Tensor:
        if self.suppress.numel():
            logits = logits.index_fill(1, self.suppress, torch.finfo(logits.dtype).min)
        return torch.argmax(logits, dim=-1)

    def _step_body(self) -> None:
        """One decode step of the first ``rows_in_step`` rows, on the device alone: each row writes
        its own block and position and attends to its own blocks."""
        n = self.rows_in_step
        token, position, write_at, stopped = self.token[:n], self.position[:n], self.write_at[:n], self.stopped[:n]
        live, table = self.live[:n], self.pool.table[:n]
        block = table.gather(1, (write_at // paged.BLOCK).view(-1, 1)).view(-1).long()
        block = torch.where(live, block, torch.zeros_like(block))  # a free row writes to block 0
        blocks = SimpleNamespace(
            attention=paged,
            block=block,
            offset=write_at % paged.BLOCK,
            table=table,
            lengths=torch.where(live, write_at + 1, torch.ones_like(write_at)).int(),
            window_blocks=paged.blocks_for(self.window),
        )
        if self.mrope:
            position_ids = position.view(1, -1, 1).expand(3, -1, 1)
        else:
            position_ids = position.view(-1, 1)
        logits = self.fused.logits(token, position_ids, None, self.cache, write_at, paged=blocks)
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
