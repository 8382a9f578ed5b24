"""Where a block's printed lines are, read from the page image.

Vision engines give a paragraph's box and its text, not its lines. The searchable PDF can
guess the lines from the box's shape, but the page image knows: rows of ink separated by
rows of paper. Each printed line's vertical band and its left and right ends tell where the
text layer's lines go and how much of the text each one holds (a short last line holds
less). Plain numpy on the block's crop: cheap, and when the crop does not look like lines
of text (too little contrast, no clear gaps) the caller falls back to its guess.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

Band = tuple[float, float, float, float]  # x1, y1, x2, y2 of one printed line, page pixels

_MIN_CONTRAST = 60  # grey levels between paper and ink
_MIN_INK_SHARE = 0.004  # a row is inked when this share of its pixels (at least 2) is ink
_MIN_BAND_SHARE = 0.35  # bands lower than this share of the median band are specks, not lines


def printed_lines(image: Image.Image, box: tuple[float, float, float, float]) -> list[Band]:
    """The printed lines inside ``box`` (pixels of ``image``), top to bottom; empty when the
    crop does not show clear lines of dark text on light paper."""
    import numpy as np

    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, y1 = max(0, x1), max(0, y1)
    x2, y2 = min(image.width, x2), min(image.height, y2)
    if x2 - x1 < 4 or y2 - y1 < 4:
        return []
    grey = np.asarray(image.crop((x1, y1, x2, y2)).convert("L"), dtype=np.int16)
    paper, dark = np.percentile(grey, 90), np.percentile(grey, 1)
    if paper - dark < _MIN_CONTRAST:
        return []
    ink = grey < paper - 0.45 * (paper - dark)
    inked_rows = ink.sum(axis=1) >= max(2, _MIN_INK_SHARE * ink.shape[1])
    runs: list[list[int]] = []
    for row, inked in enumerate(inked_rows):
        if inked and runs and row - runs[-1][1] <= 1:
            runs[-1][1] = row
        elif inked:
            runs.append([row, row])
    if not runs:
        return []
    heights = sorted(end - start + 1 for start, end in runs)
    median = heights[len(heights) // 2]
    bands: list[Band] = []
    for start, end in runs:
        if end - start + 1 < _MIN_BAND_SHARE * median:
            continue  # the dot of an i, a speck of dust
        columns = np.flatnonzero(ink[start : end + 1].any(axis=0))
        if columns.size:
            bands.append((x1 + float(columns[0]), y1 + float(start), x1 + float(columns[-1] + 1), y1 + float(end + 1)))
    return bands
