"""Tiny checkpoints that loop the way real models do on dense pages, for the loop-retry tests.

Every decoder layer's output projections are zeroed, so the last hidden state is the current
token's embedding: the model becomes a bigram table we write into the embeddings and lm_head.
Greedy decoding then reads ``A B C`` and loops ``B C B C …`` (C's first choice is B); the
second choice after B or C (``D E F``, then end of answer) is a little lower, so a repetition
penalty of 1.05 on the already-seen B, or a no-repeat n-gram ban, lets the page read on.
"""

from __future__ import annotations

from pathlib import Path

import torch

FIRST = 10.0  # logit of a token's first choice
SECOND = 9.6  # C's second choice: FIRST / 1.05 < SECOND, so a 1.05 penalty on B picks it
CANDIDATES = "QZXKVWY@~^"  # single characters to spell the chain with (none in the engines' prompts)


def write_bigram_loop(model, decoder, start_token: int, end_token: int, avoid: set[int], tokenizer) -> list[int]:
    """Make ``model`` (whose language model is ``decoder``) read start → A B C (B C)* and, when B is
    penalised or banned after C, D E F <end>. Returns the chain [A, B, C, D, E, F]."""
    ids = [tokenizer.convert_tokens_to_ids(c) for c in CANDIDATES]
    chain = [i for i in ids if isinstance(i, int) and i != tokenizer.unk_token_id and i not in avoid][:6]
    assert len(chain) == 6, "the tiny tokenizer lacks the characters the chain is spelled with"
    a, b, c, d, e, f = chain
    hidden = decoder.embed_tokens.weight.shape[1]
    nodes = [start_token, a, b, c, d, e, f]
    assert len(nodes) <= hidden
    with torch.no_grad():
        for layer in decoder.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        decoder.norm.weight.fill_(1.0)
        for slot, token in enumerate(nodes):
            decoder.embed_tokens.weight[token].zero_()
            decoder.embed_tokens.weight[token, slot] = 1.0
        head = model.lm_head.weight
        head.zero_()
        if getattr(model.lm_head, "bias", None) is not None:
            model.lm_head.bias.zero_()
        scale = hidden**-0.5  # RMSNorm turns a one-hot embedding into sqrt(hidden) at its slot
        transitions = [(start_token, a, FIRST), (a, b, FIRST), (b, c, FIRST), (c, b, FIRST)]
        transitions += [(b, d, SECOND), (c, d, SECOND)]  # where a penalty or an n-gram ban sends the loop
        transitions += [(d, e, FIRST), (e, f, FIRST), (f, end_token, FIRST)]
        for current, following, logit in transitions:
            head[following, nodes.index(current)] = logit * scale
    return chain


def build_looping_qwen3_vl(path: str | Path) -> tuple[Path, list[int]]:
    """A tiny Qwen3-VL checkpoint that loops on every page (see the module docstring)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from ocr_studio.engines.qwen3_vl import PROMPTS
    from tests.tiny_models import build_tiny_qwen3_vl

    folder = build_tiny_qwen3_vl(path)
    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder).eval()
    tokenizer = processor.tokenizer
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x"}]}]
    prompt = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    start = tokenizer(prompt)["input_ids"][-1]
    avoid = {i for text in PROMPTS.values() for i in tokenizer(text)["input_ids"]}
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    chain = write_bigram_loop(model, model.model.language_model, start, end, avoid, tokenizer)
    model.save_pretrained(folder)
    return Path(folder), chain


def build_looping_dots_ocr(path: str | Path) -> tuple[Path, list[int]]:
    """A tiny dots.ocr checkpoint that loops on every page (see the module docstring)."""
    from transformers import AutoTokenizer

    from ocr_studio.engines.dots_prompts import PROMPTS
    from ocr_studio.models.dots_ocr import DotsOCRForCausalLM
    from ocr_studio.models.dots_ocr.processing import ASSISTANT_END, ASSISTANT_START
    from tests.tiny_dots import build_tiny_dots_ocr

    folder = build_tiny_dots_ocr(path)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = DotsOCRForCausalLM.from_pretrained(folder).eval()
    avoid = {i for text in PROMPTS.values() for i in tokenizer(text)["input_ids"]}
    start, end = tokenizer.convert_tokens_to_ids(ASSISTANT_START), tokenizer.convert_tokens_to_ids(ASSISTANT_END)
    chain = write_bigram_loop(model, model.model, start, end, avoid, tokenizer)
    model.save_pretrained(folder)
    return Path(folder), chain
