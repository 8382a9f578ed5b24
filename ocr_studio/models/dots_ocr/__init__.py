"""Native dots.ocr: config, model and processor that load the published checkpoint without remote code.

Importing this package registers ``dots_ocr`` with transformers' Auto classes, so
``AutoModelForCausalLM.from_pretrained(folder)`` builds ``DotsOCRForCausalLM``.
"""

from __future__ import annotations

from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

from .configuration import DotsOCRConfig, DotsVisionConfig
from .modeling import DotsOCRForCausalLM, DotsVisionTransformer
from .processing import DotsOCRProcessor, smart_resize


def register() -> None:
    """Register with the Auto classes; safe to call any number of times."""
    AutoConfig.register(DotsVisionConfig.model_type, DotsVisionConfig, exist_ok=True)
    AutoConfig.register(DotsOCRConfig.model_type, DotsOCRConfig, exist_ok=True)
    AutoModelForCausalLM.register(DotsOCRConfig, DotsOCRForCausalLM, exist_ok=True)
    AutoModelForImageTextToText.register(DotsOCRConfig, DotsOCRForCausalLM, exist_ok=True)


register()

__all__ = [
    "DotsOCRConfig",
    "DotsOCRForCausalLM",
    "DotsOCRProcessor",
    "DotsVisionConfig",
    "DotsVisionTransformer",
    "register",
    "smart_resize",
]
