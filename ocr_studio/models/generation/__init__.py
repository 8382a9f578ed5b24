"""Fast greedy generation, split the way serving engines split it: the path policy
(``generator``), continuous batching's scheduler (``scheduler``), its KV cache manager
(``block_pool``) and model runner (``paged_runner``), the static loop's runner
(``static_runner``), when a row stops (``stopping``), the pool's size (``memory_plan``), what goes
in and out (``requests``, ``inputs``). It imports only torch and transformers (and, for warnings,
the message catalog where the package is there)."""

from __future__ import annotations

from ..repetition import LoopPenalty, RepetitionGuard
from .generator import FastGenerator, decode_kernels, generate
from .inputs import ROPE_INDEX_INPUTS, next_mrope_positions, select_rows
from .requests import (
    CACHE_BUCKET,
    PATHS,
    GenerationConfig,
    GenerationResult,
    PageRequest,
    PageTokenCallback,
    PageTokens,
    SlotsOutOfMemory,
    TokenCallback,
)

__all__ = [
    "CACHE_BUCKET",
    "PATHS",
    "ROPE_INDEX_INPUTS",
    "FastGenerator",
    "GenerationConfig",
    "GenerationResult",
    "LoopPenalty",
    "PageRequest",
    "PageTokenCallback",
    "PageTokens",
    "RepetitionGuard",
    "SlotsOutOfMemory",
    "TokenCallback",
    "decode_kernels",
    "generate",
    "next_mrope_positions",
    "select_rows",
]
