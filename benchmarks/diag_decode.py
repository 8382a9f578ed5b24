"""Which decode path is right at batch > 1 on a GPU? Each variant in its own process (a device
assert poisons the CUDA context), fp32 so that random weights give stable argmaxes, compared
token for token with plain ``model.generate`` on the same inputs.

    cd benchmarks && PYTHONPATH=.. python diag_decode.py            # all variants
"""

from __future__ import annotations

import os
import subprocess
import sys

import torch

VARIANTS = {
    "own-eager": dict(path="eager", fuse=False),
    "own-graphs": dict(path="graphs", fuse=False),
    "fused-eager-plain": dict(path="eager", fuse=True, triton=False),
    "fused-eager-triton": dict(path="eager", fuse=True, triton=True),
    "fused-graphs-triton": dict(path="graphs", fuse=True, triton=True),
    "fused-graphs-plain": dict(path="graphs", fuse=True, triton=False),
}


def run(name: str, batch: int, new_tokens: int) -> None:
    from bench_qwen3_vl import build, page_inputs

    from ocr_studio.models import generation
    from ocr_studio.models.generation import FastGenerator, GenerationConfig

    spec = dict(VARIANTS[name])
    triton = spec.pop("triton", None)
    if triton is False:
        generation.decode_kernels().triton_available = lambda: (False, "switched off for the diagnosis")
    tiny = not torch.cuda.is_available()  # CPU: a dry run of the script on the tiny model
    model, processor = build(tiny, "cpu" if tiny else "cuda")
    model = model.float()
    inputs = page_inputs(processor, 640, 480, batch, 640 * 480)
    eos = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = GenerationConfig(
        max_new_tokens=new_tokens, eos_token_ids=(eos,), pad_token_id=151643, suppress_token_ids=(eos,), repetition=None
    )
    reference = FastGenerator(model, path="generate").generate(inputs, config).tokens
    generator = FastGenerator(model, **spec)
    first = generator.generate(inputs, config)
    second = generator.generate(inputs, config)
    for label, result in (("first call", first), ("second call", second)):
        same = [sum(a == b for a, b in zip(r, g, strict=False)) for r, g in zip(reference, result.tokens, strict=True)]
        print(
            f"{name} batch {batch} {label}: path={result.path} fused={result.fused} "
            f"equal per row {same} of {new_tokens}" + (f" warnings={result.warnings}" if result.warnings else "")
        )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        run(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for batch in (1, 2):
        for name in VARIANTS:
            if "graphs" in name and not torch.cuda.is_available():
                continue
            if batch == 1 and name not in ("own-graphs", "fused-graphs-triton"):
                continue
            command = [sys.executable, __file__, "--one", name, str(batch), "24"]
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
            lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
            keep = [line for line in lines if line.startswith(name) or "Error" in line or "Assertion" in line]
            print(f"--- {name} batch {batch} rc={done.returncode}")
            print("\n".join(keep[-8:] or lines[-8:]))


if __name__ == "__main__":
    main()
