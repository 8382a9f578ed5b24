"""One decode step of a Qwen3-style decoder in few kernels, for replay inside a CUDA graph.

Why: the model's own forward launches ~60 small kernels per layer for one token (fp32
RMSNorm as 6-8 kernels, four times; rotate_half/cat rotary; the static cache's index
bookkeeping; ``repeat_kv`` copying the whole KV cache per layer at batch > 1). Here a
step is: q/k/v as one matrix product, q/k norm + rotary as one fused function, the two
cache writes, grouped-query attention that reads K/V once (no copies), o_proj, residual +
norm fused, gate/up as one matrix product, SiLU*up fused, down_proj. The small pure
functions are compiled by inductor (Triton) where available; without it they run as
plain torch (same arithmetic, more kernels).

For Qwen2/Qwen3-style decoders: SiLU MLP without biases, o_proj without bias, q/k/v with
biases (Qwen2, dots.ocr) or without, per-head q/k norm (Qwen3) or none (Qwen2); the caller
keeps the model's own forward for anything else (``unsupported_reason``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """The transformers Qwen3 RMSNorm arithmetic: fp32 statistics, weight applied in the input dtype."""
    dtype = x.dtype
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return weight * xf.to(dtype)


def add_rms_norm(
    x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Residual add then norm: returns (new residual, normed)."""
    total = residual + x
    return total, rms_norm(total, weight, eps)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def qk_norm_rope(
    qkv: torch.Tensor,
    q_weight: torch.Tensor | None,
    k_weight: torch.Tensor | None,
    eps: float,
    cos: torch.Tensor,
    sin: torch.Tensor,
    heads: int,
    kv_heads: int,
    head_dim: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split one token's fused q/k/v projection, norm q and k per head (Qwen3; no weights:
    no norm, as in Qwen2), rotate them. Returns q [B, heads, D], k and v [B, kv_heads, 1, D]."""
    batch = qkv.shape[0]
    q, k, v = qkv.view(batch, -1).split([heads * head_dim, kv_heads * head_dim, kv_heads * head_dim], dim=-1)
    q = q.reshape(batch, heads, head_dim)
    k = k.reshape(batch, kv_heads, head_dim)
    if q_weight is not None and k_weight is not None:
        q = rms_norm(q, q_weight, eps)
        k = rms_norm(k, k_weight, eps)
    cos = cos.reshape(batch, 1, head_dim)
    sin = sin.reshape(batch, 1, head_dim)
    q = q * cos + _rotate_half(q) * sin
    k = k * cos + _rotate_half(k) * sin
    return q, k.unsqueeze(2), v.reshape(batch, kv_heads, 1, head_dim)


def attention_probs(scores: torch.Tensor, mask: torch.Tensor, scaling: float) -> torch.Tensor:
    """Scaled scores + additive mask, softmax in fp32 (as transformers' eager attention)."""
    return torch.softmax(scores.float() * scaling + mask.float(), dim=-1).to(scores.dtype)


def silu_mul(gate_up: torch.Tensor) -> torch.Tensor:
    gate, up = gate_up.chunk(2, dim=-1)
    return F.silu(gate) * up


def triton_available() -> tuple[bool, str]:
    """Whether inductor can emit GPU kernels here, with the reason when not."""
    try:
        from torch.utils._triton import has_triton
    except ImportError:  # pragma: no cover - very old torch
        return False, "this torch has no Triton support"
    if not has_triton():
        return False, "Triton is not installed or does not support this GPU"
    return True, ""


def unsupported_reason(model: Any) -> str:
    """Empty when ``FusedDecoder`` can run this model's decode step, else why not."""
    base = getattr(model, "model", None)
    lm = getattr(base, "language_model", base)
    for name in ("embed_tokens", "layers", "norm", "rotary_emb"):
        if not hasattr(lm, name):
            return f"the decoder has no {name}"
    if model.get_output_embeddings() is None:
        return "the model has no output head"
    config = getattr(lm, "config", None)
    if getattr(config, "hidden_act", None) != "silu":
        return f"activation {getattr(config, 'hidden_act', None)!r} is not silu"
    for layer in lm.layers:
        attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
        needed = (
            (attn, ("q_proj", "k_proj", "v_proj", "o_proj")),
            (mlp, ("gate_proj", "up_proj", "down_proj")),
            (layer, ("input_layernorm", "post_attention_layernorm")),
        )
        for owner, names in needed:
            if owner is None or not all(hasattr(owner, n) for n in names):
                return f"layer {type(layer).__name__} is not shaped like Qwen3 ({', '.join(names)})"
        if attn.o_proj.bias is not None:
            return "the attention output projection has a bias"
        if len({getattr(attn, n).bias is None for n in ("q_proj", "k_proj", "v_proj")}) != 1:
            return "only some of q/k/v have biases"
        if hasattr(attn, "q_norm") != hasattr(attn, "k_norm"):
            return "only one of q/k has a norm"
        if any(getattr(mlp, n).bias is not None for n in ("gate_proj", "up_proj", "down_proj")):
            return "MLP projections have biases"
    return ""


def _fuse_rows(first: torch.nn.Linear, *others: torch.nn.Linear, name: str = "weight") -> torch.Tensor:
    """One weight (or bias) for several projections of the same input; the modules' tensors become
    views of it (same values, no extra memory), so the model's own forward (prefill) is unchanged."""
    linears = (first, *others)
    fused = torch.cat([getattr(lin, name).detach() for lin in linears], dim=0)
    start = 0
    for lin in linears:
        rows = getattr(lin, name).shape[0]
        setattr(lin, name, torch.nn.Parameter(fused[start : start + rows], requires_grad=False))
        start += rows
    return fused


class FusedDecoder:
    """The decode step (one new token per row) of a Qwen3-style decoder over a transformers
    ``StaticCache`` already filled by the prefill. Holds references to the model's weights."""

    def __init__(self, model: Any, *, compile_kernels: bool):
        reason = unsupported_reason(model)
        if reason:
            raise ValueError(f"Fused decoding does not support this model: {reason}")
        base = model.model
        lm = getattr(base, "language_model", base)
        self.embed = lm.embed_tokens
        self.rotary = lm.rotary_emb
        self.final_norm = lm.norm
        self.head = model.get_output_embeddings()
        first = lm.layers[0].self_attn
        self.heads = first.q_proj.weight.shape[0] // first.head_dim
        self.kv_heads = first.k_proj.weight.shape[0] // first.head_dim
        self.head_dim = first.head_dim
        self.scaling = float(first.scaling)
        self.eps = float(lm.layers[0].input_layernorm.variance_epsilon)
        self.layers = []
        with torch.inference_mode(False), torch.no_grad():
            for layer in lm.layers:
                attn, mlp = layer.self_attn, layer.mlp
                qkv = getattr(attn, "_ocr_qkv_weight", None)
                if qkv is None:  # fused once per model instance, kept for later generators
                    attn._ocr_qkv_weight = qkv = _fuse_rows(attn.q_proj, attn.k_proj, attn.v_proj)
                    attn._ocr_qkv_bias = None
                    if attn.q_proj.bias is not None:
                        attn._ocr_qkv_bias = _fuse_rows(attn.q_proj, attn.k_proj, attn.v_proj, name="bias")
                    mlp._ocr_gate_up_weight = _fuse_rows(mlp.gate_proj, mlp.up_proj)
                normed = hasattr(attn, "q_norm")
                self.layers.append(
                    (
                        layer.input_layernorm.weight,
                        qkv,
                        attn._ocr_qkv_bias,
                        attn.q_norm.weight if normed else None,
                        attn.k_norm.weight if normed else None,
                        attn.o_proj.weight,
                        layer.post_attention_layernorm.weight,
                        mlp._ocr_gate_up_weight,
                        mlp.down_proj.weight,
                    )
                )
        self.compiled = compile_kernels
        # torch's automatic dynamic shapes: the first shape compiles static kernels, a second cache
        # length or batch size compiles one symbolic-shape kernel that serves every later page.
        wrap = (lambda fn: torch.compile(fn, fullgraph=True)) if compile_kernels else (lambda fn: fn)
        self.rms_norm = wrap(rms_norm)
        self.add_rms_norm = wrap(add_rms_norm)
        self.qk_norm_rope = wrap(qk_norm_rope)
        self.attention_probs = wrap(attention_probs)
        self.silu_mul = wrap(silu_mul)

    def logits(
        self,
        token: torch.Tensor,  # [B, 1]
        position_ids: torch.Tensor,  # [B, 1] or M-RoPE [3, B, 1]
        mask: torch.Tensor | None,  # additive [B, 1, 1, cache_len] (None with ``paged``)
        cache: Any,  # transformers StaticCache filled by the prefill, or a paged cache's block pools
        write_at: torch.Tensor,  # [1] long: the cache slot of this token (unused with ``paged``)
        paged: Any = None,  # a paged cache's step (continuous batching): its attention module, block, offset, table,
        # lengths, window_blocks
    ) -> torch.Tensor:
        """Logits [B, vocab] of the next token; writes this token's keys/values into the cache (with
        ``paged``, each row into its own block, and each row attends to its own blocks)."""
        batch = token.shape[0]
        groups = self.heads // self.kv_heads
        hidden = self.embed(token)
        cos, sin = self.rotary(hidden, position_ids)
        residual, x = hidden, self.rms_norm(hidden, self.layers[0][0], self.eps)
        mlp_out = None
        for index, (ln1, qkv_w, qkv_b, qn, kn, o_w, ln2, gate_up_w, down_w) in enumerate(self.layers):
            if mlp_out is not None:
                residual, x = self.add_rms_norm(mlp_out, residual, ln1, self.eps)
            q, k, v = self.qk_norm_rope(
                F.linear(x, qkv_w, qkv_b), qn, kn, self.eps, cos, sin, self.heads, self.kv_heads, self.head_dim
            )
            layer_cache = cache.layers[index]
            keys, values = layer_cache.keys, layer_cache.values
            if paged is not None:
                paged.attention.write(keys, values, k, v, paged.block, paged.offset)
                context = paged.attention.attend(
                    q, keys, values, paged.table, paged.lengths, paged.window_blocks, self.scaling, self.attention_probs
                )
            else:
                keys.index_copy_(2, write_at, k)
                values.index_copy_(2, write_at, v)
                # grouped-query attention: the q heads sharing a kv head form the rows of one product
                scores = torch.matmul(q.view(batch, self.kv_heads, groups, self.head_dim), keys.transpose(-1, -2))
                probs = self.attention_probs(scores, mask, self.scaling)
                context = torch.matmul(probs, values)
            context = context.reshape(batch, 1, self.heads * self.head_dim)
            residual, x = self.add_rms_norm(F.linear(context, o_w), residual, ln2, self.eps)
            mlp_out = F.linear(self.silu_mul(F.linear(x, gate_up_w)), down_w)
        _, x = self.add_rms_norm(mlp_out, residual, self.final_norm.weight, self.eps)
        return self.head(x)[:, -1, :]
