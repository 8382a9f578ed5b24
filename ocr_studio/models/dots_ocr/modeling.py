"""dots.ocr as native transformers modules: a NaViT-style vision encoder feeding Qwen2.

Parameter names and shapes are those of the published checkpoint, so its safetensors load
with no remote code. Vision attention runs over each image's own patches only (per-image
SDPA, or varlen flash attention where installed), which needs memory linear in the patch
count; the published code builds a patches×patches mask instead. The patch-wise parts of each
block (norms, q/k/v with the rotary, the MLP) run in chunks of ``VISION_CHUNK`` patches, so a
page's prefill needs memory for its activations plus one chunk's intermediates, not the whole
page's. The dtype follows the loaded weights: bf16, fp16 and fp32 all work.
"""

from __future__ import annotations

import inspect
from functools import cache

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Qwen2ForCausalLM
from transformers.modeling_outputs import CausalLMOutputWithPast

from .configuration import DotsOCRConfig, DotsVisionConfig

ROTARY_THETA = 10000.0
VISION_CHUNK = 8192  # patches per chunk of the encoder's patch-wise parts (a Letter page at 200 DPI is 19,276)


class DotsRMSNorm(nn.Module):
    """RMSNorm computed in float32 and cast back to the input dtype."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(dtype)


class DotsPatchifier(nn.Module):
    """A 14×14 convolution per patch (a linear map of the flattened patch), then RMSNorm."""

    def __init__(self, config: DotsVisionConfig):
        super().__init__()
        self.num_channels = config.num_channels
        self.patch_size = config.patch_size
        self.proj = nn.Conv2d(
            config.num_channels, config.embed_dim, kernel_size=config.patch_size, stride=config.patch_size
        )
        self.norm = DotsRMSNorm(config.embed_dim, eps=config.rms_norm_eps)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        weight = self.proj.weight
        patch_width = self.num_channels * self.patch_size * self.patch_size
        if pixel_values.shape[-1] != patch_width:
            # Rows made with temporal_patch_size > 1 repeat the frame: keep the first copy.
            frames = pixel_values.shape[-1] // patch_width
            pixel_values = pixel_values.view(-1, self.num_channels, frames, self.patch_size**2)[:, :, 0]
        x = pixel_values.reshape(-1, patch_width).to(weight.dtype)
        x = F.linear(x, weight.reshape(weight.shape[0], -1), self.proj.bias)
        return self.norm(x)


class DotsPatchEmbed(nn.Module):
    def __init__(self, config: DotsVisionConfig):
        super().__init__()
        self.patchifier = DotsPatchifier(config)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.patchifier(pixel_values)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def vision_rotary_cos_sin(
    grid_thw: torch.Tensor, head_dim: int, merge_size: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin [patches, 1, head_dim] for the 2-D rotary: half the rotary channels follow the
    patch row, half the column; patches enumerated in 2×2 merge-window order (as the image
    processor emits them)."""
    positions = []
    for t, h, w in grid_thw.tolist():
        rows = torch.arange(h, device=device).unsqueeze(1).expand(h, w)
        cols = torch.arange(w, device=device).unsqueeze(0).expand(h, w)
        window_order = (h // merge_size, merge_size, w // merge_size, merge_size)
        rows = rows.reshape(window_order).permute(0, 2, 1, 3).flatten()
        cols = cols.reshape(window_order).permute(0, 2, 1, 3).flatten()
        positions.append(torch.stack((rows, cols), dim=-1).repeat(t, 1))
    pos = torch.cat(positions)
    rotary_dim = head_dim // 2
    inv_freq = 1.0 / (ROTARY_THETA ** (torch.arange(0, rotary_dim, 2, device=device, dtype=torch.float32) / rotary_dim))
    angles = (pos.unsqueeze(-1).float() * inv_freq).flatten(1)  # [patches, head_dim / 2]: rows then cols
    angles = torch.cat((angles, angles), dim=-1).unsqueeze(1)
    return angles.cos(), angles.sin()


def apply_vision_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x32 = x.float()
    return (x32 * cos + rotate_half(x32) * sin).to(x.dtype)


@cache
def _flash_attn_varlen():
    try:
        from flash_attn import flash_attn_varlen_func
    except ImportError:
        return None
    return flash_attn_varlen_func


def per_image_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor, use_flash: bool = False
) -> torch.Tensor:
    """Non-causal attention of each image's patches over that image only.

    q, k, v: [patches, heads, head_dim]; returns [patches, heads, head_dim]. Memory grows with
    the patch count, never with its square: no patches×patches mask is built.
    """
    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).tolist()
    flash = _flash_attn_varlen() if use_flash and q.is_cuda and q.dtype in (torch.float16, torch.bfloat16) else None
    if flash is not None:
        max_len = max(lengths)
        cu = cu_seqlens.to(device=q.device, dtype=torch.int32)
        return flash(q, k, v, cu, cu, max_len, max_len, causal=False)
    if len(set(lengths)) == 1:
        # Equal-sized images (pages of one size) go through SDPA as one batch.
        n, length = len(lengths), lengths[0]
        qb, kb, vb = (t.view(n, length, *t.shape[1:]).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(qb, kb, vb)
        return out.transpose(1, 2).reshape(q.shape)
    outputs = []
    for qi, ki, vi in zip(q.split(lengths), k.split(lengths), v.split(lengths), strict=True):
        out = F.scaled_dot_product_attention(qi.transpose(0, 1), ki.transpose(0, 1), vi.transpose(0, 1))
        outputs.append(out.transpose(0, 1))
    return torch.cat(outputs)


def by_rows(x: torch.Tensor, fn) -> torch.Tensor:
    """``fn`` (a patch-wise map: each output row depends on its input row only) over ``x`` in chunks
    of ``VISION_CHUNK`` patches, so its intermediates (an MLP's 4,224-wide activations, fp32 norms)
    are bounded by the chunk, not by the page: a full 11 MP page is 57,600 patches."""
    if x.shape[0] <= VISION_CHUNK:
        return fn(x)
    out, at = None, 0
    for start in range(0, x.shape[0], VISION_CHUNK):
        part = fn(x[start : start + VISION_CHUNK])
        if out is None:  # the merger gives one row per four patches: the output's length follows the map
            out = part.new_empty((x.shape[0] * part.shape[0] // VISION_CHUNK, *part.shape[1:]))
        out[at : at + part.shape[0]] = part
        at += part.shape[0]
    return out


class DotsVisionAttention(nn.Module):
    def __init__(self, config: DotsVisionConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.embed_dim // config.num_attention_heads
        self.qkv = nn.Linear(config.embed_dim, 3 * config.embed_dim, bias=config.use_bias)
        self.proj = nn.Linear(config.embed_dim, config.embed_dim, bias=config.use_bias)

    def _rotated_qkv(
        self, hidden_states: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q and k rotated, v as projected: each [patches, heads, head_dim]."""
        q, k, v = self.qkv(hidden_states).view(-1, 3, self.num_heads, self.head_dim).unbind(1)
        return apply_vision_rotary(q, cos, sin), apply_vision_rotary(k, cos, sin), v

    def forward(
        self,
        hidden_states: torch.Tensor,
        cu_seqlens: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        use_flash: bool = False,
    ) -> torch.Tensor:
        patches = hidden_states.shape[0]
        if patches <= VISION_CHUNK:
            q, k, v = self._rotated_qkv(hidden_states, cos, sin)
        else:  # the projection's and the rotary's fp32 intermediates bounded by the chunk
            q, k, v = (hidden_states.new_empty(patches, self.num_heads, self.head_dim) for _ in range(3))
            for start in range(0, patches, VISION_CHUNK):
                rows = slice(start, start + VISION_CHUNK)
                q[rows], k[rows], v[rows] = self._rotated_qkv(hidden_states[rows], cos[rows], sin[rows])
        out = per_image_attention(q, k, v, cu_seqlens, use_flash=use_flash)
        return self.proj(out.reshape(patches, -1))


class DotsVisionMLP(nn.Module):
    """SwiGLU: fc2(silu(fc1 x) * fc3 x)."""

    def __init__(self, config: DotsVisionConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.embed_dim, config.intermediate_size, bias=config.use_bias)
        self.fc2 = nn.Linear(config.intermediate_size, config.embed_dim, bias=config.use_bias)
        self.fc3 = nn.Linear(config.embed_dim, config.intermediate_size, bias=config.use_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.silu(self.fc1(x)) * self.fc3(x))


class DotsVisionBlock(nn.Module):
    def __init__(self, config: DotsVisionConfig):
        super().__init__()
        self.norm1 = DotsRMSNorm(config.embed_dim, eps=config.rms_norm_eps)
        self.attn = DotsVisionAttention(config)
        self.norm2 = DotsRMSNorm(config.embed_dim, eps=config.rms_norm_eps)
        self.mlp = DotsVisionMLP(config)

    def forward(self, hidden_states, cu_seqlens, cos, sin, use_flash: bool = False) -> torch.Tensor:
        normed = by_rows(hidden_states, self.norm1)
        hidden_states = hidden_states + self.attn(normed, cu_seqlens, cos, sin, use_flash)
        return by_rows(hidden_states, self._mlp_residual)

    def _mlp_residual(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states + self.mlp(self.norm2(hidden_states))


class DotsPatchMerger(nn.Module):
    """LayerNorm, then each 2×2 window of patches (adjacent in the sequence) → one LM token."""

    def __init__(self, config: DotsVisionConfig):
        super().__init__()
        merged = config.embed_dim * config.spatial_merge_size**2
        self.merged_width = merged
        self.ln_q = nn.LayerNorm(config.embed_dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(merged, merged), nn.GELU(), nn.Linear(merged, config.hidden_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.ln_q(x).view(-1, self.merged_width))


class DotsVisionTransformer(nn.Module):
    """Pixels of one or more images (rows of 3·14·14, concatenated) → visual tokens, per image in order."""

    def __init__(self, config: DotsVisionConfig):
        super().__init__()
        self.config = config
        self.patch_embed = DotsPatchEmbed(config)
        self.blocks = nn.ModuleList(DotsVisionBlock(config) for _ in range(config.num_hidden_layers))
        if config.post_norm:
            self.post_trunk_norm = DotsRMSNorm(config.embed_dim, eps=config.rms_norm_eps)
        self.merger = DotsPatchMerger(config)

    @property
    def dtype(self) -> torch.dtype:
        return self.patch_embed.patchifier.proj.weight.dtype

    def forward(
        self, pixel_values: torch.Tensor, grid_thw: torch.Tensor, attn_implementation: str | None = "sdpa"
    ) -> torch.Tensor:
        grid_thw = torch.as_tensor(grid_thw).reshape(-1, 3)
        hidden_states = by_rows(pixel_values, self.patch_embed)
        patches_per_frame = (grid_thw[:, 1] * grid_thw[:, 2]).repeat_interleave(grid_thw[:, 0])
        cu_seqlens = F.pad(patches_per_frame.cumsum(0), (1, 0)).to(hidden_states.device)
        if int(cu_seqlens[-1]) != hidden_states.shape[0]:
            raise ValueError(
                f"image_grid_thw describes {int(cu_seqlens[-1])} patches but pixel_values has "
                f"{hidden_states.shape[0]} rows; pass the processor's pixel_values and image_grid_thw together."
            )
        cos, sin = vision_rotary_cos_sin(
            grid_thw, self.config.head_dim, self.config.spatial_merge_size, hidden_states.device
        )
        use_flash = attn_implementation == "flash_attention_2"
        for block in self.blocks:
            hidden_states = block(hidden_states, cu_seqlens, cos, sin, use_flash)
        if self.config.post_norm:
            hidden_states = by_rows(hidden_states, self.post_trunk_norm)
        return by_rows(hidden_states, self.merger)  # chunks of whole 2×2 windows (VISION_CHUNK is a multiple of 4)


@cache
def _forward_parameters(cls: type) -> frozenset[str]:
    return frozenset(inspect.signature(cls.forward).parameters)


class DotsOCRForCausalLM(Qwen2ForCausalLM):
    """Qwen2ForCausalLM plus ``vision_tower``; image features replace the ``<|imgpad|>`` embeddings.

    Vision runs only when ``pixel_values`` is given (prefill); decode steps are plain Qwen2.
    """

    config_class = DotsOCRConfig
    _no_split_modules = ["Qwen2DecoderLayer", "DotsVisionBlock"]

    def __init__(self, config: DotsOCRConfig):
        super().__init__(config)
        self.vision_tower = DotsVisionTransformer(config.vision_config)
        self.post_init()

    def get_image_features(self, pixel_values: torch.Tensor, image_grid_thw: torch.Tensor) -> torch.Tensor:
        """Visual tokens [sum of (h/2)(w/2) over images, hidden] in the language model's dtype."""
        features = self.vision_tower(pixel_values, image_grid_thw, self.config._attn_implementation)
        return features.to(self.model.embed_tokens.weight.dtype)

    def _merge_image_features(
        self, input_ids: torch.Tensor, inputs_embeds: torch.Tensor, image_features: torch.Tensor
    ) -> torch.Tensor:
        image_mask = input_ids == self.config.image_token_id
        n_tokens = int(image_mask.sum())
        if n_tokens != image_features.shape[0]:
            raise ValueError(
                f"The prompt has {n_tokens} image tokens but the images give {image_features.shape[0]} features; "
                "build inputs with DotsOCRProcessor so <|imgpad|> is expanded to each page's token count."
            )
        merged = inputs_embeds.clone()
        merged[image_mask] = image_features.to(merged.dtype)
        return merged

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values=None,
        inputs_embeds: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        image_grid_thw: torch.LongTensor | None = None,
        cache_position: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        if inputs_embeds is None:
            if input_ids is None:
                raise ValueError("Pass input_ids or inputs_embeds.")
            inputs_embeds = self.model.embed_tokens(input_ids)
            if pixel_values is not None:
                if image_grid_thw is None:
                    raise ValueError("pixel_values needs image_grid_thw (both come from DotsOCRProcessor).")
                features = self.get_image_features(pixel_values, image_grid_thw)
                inputs_embeds = self._merge_image_features(input_ids, inputs_embeds, features)
        elif pixel_values is not None:
            raise ValueError("Pass pixel_values with input_ids, not with inputs_embeds.")

        if position_ids is None:
            position_ids = self._default_position_ids(attention_mask, cache_position, inputs_embeds)
        model_kwargs = dict(kwargs)
        if cache_position is not None and "cache_position" in _forward_parameters(type(self.model)):
            model_kwargs["cache_position"] = cache_position
        return super().forward(
            input_ids=None,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
            labels=labels,
            **model_kwargs,
        )

    @staticmethod
    def _default_position_ids(
        attention_mask: torch.Tensor | None, cache_position: torch.Tensor | None, inputs_embeds: torch.Tensor
    ) -> torch.Tensor | None:
        """Positions that skip left padding: from a 2-D mask covering past + current tokens,
        else from cache_position; None lets Qwen2 count from the cache length."""
        seq_len = inputs_embeds.shape[1]
        if isinstance(attention_mask, torch.Tensor) and attention_mask.dim() == 2:
            positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
            if cache_position is not None and positions.shape[1] > int(cache_position[-1]):
                return positions[:, cache_position[-seq_len:]]  # a mask as long as a static cache
            return positions[:, -seq_len:]
        if cache_position is not None:
            return cache_position[-seq_len:].unsqueeze(0).expand(inputs_embeds.shape[0], -1)
        return None

    def prepare_inputs_for_generation(
        self, input_ids, pixel_values=None, image_grid_thw=None, is_first_iteration=False, **kwargs
    ):
        model_inputs = super().prepare_inputs_for_generation(input_ids, is_first_iteration=is_first_iteration, **kwargs)
        prefill = is_first_iteration or not kwargs.get("use_cache", True)
        model_inputs["pixel_values"] = pixel_values if prefill else None
        model_inputs["image_grid_thw"] = image_grid_thw if prefill else None
        return model_inputs
