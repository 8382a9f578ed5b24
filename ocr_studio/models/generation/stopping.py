"""When a row stops, decided in one place for every path (the static loop, plain ``generate`` and
continuous batching), so a page stops at the same token however it was batched: the host looks
after the first token, every ``check_every`` tokens and at the budget, and stops a row at EOS,
at a loop the repetition guard sees, or at its budget. A looped row read again keeps whichever
reading went further."""

from __future__ import annotations

from dataclasses import dataclass, field

from .requests import GenerationConfig, PageRequest, PageTokenCallback


def cut_at_eos(tokens: list[int], eos: tuple[int, ...]) -> tuple[list[int], str]:
    """The tokens before the first EOS and "eos"; all of them and "max_tokens" where there is none."""
    for index, token in enumerate(tokens):
        if token in eos:
            return tokens[:index], "eos"
    return tokens, "max_tokens"


def is_check_point(produced: int, budget: int, check_every: int) -> bool:
    """The host looks at a row after its first token, every ``check_every`` tokens and at its budget."""
    return produced == 1 or produced % check_every == 0 or produced == budget


def check_row(tokens: list[int], produced: int, budget: int, config: GenerationConfig) -> tuple[list[int], str | None]:
    """A row's tokens as kept at a check point, and why it stops there (None while it runs)."""
    kept, reason = cut_at_eos(tokens, config.eos_token_ids)
    if reason == "eos":
        return kept, "eos"
    if config.repetition is not None and (at := config.repetition.check(kept)) is not None:
        return kept[: at + 1], "repetition"
    return kept, "max_tokens" if produced == budget else None


def further_reading(
    first: list[int], first_reason: str, second: list[int], second_reason: str
) -> tuple[list[int], str, str]:
    """Of a looped reading and its retry, the one that reads further (the retry on a tie): its
    tokens, its stop reason, and how the loop retry went ("recovered", "retry_looped", "first_kept")."""
    if len(second) >= len(first):
        return second, second_reason, "retry_looped" if second_reason == "repetition" else "recovered"
    return first, first_reason, "first_kept"


@dataclass
class SlotPage:
    """A page in continuous batching: its request, budget, tokens so far (host copy) and how far it
    was checked."""

    request: PageRequest
    budget: int
    tokens: list[int]
    checked: int = 0
    kept: list[int] = field(default_factory=list)
    prefill_seconds: float = 0.0
    prompt_len: int = 0
    order: int = 0  # when it was admitted (the youngest is put back first when blocks run out)

    def check(self, config: GenerationConfig, on_tokens: PageTokenCallback | None) -> str | None:
        """The checks the static loop makes for a row, at the same points of this page's own count, so
        a page stops where it would alone; the stop reason, or None while it runs."""
        for point in range(self.checked + 1, min(len(self.tokens), self.budget) + 1):
            if not is_check_point(point, self.budget, config.check_every):
                continue
            self.checked = point
            self.kept, stop = check_row(self.tokens[:point], point, self.budget, config)
            if on_tokens is not None:
                on_tokens(self.request.key, self.kept)
            if stop is not None:
                return stop
        return None
