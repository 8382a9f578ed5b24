"""The paged decode-attention kernel on the GPU: equal to the gathered arithmetic (bf16, the shapes of
Qwen3-VL-2B and dots.ocr, ragged page lengths, blocks scattered through the pool), and what one
layer's attention costs against the contiguous path's (which reads every row up to the longest).

    python benchmarks/check_paged_attention.py        # GPU; writes $OUT/paged_attention.json
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ocr_studio.models import paged_attention as pa  # noqa: E402

SHAPES = {"Qwen3-VL-2B": (16, 8, 128), "dots.ocr": (12, 2, 128)}


def timed(fn, repeats: int = 20) -> float:
    """µs per call, replayed as a CUDA graph of ``repeats`` calls (as decoding runs it: no launch overhead)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(repeats):
            fn()
    graph.replay()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(5):
        graph.replay()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / (5 * repeats) * 1000


def case(model: str, heads: int, kv_heads: int, dim: int, rows: int) -> dict:
    """One shape: the kernel's error against the gathered arithmetic, and both paths' time per layer."""
    device = torch.device("cuda")
    lengths_host = [int(x) for x in torch.randint(1, 6000, (rows,))]
    lengths_host[0] = 5999 if rows > 1 else 3000
    width = pa.blocks_for(6144)
    pool_blocks = rows * width + 1
    keys = torch.randn(pool_blocks, kv_heads, pa.BLOCK, dim, device=device, dtype=torch.bfloat16)
    values = torch.randn_like(keys)
    q = torch.randn(rows, heads, dim, device=device, dtype=torch.bfloat16)
    table = (torch.randperm(pool_blocks - 1, device=device)[: rows * width] + 1).view(rows, width).int()
    lengths = torch.tensor(lengths_host, device=device, dtype=torch.int32)
    window_blocks = pa.blocks_for(max(lengths_host))
    want = pa.attend_gathered(q.float(), keys.float(), values.float(), table, lengths, window_blocks, 0.0884)
    got = pa.attend(q, keys, values, table, lengths, window_blocks, 0.0884).float()
    # the contiguous path: every row's cache as long as the longest page, masked
    window = window_blocks * pa.BLOCK
    contiguous_k = torch.randn(rows, kv_heads, window, dim, device=device, dtype=torch.bfloat16)
    contiguous_v = torch.randn_like(contiguous_k)
    mask = torch.zeros(rows, 1, 1, window, device=device, dtype=torch.bfloat16)

    def contiguous() -> torch.Tensor:
        scores = torch.matmul(q.view(rows, kv_heads, heads // kv_heads, dim), contiguous_k.transpose(-1, -2))
        probs = torch.softmax(scores.float() * 0.0884 + mask.float(), dim=-1).to(scores.dtype)
        return torch.matmul(probs, contiguous_v)

    row = {
        "model": model,
        "rows": rows,
        "tokens": sum(lengths_host),
        "longest": max(lengths_host),
        "max_abs_error": round((got - want).abs().max().item(), 5),
        "paged_us": round(timed(lambda: pa.attend(q, keys, values, table, lengths, window_blocks, 0.0884)), 1),
        "contiguous_us": round(timed(contiguous), 1),
    }
    row["paged_GBs"] = round(row["tokens"] * kv_heads * dim * 2 * 2 / row["paged_us"] / 1e3, 1)
    return row


def main() -> int:
    torch.manual_seed(0)
    report = {"device": torch.cuda.get_device_name(0), "rows": []}
    worst = 0.0
    for model, (heads, kv_heads, dim) in SHAPES.items():
        for rows in (1, 4, 16, 32):
            row = case(model, heads, kv_heads, dim, rows)
            worst = max(worst, row["max_abs_error"])
            report["rows"].append(row)
            print(row, flush=True)
    report["worst_error"] = worst
    report["kernels"] = "triton" if pa.kernels_available(torch.device("cuda")) else "gathered"
    out = os.environ.get("OUT")
    if out:
        Path(out, "paged_attention.json").write_text(json.dumps(report, indent=2))
    ok = worst < 2e-2 and report["kernels"] == "triton"
    print("paged attention:", "OK" if ok else "FAILED", f"(worst error {worst:.4f}, {report['kernels']})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
