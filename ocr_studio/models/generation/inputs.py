"""A batch's model inputs: moving them, cutting rows out of them (the loop retry reads some rows
again), the M-RoPE position a row continues from, and one page's prompt through the model."""

from __future__ import annotations

import inspect
from typing import Any

import torch

# what get_rope_index reads, where the model's version takes it (mm_token_type_ids: transformers 5.x)
ROPE_INDEX_INPUTS = ("input_ids", "mm_token_type_ids", "image_grid_thw", "video_grid_thw", "attention_mask")


def on_device(inputs: dict[str, Any], device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}


def next_mrope_positions(base: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The M-RoPE position of each row's first new token: one past the highest position of its
    real (unpadded) prompt tokens, from the model's own ``get_rope_index``.

    Why not ``attention_mask.sum() + rope_deltas``: what ``rope_deltas`` is relative to changed
    in transformers 5.3 (the padded row length before, the unpadded one after), so that sum is
    wrong for left-padded rows under one of them; the positions themselves mean the same in both."""
    rope_index = base.get_rope_index
    parameters = inspect.signature(rope_index).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    names = [n for n in ROPE_INDEX_INPUTS if n in inputs and (takes_any or n in parameters)]
    positions, _deltas = rope_index(**{name: inputs[name] for name in names})
    real = inputs["attention_mask"].to(positions.device).bool()
    return positions.masked_fill(~real.unsqueeze(0), 0).amax(dim=(0, 2)) + 1


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


def prompt_forward(model: Any, inputs: dict[str, Any], device) -> tuple[dict[str, Any], Any, Any]:
    """One page's prompt through the model into a cache of its own (logits of the last position
    only): the inputs as sent, the outputs, the cache."""
    from transformers import DynamicCache

    inputs = on_device(inputs, device)
    if "attention_mask" not in inputs:
        inputs = {**inputs, "attention_mask": torch.ones_like(inputs["input_ids"])}
    base = getattr(model, "model", None)
    if base is not None and hasattr(base, "rope_deltas"):
        base.rope_deltas = None  # stale deltas from an earlier page must not leak in
    cache = DynamicCache(config=model.config)
    outputs = model(**inputs, past_key_values=cache, use_cache=True, logits_to_keep=1)
    return inputs, outputs, cache
