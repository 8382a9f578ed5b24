"""The static-cache decode loop's runner: one batch in a transformers ``StaticCache`` (fixed
addresses), its step's buffers, and on CUDA the step captured once as a graph and replayed per
token. Rows of a batch start together and share one write position; a stopped row writes padding."""

from __future__ import annotations

import torch

from .. import repetition
from ..repetition import LoopPenalty
from .inputs import next_mrope_positions
from .requests import GenerationConfig


class StaticRunner:
    """The static cache, the step's input/output buffers and (on CUDA) the captured graph."""

    def __init__(self, model, batch: int, cache_len: int, device, dtype, graphs: bool, fused=None):
        from transformers import StaticCache

        self.model = model
        self.fused = fused  # decode_kernels.FusedDecoder, or None for the model's own forward
        self.batch = batch
        self.cache_len = cache_len
        self.device = device
        self.graphs = graphs
        self.cache = StaticCache(config=model.config, max_cache_len=cache_len)
        self.mask = torch.zeros(batch, cache_len, dtype=dtype, device=device)  # additive: 0 attend, min masked
        self.masked = torch.finfo(dtype).min
        self.token = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.position = torch.zeros(batch, dtype=torch.long, device=device)  # next position per row
        self.write_at = torch.zeros(1, dtype=torch.long, device=device)  # next cache slot (same for all rows)
        self.stopped = torch.zeros(batch, dtype=torch.bool, device=device)
        self.eos = torch.zeros(0, dtype=torch.long, device=device)
        self.suppress = torch.zeros(0, dtype=torch.long, device=device)
        self.pad = 0
        self.stop_tokens: tuple = ((), (), 0, None)  # the values eos / suppress / pad / penalty were built from
        self.penalty: LoopPenalty | None = None  # applied inside the step (a loop retry)
        self.history = torch.zeros(batch, cache_len, dtype=torch.long, device=device)  # tokens so far (penalty)
        self.count = torch.zeros(1, dtype=torch.long, device=device)  # how many of them
        self.mrope = False
        self.next_token = torch.zeros(batch, dtype=torch.long, device=device)
        self.graph: torch.cuda.CUDAGraph | None = None

    def reset(self) -> None:
        self.cache.reset()
        self.mask.fill_(self.masked)
        self.stopped.zero_()
        self.count.zero_()

    def prefill(self, inputs: dict[str, torch.Tensor], config: GenerationConfig) -> torch.Tensor:
        """Full forward with the vision inputs; fills the cache and returns the first new token per row."""
        attention_mask = inputs["attention_mask"]
        prompt_len = attention_mask.shape[1]
        base = getattr(self.model, "model", None)
        if base is not None and hasattr(base, "rope_deltas"):
            base.rope_deltas = None  # stale deltas from an earlier batch must not leak in
        outputs = self.model(**inputs, past_key_values=self.cache, use_cache=True, logits_to_keep=1)
        logits = outputs.logits[:, -1, :]
        real = attention_mask.sum(dim=1)
        deltas = getattr(base, "rope_deltas", None) if base is not None else None
        self.mrope = isinstance(deltas, torch.Tensor)
        self.position.copy_(next_mrope_positions(base, inputs) if self.mrope else real)
        self.mask[:, :prompt_len].masked_fill_(attention_mask.bool(), 0.0)
        self.write_at.fill_(prompt_len)
        # The captured graph reads eos/suppress through their addresses: keep the same tensors
        # while their values are unchanged (a new tensor would leave the graph reading freed
        # memory), and drop the graph when they change.
        eos_ids, suppress_ids = tuple(config.eos_token_ids), tuple(config.suppress_token_ids)
        if (eos_ids, suppress_ids, config.pad_token_id, config.penalty) != self.stop_tokens:
            self.graph = None
            self.eos = torch.tensor(eos_ids, dtype=torch.long, device=self.device)
            self.suppress = torch.tensor(suppress_ids, dtype=torch.long, device=self.device)
            self.pad = config.pad_token_id
            self.penalty = config.penalty
            self.stop_tokens = (eos_ids, suppress_ids, config.pad_token_id, config.penalty)
        first = self._pick(logits)
        self.stopped |= torch.isin(first, self.eos)
        self.token.copy_(first.view(-1, 1))
        self._remember(first)
        return first

    def _remember(self, chosen: torch.Tensor) -> None:
        """Append the chosen tokens to the history the penalty reads (only when there is one)."""
        if self.penalty is not None:
            self.history.scatter_(1, self.count.view(1, 1).expand(self.batch, 1), chosen.view(-1, 1))
            self.count.add_(1)

    def _pick(self, logits: torch.Tensor) -> torch.Tensor:
        if self.penalty is not None:
            logits = repetition.penalize(logits, self.history, self.count, self.penalty)
        if self.suppress.numel():
            logits = logits.index_fill(1, self.suppress, torch.finfo(logits.dtype).min)
        return torch.argmax(logits, dim=-1)

    def _step_body(self) -> None:
        """One decode step, entirely on the device: no host reads, fixed shapes and addresses."""
        self.mask.index_fill_(1, self.write_at, 0.0)
        if self.mrope:
            position_ids = self.position.view(1, -1, 1).expand(3, -1, 1)
        else:
            position_ids = self.position.view(-1, 1)
        mask = self.mask.view(self.batch, 1, 1, -1)
        if self.fused is not None:
            logits = self.fused.logits(self.token, position_ids, mask, self.cache, self.write_at)
        else:
            outputs = self.model(
                input_ids=self.token,
                attention_mask=mask,
                position_ids=position_ids,
                past_key_values=self.cache,
                use_cache=True,
            )
            logits = outputs.logits[:, -1, :]
        chosen = self._pick(logits)
        chosen = torch.where(self.stopped, torch.full_like(chosen, self.pad), chosen)
        self.stopped |= torch.isin(chosen, self.eos)
        self.next_token.copy_(chosen)
        self.token.copy_(chosen.view(-1, 1))
        self._remember(chosen)
        self.position.add_(1)
        self.write_at.add_(1)

    def step(self, out: torch.Tensor, index: int) -> None:
        if not self.graphs:
            self._step_body()
        else:
            if self.graph is None:
                self._capture()
            self.graph.replay()
        out[:, index].copy_(self.next_token)

    def _capture(self) -> None:
        """Capture one step as a CUDA graph. Warm-up runs on a side stream first (as torch
        requires); the step's side effects are saved and restored around it."""
        saved = [t.clone() for t in self._step_buffers()]
        lengths = [layer.cumulative_length.clone() for layer in self.cache.layers]
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(2):
                self._restore(saved, lengths)
                self._step_body()
        torch.cuda.current_stream(self.device).wait_stream(stream)
        self._restore(saved, lengths)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._step_body()
        self._restore(saved, lengths)
        self.graph = graph

    def _step_buffers(self) -> tuple[torch.Tensor, ...]:
        """What a step changes besides the cache (saved and restored around the capture's warm-up)."""
        return (self.mask, self.token, self.position, self.write_at, self.stopped, self.history, self.count)

    def _restore(self, saved: list[torch.Tensor], lengths: list[torch.Tensor]) -> None:
        for target, value in zip(self._step_buffers(), saved, strict=True):
            target.copy_(value)
        for layer, value in zip(self.cache.layers, lengths, strict=True):
            layer.cumulative_length.copy_(value)

    def stop_row(self, row: int) -> None:
        self.stopped[row] = True
