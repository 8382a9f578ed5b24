"""Continuous batching's KV cache manager: which blocks of the paged cache each row holds.

The pool is one set of fixed-size blocks (``paged_attention.BLOCK`` positions each). A page takes
blocks as it grows (``reserve``, before each run of steps) and gives them all back when it stops
(``release``); the block table maps each row's positions to its blocks, kept on the host and sent
to the device only when it changed. Block 0 is never lent: a free row writes there, and nothing
reads it. This is bookkeeping only: the keys and values live in the runner's tensors."""

from __future__ import annotations

import torch

from .. import paged_attention as paged


class BlockPool:
    def __init__(self, slots: int, cache_len: int, pool_blocks: int, device):
        self.slots = slots
        self.cache_len = cache_len  # the most positions one page may take (a multiple of the block)
        self.pool_blocks = pool_blocks
        self.device = device
        width = paged.blocks_for(cache_len)
        self.table_host = torch.zeros(slots, width, dtype=torch.int32)
        self.table = torch.zeros(slots, width, dtype=torch.int32, device=device)
        self.table_changed = False
        self.free_blocks = list(range(pool_blocks, 0, -1))  # pop() lends the lowest first
        self.owned: list[list[int]] = [[] for _ in range(slots)]

    @property
    def width(self) -> int:
        """Blocks one page may hold: the block table's width."""
        return self.table_host.shape[1]

    def reserve(self, slot: int, tokens: int) -> bool:
        """Blocks enough for ``tokens`` positions in ``slot`` (False, lending none, where the pool is short)."""
        wanted = min(paged.blocks_for(tokens), self.width)
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

    def widen(self, cache_len: int) -> bool:
        """Room in the block table for pages of up to ``cache_len`` positions (a page larger than the
        first ones); the pages in flight keep their blocks. True where the table changed shape."""
        width = paged.blocks_for(cache_len)
        if width <= self.width:
            return False
        table_host = torch.zeros(self.slots, width, dtype=torch.int32)
        table_host[:, : self.width] = self.table_host
        self.table_host, self.cache_len = table_host, width * paged.BLOCK
        self.table = torch.zeros(self.slots, width, dtype=torch.int32, device=self.device)
        self.table_changed = True
        return True

    def send_table(self) -> None:
        """The block table to the device (before steps that may read a changed row)."""
        if self.table_changed:
            self.table.copy_(self.table_host)
            self.table_changed = False

    def blocks_of(self, slot: int, positions: int) -> list[int]:
        """The blocks that hold the first ``positions`` positions of ``slot`` (reserved before)."""
        count = -(-positions // paged.BLOCK)
        if len(self.owned[slot]) < count:
            raise RuntimeError("the prompt's cache blocks were not reserved")
        return self.owned[slot][:count]

    def release(self, slot: int) -> None:
        """Every block of ``slot`` back to the pool."""
        owned = self.owned[slot]
        self.free_blocks.extend(reversed(owned))
        self.table_host[slot, : len(owned)] = 0
        owned.clear()
        self.table_changed = True
