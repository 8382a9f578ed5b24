"""The resize rule of Qwen-VL-style vision encoders (Qwen2-VL's ``smart_resize``): both sides
become multiples of the encoder's patch × merge size, the area stays inside a pixel budget,
and the aspect ratio is kept as closely as the rounding allows. dots.ocr uses it with 28,
Qwen3-VL with 32. Plain arithmetic: importing it costs nothing."""

from __future__ import annotations

import math

MAX_ASPECT_RATIO = 200


def fit_to_grid(
    width: int,
    height: int,
    *,
    factor: int,
    min_pixels: int,
    max_pixels: int,
    max_aspect: float | None = MAX_ASPECT_RATIO,
) -> tuple[int, int]:
    """(width, height) the model sees; ValueError (a message for the user) for an image with
    no pixels or, where ``max_aspect`` is set, one too long and thin to read."""
    if width <= 0 or height <= 0:
        raise ValueError(f"An image of {width}×{height} pixels has nothing to read.")
    if max_aspect is not None and max(width, height) / min(width, height) > max_aspect:
        raise ValueError(
            f"An image of {width}×{height} pixels is too long and thin to read "
            f"(aspect ratio over {max_aspect:g}:1); crop it into parts."
        )
    max_pixels = max(max_pixels, factor * factor)
    w = max(factor, round(width / factor) * factor)
    h = max(factor, round(height / factor) * factor)
    if w * h > max_pixels:
        scale = math.sqrt(width * height / max_pixels)
        w = max(factor, math.floor(width / scale / factor) * factor)
        h = max(factor, math.floor(height / scale / factor) * factor)
    elif w * h < min_pixels:
        scale = math.sqrt(min_pixels / (width * height))
        w = math.ceil(width * scale / factor) * factor
        h = math.ceil(height * scale / factor) * factor
        if w * h > max_pixels:
            # Rounding up to min_pixels can overshoot a max_pixels set close to it: the budget wins
            # (the official dots.ocr rule re-checks here, scaling the rounded sides down).
            scale = math.sqrt(w * h / max_pixels)
            w = max(factor, math.floor(w / scale / factor) * factor)
            h = max(factor, math.floor(h / scale / factor) * factor)
    return w, h
