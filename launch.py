#!/usr/bin/env python3
"""Start OCR Studio and open it in the browser: what the double-click launchers run.

Starts ``python -m ocr_studio serve`` on a free local port (7860 if it is free),
waits until the page answers, opens the browser, and keeps running until you
press Ctrl+C or close the window. The browser gets the studio's per-launch access
token in the URL it opens (see SECURITY.md); it is handed to the server through
its environment, never on a command line other users could read. Uses only the standard library, so it can
explain what is missing when the package is not installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import webbrowser
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOKEN_ENVIRONMENT = "OCR_STUDIO_LAUNCH_TOKEN"  # read (and removed) by ocr_studio.ui.server
DEFAULT_PORT = 7860
INSTALL_HINT = (
    "OCR Studio is not installed for this Python ({python}).\n"
    "Install it once from the project folder:\n\n"
    '    cd "{folder}"\n'
    "    {python} -m pip install -e .\n"
)


def say(message: str) -> None:
    """Print when there is a console (pythonw has none)."""
    if sys.stdout is not None:
        print(message, flush=True)


def missing_packages() -> list[str]:
    """Which of the packages the server needs cannot be imported here."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))  # a source checkout runs without installing the package itself
    return [name for name in ("ocr_studio", "gradio", "pymupdf") if importlib.util.find_spec(name) is None]


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(host: str, preferred: int) -> int:
    """``preferred`` when it is free, else any free port the system hands out."""
    if preferred and port_is_free(host, preferred):
        return preferred
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def browser_url(host: str, port: int, token: str = "") -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def wait_until_up(url: str, process: subprocess.Popen, timeout: float) -> bool:
    """True once ``url`` answers; False if the server exits or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
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
    parser = argparse.ArgumentParser(description="Start OCR Studio and open it in your browser.")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this computer only)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to try first (default: 7860)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the server to start")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = missing_packages()
    if missing:
        say(f"Missing: {', '.join(missing)}.")
        say(INSTALL_HINT.format(python=Path(sys.executable).name, folder=HERE))
        return 2

    port = choose_port(args.host, args.port)
    token = secrets.token_urlsafe(32)
    url = browser_url(args.host, port, token)
    command = [sys.executable, "-m", "ocr_studio", "serve", "--host", args.host, "--port", str(port), "--no-browser"]
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), environment.get("PYTHONPATH")]))
    environment.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    environment[TOKEN_ENVIRONMENT] = token
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0) if sys.stdout is None else 0  # pythonw: no console pops up

    say(f"Starting OCR Studio on {browser_url(args.host, port)} …")
    stop_on_signals()
    process = subprocess.Popen(command, cwd=HERE, env=environment, creationflags=flags)
    try:
        if not wait_until_up(url, process, args.timeout):
            code = process.poll()
            reason = f"it exited with code {code}" if code is not None else f"no answer after {args.timeout:.0f} s"
            say(f"OCR Studio did not start ({reason}). The messages above say why.")
            stop(process)
            return 1
        say(f"\nOCR Studio is running at {browser_url(args.host, port)}")
        say(f"Open it with this link (it carries this launch's access token):\n  {url}")
        say("Keep this window open while you use it. To stop: press Ctrl+C here, or close this window.\n")
        if not args.no_browser:
            webbrowser.open(url)
        return process.wait()
    except KeyboardInterrupt:
        say("\nStopping OCR Studio …")
        return 0
    finally:
        stop(process)


if __name__ == "__main__":
    raise SystemExit(main())
