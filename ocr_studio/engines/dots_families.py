"""The dots model families as data: one row per checkpoint line the dots engine runs.

Why a table: dots.ocr and its successor dots.mocr share the architecture and config shapes
(``DotsOCRForCausalLM``), the resize rule, the chat framing, the answer parser and the runtime.
What differs is data: the engine's name, the checkpoint, the setting that points at it, and
which of the official prompt modes the checkpoint was trained on. A new member of the family is
one row here plus its row in the engine registry (``engines/__init__.py``).

Sources (facts, not code): dots.ocr's modes from its repository's ``dots_ocr/utils/prompts.py``;
dots.mocr's from github.com/rednote-hilab/dots.mocr ``dots_mocr/utils/prompts.py`` at commit
23f3e5612fb8066d4034d5ecfc8f33a9243533eb (2026-03-20), which keeps the four dots.ocr modes verbatim
and adds web parsing, scene spotting, image-to-SVG and a free "general" mode. The studio offers
the two that read text into blocks (web pages, photos); SVG drawing and free questions are not OCR.
The same commit confirms what the shared engine assumes: the resize rule (factor 28, 3,136 ...
11,289,600 pixels), the ``<|img|><|imgpad|><|endofimg|>`` prefix its own vLLM client sends, and a
scene answer's ``(x1, y1), (x2, y2), (x3, y3), (x4, y4) text`` lines in the resized image's
pixels. The checkpoint's config.json and generation_config.json live on the model hub, which the
build machines cannot reach: their shapes are taken as dots.ocr's (shared/reference/models.md),
and generation stops on whatever the checkpoint's generation_config.json names (models/stop_tokens.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .base import Task
from .dots_prompts import PROMPT_MODES


@dataclass(frozen=True)
class DotsFamily:
    """One model of the dots family as the studio offers it."""

    engine: str  # registry name, kept in settings, the CLI's --engine and job files
    model_name: str  # the model as messages name it
    label: str  # the engine choice in the UI
    setting: str  # the Settings field that holds its checkpoint (hub id or local folder)
    default_model: str  # the published hub id
    modes: Mapping[Task, str]  # task -> official prompt mode (dots_prompts.PROMPTS), in the order offered
    licence: str = ""  # message id of the licence note shown where the model is chosen; "" = none

    @property
    def tasks(self) -> tuple[Task, ...]:
        return tuple(self.modes)


DOTS_OCR = DotsFamily(
    engine="dots-ocr",
    model_name="dots.ocr",
    label="dots.ocr (layout + text, GPU)",
    setting="dots_model",
    default_model="rednote-hilab/dots.ocr",
    modes=MappingProxyType(dict(PROMPT_MODES)),
)

DOTS_MOCR = DotsFamily(
    engine="dots-mocr",
    model_name="dots.mocr",
    label="dots.mocr (layout + text, web pages, photos; GPU)",
    setting="dots_mocr_model",
    default_model="rednote-hilab/dots.mocr",
    modes=MappingProxyType(
        {**PROMPT_MODES, Task.WEB: "prompt_web_parsing", Task.SCENE: "prompt_scene_spotting"},
    ),
    licence="mocr.licence",
)

FAMILIES: Mapping[str, DotsFamily] = MappingProxyType({f.engine: f for f in (DOTS_OCR, DOTS_MOCR)})
