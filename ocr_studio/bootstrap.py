"""The studio's own Python environment: found, or made on the first run.

A fresh clone has only Python. ``launch.py`` asks this module which interpreter runs the studio:
this Python when the studio is already installed in it, else ``.venv`` beside ``launch.py``,
made and filled on the first run (with the PyTorch build that fits the machine, see
torch_builds.py) and used as it is on every later run. A marker file in ``.venv`` records a
finished install and the ``pyproject.toml`` it was made from, so an interrupted install resumes
and changed dependencies are installed on the next start.

Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .torch_builds import NvidiaGpu, TorchChoice, choose, command_line, detect_nvidia

VENV = ".venv"
MARKER = "ocr-studio-install.json"
NEEDED = ("gradio", "pymupdf", "torch")  # besides the ocr-studio distribution itself
TORCH_ENVIRONMENT = "OCR_STUDIO_TORCH"  # pip requirements for torch instead of "torch torchvision"
INDEX_ENVIRONMENT = "OCR_STUDIO_TORCH_INDEX"  # an index URL instead of the chosen one; "pypi": pip's own indexes

Say = Callable[[str], None]


class BootstrapError(Exception):
    """A step of the first run failed; the message says what to do."""


@dataclass(frozen=True)
class EnvState:
    """What an interpreter has: the studio's distribution and the packages it needs to start."""

    exists: bool = True
    studio: bool = False
    torch: bool = False
    current_marker: bool = False  # a finished install from this pyproject.toml


@dataclass(frozen=True)
class Plan:
    """What the launcher does before starting the studio."""

    python: str  # the interpreter that runs the studio
    create_venv: bool = False
    torch: TorchChoice | None = None  # install this torch build; None: keep what is there
    install_studio: bool = False
    reason: str = ""

    @property
    def ready(self) -> bool:
        return not (self.create_venv or self.torch or self.install_studio)


def venv_python(root: Path, system: str) -> Path:
    return root / VENV / ("Scripts/python.exe" if system == "Windows" else "bin/python")


def plan(
    *,
    system: str,
    current_python: str,
    current: EnvState,
    venv: EnvState,
    venv_python_path: str,
    gpu: NvidiaGpu | None,
    cpu_only: bool = False,
) -> Plan:
    """Pure decision: which interpreter runs the studio and what must be installed first."""
    if current.studio and current.torch:
        return Plan(python=current_python, reason="this Python already has OCR Studio installed: using it as it is")
    if venv.exists and venv.studio and venv.torch and venv.current_marker:
        return Plan(python=venv_python_path, reason=f"using {VENV} as it is")
    torch = None if (venv.exists and venv.torch) else choose(system, gpu, cpu_only=cpu_only)
    install_studio = not (venv.exists and venv.studio and venv.current_marker)
    if not venv.exists:
        reason = f"first run: making {VENV} and installing OCR Studio into it"
    elif torch is None and venv.studio:
        reason = f"{VENV} has OCR Studio; bringing its packages up to date with pyproject.toml"
    else:
        reason = f"{VENV} is not finished (an interrupted install?): completing it"
    return Plan(
        python=venv_python_path,
        create_venv=not venv.exists,
        torch=torch,
        install_studio=install_studio,
        reason=reason,
    )


# ----------------------------------------------------------------------------- facts


STATE_SCRIPT = (
    "import importlib.util as u, importlib.metadata as m, json\n"
    "def dist(n):\n"
    "    try:\n        m.distribution(n); return True\n"
    "    except m.PackageNotFoundError:\n        return False\n"
    f"print(json.dumps({{'studio': dist('ocr-studio') and all(u.find_spec(n) for n in {NEEDED[:2]!r}),"
    " 'torch': u.find_spec('torch') is not None}))"
)


def current_state() -> EnvState:
    """This interpreter, looked at without importing anything heavy."""
    import importlib.metadata as metadata

    try:
        metadata.distribution("ocr-studio")
        studio = all(importlib.util.find_spec(name) is not None for name in NEEDED[:2])
    except metadata.PackageNotFoundError:
        studio = False
    return EnvState(studio=studio, torch=importlib.util.find_spec("torch") is not None)


def pyproject_digest(root: Path) -> str:
    return hashlib.sha256((root / "pyproject.toml").read_bytes()).hexdigest()[:16]


def venv_state(root: Path, system: str) -> EnvState:
    """What ``.venv`` holds (asked of its own Python: a second or so)."""
    python = venv_python(root, system)
    if not python.exists():
        return EnvState(exists=False)
    try:
        answer = subprocess.run(
            [str(python), "-I", "-c", STATE_SCRIPT], capture_output=True, text=True, timeout=60, creationflags=_flags()
        )
        facts = json.loads(answer.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return EnvState(exists=True)  # a broken environment: installing again repairs it
    marker = root / VENV / MARKER
    try:
        current = json.loads(marker.read_text(encoding="utf-8")).get("pyproject") == pyproject_digest(root)
    except (OSError, ValueError, AttributeError):
        current = False
    return EnvState(studio=bool(facts.get("studio")), torch=bool(facts.get("torch")), current_marker=current)


def _flags() -> int:
    return getattr(subprocess, "CREATE_NO_WINDOW", 0) if sys.stdout is None else 0


# ----------------------------------------------------------------------------- doing it


def torch_requirements(choice: TorchChoice) -> list[str]:
    """pip arguments for the torch step: the build's index, unless the environment names another
    (CI stands in for PyTorch's CPU index with the same CPU wheels from its local disk)."""
    requirements = os.environ.get(TORCH_ENVIRONMENT, "").split() or ["torch", "torchvision"]
    index = os.environ.get(INDEX_ENVIRONMENT, "").strip() or choice.index_url or ""
    return requirements + (["--index-url", index] if index and index != "pypi" else [])


def run_step(words: list[str], say: Say, *, piped: bool, cwd: Path) -> int:
    """Run one install step. In a console pip draws its own progress; in the window (no console)
    its lines are passed on one by one."""
    say("  $ " + command_line(words, platform.system()))
    if not piped:
        return subprocess.call(words, cwd=cwd)
    process = subprocess.Popen(
        words,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        creationflags=_flags(),
    )
    assert process.stdout is not None
    for line in process.stdout:
        say("  " + line.rstrip())
    return process.wait()


def execute(
    root: Path,
    chosen: Plan,
    say: Say,
    *,
    piped: bool = False,
    runner: Callable[..., int] = run_step,
    base_python: str = sys.executable,
) -> str:
    """Carry out ``chosen``; returns the interpreter that runs the studio. Raises BootstrapError."""
    if chosen.ready:
        return chosen.python
    system = platform.system()
    venv = root / VENV
    total = sum(bool(x) for x in (chosen.create_venv, chosen.torch, chosen.install_studio))
    step = 0

    def header(text: str) -> None:
        nonlocal step
        step += 1
        say(f"\n[{step}/{total}] {text}")

    if chosen.create_venv:
        header(f"Making the studio's own Python environment: {venv}")
        if importlib.util.find_spec("ensurepip") is None:
            raise BootstrapError(_no_venv_hint(system))
        if runner([base_python, "-m", "venv", str(venv)], say, piped=piped, cwd=root) != 0:
            shutil.rmtree(venv, ignore_errors=True)  # half an environment would be taken for a broken install
            raise BootstrapError(_no_venv_hint(system))
    python = chosen.python
    # --no-compile: Python compiles what the studio imports on its first start; compiling every file
    # of every package here (transformers alone has thousands) would lengthen the first run for nothing.
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-compile"]
    if chosen.torch is not None:
        size = "about 2–3 GB" if chosen.torch.cuda else "about 200 MB, no CUDA libraries"
        named = os.environ.get(TORCH_ENVIRONMENT, "").strip()
        what = f"{named} (named by {TORCH_ENVIRONMENT})" if named else f"{chosen.torch.reason} ({size})"
        header(f"Installing PyTorch — {what}; this is the long step")
        if chosen.torch.warning:
            say("  " + chosen.torch.warning)
        if runner(pip + torch_requirements(chosen.torch), say, piped=piped, cwd=root) != 0:
            raise BootstrapError(
                "Installing PyTorch failed (the messages above say why: often the network or the disk space). "
                "Run the launcher again to retry; finished downloads are kept."
            )
    if chosen.install_studio:
        header("Installing OCR Studio and its packages (Gradio, transformers, PyMuPDF …)")
        if runner(pip + ["-e", str(root)], say, piped=piped, cwd=root) != 0:
            raise BootstrapError(
                "Installing OCR Studio's packages failed (the messages above say why). Run the launcher again to retry."
            )
    marker = {"pyproject": pyproject_digest(root), "torch": chosen.torch.build if chosen.torch else "kept"}
    try:
        (venv / MARKER).write_text(json.dumps(marker), encoding="utf-8")
    except OSError:
        pass  # the next start checks again
    say("\nOCR Studio is installed. Later starts skip all of this.")
    return python


def _no_venv_hint(system: str) -> str:
    if system == "Linux":
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        return (
            "This Python cannot make a virtual environment (its venv/ensurepip part is not installed).\n"
            f"On Debian or Ubuntu install it once, then start again:\n\n    sudo apt install python{version}-venv\n"
        )
    return "This Python cannot make a virtual environment (python -m venv failed; the messages above say why)."


def prepare(root: Path, say: Say, *, cpu_only: bool = False, piped: bool = False) -> str:
    """Find or make the environment; returns the Python that runs the studio. Raises BootstrapError."""
    system = platform.system()
    current = current_state()
    venv = EnvState(exists=False) if current.studio and current.torch else venv_state(root, system)
    gpu = None if system == "Darwin" or (venv.torch and venv.current_marker) else detect_nvidia()
    chosen = plan(
        system=system,
        current_python=sys.executable,
        current=current,
        venv=venv,
        venv_python_path=str(venv_python(root, system)),
        gpu=gpu,
        cpu_only=cpu_only,
    )
    if not chosen.ready:
        say(f"OCR Studio: {chosen.reason}.")
    return execute(root, chosen, say, piped=piped)
