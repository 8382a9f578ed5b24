"""The studio's own Python environment: found, or made on the first run.

A fresh clone has only Python. ``launch.py`` asks this module which interpreter runs the studio:
this Python when the studio is already installed in it, else ``.venv`` beside ``launch.py``,
made and filled on the first run (with the PyTorch build that fits the machine, see
torch_builds.py) and used as it is on every later run. A marker file in ``.venv`` records a
finished install and the ``pyproject.toml`` it was made from, so an interrupted install resumes
and changed dependencies are installed on the next start.

Standard library only: it runs before anything is installed. What it says comes from the
launcher catalog (``locales/launcher.*.toml``) in the launcher's language, see ``language()``.
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
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from .i18n import Message, configured_language, from_environment, message, t
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
    reason: Message | str = ""

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
        return Plan(python=current_python, reason=message("launcher.bootstrap.current_python"))
    if venv.exists and venv.studio and venv.torch and venv.current_marker:
        return Plan(python=venv_python_path, reason=message("launcher.bootstrap.venv_ready", venv=VENV))
    torch = None if (venv.exists and venv.torch) else choose(system, gpu, cpu_only=cpu_only)
    install_studio = not (venv.exists and venv.studio and venv.current_marker)
    if not venv.exists:
        reason = message("launcher.bootstrap.first_run", venv=VENV)
    elif torch is None and venv.studio:
        reason = message("launcher.bootstrap.update", venv=VENV)
    else:
        reason = message("launcher.bootstrap.complete", venv=VENV)
    return Plan(
        python=venv_python_path,
        create_venv=not venv.exists,
        torch=torch,
        install_studio=install_studio,
        reason=reason,
    )


# ----------------------------------------------------------------------------- language


def config_path(env: Mapping[str, str], system: str) -> Path:
    """The studio's config file, where ``settings.default_config_path()`` finds it, worked out
    without platformdirs (not installed yet): ``OCR_STUDIO_CONFIG``, else the user config dir."""
    named = env.get("OCR_STUDIO_CONFIG", "").strip()
    if named:
        return Path(named).expanduser()
    home = Path.home()
    if system == "Windows":
        base = Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif system == "Darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(env.get("XDG_CONFIG_HOME", "").strip() or home / ".config")
    return base / "ocr-studio" / "config.toml"


def language(env: Mapping[str, str] | None = None, system: str | None = None) -> str:
    """The launcher's language, as the CLI picks it: ``OCR_STUDIO_LANGUAGE``, else ``language`` in
    the config file, else the locale (LC_ALL, LC_MESSAGES, LANG; on Windows the system's), else
    English. Never sets ``OCR_STUDIO_LANGUAGE`` for the server: the browser decides the UI's."""
    real = env is None
    env = os.environ if env is None else env
    try:
        data = tomllib.loads(config_path(env, system or platform.system()).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # no config file, or one the studio itself will report
        data = {}
    flat = {**{k: v for section in data.values() if isinstance(section, dict) for k, v in section.items()}, **data}
    setting = flat.get("language") if isinstance(flat.get("language"), str) else None
    fixed = configured_language(SimpleNamespace(language=setting), env)
    return fixed or from_environment(None if real else env)


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
        say("\n" + t("launcher.bootstrap.step", step=step, total=total, text=text))

    if chosen.create_venv:
        header(t("launcher.bootstrap.making_venv", venv=venv))
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
        size = message("launcher.bootstrap.size_cuda" if chosen.torch.cuda else "launcher.bootstrap.size_cpu")
        named = os.environ.get(TORCH_ENVIRONMENT, "").strip()
        if named:
            what = message("launcher.bootstrap.torch_named", requirements=named, variable=TORCH_ENVIRONMENT)
        else:
            what = message("launcher.bootstrap.torch_chosen", reason=chosen.torch.why, size=size)
        header(t("launcher.bootstrap.installing_torch", what=what))
        if chosen.torch.warning:
            say("  " + chosen.torch.warning)
        if runner(pip + torch_requirements(chosen.torch), say, piped=piped, cwd=root) != 0:
            index = os.environ.get(INDEX_ENVIRONMENT, "").strip() or chosen.torch.index_url or "pypi"
            raise BootstrapError(  # the overrides that fix an index that cannot be reached
                t(
                    "launcher.bootstrap.torch_failed",
                    index=index,
                    index_variable=INDEX_ENVIRONMENT,
                    torch_variable=TORCH_ENVIRONMENT,
                )
            )
    if chosen.install_studio:
        header(t("launcher.bootstrap.installing_studio"))
        if runner(pip + ["-e", str(root)], say, piped=piped, cwd=root) != 0:
            raise BootstrapError(t("launcher.bootstrap.studio_failed"))
    marker = {"pyproject": pyproject_digest(root), "torch": chosen.torch.build if chosen.torch else "kept"}
    try:
        (venv / MARKER).write_text(json.dumps(marker), encoding="utf-8")
    except OSError:
        pass  # the next start checks again
    say("\n" + t("launcher.bootstrap.installed"))
    return python


def _no_venv_hint(system: str) -> str:
    if system == "Linux":
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        return t("launcher.bootstrap.no_venv_linux", command=f"sudo apt install python{version}-venv")
    return t("launcher.bootstrap.no_venv")


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
        say(t("launcher.bootstrap.using", reason=chosen.reason))
    return execute(root, chosen, say, piped=piped)
