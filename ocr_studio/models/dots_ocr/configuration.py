"""dots.ocr configuration: reads the published ``config.json`` unchanged, without remote code.

The language model is a plain Qwen2 whose settings sit flat at the top level; the vision
encoder's settings sit under ``vision_config``. Defaults are the published values, so
``DotsOCRConfig()`` describes the full-size model.
"""

from __future__ import annotations

from transformers import PretrainedConfig, Qwen2Config

PUBLISHED_ROPE_THETA = 1_000_000.0
# What the published generation_config.json stops on: <|endoftext|> and <|endofassistant|>. The published
# config.json also lists 151672, which is <|assistant|> (the turn opener), so a checkpoint folder without a
# generation config would otherwise stop where no answer ends; a config.json that names its own list keeps it.
DEFAULT_EOS_TOKEN_IDS = (151643, 151673)


class DotsVisionConfig(PretrainedConfig):
    """The NaViT-style vision encoder (42 pre-norm blocks, 2-D rotary, 2×2 patch merger)."""

    model_type = "dots_vit"
    base_config_key = "vision_config"

    embed_dim: int = 1536
    hidden_size: int = 1536  # width of the merged visual tokens = the language model's width
    intermediate_size: int = 4224
    num_hidden_layers: int = 42
    num_attention_heads: int = 12
    num_channels: int = 3
    patch_size: int = 14
    spatial_merge_size: int = 2
    temporal_patch_size: int = 1
    rms_norm_eps: float = 1e-5
    use_bias: bool = False
    post_norm: bool = True
    initializer_range: float = 0.02

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_attention_heads


class DotsOCRConfig(Qwen2Config):
    """Qwen2 language-model settings plus ``vision_config`` and the image/video placeholder ids."""

    model_type = "dots_ocr"
    # transformers <= 5.17 reads ``sub_configs``; later releases read ``sub_configs_defaults``.
    sub_configs = {"vision_config": DotsVisionConfig}
    sub_configs_defaults = {"vision_config": DotsVisionConfig}

    # The published language-model values (config.json repeats them; these make ``DotsOCRConfig()`` full size).
    vocab_size: int = 151936
    hidden_size: int = 1536
    intermediate_size: int = 8960
    num_hidden_layers: int = 28
    num_attention_heads: int = 12
    num_key_value_heads: int | None = 2
    max_position_embeddings: int = 131072
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False
    eos_token_id: int | list[int] | None = None

    vision_config: dict | PretrainedConfig | None = None
    image_token_id: int = 151665  # <|imgpad|>
    video_token_id: int = 151656

    def __post_init__(self, **kwargs):
        if isinstance(self.vision_config, dict):
            # The published vision config asks for flash_attention_2; the attention actually used is
            # decided at run time from the model's attention setting (see DotsVisionAttention).
            vision_kwargs = {k: v for k, v in self.vision_config.items() if k != "attn_implementation"}
            self.vision_config = DotsVisionConfig(**vision_kwargs)
        elif self.vision_config is None:
            self.vision_config = DotsVisionConfig()
        if self.rope_parameters is None and "rope_theta" not in kwargs:
            kwargs["rope_theta"] = PUBLISHED_ROPE_THETA
        if self.eos_token_id is None:
            self.eos_token_id = list(DEFAULT_EOS_TOKEN_IDS)
        super().__post_init__(**kwargs)
