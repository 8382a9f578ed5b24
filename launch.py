#!/usr/bin/env python3
"""Start OCR Studio and open it in the browser: what the double-click launchers run.

Works from a fresh clone with only Python 3.11+: on the first run it makes ``.venv`` beside
this file and installs the studio into it, with the PyTorch build that fits this machine (a
CUDA build new enough for the NVIDIA GPU, from PyTorch's own index; CPU-only without one, or
with ``--cpu``); later runs start in seconds (see ocr_studio/bootstrap.py). Then it starts
``python -m ocr_studio serve`` on a free local port (7860, else the next free one), waits until
the page answers, opens the browser, and keeps running until you press Ctrl+C, close the window
or press Stop in the small window of ``--window`` (what ``ocr-studio.pyw`` shows). The browser
gets the studio's per-launch access token in the URL it opens (see SECURITY.md); it is handed to
the server through its environment, never on a command line other users could read.

Uses only the standard library: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

HERE = Path(__file__).resolve().parent
TOKEN_ENVIRONMENT = "OCR_STUDIO_LAUNCH_TOKEN"  # read (and removed) by ocr_studio.ui.server
DEFAULT_PORT = 7860
MISPLACED = (
    "launch.py must stay in the OCR Studio folder, beside the ocr_studio folder and pyproject.toml "
    "(it installs the studio from there). Found nothing beside {folder}.\n"
    "Get the whole folder (git clone, or unpack the download), then run:\n\n"
    "    python3 launch.py\n\n"
    "Or install the package yourself with pip install -e . from that folder."
)


def say(message: str) -> None:
    """Print when there is a console (pythonw has none)."""
    if sys.stdout is not None:
        print(message, flush=True)


def browser_url(host: str, port: int, token: str = "") -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def wait_until_up(url: str, process: subprocess.Popen, timeout: float, stopped: threading.Event) -> bool:
    """True once ``url`` answers; False if the server exits, ``timeout`` seconds pass or Stop is pressed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stopped.is_set():
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    return False


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
    parser = argparse.ArgumentParser(
        description="Start OCR Studio and open it in your browser. The first run installs it into .venv here."
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this computer only)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to try first (default: 7860)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="light install: CPU-only PyTorch, no CUDA libraries (the text-layer engine needs no GPU)",
    )
    parser.add_argument("--window", action="store_true", help="show a small window with a Stop button (no console)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the server to start")
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
    on_ready: Callable[[str], None] = lambda url: None,
) -> int:
    """Bootstrap, start the server, announce it once, and keep it until it exits or ``stopped`` is set."""
    from ocr_studio import bootstrap, ports

    try:
        python = bootstrap.prepare(HERE, report, cpu_only=args.cpu, piped=sys.stdout is None or args.window)
    except bootstrap.BootstrapError as exc:
        report(f"\n{exc}")
        return 1
    if stopped.is_set():
        return 0
    check = gpu_check(python)

    port = ports.free_port(args.host, args.port)
    if args.port and port != args.port:
        report(ports.busy_message(args.port, port))
    token = secrets.token_urlsafe(32)
    url = browser_url(args.host, port, token)
    command = [python, "-m", "ocr_studio", "serve", "--host", args.host, "--port", str(port), "--no-browser"]
    environment = _server_environment()
    environment[TOKEN_ENVIRONMENT] = token
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0) if sys.stdout is None else 0  # pythonw: no console pops up

    report("Starting OCR Studio …")
    process = subprocess.Popen(command, cwd=HERE, env=environment, creationflags=flags)
    try:
        if not wait_until_up(url, process, args.timeout, stopped):
            if stopped.is_set():
                return 0
            code = process.poll()
            reason = f"it exited with code {code}" if code is not None else f"no answer after {args.timeout:.0f} s"
            report(f"OCR Studio did not start ({reason}). The messages above say why.")
            return 1
        if check is not None:
            try:
                problem = check.communicate(timeout=30)[0].strip()
            except subprocess.TimeoutExpired:
                check.kill()
                problem = ""
            if problem:
                report(f"\n{problem}")
        report(f"\nOCR Studio is running at {url}")
        how = "press Stop OCR Studio" if args.window else "press Ctrl+C here"
        report(f"Keep this window open while you use it. To stop: {how}, or close this window.\n")
        on_ready(url)
        if not args.no_browser:
            webbrowser.open(url)
        while process.poll() is None and not stopped.wait(0.5):
            pass
        return 0 if stopped.is_set() else (process.returncode or 0)
    except KeyboardInterrupt:
        report("\nStopping OCR Studio …")
        return 0
    finally:
        stop(process)
        if check is not None and check.poll() is None:
            check.kill()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if sys.version_info < (3, 11):  # noqa: UP036  (this file must still speak on an older Python)
        say(f"OCR Studio needs Python 3.11 or newer; this is {sys.version.split()[0]} ({sys.executable}).")
        return 2
    if not (HERE / "ocr_studio" / "bootstrap.py").is_file() or not (HERE / "pyproject.toml").is_file():
        say(MISPLACED.format(folder=HERE))
        return 2
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))  # the bootstrap lives in the package, importable before installing it
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
        say("\nStopped. Start the launcher again to finish the install; finished downloads are kept.")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
