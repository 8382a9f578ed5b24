"""The loop retry on a GPU, on the path users get there: CUDA graphs of the fused decode step.

1. Both engines, through ``get_engine`` with the GPU's runtime profile, on tiny checkpoints that
   loop (tests/tiny_loops.py): the first reading loops, the retry (its penalty inside the captured
   graph) reads past the loop to the end, and gives the tokens plain ``generate`` gives with the
   same penalty as a logits processor.
2. What the penalty costs per decode step on full-size random Qwen3-VL-2B (bf16), batch 1 and 8,
   256 forced tokens, the fused step replayed as a CUDA graph, with and without the penalty.

    cd benchmarks && PYTHONPATH=.. python loop_retry_gpu.py [--json OUT.json]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]


def engines_recover(work: Path) -> list[dict]:
    from PIL import Image

    from ocr_studio.documents import Page
    from ocr_studio.engines import RecognizeRequest, Task, get_engine
    from ocr_studio.models.generation import FastGenerator, GenerationConfig
    from ocr_studio.models.repetition import LOOP_RETRY
    from ocr_studio.settings import Settings
    from tests.tiny_loops import build_looping_dots_ocr, build_looping_qwen3_vl

    rows = []
    for name, key, build in (
        ("qwen3-vl", "qwen_model", build_looping_qwen3_vl),
        ("dots-ocr", "dots_model", build_looping_dots_ocr),
    ):
        folder, chain = build(work / name)
        settings = Settings(workspace=work / "ws", max_new_tokens=600, max_pixels=256 * 256, **{key: str(folder)})
        engine = get_engine(name, settings)
        page = Page.from_image(Image.new("RGB", (200, 150), "white"), number=1)
        started = time.perf_counter()
        [result] = engine.recognize([page], RecognizeRequest(Task.TEXT))
        seconds = time.perf_counter() - started
        loaded = engine._load()
        generator = loaded.generator
        state = generator._state
        tokenizer = loaded.processor.tokenizer
        # the same penalty on plain generate (a logits processor), from the same prompt
        if name == "qwen3-vl":
            from ocr_studio.engines.qwen3_vl import PROMPTS, build_inputs

            inputs = build_inputs(loaded.processor, [page.image], PROMPTS[Task.TEXT], 256 * 256)
        else:
            from ocr_studio.engines.dots_ocr import ResizeBounds

            bounds = ResizeBounds.of(loaded.processor)
            prepared = engine.prepare(page, RecognizeRequest(Task.TEXT), engine.max_pixels, bounds)
            inputs = dict(loaded.processor([prepared.image], [prepared.prompt]))
        config = GenerationConfig(
            max_new_tokens=600, eos_token_ids=loaded.eos_token_ids, pad_token_id=loaded.pad_token_id, penalty=LOOP_RETRY
        )
        in_graph = generator.generate(inputs, config)
        plain = FastGenerator(loaded.model, path="generate").generate(inputs, config)
        row = {
            "engine": name,
            "text": result.raw_text,
            "expected": tokenizer.decode(chain),
            "recovered": result.raw_text == tokenizer.decode(chain) and not result.truncated,
            "warnings": result.warnings,
            "path": generator.path,
            "fused": generator.fused,
            "graph_captured": state is not None and state.graph is not None,
            "penalty_in_graph": generator._state.penalty == LOOP_RETRY,
            "graph_equals_generate": in_graph.tokens == plain.tokens,
            "dtype": str(next(loaded.model.parameters()).dtype),
            "seconds": round(seconds, 2),
        }
        print(json.dumps(row))
        rows.append(row)
    return rows


def penalty_cost() -> list[dict]:
    from bench_qwen3_vl import build, page_inputs

    from ocr_studio.models.generation import FastGenerator, GenerationConfig
    from ocr_studio.models.repetition import LOOP_RETRY

    model, processor = build(False, "cuda")
    eos = 151645
    rows = []
    for batch in (1, 8):
        inputs = page_inputs(processor, 1700, 2200, batch, 1_000_000)
        for penalty in (None, LOOP_RETRY):
            generator = FastGenerator(model, path="graphs")
            config = GenerationConfig(
                max_new_tokens=256,
                eos_token_ids=(eos,),
                pad_token_id=151643,
                suppress_token_ids=(eos,),
                check_every=32,
                repetition=None,
                penalty=penalty,
            )
            generator.generate(inputs, config)  # capture
            runs = [generator.generate(inputs, config) for _ in range(3)]
            ms = min(r.decode_seconds / r.steps * 1000 for r in runs)
            row = {"batch": batch, "penalty": penalty is not None, "ms_per_step": round(ms, 3), "fused": runs[0].fused}
            print(json.dumps(row))
            rows.append(row)
            generator.release()
    return rows


def main() -> None:
    out = sys.argv[sys.argv.index("--json") + 1] if "--json" in sys.argv else None
    print(torch.cuda.get_device_name(), torch.__version__)
    import transformers

    print("transformers", transformers.__version__)
    work = Path(tempfile.mkdtemp(prefix="loop-retry-"))
    report = {"device": torch.cuda.get_device_name(), "engines": engines_recover(work), "cost": penalty_cost()}
    if out:
        Path(out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
