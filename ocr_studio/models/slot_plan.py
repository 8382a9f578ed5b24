"""How many pages one GPU can decode at once (continuous batching's slots), from its memory.

Why a plan and not a guess: a laptop's 16 GB card holds dots.ocr's 6.1 GB of weights, and every
page in flight needs KV cache for its prompt and what it has answered so far, while one page at a
time is being prefilled (vision encoder and prompt). The cache is paged (``paged_attention``): a page
holds only the blocks its tokens fill, so the plan counts a page at its prompt plus an answer of
typical length (``TYPICAL_ANSWER_TOKENS``, a dense page's text), not its whole token budget; when
longer answers fill the pool, the youngest page waits and is read again. The plan is: weights +
slots × KV per page + one prefill's workspace + a margin ≤ the memory this process may use (free
memory, or the per-process cap set with ``torch.cuda.set_per_process_memory_fraction``). The same
arithmetic, on the card's total memory, tells the sidebar and ``doctor`` what to expect before
anything loads.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3
MARGIN_BYTES = int(0.75 * GIB)  # allocator fragmentation, cuBLAS workspaces, the graphs' pool
CUDA_CONTEXT_BYTES = int(0.5 * GIB)  # what the CUDA context takes before torch allocates (card-total plans)
MOST_SLOTS = 64
TYPICAL_ANSWER_TOKENS = 1024  # a page's answer the plan counts on (a dense page of text is ~1,000 tokens)


@dataclass(frozen=True)
class SlotPlan:
    """A plan's figures (bytes), kept so the UI and doctor can say why the number is what it is."""

    slots: int
    slot_bytes: int  # one page in flight: its KV cache at prompt + a typical answer
    prefill_bytes: int  # one page's prefill workspace
    weight_bytes: int  # weights still to be placed (0 once loaded)
    usable_bytes: int  # what the plan divided

    @property
    def fits(self) -> bool:
        """Whether even one page fits beside the weights."""
        return self.usable_bytes - self.weight_bytes - self.prefill_bytes - MARGIN_BYTES >= self.slot_bytes


def plan_slots(
    usable_bytes: int, *, weight_bytes: int, slot_bytes: int, prefill_bytes: int, most: int = MOST_SLOTS
) -> SlotPlan:
    """Slots = what is left after weights, one prefill and the margin, divided by one page's KV
    cache; at least 1 (a single page can still try, and the engine's out-of-memory fallbacks act)."""
    left = usable_bytes - weight_bytes - prefill_bytes - MARGIN_BYTES
    slots = max(1, min(most, left // max(1, slot_bytes)))
    return SlotPlan(int(slots), slot_bytes, prefill_bytes, weight_bytes, usable_bytes)


def usable_cuda_bytes(device: int | None = None) -> int:
    """Memory this process can still allocate on the GPU: free memory, and under a per-process
    cap (``set_per_process_memory_fraction``) no more than the cap less what torch already holds."""
    import torch

    free, total = torch.cuda.mem_get_info(device)
    allocated = torch.cuda.memory_allocated(device)
    usable = free + torch.cuda.memory_reserved(device) - allocated  # torch's cached blocks are reusable here
    getter = getattr(torch.cuda, "get_per_process_memory_fraction", None)
    if getter is not None:
        usable = min(usable, int(getter(device) * total) - allocated)
    return int(usable)


def card_bytes(total_bytes: int) -> int:
    """What a fresh process can use on a card of ``total_bytes`` (before anything is loaded)."""
    return max(0, total_bytes - CUDA_CONTEXT_BYTES)
