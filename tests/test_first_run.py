"""One real first run, as a newcomer makes it: a fresh copy of the project, a Python that has
nothing installed (``-I -S`` hides this Python's site-packages), ``launch.py --no-browser``. It
must make ``.venv``, install the studio with a CPU-only torch, answer HTTP on 127.0.0.1, stop on
SIGTERM, and start again at once without installing anything.

PyTorch's CPU index cannot be reached here; CI stands in for it with the same kind of wheel (a
``+cpu`` torch) from the machine's local wheel folder, named through ``OCR_STUDIO_TORCH`` and
``OCR_STUDIO_TORCH_INDEX=pypi`` (pip's own indexes and find-links). Without that wheel the test is
skipped, saying so. It takes about two minutes: it runs once per test run."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.first_run


def local_cpu_torch() -> tuple[str, str] | None:
    """(torch, torchvision) requirements for a local ``+cpu`` torch wheel, or None."""
    folders = [Path(p) for p in os.environ.get("PIP_FIND_LINKS", "").split() if p] + [Path("/opt/wheels")]
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for folder in folders:
        for wheel in sorted(folder.glob(f"torch-*+cpu-{tag}-*.whl")) if folder.is_dir() else []:
            match = re.match(r"torch-2\.(\d+)\.(\d+)\+cpu", wheel.name)
            if match:
                minor, patch = int(match.group(1)), int(match.group(2))
                return (
                    f"torch==2.{minor}.{patch}",
                    f"torchvision==0.{minor + 15}.*",
                )  # torchvision 0.(N+15) is torch 2.N's
    return None


def fresh_copy(target: Path) -> Path:
    """The project as a clone of this working tree would have it: tracked and new files, nothing ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=False
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the fresh copy is made from git's file list")
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def start(folder: Path, environment: dict[str, str], deadline_s: float) -> tuple[subprocess.Popen, str, list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-I", "-S", "launch.py", "--no-browser", "--port", "0", "--timeout", "180"],
        cwd=folder,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    lines: list[str] = []
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            break
        lines.append(line)
        if "OCR Studio is running at http://127.0.0.1:" in line:
            return process, line.split(" at ", 1)[1].split()[0], lines
    process.kill()
    pytest.fail("the launcher never said where the studio runs:\n" + "".join(lines[-60:]))


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=60)
    return rest


def test_a_fresh_clone_makes_its_venv_installs_and_answers_http(tmp_path: Path) -> None:
    requirements = local_cpu_torch()
    if requirements is None:
        pytest.skip(
            "no local CPU torch wheel (torch-*+cpu-*.whl in PIP_FIND_LINKS or /opt/wheels) to stand in for "
            "PyTorch's CPU index, which this machine cannot reach"
        )
    folder = fresh_copy(tmp_path / "OCR Studio")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    environment |= {
        "OCR_STUDIO_TORCH": " ".join(requirements),
        "OCR_STUDIO_TORCH_INDEX": "pypi",
        "OCR_STUDIO_WORKSPACE": str(tmp_path / "workspace"),
        "OCR_STUDIO_CONFIG": str(tmp_path / "absent.toml"),
        "HF_HUB_OFFLINE": "1",
    }

    began = time.monotonic()
    process, url, lines = start(folder, environment, deadline_s=540)
    first_run_s = time.monotonic() - began
    try:
        said = "".join(lines)
        assert "first run: making .venv" in said
        assert "[1/3] Making the studio's own Python environment" in said
        assert "[2/3] Installing PyTorch" in said and "[3/3] Installing OCR Studio" in said
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200
    finally:
        said += stop(process)
    assert said.count("is running at") == 1
    python = folder / ".venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    build = subprocess.run(
        [str(python), "-c", "import torch; print(torch.__version__, torch.version.cuda)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert build.stdout.split() == [requirements[0].split("==")[1] + "+cpu", "None"]  # the CPU build, no CUDA stack
    assert (folder / ".venv" / "ocr-studio-install.json").is_file()

    began = time.monotonic()
    process, url, lines = start(folder, environment, deadline_s=180)
    second_run_s = time.monotonic() - began
    try:
        assert not any("Installing" in line or "first run" in line for line in lines), "".join(lines)
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200
    finally:
        stop(process)
    print(f"\nfirst run (make .venv, install, start): {first_run_s:.0f} s; second start: {second_run_s:.0f} s")
    assert second_run_s < first_run_s / 3
    shutil.rmtree(folder / ".venv", ignore_errors=True)  # about 1.5 GB that pytest would keep in its temp folders
