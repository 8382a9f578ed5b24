"""Shared fixtures. Tests that touch transformers never reach the model hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _process_language_kept():
    """A test that runs the CLI in this process sets the process's language (as the CLI does, once):
    the next test starts in the language the one before it found."""
    from ocr_studio import i18n

    before = i18n._process_language
    yield
    i18n.set_language(before)


@pytest.fixture(scope="session")
def tiny_qwen3_vl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen3-VL checkpoint folder (built once per test session)."""
    from tests.tiny_models import build_tiny_qwen3_vl

    return build_tiny_qwen3_vl(tmp_path_factory.mktemp("tiny-qwen3-vl"))


@pytest.fixture(scope="module")
def qwen_loaded(tiny_qwen3_vl: Path):
    """The tiny Qwen3-VL model (fp32, eval) and its processor, loaded once per test module."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_qwen3_vl)
    model = AutoModelForImageTextToText.from_pretrained(tiny_qwen3_vl).eval()
    return model, processor
