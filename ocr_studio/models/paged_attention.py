"""Decode attention over a paged KV cache: every page in flight holds only the blocks its tokens fill.

Why: with one contiguous cache per slot, each page in flight reserves its prompt plus its whole token
budget up front. A Qwen3-VL-2B Letter page is about 2,500 prompt tokens, so with a 3,000-token budget
a slot costs 0.63 GB whether the page answers in 50 tokens or 3,000, and 14 GB held 12 pages. Here the
cache is one pool of fixed-size blocks; a page takes a block when it reaches one, gives them all back when it stops, and
attention reads each page's blocks through its row of a block table, only as far as that page's own
length (not the longest page's).

On a CUDA GPU with Triton, attention is one kernel over (row, kv head, split of the blocks) that reads
K/V once for all the query heads sharing them, plus one kernel that merges the splits (the split keeps
a lone page's step spread over the whole GPU). Elsewhere it gathers the blocks and runs the same
arithmetic as the contiguous path (scores in the model's dtype, softmax in fp32), so CPU results are
token-for-token those of one page read alone.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import torch

log = logging.getLogger(__name__)

BLOCK = 64  # cache positions per block (a multiple of 16 for the kernel's dot products)
SPLIT_TARGET = 2  # programs per streaming multiprocessor the split aims for


def blocks_for(tokens: int) -> int:
    return -(-tokens // BLOCK)


def write(
    keys: torch.Tensor,  # pool [blocks, kv_heads, BLOCK, D]
    values: torch.Tensor,
    k: torch.Tensor,  # [rows, kv_heads, 1, D]
    v: torch.Tensor,
    block: torch.Tensor,  # [rows] the block each row writes into
    offset: torch.Tensor,  # [rows] the position inside it
) -> None:
    """Each row's new key and value into its own block and position (device tensors: graph-safe); on
    the GPU one small kernel for both (indexed assignment costs two launches of a generic kernel)."""
    if k.is_cuda and kernels_available(k.device):
        _write_triton(keys, values, k, v, block, offset)
        return
    keys[block, :, offset] = k[:, :, 0]
    values[block, :, offset] = v[:, :, 0]


def _write_triton(
    keys: torch.Tensor,
    values: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    block: torch.Tensor,
    offset: torch.Tensor,
) -> None:
    rows, kv_heads, _, dim = k.shape
    _kernels()[2][(rows, kv_heads)](
        k,
        v,
        keys,
        values,
        block,
        offset,
        k.stride(0),
        k.stride(1),
        v.stride(0),
        v.stride(1),
        keys.stride(0),
        keys.stride(1),
        keys.stride(2),
        DIM=dim,
    )


def attend(
    q: torch.Tensor,  # [rows, heads, D]
    keys: torch.Tensor,  # pool [blocks, kv_heads, BLOCK, D]
    values: torch.Tensor,
    table: torch.Tensor,  # [rows, table_width] int32: each row's blocks in order
    lengths: torch.Tensor,  # [rows] int32: positions each row attends to (its cache so far, this token included)
    window_blocks: int,  # no row reaches past this many blocks
    scaling: float,
    probs_fn: Any = None,  # the contiguous path's softmax (compiled), for the gathered fallback
) -> torch.Tensor:
    """The attention output [rows, heads, D] of one decode step."""
    if q.is_cuda and kernels_available(q.device):
        return _attend_triton(q, keys, values, table, lengths, window_blocks, scaling)
    return attend_gathered(q, keys, values, table, lengths, window_blocks, scaling, probs_fn)


def attend_gathered(
    q: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    table: torch.Tensor,
    lengths: torch.Tensor,
    window_blocks: int,
    scaling: float,
    probs_fn: Any = None,
) -> torch.Tensor:
    """Gather each row's blocks into a contiguous window and attend as the contiguous path does."""
    rows, heads, dim = q.shape
    kv_heads = keys.shape[1]
    groups = heads // kv_heads
    blocks = table[:, :window_blocks].long()
    width = window_blocks * BLOCK

    def gathered(pool: torch.Tensor) -> torch.Tensor:  # [rows, kv_heads, width, D]
        return pool[blocks].permute(0, 2, 1, 3, 4).reshape(rows, kv_heads, width, dim)

    positions = torch.arange(width, device=q.device)
    masked = torch.finfo(q.dtype).min
    mask = torch.where(positions.view(1, -1) < lengths.view(-1, 1).long(), 0.0, masked).to(q.dtype)
    mask = mask.view(rows, 1, 1, width)
    scores = torch.matmul(q.view(rows, kv_heads, groups, dim), gathered(keys).transpose(-1, -2))
    if probs_fn is None:
        probs = torch.softmax(scores.float() * scaling + mask.float(), dim=-1).to(scores.dtype)
    else:
        probs = probs_fn(scores, mask, scaling)
    return torch.matmul(probs, gathered(values)).reshape(rows, heads, dim)


def kernels_available(device: torch.device | None = None) -> bool:
    """Whether the Triton kernels can run (on ``device``: they compiled and gave the gathered
    arithmetic's answer there once; a GPU they fail on gets the gathered attention, not an error)."""
    try:
        from torch.utils._triton import has_triton
    except ImportError:  # pragma: no cover - very old torch
        return False
    if not has_triton() or _kernels() is None:
        return False
    return device is None or _kernels_work(device)


@functools.cache
def _kernels_work(device: torch.device) -> bool:
    """A small paged attention and cache write on ``device`` with the real head size and block,
    checked against the gathered arithmetic (a GPU whose shared memory or compiler refuses the
    kernels is found here, before any graph is captured)."""
    try:
        generator = torch.Generator(device=device).manual_seed(0)

        def random(*shape: int) -> torch.Tensor:
            return torch.randn(*shape, device=device, dtype=torch.bfloat16, generator=generator)

        keys, values = random(5, 2, BLOCK, 128), random(5, 2, BLOCK, 128)
        q = random(2, 12, 128)
        table = torch.tensor([[1, 3], [2, 4]], device=device, dtype=torch.int32)
        lengths = torch.tensor([70, 128], device=device, dtype=torch.int32)
        _write_triton(
            keys, values, random(2, 2, 1, 128), random(2, 2, 1, 128), table[:, 1].long(), lengths.long() % BLOCK
        )
        got = _attend_triton(q, keys, values, table, lengths, 2, 0.09).float()
        want = attend_gathered(q.float(), keys.float(), values.float(), table, lengths, 2, 0.09)
        error = (got - want).abs().max().item()
        if not error < 2e-2:
            raise RuntimeError(f"they differ from the gathered attention by {error:.3g}")
        return True
    except Exception as exc:  # noqa: BLE001 - any failure means: use the gathered attention
        log.warning("Paged attention kernels are not used on %s (%s); attention gathers K/V instead", device, exc)
        return False


@functools.cache
def _multiprocessors(device: torch.device) -> int:
    return int(torch.cuda.get_device_properties(device).multi_processor_count)


def splits_for(rows: int, kv_heads: int, window_blocks: int, multiprocessors: int) -> tuple[int, int]:
    """(splits, blocks per split): enough programs to fill the GPU when few pages are in flight."""
    wanted = -(-(SPLIT_TARGET * multiprocessors) // max(1, rows * kv_heads))
    splits = max(1, min(window_blocks, wanted))
    per_split = -(-window_blocks // splits)
    return -(-window_blocks // per_split), per_split


def _attend_triton(
    q: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    table: torch.Tensor,
    lengths: torch.Tensor,
    window_blocks: int,
    scaling: float,
) -> torch.Tensor:
    partial_kernel, merge_kernel, _ = _kernels()
    rows, heads, dim = q.shape
    kv_heads = keys.shape[1]
    groups = heads // kv_heads
    splits, per_split = splits_for(rows, kv_heads, window_blocks, _multiprocessors(q.device))
    q = q.contiguous()
    partial = torch.empty(rows, heads, splits, dim, dtype=torch.float32, device=q.device)
    lse = torch.empty(rows, heads, splits, dtype=torch.float32, device=q.device)
    partial_kernel[(rows, kv_heads, splits)](
        q,
        keys,
        values,
        table,
        lengths,
        partial,
        lse,
        q.stride(0),
        q.stride(1),
        keys.stride(0),
        keys.stride(1),
        keys.stride(2),
        table.stride(0),
        partial.stride(0),
        partial.stride(1),
        partial.stride(2),
        lse.stride(0),
        lse.stride(1),
        scaling,
        per_split,
        GROUPS=groups,
        GROUPS_PAD=max(16, _next_power_of_two(groups)),
        BLOCK=BLOCK,
        DIM=dim,
        num_warps=4,
        num_stages=2,  # two blocks of K and V in flight: ~70 KB of shared memory, within a laptop GPU's ~100 KB
    )
    out = torch.empty(rows, heads, dim, dtype=q.dtype, device=q.device)
    merge_kernel[(rows, heads)](
        partial,
        lse,
        out,
        splits,
        partial.stride(0),
        partial.stride(1),
        partial.stride(2),
        lse.stride(0),
        lse.stride(1),
        out.stride(0),
        out.stride(1),
        SPLITS_PAD=max(2, _next_power_of_two(splits)),
        DIM=dim,
    )
    return out


def _next_power_of_two(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


@functools.cache
def _kernels() -> tuple[Any, Any, Any] | None:
    """The Triton kernels: partial attention, merge of the splits, cache write (built once; None
    where Triton cannot be imported)."""
    try:
        import triton
        import triton.language as tl
    except ImportError:
        return None

    @triton.jit
    def partial_attention(
        Q,
        K,
        V,
        Table,
        Lengths,
        Partial,
        Lse,
        stride_q_row,
        stride_q_head,
        stride_k_block,
        stride_k_head,
        stride_k_pos,
        stride_table_row,
        stride_p_row,
        stride_p_head,
        stride_p_split,
        stride_l_row,
        stride_l_head,
        scaling,
        per_split,
        GROUPS: tl.constexpr,
        GROUPS_PAD: tl.constexpr,
        BLOCK: tl.constexpr,
        DIM: tl.constexpr,
    ):
        # one program: one row, one kv head (all its query heads at once), one split of the blocks
        row = tl.program_id(0)
        kv_head = tl.program_id(1)
        split = tl.program_id(2)
        length = tl.load(Lengths + row)
        first = split * per_split
        last = tl.minimum(first + per_split, tl.cdiv(length, BLOCK))
        group = tl.arange(0, GROUPS_PAD)
        dims = tl.arange(0, DIM)
        positions = tl.arange(0, BLOCK)
        heads = kv_head * GROUPS + group
        real = group < GROUPS
        q = tl.load(
            Q + row * stride_q_row + heads[:, None] * stride_q_head + dims[None, :], mask=real[:, None], other=0.0
        )
        best = tl.full([GROUPS_PAD], float("-inf"), tl.float32)
        total = tl.zeros([GROUPS_PAD], tl.float32)
        acc = tl.zeros([GROUPS_PAD, DIM], tl.float32)
        for index in range(first, last):
            block = tl.load(Table + row * stride_table_row + index).to(tl.int64)
            offsets = block * stride_k_block + kv_head * stride_k_head + positions[:, None] * stride_k_pos
            k = tl.load(K + offsets + dims[None, :])
            scores = tl.dot(q, tl.trans(k)) * scaling
            scores = tl.where((index * BLOCK + positions)[None, :] < length, scores, float("-inf"))
            new_best = tl.maximum(best, tl.max(scores, 1))
            rescale = tl.exp(best - new_best)
            p = tl.exp(scores - new_best[:, None])
            total = total * rescale + tl.sum(p, 1)
            v = tl.load(V + offsets + dims[None, :])
            acc = acc * rescale[:, None] + tl.dot(p.to(v.dtype), v)
            best = new_best
        safe = tl.where(total > 0, total, 1.0)
        out = acc / safe[:, None]
        lse = tl.where(total > 0, best + tl.log(safe), float("-inf"))
        base = row * stride_p_row + heads * stride_p_head + split * stride_p_split
        tl.store(Partial + base[:, None] + dims[None, :], out, mask=real[:, None])
        tl.store(Lse + row * stride_l_row + heads * stride_l_head + split, lse, mask=real)

    @triton.jit
    def merge_splits(
        Partial,
        Lse,
        Out,
        splits,
        stride_p_row,
        stride_p_head,
        stride_p_split,
        stride_l_row,
        stride_l_head,
        stride_o_row,
        stride_o_head,
        SPLITS_PAD: tl.constexpr,
        DIM: tl.constexpr,
    ):
        row = tl.program_id(0)
        head = tl.program_id(1)
        index = tl.arange(0, SPLITS_PAD)
        dims = tl.arange(0, DIM)
        used = index < splits
        lse = tl.load(Lse + row * stride_l_row + head * stride_l_head + index, mask=used, other=float("-inf"))
        weights = tl.exp(lse - tl.max(lse, 0))
        parts = tl.load(
            Partial + row * stride_p_row + head * stride_p_head + index[:, None] * stride_p_split + dims[None, :],
            mask=used[:, None],
            other=0.0,
        )
        out = tl.sum(parts * weights[:, None], 0) / tl.sum(weights, 0)
        tl.store(Out + row * stride_o_row + head * stride_o_head + dims, out.to(Out.dtype.element_ty))

    @triton.jit
    def write_new(
        K_new,
        V_new,
        K,
        V,
        Block,
        Offset,
        stride_kn_row,
        stride_kn_head,
        stride_vn_row,
        stride_vn_head,
        stride_k_block,
        stride_k_head,
        stride_k_pos,
        DIM: tl.constexpr,
    ):
        row = tl.program_id(0)
        kv_head = tl.program_id(1)
        dims = tl.arange(0, DIM)
        block = tl.load(Block + row).to(tl.int64)
        offset = tl.load(Offset + row).to(tl.int64)
        target = block * stride_k_block + kv_head * stride_k_head + offset * stride_k_pos + dims
        k = tl.load(K_new + row * stride_kn_row + kv_head * stride_kn_head + dims)
        v = tl.load(V_new + row * stride_vn_row + kv_head * stride_vn_head + dims)
        tl.store(K + target, k)
        tl.store(V + target, v)

    return partial_attention, merge_splits, write_new
