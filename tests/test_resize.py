"""The shared resize rule (models/resize.py) against the published dots.ocr ``smart_resize``."""

from __future__ import annotations

import math

import pytest

from ocr_studio.models.resize import fit_to_grid


def published_smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """The published rule written out from its description (dots_ocr/utils/image_utils.py): round to the
    grid; over the budget scale down; under min_pixels scale up, then re-check the budget."""
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
        if h * w > max_pixels:
            beta = math.sqrt(h * w / max_pixels)
            h = max(factor, math.floor(h / beta / factor) * factor)
            w = max(factor, math.floor(w / beta / factor) * factor)
    return h, w


def test_a_tiny_image_scaled_up_to_min_pixels_still_keeps_max_pixels() -> None:
    """max_pixels set just above min_pixels: scaling 50×30 up to min_pixels gives 168×112 (18,816 px),
    over the 12,600 budget; the published rule scales it back to 112×84."""
    assert fit_to_grid(50, 30, factor=28, min_pixels=12_544, max_pixels=12_600) == (112, 84)


@pytest.mark.parametrize("factor", [28, 32])
@pytest.mark.parametrize(
    ("width", "height", "min_pixels", "max_pixels"),
    [
        (50, 30, 12_544, 12_600),
        (17, 90, 3136 * 4, 3136 * 5),
        (1700, 2200, 3136, 11_289_600),
        (1700, 2200, 3136, 1_000_000),
        (10, 10, 3136, 3136),
        (640, 480, 65_536, 70_000),
        (3, 500, 50_000, 60_000),
    ],
)
def test_fit_to_grid_is_the_published_rule(width: int, height: int, min_pixels: int, max_pixels: int, factor: int):
    w, h = fit_to_grid(width, height, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    assert (h, w) == published_smart_resize(height, width, factor, min_pixels, max_pixels)
