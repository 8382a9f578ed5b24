"""How large continuous batching's paged cache is: on the GPU, as many blocks as leave one page's
prefill workspace and a margin free (never more than every slot's longest page), and no more
pages in flight than the pool holds with an answer of typical length (``slot_plan``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from .. import paged_attention as paged
from .. import slot_plan
from .inputs import prompt_forward
from .requests import PageRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolPlan:
    cache_len: int  # positions one page may take (a multiple of the cache bucket and the block)
    blocks: int  # blocks in the pool
    slots: int  # pages in flight at most


def plan_pool(
    step: Any,
    first: PageRequest,
    *,
    slots: int,
    longest: int,
    cache_bucket: int,
    pool_tokens: int | None,
    prefill_bytes: int,
    device: torch.device,
    dtype: torch.dtype,
) -> PoolPlan:
    """The pool for pages of up to ``longest`` positions, decoded by ``step`` (a FusedDecoder: its
    layers, KV heads and head size); ``prefill_bytes`` is one page's prefill workspace on the GPU."""
    block = paged.BLOCK
    cache_len = -(-longest // cache_bucket) * cache_bucket
    cache_len = -(-cache_len // block) * block
    blocks = slots * paged.blocks_for(cache_len)
    if pool_tokens is not None:
        blocks = min(blocks, max(1, pool_tokens // block))
    if device.type == "cuda":
        per_block = len(step.layers) * 2 * step.kv_heads * step.head_dim * block * dtype.itemsize
        free = slot_plan.usable_cuda_bytes(device)
        usable = free - prefill_bytes - slot_plan.MARGIN_BYTES - free // 10  # a tenth for the allocator's fragmentation
        if not paged.kernels_available(device):  # attention gathers every row's window of K and V per layer
            usable -= 2 * slots * step.kv_heads * step.head_dim * cache_len * dtype.itemsize
        blocks = max(1, min(blocks, usable // per_block))
        prompt = first.prompt_len
        budget = first.max_new_tokens or (longest - prompt)
        typical = prompt + min(budget, slot_plan.TYPICAL_ANSWER_TOKENS)
        fit = max(1, min(slots, blocks * block // typical))
        log.info(
            "Paged KV cache: %.2f GB (%d tokens), %d pages in flight (asked for %d)",
            blocks * per_block / 1024**3,
            blocks * block,
            fit,
            slots,
        )
        slots = int(fit)
    return PoolPlan(cache_len, int(blocks), slots)


def measure_prefill(model: Any, inputs: dict[str, torch.Tensor], device: torch.device) -> int:
    """Bytes one page's prefill takes on the GPU (its outputs and cache are dropped at once)."""
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    prompt_forward(model, inputs, device)
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - base
    torch.cuda.empty_cache()
    log.info("One page's prefill takes %.2f GB", peak / 1024**3)
    return peak
