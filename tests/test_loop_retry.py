"""The loop retry: a page whose answer loops is read once more with a no-repeat n-gram ban and a
repetition penalty, locally (both engines, the static-cache step and plain generate) and on a
server, and the reading that goes further is kept with a warning that says so.

The looping models are tiny bigram tables (tests/tiny_loops.py): greedy decoding reads A B and
loops B C B C…; a penalty lets it read on to D E F and end.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from PIL import Image

from ocr_studio.documents import Page
from ocr_studio.engines import RecognizeRequest, Task, get_engine
from ocr_studio.models.generation import FastGenerator, GenerationConfig, select_rows
from ocr_studio.models.repetition import LOOP_RETRY, TEXT_GUARD, LoopPenalty, penalize
from ocr_studio.settings import Settings

MAX_NEW_TOKENS = 400  # a loop is evident (the guard fires) after ~200 tokens


@pytest.fixture(scope="module")
def looping(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[int]]]:
    from tests.tiny_loops import build_looping_dots_ocr, build_looping_qwen3_vl

    root = tmp_path_factory.mktemp("looping")
    return {"qwen3-vl": build_looping_qwen3_vl(root / "qwen"), "dots-ocr": build_looping_dots_ocr(root / "dots")}


def settings_for(tmp_path: Path, engine: str, folder: Path, **overrides: object) -> Settings:
    model = {"qwen3-vl": "qwen_model", "dots-ocr": "dots_model"}[engine]
    values: dict[str, object] = {
        "workspace": tmp_path / "ws",
        model: str(folder),
        "device": "cpu",
        "max_new_tokens": MAX_NEW_TOKENS,
        "max_pixels": 256 * 256,
        **overrides,
    }
    return Settings(**values)


def page(number: int = 1) -> Page:
    return Page.from_image(Image.new("RGB", (200, 150), "white"), number=number)


# -- the penalty itself -------------------------------------------------------------------


def test_penalize_is_transformers_no_repeat_ngram_and_repetition_penalty_over_the_answer() -> None:
    """Inside the window, ``penalize`` bans and scales exactly what transformers' processors do
    when given the answer's tokens (the prompt is not part of the history)."""
    from transformers import NoRepeatNGramLogitsProcessor, RepetitionPenaltyLogitsProcessor

    generator = torch.Generator().manual_seed(0)
    for _ in range(60):
        length = int(torch.randint(1, 40, (1,), generator=generator))
        history = torch.randint(0, 4, (3, length), generator=generator)  # few distinct tokens: many repeats
        logits = torch.randn(3, 11, generator=generator)
        buffer = torch.full((3, 64), 7)  # what lies past `count` must not matter
        buffer[:, :length] = history
        for n, factor in ((3, 1.0), (0, 1.3), (4, 1.2)):
            ours = penalize(logits, buffer, torch.tensor([length]), LoopPenalty(n, factor, window=64))
            expected = RepetitionPenaltyLogitsProcessor(factor)(history, logits.clone()) if factor != 1.0 else logits
            if n:
                expected = NoRepeatNGramLogitsProcessor(n)(history, expected.clone())
            expected = expected.masked_fill(expected == float("-inf"), torch.finfo(expected.dtype).min)
            assert torch.equal(ours, expected)


def test_penalize_looks_only_at_the_window() -> None:
    history = torch.tensor([[5, 6, 5, 1, 2, 3, 4, 0]])
    logits = torch.zeros(1, 8)
    wide = penalize(logits, history, torch.tensor([8]), LoopPenalty(no_repeat_ngram=0, repetition_penalty=2.0))
    assert (wide[0, 5] == 0) and (wide[0, 6] == 0)  # zero logits stay zero; check the banning instead
    ban = penalize(torch.ones(1, 8), history[:, :3], torch.tensor([3]), LoopPenalty(2, 1.0, window=3))
    assert ban[0, 6] < 0  # "5 6" seen, the answer ends in 5: 6 is banned
    narrow = penalize(torch.ones(1, 8), history[:, :3], torch.tensor([3]), LoopPenalty(2, 1.0, window=2))
    assert narrow[0, 6] == 1  # the earlier "5 6" lies outside a window of 2


def test_the_text_guard_cuts_a_looping_answer_after_its_first_loop() -> None:
    text = "Invoice 42, total 17.00. " + "| a | b |\n" * 300
    cut = TEXT_GUARD.cut(text)
    assert cut is not None and cut.startswith("Invoice 42, total 17.00. | a | b |")
    assert len(cut) < 60
    assert TEXT_GUARD.cut("Invoice 42. " + "." * 100 + " page 3") is None  # a dotted leader is no loop
    assert TEXT_GUARD.cut("x" * 50_000) == "x"  # long loops cost no more than short ones


# -- local engines --------------------------------------------------------------------------


@pytest.mark.parametrize("engine_name", ["qwen3-vl", "dots-ocr"])
def test_a_looping_page_is_read_again_and_the_text_after_the_loop_is_recovered(tmp_path, looping, engine_name):
    folder, chain = looping[engine_name]
    task = Task.TEXT
    off = get_engine(engine_name, settings_for(tmp_path, engine_name, folder, loop_retry=False))
    [first] = off.recognize([page()], RecognizeRequest(task))
    assert first.truncated and any("repeating itself" in w for w in first.warnings)
    assert not any("read again" in w for w in first.warnings)

    on = get_engine(engine_name, settings_for(tmp_path, engine_name, folder))
    streamed: list[str] = []
    [second] = on.recognize([page()], RecognizeRequest(task, on_text=streamed.append))
    tokenizer = on._load().processor.tokenizer
    assert second.raw_text == tokenizer.decode(chain)  # A B C, then past the loop: D E F and the end
    assert second.raw_text.startswith(first.raw_text) and len(second.raw_text) > len(first.raw_text) + 2
    assert not second.truncated
    assert any("read again with a repetition penalty" in w and "ended the loop" in w for w in second.warnings)
    assert streamed[-1] == second.raw_text


def test_the_penalty_gives_the_same_tokens_in_the_decode_step_and_in_generate(looping) -> None:
    """The retry's penalty runs inside the static-cache step (and so inside the CUDA graph) and as a
    logits processor on plain generate: each of its two parts recovers the page, identically."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from ocr_studio.engines.qwen3_vl import PROMPTS, build_inputs

    folder, chain = looping["qwen3-vl"]
    processor = AutoProcessor.from_pretrained(folder)
    model = AutoModelForImageTextToText.from_pretrained(folder).eval()
    inputs = build_inputs(processor, [page().image], PROMPTS[Task.TEXT], 256 * 256)
    tokenizer = processor.tokenizer
    for penalty in (LoopPenalty(no_repeat_ngram=20, repetition_penalty=1.0), LoopPenalty(0, 1.05), LOOP_RETRY):
        config = GenerationConfig(
            max_new_tokens=MAX_NEW_TOKENS,
            eos_token_ids=(tokenizer.convert_tokens_to_ids("<|im_end|>"),),
            pad_token_id=tokenizer.pad_token_id,
            check_every=4,
            penalty=penalty,
        )
        step = FastGenerator(model, path="eager").generate(inputs, config)
        plain = FastGenerator(model, path="generate").generate(inputs, config)
        assert step.tokens == plain.tokens
        assert step.stop_reasons == plain.stop_reasons == ["eos"]
        assert step.tokens[0][:3] == chain[:3] and step.tokens[0][-3:] == chain[-3:]  # A B C … D E F


def test_only_the_looping_rows_are_read_again(tiny_qwen3_vl) -> None:
    """The retry reads the looping rows of a batch alone: their inputs, cut out of the batch,
    give what those pages give on their own."""
    from transformers import AutoProcessor

    from ocr_studio.engines.qwen3_vl import PROMPTS, build_inputs

    processor = AutoProcessor.from_pretrained(tiny_qwen3_vl)
    images = [Image.new("RGB", size, "white") for size in ((200, 150), (96, 300), (320, 96))]
    batch = build_inputs(processor, images, PROMPTS[Task.TEXT], 256 * 256)
    sub, rows = select_rows(batch, [1])
    assert rows == [1]
    alone = build_inputs(processor, images[1:2], PROMPTS[Task.TEXT], 256 * 256)
    assert set(sub) == set(alone)
    for name, value in alone.items():
        assert torch.equal(sub[name], value), name
    assert select_rows(batch, [0, 1, 2]) == (batch, [0, 1, 2])


def test_a_retry_that_reads_less_far_keeps_the_first_reading(tmp_path, looping, monkeypatch) -> None:
    """The reading that goes further is kept: a retry stopped early loses to the first reading."""
    folder, _chain = looping["qwen3-vl"]
    engine = get_engine("qwen3-vl", settings_for(tmp_path, "qwen3-vl", folder))
    generator = engine._load().generator
    original = generator._generate_once

    def short_retry(inputs, config, on_tokens=None):
        result = original(inputs, config, on_tokens)
        if config.penalty is not None:  # the retry: pretend it stopped at once
            result.tokens, result.stop_reasons = [[] for _ in result.tokens], ["eos"] * len(result.tokens)
        return result

    monkeypatch.setattr(generator, "_generate_once", short_retry)
    [result] = engine.recognize([page()], RecognizeRequest(Task.TEXT))
    assert result.truncated and result.raw_text
    assert any("first one was kept" in w for w in result.warnings)


# -- remote runtime -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def looping_server(looping, tmp_path_factory: pytest.TempPathFactory):
    from tests.openai_server import TransformersServer, free_port, serving_available

    missing = serving_available()
    if missing:
        pytest.fail(missing)
    folder, chain = looping["qwen3-vl"]
    home = tmp_path_factory.mktemp("serve-looping")
    server = TransformersServer(folder, free_port(), home / "serve.log", home / "hf-home")
    server.start()
    yield server, chain
    server.kill()


def test_the_remote_runtime_retries_a_looping_page_with_the_penalty_the_server_takes(tmp_path, looping_server):
    """``transformers serve`` refuses ``repetition_penalty`` (vLLM and SGLang take it) and maps
    ``frequency_penalty`` to it: the client learns that once, and the retry recovers the page."""
    from tests.openai_server import WatchingProxy
    from tests.test_remote import remote_settings

    server, chain = looping_server
    proxy = WatchingProxy(f"http://127.0.0.1:{server.port}")
    try:
        # 1,000 one-character tokens: the text guard wants a loop of 640 characters (~190 real tokens)
        settings = remote_settings(tmp_path / "ws", proxy.url, server.model, max_new_tokens=1000)
        engine = get_engine("qwen3-vl", settings)
        [first, second] = engine.recognize([page(1), page(2)], RecognizeRequest(Task.TEXT))
        bodies = list(proxy.bodies)
        off = get_engine("qwen3-vl", dataclasses.replace(settings, loop_retry=False))
        [unretried] = off.recognize([page(3)], RecognizeRequest(Task.TEXT))
    finally:
        proxy.close()
    for result in (first, second):
        assert not result.truncated
        assert len(result.raw_text) == len(chain)  # A B C D E F: past the loop
        assert any("read again with a repetition penalty (1.05)" in w for w in result.warnings)
    penalties = [{k: b[k] for k in ("repetition_penalty", "frequency_penalty") if k in b} for b in bodies]
    assert penalties.count({}) == 2  # each page's first reading carries no penalty
    assert penalties.count({"repetition_penalty": 1.05}) == 1  # refused once, then never sent again
    assert penalties.count({"frequency_penalty": 0.05}) == 2
    assert unretried.truncated and any("repeating itself" in w for w in unretried.warnings)
    assert len(unretried.raw_text) < len(first.raw_text)


@pytest.mark.parametrize("engine_name", ["qwen3-vl", "dots-ocr"])
def test_turning_the_retry_off_changes_the_job_cache_key_and_only_then(tmp_path, engine_name) -> None:
    folder = tmp_path / "model"
    on = get_engine(engine_name, settings_for(tmp_path, engine_name, folder)).settings_key()
    off = get_engine(engine_name, settings_for(tmp_path, engine_name, folder, loop_retry=False)).settings_key()
    assert "loop_retry" not in on  # keys of jobs made before the retry existed stay valid
    assert off == {**on, "loop_retry": False}
