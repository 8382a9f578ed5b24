"""How many pages each local model decodes at once on a card (continuous batching's VRAM plan),
said where the user looks before a run: the sidebar's GPU panel and ``ocr-studio doctor``.

Why before a run: on a 16 GB laptop the answer decides whether dots.ocr reads eight pages at a
time or one, and the user should see it (and what the token budget costs) without a benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..i18n import Text, text

if TYPE_CHECKING:
    from ..settings import Settings
    from .local import VisionEngine


def pages_in_flight(settings: Settings, total_bytes: int, engines: Sequence[VisionEngine]) -> list[Text]:
    """One line per local model (``engines``: ``engines.local_models(settings)``): "dots.ocr: 8
    pages in flight on this card", from the VRAM plan on a card of ``total_bytes``, or the
    batch_size setting where it fixes the number."""
    lines: list[Text] = []
    for engine in engines:
        if settings.batch_size:
            lines.append(text("capacity.set", model=engine.model_name, count=int(settings.batch_size)))
            continue
        plan = engine.slot_plan(total_bytes=total_bytes)
        if plan.fits:
            lines.append(text("capacity.in_flight", model=engine.model_name, count=plan.slots))
        else:
            lines.append(text("capacity.does_not_fit", model=engine.model_name, gb=f"{total_bytes / 1024**3:.0f}"))
    return lines
