"""Continuous batching vs today's static batching vs the common recipe, on real-shaped work.

64 pages whose answer lengths come from a fixed, seeded distribution (log-uniform 100–3,000
tokens; each page stops exactly at its length: EOS suppressed, the page's own budget), one full-size
random-weight model (dots.ocr or Qwen3-VL-2B, bf16) on a 200-DPI Letter page, all in one process:

- static: ``FastGenerator.generate`` on consecutive batches (today's path): a batch runs until its
  longest page ends; on out of memory the batch is halved, as the engine does.
- continuous: ``FastGenerator.stream``: slots from the engine's VRAM plan (``models.slot_plan``),
  a stopped page's slot takes the next page at once.
- common recipe: ``model.generate`` with eager attention and the dynamic cache, one page at a
  time; its rate is measured on one page (prefill + 128 tokens) and the 64-page time computed from
  it (running it for real would take half an hour).

``--cap-gb 14`` caps this process's GPU memory (``torch.cuda.set_per_process_memory_fraction``) to
stand for a 16 GB laptop card; without it, the continuous run gets a slot count whose plan fits in
the static run's peak memory ("same VRAM"). Batch-1 decode of both paths is timed too, as a
fraction of the card's bandwidth limit (weights bytes / measured copy bandwidth).

    python benchmarks/bench_continuous.py --model dots --cap-gb 14      # GPU, full size
    python benchmarks/bench_continuous.py --model qwen --tiny           # CPU dry run of every path
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_dots_ocr import table  # noqa: E402
from bench_qwen3_vl import bandwidth_gbs  # noqa: E402

from ocr_studio.models.generation import FastGenerator, GenerationConfig, PageRequest, SlotsOutOfMemory  # noqa: E402
from ocr_studio.models.slot_plan import TYPICAL_ANSWER_TOKENS, plan_slots, usable_cuda_bytes  # noqa: E402

PAGES = 64
SEED = 20261124
SHORTEST, LONGEST = 100, 3000
CHECK_EVERY = 16


def answer_lengths(pages: int, shortest: int, longest: int, seed: int = SEED) -> list[int]:
    """Log-uniform lengths: many short pages (titles, figures), a tail of dense ones."""
    rng = random.Random(seed)
    low, high = math.log(shortest), math.log(longest)
    return [round(math.exp(rng.uniform(low, high))) for _ in range(pages)]


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def reset_peak() -> int:
    gc.collect()
    if not torch.cuda.is_available():
        return 0
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return torch.cuda.memory_allocated()


def peak_gb() -> float:
    return round(torch.cuda.max_memory_allocated() / 1024**3, 2) if torch.cuda.is_available() else float("nan")


# -- the two models -----------------------------------------------------------------------------------


class Dots:
    """Full-size dots.ocr (our implementation) with random weights; synthetic processor output."""

    name = "dots.ocr"

    def __init__(self, tiny: bool, device: str):
        import bench_dots_ocr as dots

        from ocr_studio.models.dots_ocr import DotsOCRConfig, DotsOCRForCausalLM

        self.dots = dots
        config = dots.tiny_config() if tiny else DotsOCRConfig()
        config._attn_implementation = "sdpa"
        self.dtype = torch.float32 if tiny else torch.bfloat16
        torch.manual_seed(0)
        with torch.device(device):
            self.model = DotsOCRForCausalLM(config).to(self.dtype).eval()
        self.config, self.device = config, device
        self.eos = dots.EOS_IDS
        self.page_size = (280, 364) if tiny else dots.LETTER_200DPI
        # the engine's plan figures (engines/dots_ocr.py); the engine module needs the app's settings
        layers, kv_heads = config.num_hidden_layers, config.num_key_value_heads
        self.kv_bytes_per_token = layers * 2 * kv_heads * (config.hidden_size // config.num_attention_heads) * 2
        self.prefill_bytes = 250 * self.page_size[0] * self.page_size[1]

    def inputs(self, pages: int = 1) -> dict:
        inputs, self.info = self.dots.page_inputs(*self.page_size, self.config, self.device, self.dtype, pages=pages)
        return inputs

    def common_recipe(self) -> None:
        self.dots.set_attention(self.model, "eager")

    def ours(self) -> None:
        self.dots.set_attention(self.model, "sdpa")


class Qwen:
    """Full-size Qwen3-VL-2B (transformers) with random weights; the real processor."""

    name = "Qwen3-VL-2B"

    def __init__(self, tiny: bool, device: str):
        import bench_qwen3_vl as qwen

        self.qwen = qwen
        self.model, self.processor = qwen.build(tiny, device)
        self.device = device
        self.dtype = next(self.model.parameters()).dtype
        self.eos = (self.processor.tokenizer.convert_tokens_to_ids("<|im_end|>"),)
        self.page_size = (280, 364) if tiny else (1700, 2200)
        text = self.model.config.text_config
        self.kv_bytes_per_token = text.num_hidden_layers * 2 * text.num_key_value_heads * text.head_dim * 2
        self.prefill_bytes = 120 * qwen.DEFAULT_MAX_PIXELS

    def inputs(self, pages: int = 1) -> dict:
        inputs = self.qwen.page_inputs(self.processor, *self.page_size, pages, self.qwen.DEFAULT_MAX_PIXELS)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        self.info = {"prompt_tokens": int(inputs["input_ids"].shape[1])}
        return inputs

    def common_recipe(self) -> None:
        self.model.set_attn_implementation("eager")

    def ours(self) -> None:
        self.model.set_attn_implementation("sdpa")


def weight_bytes(model) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def config_for(bundle, max_new: int) -> GenerationConfig:
    return GenerationConfig(
        max_new_tokens=max_new,
        eos_token_ids=bundle.eos,
        pad_token_id=0,
        suppress_token_ids=bundle.eos,
        check_every=CHECK_EVERY,
        repetition=None,
    )


# -- the three ways -----------------------------------------------------------------------------------


def run_static(bundle, lengths: list[int], batch: int) -> dict:
    """Today's path: batches of ``batch`` pages in order, each until its longest page ends."""
    generator = FastGenerator(bundle.model)
    base = reset_peak()
    sync()
    start = time.perf_counter()
    done = index = 0
    prefill = 0.0
    while index < len(lengths):
        size = min(batch, len(lengths) - index)
        chunk = lengths[index : index + size]
        try:
            result = generator.generate(bundle.inputs(size), config_for(bundle, max(chunk)))
        except torch.OutOfMemoryError:
            generator.release()
            if batch == 1:
                raise
            batch //= 2  # as the engine does: halve the batch and go on
            continue
        assert [len(t) for t in result.tokens] == [max(chunk)] * size
        prefill += result.prefill_seconds
        done += size
        index += size
    sync()
    total = time.perf_counter() - start
    row = {
        "way": f"static batches of {batch}",
        "pages": done,
        "seconds": round(total, 2),
        "pages_per_min": round(60 * done / total, 1),
        "prefill_s": round(prefill, 2),
        "peak_GB": peak_gb(),
        "base_GB": round(base / 1024**3, 2),
        "batch": batch,
    }
    generator.release()
    return row


def run_continuous(
    bundle, lengths: list[int], slots: int, note: str = "", overlap: bool = False, pool_tokens: int | None = None
) -> dict:
    generator = FastGenerator(bundle.model)
    generator.overlap_prefill = overlap
    generator.pool_tokens = pool_tokens  # None: the paged cache takes what memory leaves (the engine's way)
    config = config_for(bundle, max(lengths))
    single = bundle.inputs(1)
    base = reset_peak()
    sync()
    start = time.perf_counter()
    got: dict[int, int] = {}
    prefill = 0.0
    requests = (PageRequest(i, single, length) for i, length in enumerate(lengths))
    prompt = single["input_ids"].shape[1]
    reserve = prompt + max(lengths) + CHECK_EVERY
    workspace = bundle.prefill_bytes + prompt * bundle.kv_bytes_per_token
    stream = generator.stream(requests, config, slots=slots, reserve_tokens=reserve, prefill_bytes=workspace)
    for page in stream:
        got[page.key] = len(page.tokens)
        prefill += page.prefill_seconds
        if page.path not in ("graphs", "eager"):
            raise RuntimeError(f"continuous batching fell back: {page.warnings}")
    sync()
    total = time.perf_counter() - start
    assert got == dict(enumerate(lengths)), "every page must stop exactly at its length"
    used = generator._slots.slots if generator._slots is not None else slots  # the generator fits them to memory
    row = {
        "way": f"continuous, {used} slots{note}" + (", prefill beside decoding" if overlap else ""),
        "pages": len(got),
        "seconds": round(total, 2),
        "pages_per_min": round(60 * len(got) / total, 1),
        "prefill_s": round(prefill, 2),
        "peak_GB": peak_gb(),
        "base_GB": round(base / 1024**3, 2),
        "slots": used,
        "most_in_flight": generator.stream_report.get("most_in_flight"),
        "put_back": generator.stream_report.get("put_back"),
        "cache_GB": round(cache_bytes(generator) / 1024**3, 2),
        "graphs": len(generator._slots.graphs_by_window) if generator._slots is not None else 0,
    }
    generator.release()
    return row


def cache_bytes(generator) -> int:
    state = generator._slots
    if state is None:
        return 0
    return sum(t.numel() * t.element_size() for layer in state.cache.layers for t in (layer.keys, layer.values))


def run_common_recipe(bundle, lengths: list[int], tokens: int) -> dict:
    """``model.generate`` (eager attention, dynamic cache), one page: prefill and decode rate
    measured on one page, the 64 pages' time computed from them."""
    bundle.common_recipe()
    inputs = bundle.inputs(1)
    kwargs = {"do_sample": False, "suppress_tokens": list(bundle.eos), "eos_token_id": None, "pad_token_id": 0}
    base = reset_peak()
    try:
        with torch.inference_mode():
            bundle.model.generate(**inputs, max_new_tokens=2, **kwargs)  # warm-up
            sync()
            t0 = time.perf_counter()
            bundle.model.generate(**inputs, max_new_tokens=1, **kwargs)
            sync()
            t1 = time.perf_counter()
            bundle.model.generate(**inputs, max_new_tokens=tokens, **kwargs)
            sync()
            t2 = time.perf_counter()
    finally:
        bundle.ours()
    prefill = t1 - t0
    per_token = max((t2 - t1) - prefill, 1e-9) / (tokens - 1)
    total = sum(prefill + n * per_token for n in lengths)
    return {
        "way": "common recipe (computed from one page)",
        "pages": len(lengths),
        "seconds": round(total, 1),
        "pages_per_min": round(60 * len(lengths) / total, 2),
        "prefill_s": round(prefill * len(lengths), 2),
        "peak_GB": peak_gb(),
        "base_GB": round(base / 1024**3, 2),
        "decode_tok_s": round(1 / per_token, 1),
    }


def batch_one_decode(bundle, tokens: int) -> list[dict]:
    """Decode speed of one page alone: the static path at batch 1 and continuous batching with one slot."""
    rows = []
    inputs = bundle.inputs(1)
    config = config_for(bundle, tokens)
    for way in ("static, batch 1", "continuous, 1 slot"):
        generator = FastGenerator(bundle.model)
        for _attempt in range(2):  # the first compiles and captures
            sync()
            start = time.perf_counter()
            if way.startswith("static"):
                result = generator.generate(inputs, config)
                prefill = result.prefill_seconds
            else:
                [page] = list(generator.stream([PageRequest(0, inputs)], config, slots=1))
                prefill = page.prefill_seconds
            sync()
            total = time.perf_counter() - start
        decode = total - prefill
        rows.append({"way": way, "tokens": tokens, "decode_tok_s": round((tokens - 1) / decode, 1)})
        generator.release()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=("dots", "qwen"), required=True)
    parser.add_argument("--tiny", action="store_true", help="tiny model (CPU is fine): checks every path, no timings")
    parser.add_argument("--cap-gb", type=float, default=0.0, help="cap this process's GPU memory (a laptop card)")
    parser.add_argument("--pages", type=int, default=PAGES)
    parser.add_argument("--static-batch", type=int, default=8, help="today's batch (halved on out of memory)")
    parser.add_argument("--slots", type=int, default=0, help="continuous slots (0: the VRAM plan)")
    parser.add_argument("--skip", default="", help="comma list of: common,static,batch1,overlap")
    parser.add_argument(
        "--json", default=os.environ.get("OUT", "") and os.path.join(os.environ["OUT"], "continuous.json")
    )
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    if args.cap_gb and device == "cuda":
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(args.cap_gb * 1024**3 / total)
    lengths = answer_lengths(args.pages, 4 if args.tiny else SHORTEST, 40 if args.tiny else LONGEST)
    bundle = (Dots if args.model == "dots" else Qwen)(args.tiny, device)
    weights = weight_bytes(bundle.model)
    print(
        f"{bundle.name}: {weights / 1024**3:.2f} GB of weights; {len(lengths)} pages, answer lengths "
        f"{min(lengths)}–{max(lengths)}, mean {sum(lengths) / len(lengths):.0f}, total {sum(lengths)}",
        flush=True,
    )
    bundle.inputs(1)
    report: dict = {
        "model": bundle.name,
        "lengths": lengths,
        "cap_gb": args.cap_gb,
        "page": bundle.info,
        "device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
        "torch": torch.__version__,
        "weights_GB": round(weights / 1024**3, 2),
        "rows": [],
    }
    rows = report["rows"]

    # warm up once (compile the fused step's kernels, cuBLAS) so neither way pays it inside its timing
    warm = FastGenerator(bundle.model)
    warm.generate(bundle.inputs(1), config_for(bundle, 2 * CHECK_EVERY))
    # two pages at once: the fused step's kernels compile for more than one row too (symbolic shapes)
    two = [PageRequest(key, bundle.inputs(1), 2 * CHECK_EVERY) for key in (0, 1)]
    list(warm.stream(two, config_for(bundle, 2 * CHECK_EVERY), slots=2))
    warm.release()
    del warm

    static_peak = None
    if "static" not in skip:
        rows.append(run_static(bundle, lengths, args.static_batch))
        static_peak = rows[-1]["peak_GB"]
        print(rows[-1], flush=True)
    # the engine's plan: a page in flight counts at its prompt and a typical answer (the cache is paged)
    tokens_per_slot = bundle.info["prompt_tokens"] + min(max(lengths), TYPICAL_ANSWER_TOKENS) + CHECK_EVERY
    slot_bytes = tokens_per_slot * bundle.kv_bytes_per_token
    pool_tokens = None
    workspace = bundle.prefill_bytes + bundle.info["prompt_tokens"] * bundle.kv_bytes_per_token
    if args.slots:
        slots, how = args.slots, " (set)"
    elif device != "cuda":
        slots, how = 3, ""
    else:
        usable = usable_cuda_bytes()
        how = f" (VRAM plan: {usable / 1024**3:.1f} GB usable)"
        if not args.cap_gb and static_peak:
            # same VRAM as the static run: its peak (weights included) less what is allocated now
            usable = min(usable, int(static_peak * 1024**3) - torch.cuda.memory_allocated())
            how = f" (VRAM plan within the static run's {static_peak} GB)"
        plan = plan_slots(usable, weight_bytes=0, slot_bytes=slot_bytes, prefill_bytes=workspace)
        slots = plan.slots
        if not args.cap_gb and static_peak:
            pool_tokens = slots * tokens_per_slot  # the cache stays within the static run's memory too
    report["slot_GB"] = round(slot_bytes / 1024**3, 3)
    while True:  # as the engine does: out of memory, half the slots (and say so)
        try:
            rows.append(run_continuous(bundle, lengths, slots, how, pool_tokens=pool_tokens))
            break
        except SlotsOutOfMemory as exc:
            gc.collect()
            torch.cuda.empty_cache()
            print(
                f"continuous with {slots} slots: {exc}; allocated {torch.cuda.memory_allocated() / 1024**3:.2f} GB, "
                f"reserved {torch.cuda.memory_reserved() / 1024**3:.2f} GB",
                flush=True,
            )
            report.setdefault("out_of_memory", []).append({"slots": slots, "error": str(exc)})
            if slots == 1:
                raise
            slots //= 2
    print(rows[-1], flush=True)
    if "overlap" not in skip and device == "cuda":  # the same with each prefill beside the decode steps
        try:
            rows.append(run_continuous(bundle, lengths, rows[-1]["slots"], how, overlap=True, pool_tokens=pool_tokens))
            print(rows[-1], flush=True)
        except SlotsOutOfMemory as exc:
            print(f"continuous with prefills beside decoding: {exc}", flush=True)
            report.setdefault("out_of_memory", []).append({"overlap": True, "error": str(exc)})
        gc.collect()
        torch.cuda.empty_cache()
    if "common" not in skip:
        try:
            rows.append(run_common_recipe(bundle, lengths, 8 if args.tiny else 128))
        except torch.OutOfMemoryError as exc:  # eager attention on a whole page can outgrow a laptop-sized cap
            rows.append({"way": "common recipe", "status": f"out of memory: {str(exc).splitlines()[0][:120]}"})
            gc.collect()
            torch.cuda.empty_cache()
        print(rows[-1], flush=True)
    if "batch1" not in skip:
        report["batch1"] = batch_one_decode(bundle, 32 if args.tiny else 512)
        vision = getattr(bundle.model, "vision_tower", None) or getattr(bundle.model.model, "visual", None)
        decoder = weights - (weight_bytes(vision) if vision is not None else 0)  # what a decode step reads
        report["decoder_weights_GB"] = round(decoder / 1024**3, 2)
        limit = bandwidth_gbs(device) * 1e9 / decoder
        for row in report["batch1"]:
            row["of_bandwidth_limit"] = round(row["decode_tok_s"] / limit, 2) if device == "cuda" else ""
        report["bandwidth_limit_tok_s"] = round(limit, 1) if device == "cuda" else None
        print(report["batch1"], flush=True)

    by_way: dict[str, dict] = {}
    for row in rows:  # the first row of each way (continuous: prefills in line, the default)
        by_way.setdefault(row["way"].split(",")[0].split(" ")[0], row)
    if "static" in by_way and "continuous" in by_way:
        report["continuous_vs_static"] = round(
            by_way["continuous"]["pages_per_min"] / by_way["static"]["pages_per_min"], 2
        )
    if "pages_per_min" in by_way.get("common", {}) and "continuous" in by_way:
        report["continuous_vs_common"] = round(
            by_way["continuous"]["pages_per_min"] / by_way["common"]["pages_per_min"], 1
        )
    print()
    print(f"## {bundle.name}, {report['device']}, cap {args.cap_gb or 'none'} GB, page {bundle.info}")
    print(table(rows, ["way", "pages", "seconds", "pages_per_min", "prefill_s", "peak_GB"]))
    if "batch1" in report:
        print(table(report["batch1"], ["way", "tokens", "decode_tok_s", "of_bandwidth_limit"]))
    print({k: v for k, v in report.items() if k.startswith("continuous_vs")})
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
