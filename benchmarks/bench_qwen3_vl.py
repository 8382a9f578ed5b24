"""Decode speed of Qwen3-VL-2B: the common recipe vs our fast generation, in one process.

Builds a full-size Qwen3-VL-2B (published shape, random weights, bf16) directly on
the GPU, feeds every configuration the same page, forces the output length
(EOS suppressed) and prints decode tokens/s, ms per step, pages/min, prefill
seconds, peak VRAM and first-run compile/capture seconds, with ratios against
the common recipe and the memory-bandwidth limit of a batch-1 step.

Run on a GPU (not in CI):  cd benchmarks && PYTHONPATH=.. python bench_qwen3_vl.py
Dry run on the CPU:        cd benchmarks && PYTHONPATH=.. python bench_qwen3_vl.py --tiny
Needs only torch, transformers, tokenizers and pillow.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from ocr_studio.models.generation import FastGenerator, GenerationConfig  # noqa: E402 - needs only torch and transformers
from tests.tiny_models import build_qwen3_vl_processor, build_qwen_tokenizer, tiny_qwen3_vl_config  # noqa: E402

FACTOR = 32
DEFAULT_MAX_PIXELS = 2_500_000  # the engine's default page budget (ocr_studio/engines/qwen3_vl.py)
PROMPT = "Convert this page to Markdown."

QWEN3_VL_2B_TEXT = {
    "vocab_size": 151936,
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "num_hidden_layers": 28,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "max_position_embeddings": 262144,
    "rms_norm_eps": 1e-6,
    "hidden_act": "silu",
    "attention_bias": False,
    "rope_parameters": {
        "rope_type": "default",
        "rope_theta": 5_000_000.0,
        "mrope_section": [24, 20, 20],
        "mrope_interleaved": True,
    },
    "tie_word_embeddings": True,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
}
QWEN3_VL_2B_VISION = {
    "depth": 24,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_heads": 16,
    "in_channels": 3,
    "patch_size": 16,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "out_hidden_size": 2048,
    "num_position_embeddings": 2304,
    "deepstack_visual_indexes": [5, 11, 17],
    "hidden_act": "gelu_pytorch_tanh",
}


def fit_size(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    try:
        from ocr_studio.engines.qwen3_vl import fit_size as engine_fit_size
    except ImportError:  # the engine module needs platformdirs (via settings); the rule is the same
        w, h = round(width / FACTOR) * FACTOR, round(height / FACTOR) * FACTOR
        if w * h > max_pixels:
            beta = math.sqrt(width * height / max_pixels)
            w, h = math.floor(width / beta / FACTOR) * FACTOR, math.floor(height / beta / FACTOR) * FACTOR
        return w, h
    return engine_fit_size(width, height, max_pixels)


def build(tiny: bool, device: str):
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    tokenizer = build_qwen_tokenizer(published_ids=not tiny)
    processor = build_qwen3_vl_processor(tokenizer, min_pixels=FACTOR * FACTOR * 4, max_pixels=16_777_216)
    if tiny:
        config = tiny_qwen3_vl_config(tokenizer)
        dtype = torch.float32
    else:
        config = Qwen3VLConfig(
            text_config=QWEN3_VL_2B_TEXT,
            vision_config=QWEN3_VL_2B_VISION,
            image_token_id=151655,
            video_token_id=151656,
            vision_start_token_id=151652,
            vision_end_token_id=151653,
            tie_word_embeddings=True,
        )
        dtype = torch.bfloat16
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    with torch.device(device):
        model = Qwen3VLForConditionalGeneration(config)
    torch.set_default_dtype(previous)
    model = model.to(device=device, dtype=dtype).eval()
    return model, processor


def page_inputs(processor, width: int, height: int, batch: int, max_pixels: int) -> dict[str, torch.Tensor]:
    from PIL import Image, ImageDraw

    w, h = fit_size(width, height, max_pixels)
    image = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(image)
    for y in range(20, h - 20, 28):
        draw.text((40, y), "The quick brown fox jumps over the lazy dog 0123456789 " * 3, fill="black")
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": PROMPT}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    processor.tokenizer.padding_side = "left"
    size = {"shortest_edge": FACTOR * FACTOR * 4, "longest_edge": max(w * h, max_pixels)}
    return dict(processor(text=[text] * batch, images=[image] * batch, padding=True, return_tensors="pt", size=size))


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gb(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 1024**3 if device == "cuda" else float("nan")


def run_common_recipe(model, inputs, new_tokens: int, eos: int, device: str) -> dict[str, float]:
    """eager attention, default dynamic cache, model.generate, one page."""
    model.set_attn_implementation("eager")
    inputs = {k: v.to(device) for k, v in inputs.items()}
    kwargs = {"do_sample": False, "suppress_tokens": [eos], "eos_token_id": None, "pad_token_id": 151643}
    reset_peak(device)
    with torch.inference_mode():
        model.generate(**inputs, max_new_tokens=4, **kwargs)  # warm-up
        sync(device)
        t0 = time.perf_counter()
        model.generate(**inputs, max_new_tokens=1, **kwargs)
        sync(device)
        t1 = time.perf_counter()
        out = model.generate(**inputs, max_new_tokens=new_tokens, **kwargs)
        sync(device)
        t2 = time.perf_counter()
    model.set_attn_implementation("sdpa")
    produced = out.shape[1] - inputs["input_ids"].shape[1]
    assert produced == new_tokens, produced
    prefill = t1 - t0
    decode = (t2 - t1) - prefill
    batch = inputs["input_ids"].shape[0]
    return {
        "tok_s": batch * (new_tokens - 1) / decode,
        "ms_step": 1000 * decode / (new_tokens - 1),
        "pages_min": 60 * batch / (t2 - t1),
        "prefill_s": prefill,
        "peak_gb": peak_gb(device),
        "compile_s": 0.0,
    }


def run_ours(
    model, inputs, new_tokens: int, eos: int, device: str, fuse: bool | str = "auto", path="auto"
) -> dict[str, float]:
    reset_peak(device)
    generator = FastGenerator(model, path=path, fuse=fuse)
    config = GenerationConfig(
        max_new_tokens=new_tokens,
        eos_token_ids=(eos,),
        pad_token_id=151643,
        suppress_token_ids=(eos,),
        check_every=32,
        repetition=None,
    )
    t0 = time.perf_counter()
    first = generator.generate(inputs, config)  # includes compilation and graph capture
    sync(device)
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = generator.generate(inputs, config)
    sync(device)
    total = time.perf_counter() - t0
    assert all(len(row) == new_tokens for row in result.tokens), [len(r) for r in result.tokens]
    if result.warnings:
        print("  warnings:", *result.warnings, sep="\n    ")
    batch = inputs["input_ids"].shape[0]
    steps = max(1, result.steps)
    row = {
        "tok_s": batch * steps / result.decode_seconds,
        "ms_step": 1000 * result.decode_seconds / steps,
        "pages_min": 60 * batch / total,
        "prefill_s": result.prefill_seconds,
        "peak_gb": peak_gb(device),
        "compile_s": max(0.0, first_s - total),
        "path": result.path
        + (" + fused step" if result.fused else "")
        + (" (Triton)" if result.fused and generator.compile_kernels else ""),
        "tokens": result.tokens,
    }
    del first, generator
    return row


AGREEMENT_TOKENS = 64


def reference_tokens(model, inputs_by_batch: dict, eos: int, device: str) -> dict[int, list | str]:
    """Plain ``model.generate``'s first tokens (model's own forward, dynamic cache, sdpa), run before
    any fused step touches the model."""
    references: dict[int, list | str] = {}
    for batch, inputs in inputs_by_batch.items():
        try:
            plain = run_ours(model, inputs, AGREEMENT_TOKENS, eos, device, fuse=False, path="generate")
            references[batch] = plain["tokens"]
        except Exception as exc:  # noqa: BLE001 - report, keep the speed table
            references[batch] = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return references


def check_agreement(rows: dict, references: dict[int, list | str]) -> list[str]:
    """The graph paths' first tokens against plain ``model.generate`` on the same inputs:
    bf16 may diverge late, never early."""
    lines = []
    for batch, expected in references.items():
        if isinstance(expected, str):
            lines.append(f"|  | agreement check at batch {batch} failed: {expected} | | | | | | |")
            continue
        distinct = len({t for row in expected for t in row})
        for key, r in rows.items():
            if "ours" not in key or not key.endswith(f"batch {batch}"):
                continue
            got = [row[:AGREEMENT_TOKENS] for row in r["tokens"]]
            same = sum(a == b for x, y in zip(expected, got, strict=True) for a, b in zip(x, y, strict=True))
            first = min(
                (next((i for i, (a, b) in enumerate(zip(x, y, strict=True)) if a != b), AGREEMENT_TOKENS))
                for x, y in zip(expected, got, strict=True)
            )
            lines.append(
                f"|  | ↳ {key}: first {AGREEMENT_TOKENS} tokens vs model.generate: {same}/{batch * AGREEMENT_TOKENS}"
                f" equal, first difference at token {first} ({distinct} distinct tokens) | | | | | | |"
            )
    # Every page of a batch is the same page: each row should read like the batch-1 row.
    singles = {
        k[: -len("batch 1")]: r["tokens"][0][:AGREEMENT_TOKENS]
        for k, r in rows.items()
        if k.endswith("batch 1") and "tokens" in r
    }
    pairs = [("model.generate", references.get(1), [r for b, r in references.items() if b != 1])]
    pairs += [
        (
            k.rsplit(", batch", 1)[0],
            [single],
            [rows[key]["tokens"] for key in rows if key.startswith(k) and "tokens" in rows[key]],
        )
        for k, single in singles.items()
        if "ours" in k
    ]
    for label, one, others in pairs:
        if not isinstance(one, list) or not others or not isinstance(others[0], list) or not others[0]:
            continue
        base = one[0][:AGREEMENT_TOKENS]
        for batch_rows in others:
            if len(batch_rows) < 2:
                continue
            same = sum(a == b for row in batch_rows for a, b in zip(base, row[:AGREEMENT_TOKENS], strict=False))
            lines.append(
                f"|  | ↳ {label}: batch-{len(batch_rows)} rows vs its batch-1 row: "
                f"{same}/{len(batch_rows) * len(base)} equal | | | | | | |"
            )
    for line in lines:
        print(line.replace("| | | | | | |", "").strip(" |"))
    return lines


def bandwidth_gbs(device: str) -> float:
    if device != "cuda":
        return float("nan")
    n = 1024**3  # 1 GiB each way
    src = torch.empty(n, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    sync(device)
    t0 = time.perf_counter()
    repeats = 10
    for _ in range(repeats):
        dst.copy_(src)
    sync(device)
    seconds = (time.perf_counter() - t0) / repeats
    del src, dst
    return 2 * n / seconds / 1e9  # read + write


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny random model (dry run, CPU is fine)")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--pages", default="letter,1280x992", help="letter and/or 1280x992")
    parser.add_argument("--variants", choices=("all", "fused", "own"), default="all", help="which decode steps to time")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not args.tiny:
        print("No CUDA GPU: use --tiny for a dry run on the CPU.")
        return 2
    started = time.perf_counter()
    model, processor = build(args.tiny, device)
    eos = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    text_bytes = sum(p.numel() * p.element_size() for p in model.model.language_model.parameters())
    if not model.config.tie_word_embeddings:
        text_bytes += model.lm_head.weight.numel() * model.lm_head.weight.element_size()
    bandwidth = bandwidth_gbs(device)
    limit_ms = 1000 * text_bytes / (bandwidth * 1e9) if bandwidth == bandwidth else float("nan")
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(f"device: {name}; torch {torch.__version__}; transformers {__import__('transformers').__version__}")
    print(
        f"model built in {time.perf_counter() - started:.1f} s; decoder weights read per step {text_bytes / 1e9:.2f} GB"
    )
    print(f"measured bandwidth {bandwidth:.0f} GB/s -> batch-1 limit {limit_ms:.2f} ms/step")

    pages = {"letter": (1700, 2200, DEFAULT_MAX_PIXELS), "1280x992": (1280, 992, 1280 * 992)}
    if args.tiny:
        pages = {"letter": (170, 220, 256 * 256), "1280x992": (128, 99, 256 * 256)}
    lines = [
        f"GPU: {name}; page budget {DEFAULT_MAX_PIXELS / 1e6:.1f} MP; {args.new_tokens} forced new tokens; "
        f"bandwidth {bandwidth:.0f} GB/s, batch-1 limit {limit_ms:.2f} ms/step",
        "",
        "| page | configuration | decode tok/s | ms/step | pages/min | prefill s | peak VRAM GB "
        "| first-run compile s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for page in args.pages.split(","):
        width, height, budget = pages[page]
        one = page_inputs(processor, width, height, 1, budget)
        many = page_inputs(processor, width, height, args.batch, budget)
        print(f"\npage {page}: {one['input_ids'].shape[1]} prompt tokens, grid {one['image_grid_thw'].tolist()}")
        rows = {
            "common recipe (eager, dynamic cache, generate), batch 1": run_common_recipe(
                model, one, args.new_tokens, eos, device
            )
        }
        references = reference_tokens(model, {1: one, args.batch: many}, eos, device)
        variants = [(True, "fused step"), (False, "model's own step")]
        variants = [v for v in variants if args.variants == "all" or (v[0] == (args.variants == "fused"))]
        for fuse, label in variants:
            for batch, inputs in ((1, one), (args.batch, many)):
                key = f"ours ({label}), batch {batch}"
                try:
                    rows[key] = run_ours(model, inputs, args.new_tokens, eos, device, fuse)
                except Exception as exc:  # report and go on: one failing variant must not hide the others
                    print(f"  {key} failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        agreement = check_agreement(rows, references)
        base = rows["common recipe (eager, dynamic cache, generate), batch 1"]
        for key, r in rows.items():
            label = key + (f" [{r['path']}]" if "path" in r else "")
            lines.append(
                f"| {page} | {label} | {r['tok_s']:.1f} ({r['tok_s'] / base['tok_s']:.1f}×) | {r['ms_step']:.2f} | "
                f"{r['pages_min']:.1f} ({r['pages_min'] / base['pages_min']:.1f}×) | {r['prefill_s']:.2f} | "
                f"{r['peak_gb']:.2f} | {r['compile_s']:.1f} |"
            )
            if "batch 1" in key and "ours" in key and limit_ms == limit_ms:
                lines.append(f"|  | ↳ bandwidth limit / ms per step = {limit_ms / r['ms_step']:.2f} | | | | | | |")
        lines.extend(agreement)
        print("\n".join(lines[-len(rows) - 2 - len(agreement) :]))
    table = "\n".join(lines)
    print("\n" + table)
    out = os.environ.get("OUT")
    if out:
        Path(out, "bench_qwen3_vl.md").write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
