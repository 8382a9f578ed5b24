"""A tiny dots.ocr checkpoint folder, built locally in about a second, for tests.

Same architecture, file layout and special tokens as the published checkpoint (config.json
with an ``auto_map`` that points at remote code we never run, safetensors weights, a
byte-level BPE tokenizer with dots' chat tokens and chat template, preprocessor config),
with small widths and random weights.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GenerationConfig, PreTrainedTokenizerFast, Qwen2VLImageProcessor

from ocr_studio.models.dots_ocr import DotsOCRConfig, DotsOCRForCausalLM
from ocr_studio.models.dots_ocr.processing import (
    ASSISTANT_END,
    ASSISTANT_START,
    END_OF_TEXT,
    IMAGE_PAD,
    SPECIAL_TOKENS,
)

TINY_MIN_PIXELS = 28 * 28 * 4
TINY_MAX_PIXELS = 28 * 28 * 64

# The published template's framing (a fact about the checkpoint, not code).
DOTS_CHAT_TEMPLATE = (
    "{%- for m in messages %}"
    "{%- if m.role == 'system' %}{{- '<|system|>' + m.content + '<|endofsystem|>\\n' }}"
    "{%- elif m.role == 'user' %}{{- '<|user|>' + m.content + '<|endofuser|>' }}"
    "{%- elif m.role == 'assistant' %}{{- '<|assistant|>' + m.content }}"
    "{%- if not loop.last %}{{- '<|endofassistant|>' }}{%- endif %}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if messages[-1].role != 'assistant' %}{{- '<|assistant|>' }}{%- endif %}"
)

_CORPUS = [
    "Please output the layout information from the PDF image, including each layout element's bbox.",
    "Extract the text content from this image. Bbox format: [x1, y1, x2, y2]",
    '{"bbox": [10, 20, 300, 40], "category": "Title", "text": "Annual Report 2024"}',
    "Section-header Text Table Formula Picture Caption Footnote List-item Page-header Page-footer",
    "The quick brown fox jumps over the lazy dog. 0123456789 <table><tr><td>cell</td></tr></table>",
]


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE with dots' special tokens, trained on a few sentences."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=list(SPECIAL_TOKENS), initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(_CORPUS, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=ASSISTANT_END, pad_token=END_OF_TEXT)
    wrapped.chat_template = DOTS_CHAT_TEMPLATE
    return wrapped


def tiny_config(tokenizer: PreTrainedTokenizerFast) -> DotsOCRConfig:
    vocab = -(-len(tokenizer) // 64) * 64
    return DotsOCRConfig(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        rope_theta=1_000_000.0,
        attention_bias=True,
        tie_word_embeddings=False,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_PAD),
        video_token_id=vocab - 1,
        # as published: config.json also lists <|assistant|>; generation_config.json does not (build_tiny_dots_ocr)
        eos_token_id=[tokenizer.convert_tokens_to_ids(t) for t in (END_OF_TEXT, ASSISTANT_START, ASSISTANT_END)],
        pad_token_id=tokenizer.convert_tokens_to_ids(END_OF_TEXT),
        vision_config={
            "embed_dim": 32,
            "hidden_size": 64,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 1,
            "attn_implementation": "flash_attention_2",  # as published; must be harmless without flash-attn
        },
    )


def build_tiny_dots_ocr(path: str | Path, seed: int = 0) -> Path:
    """Write a loadable tiny dots.ocr checkpoint folder to ``path`` and return it."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_tokenizer()
    config = tiny_config(tokenizer)
    config.architectures = ["DotsOCRForCausalLM"]
    # The published config points at remote code; our loader must ignore it (the files are absent).
    config.auto_map = {
        "AutoConfig": "configuration_dots.DotsOCRConfig",
        "AutoModelForCausalLM": "modeling_dots_ocr.DotsOCRForCausalLM",
    }
    torch.manual_seed(seed)
    model = DotsOCRForCausalLM(config).eval()
    model.generation_config = GenerationConfig(
        eos_token_id=[tokenizer.convert_tokens_to_ids(t) for t in (END_OF_TEXT, ASSISTANT_END)],
        pad_token_id=config.pad_token_id,
        do_sample=False,
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    Qwen2VLImageProcessor(
        min_pixels=TINY_MIN_PIXELS, max_pixels=TINY_MAX_PIXELS, patch_size=14, merge_size=2, temporal_patch_size=1
    ).save_pretrained(folder)
    return folder
