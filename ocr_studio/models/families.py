"""The model families as data: how big each checkpoint is and what it needs of a card.

Why a table: the VRAM plan (``models.slot_plan``), the batch sizes and the "needs 20 GB" warning
read these figures; before they were numbers inside the engines and sizes guessed with
``"8b" in model_id`` in two places. One row per size; a checkpoint the table does not name (a
local folder, a fine-tune) is matched by the size its name says (``-4B-``, ``8b``), else the
smallest, as before. The prompts of each family live beside its parser
(``engines/dots_prompts.py``, ``engines/qwen3_vl.py``'s ``PROMPTS``).

Figures: layers, KV heads and head size from each checkpoint's published config.json
(shared/reference/models.md); weights measured as bf16 parameter bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3


@dataclass(frozen=True)
class ModelSize:
    """One checkpoint size of a family, as the memory plan sees it."""

    family: str
    tag: str  # the size as model ids spell it ("2b", "4b", "8b")
    hub_id: str  # the published checkpoint
    layers: int  # decoder layers (text side)
    kv_heads: int
    head_dim: int
    weight_bytes: int  # bf16 weights on the card
    min_vram_gb: float = 0.0  # below this total VRAM the engine is offered with a warning
    prefill_bytes_per_pixel: int = 0  # one page's prefill workspace (vision encoder, then the prompt)

    @property
    def kv_bytes_per_token(self) -> int:
        """KV cache bytes per token in bf16 (layers × (k, v) × kv heads × head_dim × 2 bytes)."""
        return self.layers * 2 * self.kv_heads * self.head_dim * 2


QWEN3_VL = (
    ModelSize("qwen3-vl", "2b", "Qwen/Qwen3-VL-2B-Instruct", 28, 8, 128, int(4.3 * GIB), prefill_bytes_per_pixel=120),
    ModelSize("qwen3-vl", "4b", "Qwen/Qwen3-VL-4B-Instruct", 36, 8, 128, int(8.9 * GIB), prefill_bytes_per_pixel=120),
    ModelSize(
        "qwen3-vl", "8b", "Qwen/Qwen3-VL-8B-Instruct", 36, 8, 128, int(17.5 * GIB), 20.0, prefill_bytes_per_pixel=120
    ),
)

# dots.ocr and dots.mocr share the architecture and size (~3.0 B parameters)
DOTS = ModelSize("dots", "3b", "rednote-hilab/dots.ocr", 28, 2, 128, int(6.1 * GIB), prefill_bytes_per_pixel=250)


def qwen3_vl_size(model_id: str) -> ModelSize:
    """The Qwen3-VL row of ``model_id``: the published checkpoint it names, else the size its name
    says (largest first), else the 2B."""
    for size in QWEN3_VL:
        if model_id == size.hub_id:
            return size
    lowered = model_id.lower()
    for size in reversed(QWEN3_VL):
        if size.tag in lowered:
            return size
    return QWEN3_VL[0]
