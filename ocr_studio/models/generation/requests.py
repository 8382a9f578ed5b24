"""What a reading asks for and what it gives back: the generation settings, a batch's result, a
page of continuous batching in and out, and the out-of-memory signal the engines act on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..repetition import LoopPenalty, RepetitionGuard

PATHS = ("graphs", "eager", "generate")
CACHE_BUCKET = 256  # the default rounding of a cache's length (memory plans round the same way)


@dataclass
class GenerationConfig:
    max_new_tokens: int
    eos_token_ids: tuple[int, ...]
    pad_token_id: int
    suppress_token_ids: tuple[int, ...] = ()  # never generated (benchmarks force lengths by suppressing EOS)
    check_every: int = 16  # host looks at the tokens (EOS, repetition, streaming) every k steps
    repetition: RepetitionGuard | None = field(default_factory=RepetitionGuard)
    penalty: LoopPenalty | None = None  # applied to every step (what a retry runs with)
    loop_retry: LoopPenalty | None = None  # rows the guard stopped are read again with this penalty


@dataclass
class GenerationResult:
    tokens: list[list[int]]  # new tokens per row, without EOS/padding
    stop_reasons: list[str]  # "eos" | "max_tokens" | "repetition"
    path: str  # the path that produced the tokens
    warnings: list[str] = field(default_factory=list)
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    steps: int = 0  # decode steps run (batch-wide)
    fused: bool = False  # the decode step was decode_kernels.FusedDecoder
    # per row: "" (no retry), or how the loop retry went: "recovered" (the retry did not loop and was
    # kept), "retry_looped" (it looped too but read further, kept), "first_kept" (it read less far)
    loop_retries: list[str] = field(default_factory=list)


# on_tokens(row, tokens_so_far) is called every check_every steps for each running row
TokenCallback = Callable[[int, list[int]], None]

# on_page_tokens(key, tokens_so_far) is called every check_every steps for each page in flight
PageTokenCallback = Callable[[Any, list[int]], None]


@dataclass
class PageRequest:
    """One page for continuous batching: its batch-1 model inputs (no padding), under a key the
    caller chooses; ``max_new_tokens`` overrides the config's budget for this page alone."""

    key: Any
    inputs: dict[str, torch.Tensor]
    max_new_tokens: int | None = None

    def budget(self, config: GenerationConfig) -> int:
        return self.max_new_tokens or config.max_new_tokens

    @property
    def prompt_len(self) -> int:
        return self.inputs["input_ids"].shape[1]


@dataclass
class PageTokens:
    """One page's reading from continuous batching, yielded as soon as the page stops."""

    key: Any
    tokens: list[int]  # new tokens without EOS
    stop_reason: str  # "eos" | "max_tokens" | "repetition"
    path: str
    warnings: list[str] = field(default_factory=list)
    loop_retry: str = ""  # as GenerationResult.loop_retries
    prefill_seconds: float = 0.0


class SlotsOutOfMemory(RuntimeError):
    """Continuous batching ran out of GPU memory; ``keys`` are the pages in flight then (none of
    them was yielded), in the order they were taken. Pages not yet taken stay with the caller."""

    def __init__(self, keys: list[Any], detail: str = ""):
        super().__init__(f"out of GPU memory with {len(keys)} pages in flight" + (f": {detail}" if detail else ""))
        self.keys = keys
