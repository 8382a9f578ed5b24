"""Stop tokens come from the checkpoint's generation_config.json (what the published reference
generate reads), for both models, not from config.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocr_studio.models.stop_tokens import read_stop_tokens
from ocr_studio.settings import Settings


def test_dots_ocr_stops_on_generation_config_not_on_assistant(tmp_path: Path) -> None:
    """The tiny checkpoint mirrors the published files: config.json's EOS list also has
    <|assistant|>, generation_config.json has <|endoftext|> and <|endofassistant|> only."""
    from ocr_studio.engines import get_engine
    from tests.tiny_dots import build_tiny_dots_ocr

    folder = build_tiny_dots_ocr(tmp_path / "dots")
    config_eos = json.loads((folder / "config.json").read_text())["eos_token_id"]
    generation_eos = json.loads((folder / "generation_config.json").read_text())["eos_token_id"]
    assert set(generation_eos) < set(config_eos)
    engine = get_engine("dots-ocr", Settings(workspace=tmp_path / "ws", dots_model=str(folder), device="cpu"))
    loaded = engine._load()
    assert loaded.eos_token_ids == tuple(generation_eos)
    tokenizer = loaded.processor.tokenizer
    assert tokenizer.convert_tokens_to_ids("<|assistant|>") not in loaded.eos_token_ids


def test_qwen3_vl_stops_on_generation_config(tmp_path: Path, tiny_qwen3_vl: Path) -> None:
    """The published Qwen3-VL generation_config.json: eos [<|im_end|>, <|endoftext|>], pad <|endoftext|>."""
    import shutil

    from ocr_studio.engines import get_engine

    folder = Path(shutil.copytree(tiny_qwen3_vl, tmp_path / "qwen"))
    tokenizer_ids = json.loads((folder / "config.json").read_text())
    im_end, endoftext = tokenizer_ids["eos_token_id"], tokenizer_ids["pad_token_id"]
    (folder / "generation_config.json").write_text(
        json.dumps({"eos_token_id": [im_end, endoftext], "pad_token_id": endoftext, "do_sample": True})
    )
    engine = get_engine("qwen3-vl", Settings(workspace=tmp_path / "ws", qwen_model=str(folder), device="cpu"))
    loaded = engine._load()
    assert (loaded.eos_token_ids, loaded.pad_token_id) == ((im_end, endoftext), endoftext)


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ({"eos_token_id": [151643, 151673]}, ((151643, 151673), 0)),
        ({"eos_token_id": 151645, "pad_token_id": 151643}, ((151645,), 151643)),
        ({"do_sample": False}, ((7, 8), 0)),  # silent about EOS: the tokenizer's end tokens
        (None, ((7, 8), 0)),  # no file
        ("{not json", ((7, 8), 0)),  # unreadable: the tokenizer's end tokens, not a crash
    ],
)
def test_read_stop_tokens(tmp_path: Path, written, expected) -> None:
    if isinstance(written, dict):
        (tmp_path / "generation_config.json").write_text(json.dumps(written))
    elif isinstance(written, str):
        (tmp_path / "generation_config.json").write_text(written)
    stop = read_stop_tokens(tmp_path, fallback_eos=(7, None, 8), fallback_pad=0)
    assert (stop.eos_token_ids, stop.pad_token_id) == expected
