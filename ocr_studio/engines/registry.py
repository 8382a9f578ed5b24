"""The engine registry as data: one row per engine the studio offers.

Why a table: what an engine is (reads a file's own text, or asks a vision model), which tasks it
offers, whether it needs a GPU, which model family and which setting names its checkpoint are
facts, and every place that needs one of them (the engine list, availability, the remote runtime,
where a job's pages are read, the VRAM plan) reads the row instead of guessing from the object
with ``hasattr``/``isinstance``. Adding an engine is one module (its ``prepare``/``parse``, or its
``recognize``) plus one row here. The module is imported only when the engine is built, so listing
engines (the CLI's help) never imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from ..recognition import Task
from .dots_families import DOTS_MOCR, DOTS_OCR


class EngineKind(StrEnum):
    """What kind of engine a row is; decides which runtime reads its pages."""

    TEXT_LAYER = "text-layer"  # the file's own text, else Tesseract: no model, runs in the page worker
    VISION_MODEL = "vision-model"  # a vision-language model: prepare + parse; runs locally or on a server


@dataclass(frozen=True)
class EngineRow:
    """One engine as the studio offers it."""

    name: str  # stable id kept in settings, the CLI's --engine and job files
    label: str  # the engine choice in the UI (English; the engine's info() may say more)
    kind: EngineKind
    tasks: tuple[Task, ...]
    needs_gpu: bool
    factory: str  # "module:callable" taking Settings, returning the engine
    family: str = ""  # the model family (models/families.py, engines/dots_families.py); "" for none
    setting: str = ""  # the Settings field that names its checkpoint; "" where the checkpoint is fixed

    @property
    def runs_a_model(self) -> bool:
        return self.kind is EngineKind.VISION_MODEL


_QWEN_TASKS = (Task.TEXT, Task.MARKDOWN, Task.LAYOUT_TEXT)

ROWS: tuple[EngineRow, ...] = (
    EngineRow(
        "text-layer",
        "Text layer / Tesseract (CPU)",
        EngineKind.TEXT_LAYER,
        (Task.TEXT, Task.LAYOUT_TEXT, Task.MARKDOWN, Task.REGION),
        needs_gpu=False,
        factory="ocr_studio.engines.text_layer:TextLayerEngine",
    ),
    EngineRow(
        "qwen3-vl",
        "Qwen3-VL 2B",
        EngineKind.VISION_MODEL,
        _QWEN_TASKS,
        needs_gpu=True,
        factory="ocr_studio.engines.qwen3_vl:Qwen3VLEngine",
        family="qwen3-vl",
        setting="qwen_model",  # 2B by default
    ),
    EngineRow(
        "qwen3-vl-4b",
        "Qwen3-VL 4B",
        EngineKind.VISION_MODEL,
        _QWEN_TASKS,
        needs_gpu=True,
        factory="ocr_studio.engines.qwen3_vl:Qwen3VL4BEngine",
        family="qwen3-vl",
    ),
    EngineRow(
        "qwen3-vl-8b",
        "Qwen3-VL 8B",
        EngineKind.VISION_MODEL,
        _QWEN_TASKS,
        needs_gpu=True,
        factory="ocr_studio.engines.qwen3_vl:Qwen3VL8BEngine",
        family="qwen3-vl",
    ),
    EngineRow(
        DOTS_OCR.engine,
        DOTS_OCR.label,
        EngineKind.VISION_MODEL,
        DOTS_OCR.tasks,
        needs_gpu=True,
        factory="ocr_studio.engines.dots_ocr:DotsOcrEngine",
        family="dots",
        setting=DOTS_OCR.setting,
    ),
    EngineRow(
        DOTS_MOCR.engine,
        DOTS_MOCR.label,
        EngineKind.VISION_MODEL,
        DOTS_MOCR.tasks,
        needs_gpu=True,
        factory="ocr_studio.engines.dots_ocr:DotsMocrEngine",
        family="dots",
        setting=DOTS_MOCR.setting,
    ),
)

ENGINES: Mapping[str, EngineRow] = MappingProxyType({row.name: row for row in ROWS})


def row(name: str) -> EngineRow | None:
    """The registry row of ``name`` (None for a name the studio does not know, e.g. a test double)."""
    return ENGINES.get(name)
