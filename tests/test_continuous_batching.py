"""Continuous batching on tiny random models (CPU, fp32): with fewer slots than pages, a slot takes
the next page as soon as its page stops, and every page must come out token for token as it
reads alone (``FastGenerator.generate`` on that page), for Qwen3-VL (M-RoPE) and dots.ocr."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from ocr_studio.models.generation import (  # noqa: E402
    FastGenerator,
    GenerationConfig,
    PageRequest,
    SlotsOutOfMemory,
)
from ocr_studio.models.generation.paged_runner import PagedRunner  # noqa: E402

PROMPT = "Read all the text in the image."


def _images(count: int):
    from PIL import Image, ImageDraw

    sizes = [(200, 150), (96, 300), (320, 96), (128, 128), (256, 64), (64, 256), (180, 180)]
    images = []
    for index in range(count):
        image = Image.new("RGB", sizes[index % len(sizes)], (250 - 20 * index, 255, 240))
        ImageDraw.Draw(image).text((5, 5), f"Invoice {index}", fill="black")
        images.append(image)
    return images


def _qwen_inputs(processor, image):
    from ocr_studio.engines.qwen3_vl import build_inputs

    return build_inputs(processor, [image], PROMPT, 256 * 256)


def _config(eos: int, pad: int, max_new_tokens: int = 40, **kwargs) -> GenerationConfig:
    return GenerationConfig(
        max_new_tokens=max_new_tokens, eos_token_ids=(eos,), pad_token_id=pad, check_every=4, **kwargs
    )


def _alone(generator: FastGenerator, inputs, config: GenerationConfig, budget: int):
    from dataclasses import replace

    result = generator.generate(inputs, replace(config, max_new_tokens=budget))
    return result.tokens[0], result.stop_reasons[0]


@pytest.mark.parametrize(
    ("window", "overlap"),
    [(8, False), (1024, False), (8, True)],
    ids=["attention window grows", "whole cache", "one prefill at a time beside decoding"],
)
def test_pages_of_mixed_lengths_read_as_alone_while_slots_refill(qwen_loaded, window, overlap, monkeypatch):

    monkeypatch.setattr(PagedRunner, "WINDOW_BUCKET", window)
    model, processor = qwen_loaded
    tokenizer = processor.tokenizer
    eos, pad = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.pad_token_id
    config = _config(eos, pad, repetition=None)
    images = _images(7)
    budgets = [3, 50, 9, 1, 22, 14, 30]  # pages stop at different steps, so slots refill mid-run
    requests = [PageRequest(i, _qwen_inputs(processor, im), budgets[i]) for i, im in enumerate(images)]
    generator = FastGenerator(model, path="eager", fuse=True, cache_bucket=16)  # later pages outgrow the first's
    generator.overlap_prefill = overlap
    assert generator.stream_unsupported() == ""
    made = []
    real_state = generator._slot_state
    generator._slot_state = lambda *args: made.append(args) or real_state(*args)

    taken: list[int] = []

    def lazily():
        for request in requests:
            taken.append(request.key)
            yield request

    order, got = [], {}
    for page in generator.stream(lazily(), config, slots=3):
        order.append(page.key)
        got[page.key] = page
        assert len(taken) <= len(order) + 3  # pages are taken only when a slot is free
    assert sorted(order) == list(range(7))
    assert order != sorted(order)  # short pages finished before long ones that started earlier
    assert len(made) == 1  # a longer page widened the block table; nothing waited for a new cache

    reference = FastGenerator(model, path="eager")
    for index, image in enumerate(images):
        tokens, reason = _alone(reference, _qwen_inputs(processor, image), config, budgets[index])
        assert got[index].tokens == tokens, f"page {index}"
        assert got[index].stop_reason == reason
        assert len(tokens) == budgets[index]


@pytest.fixture
def rows_stepped(monkeypatch) -> list[int]:
    """The rows each continuous-batching step covers, in order (a spy on the step)."""

    rows: list[int] = []
    real = PagedRunner._step_body

    def spy(self):
        rows.append(self.rows_in_step)
        return real(self)

    monkeypatch.setattr(PagedRunner, "_step_body", spy)
    return rows


def _read_together(generator, processor, images, budgets, config, slots):
    requests = [PageRequest(i, _qwen_inputs(processor, im), budgets[i]) for i, im in enumerate(images)]
    return {page.key: page for page in generator.stream(requests, config, slots=slots)}


def test_memory_follows_the_tokens_pages_hold_not_their_budgets(qwen_loaded):
    """The paged cache: in the memory two slots' contiguous caches would take (each at the page's
    prompt + budget, rounded as the cache is), pages that answer briefly read three at a time."""
    model, processor = qwen_loaded
    tokenizer = processor.tokenizer
    config = _config(tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.pad_token_id, repetition=None)
    images = _images(7)
    budgets = [3, 5, 9, 1, 6, 4, 8]
    generator = FastGenerator(model, path="eager", fuse=True)
    prompt = max(_qwen_inputs(processor, im)["input_ids"].shape[1] for im in images)
    contiguous_slot = -(-(prompt + config.max_new_tokens + config.check_every) // 256) * 256
    generator.pool_tokens = 2 * contiguous_slot
    got = _read_together(generator, processor, images, budgets, config, slots=4)
    assert generator.stream_report["most_in_flight"] >= 3
    assert generator.stream_report["put_back"] == 0
    assert generator._slots.pool.spare_blocks() == generator._slots.pool.pool_blocks  # every block came back
    reference = FastGenerator(model, path="eager")
    for index, image in enumerate(images):
        assert got[index].tokens == _alone(reference, _qwen_inputs(processor, image), config, budgets[index])[0]


def test_a_full_cache_puts_the_youngest_page_back_and_every_page_still_reads_as_alone(qwen_loaded):
    """Long answers outgrow the pool: the page admitted last gives its blocks back and is read again
    from the start later; nothing is lost, nothing is cut, and every page reads as it does alone."""
    model, processor = qwen_loaded
    tokenizer = processor.tokenizer
    config = _config(-1, tokenizer.pad_token_id, max_new_tokens=120, repetition=None)
    images = _images(5)
    budgets = [120, 100, 9, 110, 14]
    generator = FastGenerator(model, path="eager", fuse=True)
    generator.pool_tokens = 5 * 64  # two prompts fit, not two long answers
    streamed: dict[int, list[int]] = {}
    requests = [PageRequest(i, _qwen_inputs(processor, im), budgets[i]) for i, im in enumerate(images)]
    got = {
        page.key: page
        for page in generator.stream(
            requests, config, slots=3, on_tokens=lambda key, tokens: streamed.__setitem__(key, list(tokens))
        )
    }
    assert generator.stream_report["put_back"] >= 1
    assert sorted(got) == [0, 1, 2, 3, 4]
    assert generator._slots.pool.spare_blocks() == generator._slots.pool.pool_blocks
    reference = FastGenerator(model, path="eager")
    for index, image in enumerate(images):
        tokens, reason = _alone(reference, _qwen_inputs(processor, image), config, budgets[index])
        assert (got[index].tokens, got[index].stop_reason) == (tokens, reason), f"page {index}"
        assert len(tokens) == budgets[index]
        assert streamed[index] == tokens  # a page read again streams to its end


def test_a_page_longer_than_the_whole_cache_is_out_of_memory_not_a_hang(qwen_loaded):
    model, processor = qwen_loaded
    tokenizer = processor.tokenizer
    config = _config(-1, tokenizer.pad_token_id, max_new_tokens=200, repetition=None)
    generator = FastGenerator(model, path="eager", fuse=True)
    generator.pool_tokens = 2 * 64
    requests = [PageRequest(i, _qwen_inputs(processor, im), 200) for i, im in enumerate(_images(2))]
    with pytest.raises(SlotsOutOfMemory) as caught:
        list(generator.stream(requests, config, slots=2))
    assert caught.value.keys[0] == 0  # the engine reads the pages named here again alone (lower resolution...)


def test_a_gpu_the_kernels_fail_on_gets_the_gathered_attention_not_an_error(monkeypatch, caplog):
    """The kernels are tried once per device before any graph is captured: where they fail to compile
    (a laptop GPU's shared memory) or give a wrong answer, attention gathers K/V instead."""
    from ocr_studio.models import paged_attention as pa

    device = torch.device("cpu")

    def check(attend, write) -> bool:
        pa._kernels_work.cache_clear()
        monkeypatch.setattr(pa, "_attend_triton", attend)
        monkeypatch.setattr(pa, "_write_triton", write)
        try:
            return pa._kernels_work(device)
        finally:
            pa._kernels_work.cache_clear()

    def refused(*args):
        raise RuntimeError("out of resources: shared memory, required: 135168, hardware limit: 101376")

    def indexed(keys, values, k, v, block, offset):
        keys[block, :, offset], values[block, :, offset] = k[:, :, 0], v[:, :, 0]

    def gathered(*args):
        return pa.attend_gathered(*args)

    def wrong(*args):
        return pa.attend_gathered(*args) + 1

    with caplog.at_level("WARNING"):
        assert check(refused, indexed) is False
    assert "shared memory" in caplog.text and "gathers K/V instead" in caplog.text
    assert check(gathered, refused) is False
    assert check(wrong, indexed) is False
    assert check(gathered, indexed) is True


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_the_gpu_attention_kernel_equals_the_gathered_attention(dtype):
    """The Triton kernels (run by Triton's interpreter on the CPU) against the gathered arithmetic:
    ragged page lengths (1 token, a block's edge, mid-block), GQA groups of 2 (Qwen3-VL) and 6
    (dots.ocr), blocks scattered through the pool, the work split several ways; and the cache write."""
    pytest.importorskip("triton")
    import subprocess
    import sys

    script = f"""
import torch
from ocr_studio.models import paged_attention as pa
pa._multiprocessors = lambda device: 64
torch.manual_seed(0)
dtype = torch.{dtype}
for heads, kv_heads in ((16, 8), (12, 2)):
    rows, window_blocks = 4, 9
    keys = torch.randn(48, kv_heads, pa.BLOCK, 128, dtype=dtype)
    values = torch.randn_like(keys)
    q = torch.randn(rows, heads, 128, dtype=dtype)
    lengths = torch.tensor([1, pa.BLOCK, 3 * pa.BLOCK + 17, window_blocks * pa.BLOCK], dtype=torch.int32)
    table = torch.zeros(rows, 12, dtype=torch.int32)
    table[:, :window_blocks] = (torch.randperm(47)[: rows * window_blocks] + 1).view(rows, window_blocks).int()
    splits, _ = pa.splits_for(rows, kv_heads, window_blocks, 64)
    assert splits > 1, splits
    want = pa.attend_gathered(q.float(), keys.float(), values.float(), table, lengths, window_blocks, 0.09)
    got = pa._attend_triton(q, keys, values, table, lengths, window_blocks, 0.09).float()
    error = (got - want).abs().max().item()
    assert error < (1e-5 if dtype == torch.float32 else 2e-3), (heads, error)
    # the cache write: each row's new key/value into its own block and position, nothing else touched
    k, v = torch.randn(rows, kv_heads, 1, 128, dtype=dtype), torch.randn(rows, kv_heads, 1, 128, dtype=dtype)
    block, offset = torch.tensor([5, 9, 0, 47]), torch.tensor([0, 63, 17, 2])
    want_k, want_v = keys.clone(), values.clone()
    want_k[block, :, offset], want_v[block, :, offset] = k[:, :, 0], v[:, :, 0]
    pa._write_triton(keys, values, k, v, block, offset)
    assert torch.equal(keys, want_k) and torch.equal(values, want_v)
print("ok")
"""
    env = {**__import__("os").environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_warming_up_runs_continuous_batching_on_several_rows_and_keeps_no_cache(qwen_loaded, rows_stepped):
    """At model load the continuous path runs two pages at once (its kernels compile for one row and
    for several then, not in the user's first job), and the cache it made is given back."""
    model, processor = qwen_loaded
    tokenizer = processor.tokenizer
    config = _config(tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.pad_token_id, repetition=None)
    generator = FastGenerator(model, path="eager", fuse=True)
    generator.warm_up_stream(_qwen_inputs(processor, _images(1)[0]), config)
    assert 2 in rows_stepped
    assert generator._slots is None


def test_a_page_stops_at_its_eos_and_its_slot_goes_on_with_the_next(qwen_loaded):
    """The EOS is a token the model really produces partway into one page, so that page stops
    early by EOS while the others run on; all pages still equal their reading alone."""
    model, processor = qwen_loaded
    pad = processor.tokenizer.pad_token_id
    images = _images(5)
    reference = FastGenerator(model, path="eager")
    free_run = _config(-1, pad, max_new_tokens=30, repetition=None)
    first_page, _ = _alone(reference, _qwen_inputs(processor, images[0]), free_run, 30)
    eos = first_page[6]
    config = _config(eos, pad, max_new_tokens=30, repetition=None)
    requests = [PageRequest(i, _qwen_inputs(processor, im)) for i, im in enumerate(images)]
    streamed: dict[int, list[list[int]]] = {}
    got = {
        page.key: page
        for page in FastGenerator(model, path="eager", fuse=True).stream(
            requests, config, slots=2, on_tokens=lambda key, tokens: streamed.setdefault(key, []).append(list(tokens))
        )
    }
    assert got[0].stop_reason == "eos" and len(got[0].tokens) <= 6
    for index, image in enumerate(images):
        tokens, reason = _alone(reference, _qwen_inputs(processor, image), config, 30)
        assert (got[index].tokens, got[index].stop_reason) == (tokens, reason)
        assert streamed[index][-1] == tokens  # the stream ends on what is kept
        assert all(a == b[: len(a)] for a, b in zip(streamed[index], streamed[index][1:], strict=False))


def test_dots_ocr_pages_read_as_alone_under_refills(tmp_path):
    from PIL import Image

    from ocr_studio.models.dots_ocr import DotsOCRForCausalLM, DotsOCRProcessor
    from tests.tiny_dots import build_tiny_dots_ocr

    folder = build_tiny_dots_ocr(tmp_path / "dots")
    processor = DotsOCRProcessor.from_pretrained(folder)
    model = DotsOCRForCausalLM.from_pretrained(folder).eval()
    images = [Image.new("RGB", size, "white") for size in ((112, 84), (84, 168), (140, 56), (56, 56))]
    budgets = [12, 3, 19, 7]
    inputs = [dict(processor([image], ["Read the page."])) for image in images]
    config = _config(processor.eos_token_ids[0], processor.pad_token_id, repetition=None)
    got = {
        page.key: page
        for page in FastGenerator(model, path="eager", fuse=True).stream(
            [PageRequest(i, x, budgets[i]) for i, x in enumerate(inputs)], config, slots=2
        )
    }
    reference = FastGenerator(model, path="eager")
    for index, page_inputs in enumerate(inputs):
        assert (got[index].tokens, got[index].stop_reason) == _alone(reference, page_inputs, config, budgets[index])


def test_a_looping_page_is_cut_and_read_again_as_it_would_be_alone(tmp_path):
    """The repetition guard and the loop retry act per page as in ``generate``: a looping page is
    cut where its loop began, read again with the penalty, and the further reading is kept."""
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from ocr_studio.engines.qwen3_vl import build_inputs
    from ocr_studio.models.repetition import LOOP_RETRY
    from tests.tiny_loops import build_looping_qwen3_vl

    folder, chain = build_looping_qwen3_vl(tmp_path / "loop")
    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder).eval()
    tokenizer = processor.tokenizer
    config = _config(tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.pad_token_id, 400, loop_retry=LOOP_RETRY)
    images = [Image.new("RGB", (200, 150), "white"), Image.new("RGB", (96, 300), "white")]
    budgets = [400, 2]  # the short page ends and its slot frees while the first one loops
    inputs = [build_inputs(processor, [image], PROMPT, 256 * 256) for image in images]
    got = {
        page.key: page
        for page in FastGenerator(model, path="eager", fuse=True).stream(
            [PageRequest(i, x, budgets[i]) for i, x in enumerate(inputs)], config, slots=2
        )
    }
    alone = FastGenerator(model, path="eager").generate(inputs[0], config)
    assert got[0].tokens == alone.tokens[0] == chain  # past the loop: the whole chain to its end
    assert got[0].loop_retry == alone.loop_retries[0] == "recovered"
    assert got[1].stop_reason == "max_tokens" and len(got[1].tokens) == 2


def test_out_of_memory_names_the_pages_in_flight(qwen_loaded, monkeypatch):
    model, processor = qwen_loaded
    tokenizer = processor.tokenizer
    config = _config(tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.pad_token_id, repetition=None)
    images = _images(4)
    requests = [PageRequest(i, _qwen_inputs(processor, im), 8) for i, im in enumerate(images)]

    calls = {"n": 0}
    original = PagedRunner.prefill

    def prefill(self, slot, inputs, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise torch.OutOfMemoryError("CUDA out of memory (test)")
        return original(self, slot, inputs, **kwargs)

    monkeypatch.setattr(PagedRunner, "prefill", prefill)
    seen = []
    with pytest.raises(SlotsOutOfMemory) as caught:
        for page in FastGenerator(model, path="eager", fuse=True).stream(requests, config, slots=2):
            seen.append(page.key)
    assert sorted(seen + caught.value.keys) == [0, 1, 2]  # nothing lost: done, or named as in flight
    assert 2 in caught.value.keys


# -- the engines: pages stream through the slots, results come back in page order --------------------


def _dots_pages():
    from PIL import Image, ImageDraw

    from ocr_studio.documents import Page

    pages = []
    for number, size in enumerate(((400, 520), (600, 300), (300, 300), (500, 400), (350, 600)), start=1):
        image = Image.new("RGB", size, "white")
        ImageDraw.Draw(image).text((20, 20), f"Section {number}", fill="black")
        pages.append(Page.from_image(image, number=number))
    return pages


@pytest.fixture(scope="module")
def tiny_dots(tmp_path_factory):
    from tests.tiny_dots import build_tiny_dots_ocr

    return build_tiny_dots_ocr(tmp_path_factory.mktemp("tiny-dots-cb"))


def _engine(name: str, folder, **overrides):
    from ocr_studio.engines import get_engine
    from ocr_studio.settings import Settings

    model = {"dots-ocr": "dots_model", "qwen3-vl": "qwen_model"}[name]
    values = {model: str(folder), "max_new_tokens": 24, "device": "cpu", "max_pixels": 256 * 256, **overrides}
    return get_engine(name, Settings(**values))


@pytest.mark.parametrize("name", ["dots-ocr", "qwen3-vl"])
def test_an_engine_streams_pages_through_slots_in_page_order_as_read_alone(name, tiny_dots, tiny_qwen3_vl):
    from ocr_studio.engines import RecognizeRequest, Task

    folder = {"dots-ocr": tiny_dots, "qwen3-vl": tiny_qwen3_vl}[name]
    pages = _dots_pages()
    task = Task.LAYOUT_TEXT if name == "dots-ocr" else Task.TEXT
    engine = _engine(name, folder, batch_size=2)
    assert engine.pages_in_flight(task) == 2
    streamed: list[str] = []
    calls = {"stream": 0}
    generator = engine._load().generator
    real_stream = generator.stream

    def counting(*args, **kwargs):
        calls["stream"] += 1
        return real_stream(*args, **kwargs)

    generator.stream = counting
    try:
        together = list(engine.recognize_stream(iter(pages), RecognizeRequest(task, on_text=streamed.append)))
    finally:
        del generator.stream
    assert calls["stream"] == 1  # the continuous path, not batches
    alone = _engine(name, folder, batch_size=1)
    assert [r.page_number for r in together] == [1, 2, 3, 4, 5]
    for result, page in zip(together, pages, strict=True):
        [single] = alone.recognize([page], RecognizeRequest(task))
        assert result.raw_text == single.raw_text
        assert [b.text for b in result.blocks] == [b.text for b in single.blocks]
    assert together[0].raw_text in streamed  # the first page streamed as it was read, ending on what is kept


def test_out_of_memory_with_pages_in_flight_reads_them_again_alone_and_goes_on(tiny_dots, monkeypatch):
    from ocr_studio.engines import RecognizeRequest, Task

    pages = _dots_pages()
    engine = _engine("dots-ocr", tiny_dots, batch_size=4)
    real = PagedRunner.prefill
    calls = {"n": 0}

    def prefill(self, slot, inputs, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # the third page's prefill: two pages are in flight
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, slot, inputs, **kwargs)

    monkeypatch.setattr(PagedRunner, "prefill", prefill)
    results = list(engine.recognize_stream(iter(pages), RecognizeRequest(Task.LAYOUT_TEXT)))
    assert [r.page_number for r in results] == [1, 2, 3, 4, 5]  # nothing lost, in order
    redone = [r.page_number for r in results if any("read again on its own" in w for w in r.warnings)]
    assert redone == [1, 2, 3]
    alone = _engine("dots-ocr", tiny_dots, batch_size=1)
    for result, page in zip(results, pages, strict=True):
        [single] = alone.recognize([page], RecognizeRequest(Task.LAYOUT_TEXT))
        assert result.raw_text == single.raw_text


def test_a_page_the_model_cannot_take_keeps_its_place_in_the_stream(tiny_dots):
    from PIL import Image

    from ocr_studio.documents import Page
    from ocr_studio.engines import RecognizeRequest, Task

    pages = _dots_pages()[:3]
    sliver = Page.from_image(Image.new("RGB", (6000, 20), "white"), number=9)
    engine = _engine("dots-ocr", tiny_dots, batch_size=2)
    results = list(engine.recognize_stream(iter([pages[0], sliver, *pages[1:]]), RecognizeRequest(Task.LAYOUT_TEXT)))
    assert [r.page_number for r in results] == [1, 9, 2, 3]
    assert results[1].blocks == [] and "cannot read this page" in results[1].warnings[0]


def test_the_vram_plan_fits_a_laptop_card_and_respects_a_cap():
    from ocr_studio.engines import get_engine
    from ocr_studio.models.slot_plan import GIB, plan_slots
    from ocr_studio.settings import Settings

    dots = get_engine("dots-ocr", Settings())
    on_laptop = dots.slot_plan(total_bytes=16 * GIB)
    assert on_laptop.slots >= 4  # several pages in flight on a 16 GB card at dots.ocr's 16k-token budget
    used = on_laptop.weight_bytes + on_laptop.slots * on_laptop.slot_bytes + on_laptop.prefill_bytes
    assert used <= 16 * GIB
    assert dots.slot_plan(total_bytes=8 * GIB).slots == 1 and not dots.slot_plan(total_bytes=8 * GIB).fits
    # the cache is paged: a page counts at its prompt and a typical answer, not at its whole budget
    typical = get_engine("dots-ocr", Settings(max_new_tokens=1024)).slot_plan(total_bytes=14 * GIB)
    assert typical.slots == dots.slot_plan(total_bytes=14 * GIB).slots
    short = get_engine("dots-ocr", Settings(max_new_tokens=128)).slot_plan(total_bytes=14 * GIB)
    assert short.slots > typical.slots  # answers shorter than typical leave room for more pages
    assert plan_slots(10 * GIB, weight_bytes=0, slot_bytes=GIB, prefill_bytes=0, most=4).slots == 4


def test_a_failing_continuous_step_reads_the_rest_one_by_one_and_says_why(qwen_loaded, monkeypatch):
    from ocr_studio import i18n

    model, processor = qwen_loaded
    tokenizer = processor.tokenizer
    config = _config(tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.pad_token_id, repetition=None)
    images = _images(3)
    requests = [PageRequest(i, _qwen_inputs(processor, im), 6 + 5 * i) for i, im in enumerate(images)]

    def broken(self, index, reach, rows):
        raise RuntimeError("graph capture refused")

    monkeypatch.setattr(PagedRunner, "step", broken)
    generator = FastGenerator(model, path="eager", fuse=True)
    got = {page.key: page for page in generator.stream(requests, config, slots=2)}
    assert sorted(got) == [0, 1, 2]  # nothing lost
    reference = FastGenerator(model, path="eager")
    for index, image in enumerate(images):
        assert got[index].tokens == _alone(reference, _qwen_inputs(processor, image), config, 6 + 5 * index)[0]
        [warning] = [w for w in got[index].warnings if "Continuous batching failed" in w]
        assert "graph capture refused" in warning
        assert "страницы читаются по одной" in i18n.render(warning, "ru")
    assert generator.stream_unsupported()  # later jobs go one by one at once, without failing again


def test_doctor_and_the_sidebar_say_how_many_pages_each_model_reads_at_once(monkeypatch):
    """On a 16 GB RTX 5070 Ti laptop card: the VRAM plan's figure per model, in English and Russian."""
    from ocr_studio import doctor, hardware, i18n
    from ocr_studio.engines import local_models
    from ocr_studio.runtime.capacity import pages_in_flight
    from ocr_studio.settings import Settings

    laptop = hardware.GpuInfo(True, "NVIDIA GeForce RTX 5070 Ti Laptop GPU", (12, 0), 16 * 1024**3, triton=True)
    monkeypatch.setattr(hardware, "probe", lambda: laptop)
    monkeypatch.setattr(hardware, "_nvml", lambda: None)
    lines = [str(line) for line in pages_in_flight(Settings(), laptop.total_memory_bytes, local_models(Settings()))]
    dots_line = next(line for line in lines if line.startswith("dots.ocr: "))
    assert dots_line.endswith("pages in flight on this card") and int(dots_line.split()[1]) >= 4
    rows = doctor.doctor_report(Settings())
    assert ("Pages in flight", dots_line) in rows
    with i18n.use_language("ru"):
        russian = dict(doctor.doctor_report(Settings()))
    assert "одновременно на этой видеокарте" in russian["Страниц одновременно"]
    fixed_settings = Settings(batch_size=3)
    fixed = [
        str(line) for line in pages_in_flight(fixed_settings, laptop.total_memory_bytes, local_models(fixed_settings))
    ]
    assert fixed[0] == "dots.ocr: 3 pages in flight (the batch_size setting)"

    from ocr_studio.ui.app import Studio

    panel = Studio(Settings()).gpu_markdown()
    assert dots_line in panel


def test_an_engine_error_preparing_a_page_is_not_taken_for_a_batching_failure(tiny_dots, monkeypatch):
    from ocr_studio.engines import EngineError, RecognizeRequest, Task

    engine = _engine("dots-ocr", tiny_dots, batch_size=2)
    real = type(engine)._page_inputs

    def refuse_the_third(self, loaded, page, request, max_pixels):
        if page.number == 3:
            raise EngineError("this page's prompt cannot be made")
        return real(self, loaded, page, request, max_pixels)

    monkeypatch.setattr(type(engine), "_page_inputs", refuse_the_third)
    with pytest.raises(EngineError, match="prompt cannot be made"):
        list(engine.recognize_stream(iter(_dots_pages()), RecognizeRequest(Task.LAYOUT_TEXT)))
    assert not engine._load().generator.stream_unsupported()  # continuous batching stays on


def test_a_step_covers_only_the_rows_in_use(qwen_loaded, rows_stepped):
    """A lone page (a one-page job, the tail of a long one) decodes as a batch of one, not as all slots."""
    seen = rows_stepped
    model, processor = qwen_loaded
    tokenizer = processor.tokenizer
    config = _config(tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.pad_token_id, repetition=None)
    images = _images(3)
    pages = [PageRequest(0, _qwen_inputs(processor, images[0]), 20)]
    list(FastGenerator(model, path="eager", fuse=True).stream(pages, config, slots=8))
    assert set(seen) == {1}
    seen.clear()
    pages = [PageRequest(i, _qwen_inputs(processor, im), (30, 5, 9)[i]) for i, im in enumerate(images)]
    list(FastGenerator(model, path="eager", fuse=True).stream(pages, config, slots=8))
    assert seen[0] == 4 and seen[-1] == 1  # three pages: rows 0-2 (a bucket of 4); at the end only row 0 runs
