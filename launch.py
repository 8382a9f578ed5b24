#!/usr/bin/env python3
"""Start OCR Studio and open it in the browser: what the double-click launchers run.

Works from a fresh clone with only Python 3.11+: on the first run it makes ``.venv`` beside
this file and installs the studio into it, with the PyTorch build that fits this machine (a
CUDA build new enough for the NVIDIA GPU, from PyTorch's own index; CPU-only without one, or
with ``--cpu``); later runs start in seconds (see ocr_studio/bootstrap.py). Then it starts
``python -m ocr_studio serve`` on a free local port (7860, else the next free one), waits until
the server says which port it holds, opens the browser, and keeps running until you press
Ctrl+C, close the window or press Stop in the small window of ``--window`` (what
``ocr-studio.pyw`` shows). The studio's per-launch access token is handed to the server through
its environment, never on a command line other users could read; the server binds its port
itself and writes the port into a file in a folder only this user can enter, so the token is
never sent to whatever answers on a port (a program that took the port first gets nothing).
The browser opens a one-time code made from the token (``ocr_studio/access_codes.py``), so
the browser's history keeps no working credential; the token itself is printed for pasting
into the studio's login form (see SECURITY.md).

Uses only the standard library: it runs before anything is installed. It speaks English or
Russian, as the CLI does (``OCR_STUDIO_LANGUAGE``, ``language`` in the config file, the locale:
see ocr_studio/bootstrap.py ``language()``), from the launcher's message catalog
(ocr_studio/locales/launcher.*.toml); the two things it may have to say before it can read that
catalog (Python too old, ``launch.py`` away from the project) are written here in both languages.
"""

from __future__ import annotations

import argparse
import locale
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

HERE = Path(__file__).resolve().parent
TOKEN_ENVIRONMENT = "OCR_STUDIO_LAUNCH_TOKEN"  # read (and removed) by ocr_studio.ui.server
READY_ENVIRONMENT = "OCR_STUDIO_LAUNCH_READY"  # where the server writes the port it holds (ocr_studio.ui.server)
DEFAULT_PORT = 7860
# What launch.py may have to say before the package (and its catalog) can be used: here, in both languages.
BEFORE_THE_PACKAGE = {
    "en": {
        "misplaced": (
            "launch.py must stay in the OCR Studio folder, beside the ocr_studio folder and pyproject.toml "
            "(it installs the studio from there). Found nothing beside {folder}.\n"
            "Get the whole folder (git clone, or unpack the download), then run:\n\n"
            "    python3 launch.py\n\n"
            "Or install the package yourself with pip install -e . from that folder."
        ),
        "old_python": "OCR Studio needs Python 3.11 or newer; this is {version} ({executable}).",
    },
    "ru": {
        "misplaced": (
            "launch.py должен лежать в папке OCR Studio, рядом с папкой ocr_studio и файлом pyproject.toml "
            "(оттуда он ставит студию). Рядом с {folder} ничего этого нет.\n"
            "Возьмите папку целиком (git clone или распакуйте скачанный архив) и запустите:\n\n"
            "    python3 launch.py\n\n"
            "Или установите пакет сами: pip install -e . в этой папке."
        ),
        "old_python": "Для OCR Studio нужен Python 3.11 или новее, а это {version} ({executable}).",
    },
}


def before_the_package(key: str, environ: dict[str, str] | None = None, **args: object) -> str:
    """One of the messages above in the user's language, told by the environment alone (the
    package's own choice, bootstrap.language(), also reads the config file)."""
    real = environ is None
    environ = dict(os.environ) if environ is None else environ
    names = ("OCR_STUDIO_LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
    value = next((environ[name] for name in names if environ.get(name)), "")
    if not value and real and sys.platform == "win32":  # rarely set there: the system's language
        value = locale.getlocale()[0] or ""
    lang = "ru" if value.lower().startswith(("ru", "russian")) else "en"
    return BEFORE_THE_PACKAGE[lang][key].format(**args)


def say(message: str) -> None:
    """Print when there is a console (pythonw has none)."""
    if sys.stdout is not None:
        print(message, flush=True)


def browser_url(host: str, port: int, code: str = "") -> str:
    """The studio's address; with ``code`` (a one-time access code) the address that opens it."""
    from ocr_studio.access_codes import PARAMETER

    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?{PARAMETER}={code}" if code else "")


def wait_for_port(ready: Path, process: subprocess.Popen, timeout: float, stopped: threading.Event) -> int | None:
    """The port the server holds, once it answers and says so in ``ready``; None if it exits,
    ``timeout`` seconds pass or Stop is pressed. Nothing is sent to any port meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopped.is_set():
        try:
            return int(ready.read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            pass
        if process.poll() is not None:
            return None
        time.sleep(0.2)
    return None


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stop_on_signals() -> None:
    """Turn "terminate" and "hang up" (a closed terminal window) into a clean stop of the server."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    for name in ("SIGTERM", "SIGHUP", "SIGBREAK"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), interrupt)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from ocr_studio.i18n import t

    parser = argparse.ArgumentParser(description=t("launcher.launch.description"))
    parser.add_argument("--host", default="127.0.0.1", help=t("launcher.launch.help_host"))
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=t("launcher.launch.help_port"))
    parser.add_argument("--no-browser", action="store_true", help=t("launcher.launch.help_no_browser"))
    parser.add_argument("--cpu", action="store_true", help=t("launcher.launch.help_cpu"))
    parser.add_argument("--window", action="store_true", help=t("launcher.launch.help_window"))
    parser.add_argument("--timeout", type=float, default=180.0, help=t("launcher.launch.help_timeout"))
    return parser.parse_args(argv)


def gpu_check(python: str) -> subprocess.Popen | None:
    """Where an NVIDIA GPU is present, ask the studio's Python (in parallel with the server's start)
    whether its PyTorch can use it; its answer names the fix."""
    from ocr_studio.torch_builds import detect_nvidia

    if detect_nvidia() is None:
        return None
    try:
        return subprocess.Popen(
            [python, "-m", "ocr_studio.gpu_check"],
            cwd=HERE,
            env=_server_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0) if sys.stdout is None else 0,
        )
    except OSError:
        return None


def _server_environment() -> dict[str, str]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), environment.get("PYTHONPATH")]))
    environment.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    return environment


def run(
    args: argparse.Namespace,
    report: Callable[[str], None],
    stopped: threading.Event,
    on_ready: Callable[[Callable[[], str]], None] = lambda link: None,
) -> int:
    """Bootstrap, start the server, announce it once, and keep it until it exits or ``stopped`` is set."""
    from ocr_studio import access_codes, bootstrap, ports
    from ocr_studio.i18n import t

    try:
        python = bootstrap.prepare(HERE, report, cpu_only=args.cpu, piped=sys.stdout is None or args.window)
    except bootstrap.BootstrapError as exc:
        report(f"\n{exc}")
        return 1
    if stopped.is_set():
        return 0
    check = gpu_check(python)

    token = secrets.token_urlsafe(32)
    private = Path(tempfile.mkdtemp(prefix="ocr-studio-launch-"))  # only this user may enter it
    ready = private / "port"
    command = [python, "-m", "ocr_studio", "serve", "--host", args.host, "--port", str(args.port), "--no-browser"]
    environment = _server_environment()
    environment[TOKEN_ENVIRONMENT] = token
    environment[READY_ENVIRONMENT] = str(ready)
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0) if sys.stdout is None else 0  # pythonw: no console pops up

    report(t("launcher.launch.starting"))
    process = subprocess.Popen(command, cwd=HERE, env=environment, creationflags=flags)
    try:
        port = wait_for_port(ready, process, args.timeout, stopped)
        if port is None:
            if stopped.is_set():
                return 0
            code = process.poll()
            if code is not None:
                reason = t("launcher.launch.exited", code=code)
            else:
                reason = t("launcher.launch.no_answer", seconds=f"{args.timeout:.0f}")
            report(t("launcher.launch.did_not_start", reason=reason))
            return 1
        if check is not None:
            try:
                problem = check.communicate(timeout=30)[0].strip()
            except subprocess.TimeoutExpired:
                check.kill()
                problem = ""
            if problem:
                report(f"\n{problem}")
        if args.port and port != args.port:
            report(ports.busy_message(args.port, port))

        def link() -> str:  # a fresh one-time code for every opening
            return browser_url(args.host, port, access_codes.new_code(token))

        report("\n" + t("launcher.launch.running", url=link()))
        report(t("launcher.launch.token", token=token))
        how = t("launcher.launch.how_window" if args.window else "launcher.launch.how_console")
        report(t("launcher.launch.keep_open", how=how) + "\n")
        on_ready(link)
        if not args.no_browser:
            webbrowser.open(link())
        while process.poll() is None and not stopped.wait(0.5):
            pass
        return 0 if stopped.is_set() else (process.returncode or 0)
    except KeyboardInterrupt:
        report("\n" + t("launcher.launch.stopping"))
        return 0
    finally:
        stop(process)
        if check is not None and check.poll() is None:
            check.kill()
        shutil.rmtree(private, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036  (this file must still speak on an older Python)
        say(before_the_package("old_python", version=sys.version.split()[0], executable=sys.executable))
        return 2
    if not (HERE / "ocr_studio" / "bootstrap.py").is_file() or not (HERE / "pyproject.toml").is_file():
        say(before_the_package("misplaced", folder=HERE))
        return 2
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))  # the bootstrap lives in the package, importable before installing it
    from ocr_studio import bootstrap, i18n

    i18n.set_language(bootstrap.language())
    args = parse_args(argv)
    if args.window:
        try:
            from ocr_studio.launcher_window import run_in_window
        except ImportError:  # no tkinter: run as before, stoppable from the task manager only
            pass
        else:
            return run_in_window(lambda report, stopped, on_ready: run(args, report, stopped, on_ready))
    stop_on_signals()
    try:
        return run(args, say, threading.Event())
    except KeyboardInterrupt:  # during the first run's install: pip keeps what it finished
        say("\n" + i18n.t("launcher.launch.interrupted"))
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
