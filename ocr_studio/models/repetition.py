"""Runaway repetition: how a loop is recognised, and the penalty a page is read again with.

Why: looping on dense pages (dotted leaders, long tables, rows of underscores) is the most
reported failure of these models. The guard stops a loop early; the engine then reads the
page once more with ``LoopPenalty`` steering away from repeats, and keeps the reading that
goes further (``models.generation``).

``LoopPenalty`` is two logits processors over the answer's last ``window`` tokens (never the
prompt): a no-repeat n-gram ban (a token that would complete an n-gram already in the window
is not chosen, so an exact loop cannot continue) and a repetition penalty (a token already in
the window has its logit divided by the penalty when positive, multiplied when negative, as
transformers' ``repetition_penalty``). ``penalize`` is plain torch with fixed shapes and no
host reads, so it runs inside the captured CUDA graph of the decode step; ``PenaltyProcessor``
applies the same function on ``model.generate``'s path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported where a penalty runs: the guard and the remote runtime need none
    import torch


@dataclass(frozen=True)
class RepetitionGuard:
    """Runaway repetition: the tail of the output is one block of ``period`` tokens
    repeated. Fires when the repeated tail spans at least ``min_span`` tokens and
    the block occurs at least ``min_repeats`` times (dotted leaders, a few equal table
    rows stay below that)."""

    max_period: int = 256
    min_span: int = 192
    min_repeats: int = 6

    def find(self, tokens: Sequence) -> tuple[int, int] | None:
        """(index where the repeated tail starts, its period), or None. The smallest period wins."""
        n = len(tokens)
        if n < self.min_span:
            return None
        for period in range(1, min(self.max_period, n // self.min_repeats) + 1):
            run = 0
            i = n - 1
            while i - period >= 0 and tokens[i] == tokens[i - period]:
                run += 1
                i -= 1
            if run >= self.min_span - period and (run + period) // period >= self.min_repeats:
                return n - run - period, period
        return None

    def check(self, tokens: Sequence) -> int | None:
        """The index where the repeated tail starts, or None. Keeping ``tokens[:index + period]``
        keeps one copy of the repeated block."""
        found = self.find(tokens)
        return None if found is None else found[0]

    def cut(self, sequence: Sequence) -> Sequence | None:
        """The sequence cut after the first copy of its repeated tail, or None when it does not loop.
        Looks for the loop in the tail only (a long text costs no more than a short one), then
        follows the loop back through the whole sequence."""
        tail = self.max_period * self.min_repeats + self.min_span
        offset = max(0, len(sequence) - tail)
        found = self.find(sequence[offset:])
        if found is None:
            return None
        start, period = found
        start += offset
        while start > 0 and sequence[start - 1] == sequence[start - 1 + period]:
            start -= 1
        return sequence[: start + period]


# Remote answers come back as text: the same rule on characters (a token is ~3-4 characters).
TEXT_GUARD = RepetitionGuard(max_period=1024, min_span=640, min_repeats=6)


@dataclass(frozen=True)
class LoopPenalty:
    """What a looping page is read again with. ``window`` must exceed the guard's longest
    period plus ``no_repeat_ngram`` so that any loop the guard can see is banned."""

    no_repeat_ngram: int = 20  # 0: off
    repetition_penalty: float = 1.05  # 1.0: off
    window: int = 512

    def describe(self) -> str:
        parts = []
        if self.no_repeat_ngram > 1:
            parts.append(f"no repeated {self.no_repeat_ngram}-token runs")
        if self.repetition_penalty != 1.0:
            parts.append(f"repetition penalty {self.repetition_penalty:g}")
        return ", ".join(parts) or "no penalty"


LOOP_RETRY = LoopPenalty()


def penalize(logits: torch.Tensor, history: torch.Tensor, count: torch.Tensor, penalty: LoopPenalty) -> torch.Tensor:
    """``logits`` [batch, vocab] for the next token, given ``history`` [batch, length] whose first
    ``count`` (a one-element tensor, on the device) columns are the tokens generated so far.
    Fixed shapes, no host reads: safe inside a CUDA graph."""
    import torch

    batch, vocab = logits.shape
    width = min(penalty.window, history.shape[1])
    index = count.view(1) - width + torch.arange(width, device=history.device)  # the last `width` positions
    valid = index >= 0
    recent = history.gather(1, index.clamp(min=0).view(1, -1).expand(batch, -1))  # [batch, width]
    spare = vocab  # an extra column takes the writes of invalid positions
    if penalty.repetition_penalty != 1.0:
        seen = torch.zeros(batch, vocab + 1, dtype=torch.bool, device=logits.device)
        seen.scatter_(1, torch.where(valid, recent, spare), True)
        seen = seen[:, :vocab]
        scaled = torch.where(logits > 0, logits / penalty.repetition_penalty, logits * penalty.repetition_penalty)
        logits = torch.where(seen, scaled, logits)
    n = penalty.no_repeat_ngram
    if n > 1 and width >= n:
        grams = recent.unfold(1, n, 1)  # [batch, width - n + 1, n]: every n-gram of the window
        tail = recent[:, width - n + 1 :]  # the last n - 1 tokens: a gram starting with them is banned
        match = (grams[..., :-1] == tail.unsqueeze(1)).all(dim=-1)
        match &= valid[: width - n + 1].view(1, -1)  # the whole gram lies inside the answer
        banned = torch.zeros(batch, vocab + 1, dtype=torch.bool, device=logits.device)
        banned.scatter_(1, torch.where(match, grams[..., -1], spare), True)
        logits = logits.masked_fill(banned[:, :vocab], torch.finfo(logits.dtype).min)
    return logits


class PenaltyProcessor:
    """``penalize`` as a transformers logits processor for ``model.generate`` (the prompt,
    ``prompt_length`` columns, is not part of the history)."""

    def __init__(self, penalty: LoopPenalty, prompt_length: int):
        self.penalty = penalty
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        history = input_ids[:, self.prompt_length :]
        if history.shape[1] == 0:
            return scores
        count = torch.tensor([history.shape[1]], device=history.device)
        return penalize(scores, history, count, self.penalty)
