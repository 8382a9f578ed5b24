"""The architecture is checked like behaviour: the import-linter contracts in pyproject.toml hold
(no import circles at any level, a standard-library-only launcher, a decoder that reaches for nothing
but torch and transformers, data flowing one way down the layers)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold() -> None:
    lint = shutil.which("lint-imports")
    assert lint, "import-linter is part of the test extra: python -m pip install -e '.[test]'"
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "BROKEN" not in result.stdout, result.stdout[-4000:] + result.stderr[-2000:]


def test_a_planted_circle_breaks_the_contract(tmp_path: Path) -> None:
    """The contract can fail: a copy of the package where i18n imports the engines again is caught."""
    lint = shutil.which("lint-imports")
    assert lint
    shutil.copytree(ROOT / "ocr_studio", tmp_path / "ocr_studio", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    i18n = tmp_path / "ocr_studio" / "i18n.py"
    i18n.write_text(i18n.read_text(encoding="utf-8") + "\n\ndef _planted():\n    from .engines import tesseract\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}  # the copy, not the installed package
    result = subprocess.run([lint, "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any("No import circles" in line for line in broken), result.stdout[-3000:]
