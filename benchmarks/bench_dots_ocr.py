"""dots.ocr on our implementation vs. the common recipe: vision-encoder memory/time and decode speed.

Full-size dots.ocr with random weights (bf16, GPU). Speed and memory do not depend on weight
values; output lengths are forced (EOS suppressed) so every configuration decodes the same count.

1. Vision encoder, per page size: our per-image attention vs. the published formulation
   (one [1, S, S] additive mask + fp32 softmax, eager), run where it fits, else its attention
   memory computed.
2. End to end on a 200-DPI Letter page: the common recipe (eager attention everywhere,
   ``model.generate`` with the default dynamic cache, one page at a time) vs. ours (per-image
   SDPA vision + ocr_studio.models.generation's static-cache / CUDA-graph decode) at batch 1 and 4.

    python benchmarks/bench_dots_ocr.py                # GPU, full size
    python benchmarks/bench_dots_ocr.py --tiny         # CPU dry run of every code path
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ocr_studio.models.dots_ocr import DotsOCRConfig, DotsOCRForCausalLM, modeling, smart_resize  # noqa: E402
from ocr_studio.models.generation import FastGenerator, GenerationConfig  # noqa: E402

LETTER_200DPI = (1700, 2200)  # width, height
MAX_BUDGET_PAGE = (3360, 3360)  # exactly the default 11,289,600-pixel budget
USER, IMG, IMGPAD, ENDOFIMG, ENDOFUSER, ASSISTANT = 151670, 151666, 151665, 151667, 151671, 151672
EOS_IDS = (151643, 151672, 151673)
PROMPT_TEXT_TOKENS = 230  # about the length of prompt_layout_all_en


def reference_attention(q, k, v, cu_seqlens, use_flash=False):
    """The published eager formulation: a [1, S, S] additive mask over all patches of the batch,
    [heads, S, S] scores, softmax in float32."""
    seq = q.shape[0]
    mask = torch.full((1, seq, seq), torch.finfo(q.dtype).min, device=q.device, dtype=q.dtype)
    bounds = cu_seqlens.tolist()
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        mask[..., start:end, start:end] = 0
    q, k, v = (t.transpose(0, 1) for t in (q, k, v))  # [heads, S, D]
    scores = torch.matmul(q, k.transpose(1, 2)) / q.shape[-1] ** 0.5 + mask
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    return torch.matmul(weights, v).transpose(0, 1)


def reference_attention_bytes(patches: int, heads: int, dtype_bytes: int = 2) -> int:
    """Peak extra memory of one reference attention layer: mask + scores + fp32 softmax + its cast."""
    square = patches * patches
    return square * dtype_bytes + heads * square * (dtype_bytes + 4 + dtype_bytes)


@contextlib.contextmanager
def attention_formulation(reference: bool, whole_page: bool = False):
    """The reference's attention in place of ours; ``whole_page``: no chunks (the encoder's patch-wise
    parts over all the page's patches at once, as before ``VISION_CHUNK``)."""
    original, chunk = modeling.per_image_attention, modeling.VISION_CHUNK
    if reference:
        modeling.per_image_attention = reference_attention
    if reference or whole_page:
        modeling.VISION_CHUNK = 1 << 40
    try:
        yield
    finally:
        modeling.per_image_attention, modeling.VISION_CHUNK = original, chunk


def set_attention(model, name: str) -> None:
    """Switch the language model's attention (Qwen2 layers read the config at every call)."""
    model.config._attn_implementation = name
    assert model.model.layers[0].self_attn.config._attn_implementation == name


class Clock:
    def __init__(self, device: torch.device):
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def reset_peak(self) -> int:
        if self.device.type != "cuda":
            return 0
        self.sync()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(self.device)
        return torch.cuda.memory_allocated(self.device)

    def peak(self) -> int:
        return torch.cuda.max_memory_allocated(self.device) if self.device.type == "cuda" else 0

    def free(self) -> int:
        if self.device.type != "cuda":
            return 1 << 62
        free, _ = torch.cuda.mem_get_info(self.device)
        return free


def page_inputs(width: int, height: int, config: DotsOCRConfig, device, dtype, pages: int = 1, factor: int = 28):
    """Synthetic processor output for ``pages`` pages of one size: pixel rows, grid, prompt ids."""
    h, w = smart_resize(height, width, factor=factor)
    patch = config.vision_config.patch_size
    merge = config.vision_config.spatial_merge_size
    gh, gw = h // patch, w // patch
    patches = gh * gw
    tokens = patches // merge**2
    pixel_values = torch.randn(pages * patches, 3 * patch * patch, device=device, dtype=dtype)
    grid = torch.tensor([[1, gh, gw]] * pages, device=device)
    text = torch.randint(100, 150000, (PROMPT_TEXT_TOKENS,)).clamp(max=config.vocab_size - 1).tolist()
    ids = [USER, IMG] + [config.image_token_id] * tokens + [ENDOFIMG] + text + [ENDOFUSER, ASSISTANT]
    ids = [min(i, config.vocab_size - 1) if i != config.image_token_id else i for i in ids]
    input_ids = torch.tensor([ids] * pages, device=device)
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "pixel_values": pixel_values,
        "image_grid_thw": grid,
    }, {"resized": f"{w}×{h}", "patches": patches, "visual_tokens": tokens, "prompt_tokens": len(ids)}


def bench_vision(model, config, clock, device, dtype, sizes, repeats: int) -> list[dict]:
    rows = []
    heads = config.vision_config.num_attention_heads
    for label, (width, height) in sizes:
        inputs, info = page_inputs(width, height, config, device, dtype)
        for formulation in (
            f"ours (per-image SDPA, chunks of {modeling.VISION_CHUNK:,} patches)",
            "ours, whole page at once",
            "reference (S×S mask, fp32 softmax)",
        ):
            reference = formulation.startswith("reference")
            whole_page = formulation.endswith("whole page at once")
            row = {"page": label, **info, "attention": formulation}
            estimate = reference_attention_bytes(info["patches"], heads) if reference else 0
            if reference:
                row["attn_layer_estimate_GB"] = round(estimate / 1e9, 2)
            if reference and estimate > 0.85 * clock.free():
                row.update(status=f"not run: needs ≈{estimate / 1e9:.0f} GB per layer")
                rows.append(row)
                continue
            try:
                with attention_formulation(reference, whole_page), torch.no_grad():
                    base = clock.reset_peak()
                    times = []
                    for _ in range(repeats + 1):
                        clock.sync()
                        start = time.perf_counter()
                        model.vision_tower(inputs["pixel_values"], inputs["image_grid_thw"], "sdpa")
                        clock.sync()
                        times.append(time.perf_counter() - start)
                    row.update(status="ok", seconds=round(min(times[1:]), 4))
                    row["peak_extra_GB"] = round((clock.peak() - base) / 1e9, 2)
            except torch.OutOfMemoryError:
                row.update(status="out of memory")
            rows.append(row)
            torch.cuda.empty_cache() if device.type == "cuda" else None
    return rows


def bench_common_recipe(model, config, clock, device, dtype, new_tokens: int, page_size=LETTER_200DPI) -> dict:
    """Eager attention (vision: the published formulation), model.generate, dynamic cache, batch 1."""
    inputs, info = page_inputs(*page_size, config, device, dtype)
    set_attention(model, "eager")
    kwargs = dict(
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
        suppress_tokens=list(EOS_IDS),
        eos_token_id=None,
        pad_token_id=0,
    )
    row = {"recipe": "common (eager, generate, dynamic cache)", "batch": 1, **info}
    try:
        with attention_formulation(True), torch.no_grad():
            model.generate(**inputs, **{**kwargs, "max_new_tokens": 4, "min_new_tokens": 4})  # warm-up
            base = clock.reset_peak()
            clock.sync()
            start = time.perf_counter()
            model(**inputs, use_cache=True, logits_to_keep=1)
            clock.sync()
            prefill = time.perf_counter() - start
            start = time.perf_counter()
            out = model.generate(**inputs, **kwargs)
            clock.sync()
            total = time.perf_counter() - start
        generated = out.shape[1] - inputs["input_ids"].shape[1]
        decode = max(total - prefill, 1e-9)
        row.update(
            status="ok",
            new_tokens=generated,
            prefill_s=round(prefill, 3),
            total_s=round(total, 3),
            decode_tok_s=round(generated / decode, 1),
            pages_per_min=round(60 / total, 2),
            peak_GB=round(clock.peak() / 1e9, 2),
            base_GB=round(base / 1e9, 2),
        )
    except torch.OutOfMemoryError:
        row.update(status="out of memory")
    finally:
        set_attention(model, "sdpa")
    return row


def bench_ours(model, config, clock, device, dtype, new_tokens: int, batch: int, page_size=LETTER_200DPI) -> dict:
    inputs, info = page_inputs(*page_size, config, device, dtype, pages=batch)
    set_attention(model, "sdpa")
    generator = FastGenerator(model)
    gen_config = GenerationConfig(
        max_new_tokens=new_tokens, eos_token_ids=(), pad_token_id=0, suppress_token_ids=EOS_IDS, repetition=None
    )
    row = {"recipe": f"ours ({generator.path})", "batch": batch, **info}
    try:
        generator.warm_up(inputs, gen_config)
        base = clock.reset_peak()
        clock.sync()
        start = time.perf_counter()
        result = generator.generate(inputs, gen_config)
        clock.sync()
        total = time.perf_counter() - start
        generated = sum(len(t) for t in result.tokens)
        row.update(
            status="ok",
            path=result.path + (" + fused step" if result.fused else ""),
            new_tokens=generated // batch,
            prefill_s=round(result.prefill_seconds, 3),
            total_s=round(total, 3),
            decode_tok_s=round(generated / max(result.decode_seconds, 1e-9), 1),
            pages_per_min=round(60 * batch / total, 2),
            peak_GB=round(clock.peak() / 1e9, 2),
            base_GB=round(base / 1e9, 2),
            warnings=result.warnings,
        )
    except torch.OutOfMemoryError:
        row.update(status="out of memory")
    generator.release()
    return row


def table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def tiny_config() -> DotsOCRConfig:
    return DotsOCRConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vision_config={
            "embed_dim": 32,
            "hidden_size": 64,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny model on the CPU: checks the script, no timings")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--batches", default="1,4", help="comma list; empty: no decode runs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-common", action="store_true")
    parser.add_argument("--skip-vision", action="store_true")
    parser.add_argument("--json", default=os.environ.get("OUT", "") and os.path.join(os.environ["OUT"], "dots.json"))
    args = parser.parse_args()

    device = torch.device("cpu" if args.tiny or not torch.cuda.is_available() else "cuda")
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    config = tiny_config() if args.tiny else DotsOCRConfig()
    config.eos_token_id = list(EOS_IDS)
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    with device:
        model = DotsOCRForCausalLM(config).eval()
    torch.set_default_dtype(previous)
    model.to(dtype)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    set_attention(model, "sdpa")
    clock = Clock(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run)"
    print(f"device: {name}; torch {torch.__version__}; dtype {dtype}; weights {clock.reset_peak() / 1e9:.2f} GB")

    sizes = [("Letter 200 DPI", LETTER_200DPI), ("max budget 11.29 MP", MAX_BUDGET_PAGE)]
    if args.tiny:
        sizes = [("small", (300, 400)), ("larger", (600, 800))]
    vision = [] if args.skip_vision else bench_vision(model, config, clock, device, dtype, sizes, args.repeats)
    print("\n## Vision encoder (42 layers)\n")
    print(
        table(
            vision,
            ["page", "resized", "patches", "attention", "status", "seconds", "peak_extra_GB", "attn_layer_estimate_GB"],
        )
    )

    new_tokens = 8 if args.tiny else args.new_tokens
    page_size = (300, 400) if args.tiny else LETTER_200DPI
    e2e = []
    if not args.skip_common:
        e2e.append(bench_common_recipe(model, config, clock, device, dtype, new_tokens, page_size))
    for batch in [int(b) for b in args.batches.split(",") if b]:
        e2e.append(bench_ours(model, config, clock, device, dtype, new_tokens, batch, page_size))
    print(f"\n## End to end, Letter page at 200 DPI, {new_tokens} new tokens per page\n")
    print(
        table(
            e2e,
            [
                "recipe",
                "batch",
                "status",
                "path",
                "prompt_tokens",
                "prefill_s",
                "decode_tok_s",
                "pages_per_min",
                "peak_GB",
                "total_s",
            ],
        )
    )
    common = next((r for r in e2e if r["recipe"].startswith("common") and r.get("status") == "ok"), None)
    ours1 = next(
        (r for r in e2e if r["recipe"].startswith("ours") and r["batch"] == 1 and r.get("status") == "ok"), None
    )
    if common and ours1:
        print(f"\nours / common decode tokens/s at batch 1: {ours1['decode_tok_s'] / common['decode_tok_s']:.1f}×")
        for row in e2e:
            if row["recipe"].startswith("ours") and row.get("status") == "ok":
                ratio = row["pages_per_min"] / common["pages_per_min"]
                print(f"ours / common pages/min at batch {row['batch']}: {ratio:.1f}×")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "vision": vision, "end_to_end": e2e}, indent=2))


if __name__ == "__main__":
    main()
