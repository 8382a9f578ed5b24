"""Tiny random-weight Qwen3-VL checkpoints built locally (no model hub).

The folder holds everything the real engine loads: config and weights, a
byte-level BPE tokenizer with the Qwen special tokens, image and video
processors, a chat template and the processor config. Random weights give
arbitrary tokens: tests assert on structure and equality, never on content.
The tokenizer builder also serves the benchmark (``published_ids=True`` puts
the special tokens at the published Qwen ids).
"""

from __future__ import annotations

from pathlib import Path

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
PUBLISHED_FIRST_SPECIAL_ID = 151643  # <|endoftext|>; the rest follow in the order above
PUBLISHED_VOCAB_SIZE = 151936

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "<|im_start|>{{ message['role'] }}{{ '\\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] }}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}<|vision_start|><|image_pad|><|vision_end|>"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "<|im_end|>{{ '\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|im_start|>assistant{{ '\\n' }}{%- endif -%}"
)

TRAINING_TEXT = [
    "Read all the text in the image.",
    "Convert this page to Markdown. Tables as HTML, formulas as LaTeX.",
    'Output a JSON list: [{"bbox_2d": [x1, y1, x2, y2], "category": "Text", "text": "..."}]',
    "The quick brown fox jumps over the lazy dog. 0123456789",
    "<table><tr><td>Invoice</td><td>Total</td></tr></table> $E = mc^2$ # Title ## Section",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.",
]


def build_qwen_tokenizer(*, published_ids: bool = False):
    """A byte-level BPE tokenizer with the Qwen special tokens, as a PreTrainedTokenizerFast.

    ``published_ids`` pads the vocabulary with unused entries so that the special
    tokens get their published ids (151643...), matching a full-size config."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(TRAINING_TEXT, trainer=trainer)
    if published_ids:
        import tempfile

        vocab = dict(tokenizer.get_vocab())
        with tempfile.TemporaryDirectory() as tmp:
            files = tokenizer.model.save(tmp)
            merges_path = next(f for f in files if f.endswith("merges.txt"))
            merges = [
                tuple(line.split())
                for line in Path(merges_path).read_text(encoding="utf-8").splitlines()
                if line and not line.startswith("#")
            ]
        next_id = len(vocab)
        while next_id < PUBLISHED_FIRST_SPECIAL_ID:
            vocab[f"<|unused_{next_id}|>"] = next_id
            next_id += 1
        padded = Tokenizer(models.BPE(vocab=vocab, merges=merges))
        padded.pre_tokenizer = tokenizer.pre_tokenizer
        padded.decoder = tokenizer.decoder
        tokenizer = padded
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "left"
    return fast


def build_qwen3_vl_processor(tokenizer, *, min_pixels: int = 32 * 32 * 4, max_pixels: int = 256 * 256):
    """Qwen3VLProcessor over a Qwen2-VL image processor (patch 16, merge 2) and the Qwen3-VL video processor."""
    from transformers import Qwen2VLImageProcessor
    from transformers.models.qwen3_vl import Qwen3VLProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    image_processor = Qwen2VLImageProcessor(
        patch_size=16,
        merge_size=2,
        temporal_patch_size=2,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    video_processor = Qwen3VLVideoProcessor(patch_size=16, merge_size=2, temporal_patch_size=2)
    return Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )


def tiny_qwen3_vl_config(tokenizer):
    """A 2-layer, 64-wide Qwen3-VL config whose token ids match ``tokenizer``."""
    from transformers import Qwen3VLConfig

    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    vocab_size = (len(tokenizer) + 63) // 64 * 64
    return Qwen3VLConfig(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "max_position_embeddings": 4096,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 5_000_000.0,
                "mrope_section": [4, 2, 2],
                "mrope_interleaved": True,
            },
            "tie_word_embeddings": False,
            "bos_token_id": None,
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": 64,
            "num_position_embeddings": 64,
            "deepstack_visual_indexes": [0],
            "hidden_act": "gelu_pytorch_tanh",
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=False,
    )


def build_tiny_qwen3_vl(path: str | Path, *, seed: int = 0, repeat_forever: bool = False) -> Path:
    """Write a tiny random Qwen3-VL checkpoint folder to ``path`` and return it.

    ``repeat_forever`` zeroes the final norm so every logit is 0 and greedy decoding
    picks token 0 at every step: a model caught in runaway repetition."""
    import torch
    from transformers import GenerationConfig, Qwen3VLForConditionalGeneration

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_qwen_tokenizer()
    processor = build_qwen3_vl_processor(tokenizer)
    config = tiny_qwen3_vl_config(tokenizer)
    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(config).eval()
    if repeat_forever:
        with torch.no_grad():
            model.model.language_model.norm.weight.zero_()
    model.generation_config = GenerationConfig(
        eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id, do_sample=False
    )
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
