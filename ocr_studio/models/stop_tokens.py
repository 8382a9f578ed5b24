"""Which tokens end an answer, and which one pads a batch: what the checkpoint's own
``generation_config.json`` says (the file the published reference ``generate`` reads).

Why not ``config.json``: the two can disagree. dots.ocr's config.json lists
``[151643, 151672, 151673]`` as EOS, but 151672 is ``<|assistant|>`` and its
generation_config.json stops on ``[151643, 151673]`` only. Where a checkpoint has no
generation_config.json (or it names no EOS), the engine's fallback (the tokenizer's own end
tokens) is used. Sampling defaults in the file (temperature, top_p) are deliberately not
applied: both engines decode greedily, as OCR wants.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

FILE_NAME = "generation_config.json"


@dataclass(frozen=True)
class StopTokens:
    eos_token_ids: tuple[int, ...]  # any of these ends an answer
    pad_token_id: int  # fills the rows of a batch that already ended


def _ids(value: object) -> list[int]:
    values = value if isinstance(value, list | tuple) else [value]
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool) and v >= 0]


def read_stop_tokens(folder: str | Path, *, fallback_eos: Iterable[int | None], fallback_pad: int | None) -> StopTokens:
    """The checkpoint's stop and pad tokens; the fallbacks where its generation_config.json
    is missing, unreadable or silent about them."""
    settings: dict = {}
    path = Path(folder) / FILE_NAME
    if path.is_file():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            settings = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError) as exc:
            log.warning("Cannot read %s (%s); using the tokenizer's end tokens.", path, exc)
    eos = _ids(settings.get("eos_token_id")) or _ids(list(fallback_eos))
    if not eos:
        raise ValueError(f"{folder} names no end-of-answer token (generation_config.json or tokenizer).")
    pads = _ids(settings.get("pad_token_id")) or _ids(fallback_pad)
    return StopTokens(tuple(dict.fromkeys(eos)), pads[0] if pads else eos[0])
