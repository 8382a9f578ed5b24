"""The real engines on a GPU, the way the studio runs them: full-size random Qwen3-VL-2B and
dots.ocr checkpoints saved with ``save_pretrained``, loaded through ``get_engine`` (model
manager, runtime profile, warm-up, fast decoding), pages of different sizes batched, the
first page streamed. Checks what a user would notice: every page comes back, batched pages
read like pages alone, streaming ends on the final text, and what each step cost.

    cd benchmarks && PYTHONPATH=.. python gpu_smoke.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]


def save_qwen(folder: Path) -> Path:
    from bench_qwen3_vl import build

    model, processor = build(False, "cuda")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    del model
    return folder


def save_dots(folder: Path) -> Path:
    from transformers import GenerationConfig, Qwen2VLImageProcessor

    from ocr_studio.models.dots_ocr import DotsOCRConfig, DotsOCRForCausalLM
    from ocr_studio.models.dots_ocr.processing import END_OF_TEXT, IMAGE_PAD
    from tests.tiny_dots import tiny_tokenizer

    tokenizer = tiny_tokenizer()  # dots' special tokens; the published vocabulary size covers their ids
    config = DotsOCRConfig(
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_PAD),
        eos_token_id=[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(END_OF_TEXT)],
        pad_token_id=tokenizer.convert_tokens_to_ids(END_OF_TEXT),
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = DotsOCRForCausalLM(config).to(torch.bfloat16).eval()
    model.generation_config = GenerationConfig(eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    Qwen2VLImageProcessor(patch_size=14, merge_size=2, temporal_patch_size=1).save_pretrained(folder)
    del model
    return folder


def pages():
    from PIL import Image, ImageDraw

    from ocr_studio.documents import Page

    made = []
    for number, (width, height) in enumerate(((1700, 2200), (1400, 1000), (900, 1300)), start=1):
        image = Image.new("RGB", (width, height), "white")
        draw = ImageDraw.Draw(image)
        for y in range(60, height - 60, 40):
            draw.text((60, y), f"Page {number}: the quick brown fox jumps over the lazy dog {y}", fill="black")
        made.append(Page.from_image(image, number=number, dpi=200))
    return made


def run(name: str, settings) -> None:
    from ocr_studio.engines import RecognizeRequest, Task, get_engine

    engine = get_engine(name, settings)
    print(f"\n== {engine.info().label}: {engine.info().reason}")
    statuses: list[str] = []
    streamed: list[str] = []
    started = time.perf_counter()
    first = engine.recognize(
        pages()[:1], RecognizeRequest(Task.TEXT, on_text=streamed.append, on_status=statuses.append)
    )
    print(f"first page incl. load + warm-up: {time.perf_counter() - started:.1f} s; status: {statuses}")
    print(f"  streamed {len(streamed)} updates, last == final text: {streamed[-1] == first[0].raw_text}")
    alone = []
    for page in pages():
        started = time.perf_counter()
        alone += engine.recognize([page], RecognizeRequest(Task.TEXT))
        print(f"  page {page.number} alone: {time.perf_counter() - started:.2f} s, {len(alone[-1].raw_text)} chars")
    print(f"  batch size chosen for this GPU: {engine.batch_size(Task.TEXT)}")
    started = time.perf_counter()
    together = engine.recognize(pages(), RecognizeRequest(Task.TEXT))
    print(f"  3 pages batched: {time.perf_counter() - started:.2f} s")
    for a, b in zip(alone, together, strict=True):
        same = a.raw_text == b.raw_text
        prefix = next(
            (i for i, (x, y) in enumerate(zip(a.raw_text, b.raw_text, strict=False)) if x != y), len(a.raw_text)
        )
        print(f"  page {a.page_number}: batched == alone: {same} (common prefix {prefix} chars), warnings {b.warnings}")
    # continuous batching, as jobs run it: six pages stream through the slots, back in page order
    six = pages() + [page.__class__.from_image(page.image, number=page.number + 3, dpi=200) for page in pages()]
    streamed.clear()
    started = time.perf_counter()
    flowing = list(engine.recognize_stream(iter(six), RecognizeRequest(Task.TEXT, on_text=streamed.append)))
    seconds = time.perf_counter() - started
    print(
        f"  continuous, {engine.pages_in_flight(Task.TEXT)} slots: 6 pages in {seconds:.2f} s, order "
        f"{[r.page_number for r in flowing]}, streamed {len(streamed)} updates"
    )
    for a, b in zip(alone + alone, flowing, strict=True):
        prefix = next(
            (i for i, (x, y) in enumerate(zip(a.raw_text, b.raw_text, strict=False)) if x != y), len(a.raw_text)
        )
        print(f"  page {b.page_number}: continuous == alone: {a.raw_text == b.raw_text} (common prefix {prefix})")
    layout = engine.recognize(pages()[:1], RecognizeRequest(engine.info().default_task))[0]
    print(f"  {engine.info().default_task.value}: {len(layout.blocks)} blocks, truncated={layout.truncated}")


def main() -> None:
    from ocr_studio import doctor
    from ocr_studio.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="smoke-"))
    started = time.perf_counter()
    qwen, dots = save_qwen(work / "qwen"), save_dots(work / "dots")
    torch.cuda.empty_cache()
    print(f"checkpoints saved in {time.perf_counter() - started:.0f} s")
    settings = Settings(workspace=work / "ws", qwen_model=str(qwen), dots_model=str(dots), max_new_tokens=96)
    for label, value in doctor.doctor_report(settings):
        print(f"{label:<22} {value}")
    for name in ("qwen3-vl", "dots-ocr"):
        run(name, settings)
    print(f"\npeak VRAM {torch.cuda.max_memory_allocated() / 1e9:.1f} GB")


if __name__ == "__main__":
    main()
