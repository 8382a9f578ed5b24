"""Fast greedy generation on a tiny random Qwen3-VL (CPU): the static-cache loop must give
exactly what plain ``model.generate`` gives, batched or not, and stop loops."""

from __future__ import annotations

import functools

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from ocr_studio.models.generation import FastGenerator, GenerationConfig, RepetitionGuard  # noqa: E402

PROMPT = "Read all the text in the image."


def _images():
    from PIL import Image, ImageDraw

    images = []
    for size, colour in (((200, 150), "white"), ((96, 300), "lightgray"), ((320, 96), "beige")):
        image = Image.new("RGB", size, colour)
        ImageDraw.Draw(image).text((5, 5), "Invoice 42", fill="black")
        images.append(image)
    return images


def _inputs(processor, images):
    from ocr_studio.engines.qwen3_vl import build_inputs

    return build_inputs(processor, images, PROMPT, 256 * 256)


def _config(processor, max_new_tokens=24, **kwargs):
    tokenizer = processor.tokenizer
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        eos_token_ids=(tokenizer.convert_tokens_to_ids("<|im_end|>"),),
        pad_token_id=tokenizer.pad_token_id,
        check_every=4,
        **kwargs,
    )


def test_batched_output_equals_one_page_at_a_time(qwen_loaded):
    model, processor = qwen_loaded
    images = _images()
    batch = _inputs(processor, images)
    assert batch["attention_mask"].sum(dim=1).unique().numel() > 1  # pages of different sizes: left padding
    generator = FastGenerator(model)
    together = generator.generate(batch, _config(processor))
    assert together.path == "eager"
    for row, image in enumerate(images):
        alone = generator.generate(_inputs(processor, [image]), _config(processor))
        assert alone.tokens[0] == together.tokens[row]
        assert alone.stop_reasons[0] == together.stop_reasons[row]


def test_fast_path_agrees_with_plain_generate(qwen_loaded):
    model, processor = qwen_loaded
    batch = _inputs(processor, _images())
    config = _config(processor, max_new_tokens=32)
    fast = FastGenerator(model, path="eager").generate(batch, config)
    plain = FastGenerator(model, path="generate").generate(batch, config)
    assert plain.path == "generate"
    assert fast.tokens == plain.tokens
    assert fast.stop_reasons == plain.stop_reasons


def test_suppressed_eos_forces_the_output_length(qwen_loaded):
    model, processor = qwen_loaded
    eos = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = _config(processor, max_new_tokens=21, suppress_token_ids=(eos,), repetition=None)
    result = FastGenerator(model).generate(_inputs(processor, _images()[:2]), config)
    assert [len(t) for t in result.tokens] == [21, 21]
    assert result.stop_reasons == ["max_tokens", "max_tokens"]
    assert all(eos not in row for row in result.tokens)


def test_streamed_tokens_end_equal_to_the_result(qwen_loaded):
    model, processor = qwen_loaded
    seen: dict[int, list[list[int]]] = {}
    result = FastGenerator(model).generate(
        _inputs(processor, _images()[:2]),
        _config(processor, max_new_tokens=30),
        on_tokens=lambda row, tokens: seen.setdefault(row, []).append(list(tokens)),
    )
    for row in (0, 1):
        updates = seen[row]
        assert len(updates) > 2  # streamed as it went, not once at the end
        assert all(a == b[: len(a)] for a, b in zip(updates, updates[1:], strict=False))  # each update extends the last
        assert updates[-1] == result.tokens[row]


def test_repetition_guard_cuts_a_model_caught_in_a_loop(tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from tests.tiny_models import build_tiny_qwen3_vl

    folder = build_tiny_qwen3_vl(tmp_path / "looping", repeat_forever=True)
    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder).eval()
    result = FastGenerator(model).generate(_inputs(processor, _images()[:1]), _config(processor, max_new_tokens=600))
    assert result.stop_reasons == ["repetition"]
    assert result.steps < 300  # stopped soon after the loop was evident, not at the token limit
    assert 0 < len(result.tokens[0]) < 300


@pytest.mark.parametrize(
    ("tokens", "fires"),
    [
        (list(range(400)), False),  # no repetition
        ([7] * 300, True),  # one token forever
        (list(range(50)) + [1, 2, 3] * 80, True),  # a three-token loop after real text
        (list(range(50)) + [9, 8] * 20 + list(range(100, 300)), False),  # a short run in the middle
        (list(range(100)) + [5] * 40, False),  # a dotted leader: too short to be a runaway
    ],
)
def test_repetition_guard_rule(tokens, fires):
    at = RepetitionGuard().check(tokens)
    assert (at is not None) == fires
    if at is not None:
        assert 0 <= at < len(tokens)


@pytest.mark.parametrize("fuse", [False, True], ids=["own step", "fused step"])
def test_the_step_reads_the_same_buffers_on_every_call(qwen_loaded, fuse):
    """A captured CUDA graph reads its inputs by address: a second call with the same shapes must
    reuse every buffer the step reads (tokens, mask, positions, stop tokens, cache), and still give
    the same tokens as plain generate."""
    model, processor = qwen_loaded
    batch = _inputs(processor, _images())
    config = _config(processor, max_new_tokens=16, suppress_token_ids=(processor.tokenizer.pad_token_id,))
    generator = FastGenerator(model, path="eager", fuse=fuse)
    first = generator.generate(batch, config)
    state = generator._state
    names = ("token", "mask", "position", "write_at", "stopped", "eos", "suppress", "next_token")
    before = {name: getattr(state, name).data_ptr() for name in names}
    caches = [(layer.keys.data_ptr(), layer.values.data_ptr()) for layer in state.cache.layers]
    second = generator.generate(batch, config)
    assert generator._state is state
    assert {name: getattr(state, name).data_ptr() for name in names} == before
    assert [(layer.keys.data_ptr(), layer.values.data_ptr()) for layer in state.cache.layers] == caches
    plain = FastGenerator(model, path="generate").generate(batch, config)
    assert first.tokens == second.tokens == plain.tokens
    assert second.fused is fuse


def test_warm_up_prepares_the_state_the_real_run_uses(qwen_loaded):
    """Warm-up (at model load) is short but sizes the cache for the real run, so the first page
    reuses the compiled/captured step instead of building a new one."""
    model, processor = qwen_loaded
    batch = _inputs(processor, _images()[:1])
    config = _config(processor, max_new_tokens=300, suppress_token_ids=(processor.tokenizer.pad_token_id,))
    generator = FastGenerator(model, path="eager")
    warm = generator.warm_up(batch, config)
    assert len(warm.tokens[0]) < 300
    state = generator._state
    real = generator.generate(batch, config)
    assert generator._state is state
    assert real.stop_reasons[0] in ("eos", "max_tokens")


@pytest.mark.parametrize("meaning", ["unpadded", "padded"])
def test_left_padded_rows_decode_at_their_own_positions_whatever_rope_deltas_means(qwen_loaded, meaning, monkeypatch):
    """transformers < 5.3 computed ``rope_deltas`` against the padded row length, 5.3+ against the
    unpadded one. Decoding must not depend on which: with either meaning (the older one is
    simulated here), every left-padded row of a batch gives what the same page gives alone."""
    model, processor = qwen_loaded
    base = model.model
    if meaning == "padded":
        original = base.get_rope_index

        @functools.wraps(original)
        def padded_meaning(input_ids, *args, **kwargs):
            positions, _deltas = original(input_ids, *args, **kwargs)
            top = positions.amax(dim=(0, 2)) + 1
            return positions, (top - input_ids.shape[1]).view(-1, 1)  # relative to the padded length

        monkeypatch.setattr(base, "get_rope_index", padded_meaning)
    images = _images()
    batch = _inputs(processor, images)
    assert (batch["attention_mask"] == 0).any(dim=1).tolist().count(True) >= 1  # at least one padded row
    generator = FastGenerator(model, path="eager")
    together = generator.generate(batch, _config(processor))
    for row, image in enumerate(images):
        alone = generator.generate(_inputs(processor, [image]), _config(processor))
        assert together.tokens[row] == alone.tokens[0], f"row {row} diverged from the page read alone"
