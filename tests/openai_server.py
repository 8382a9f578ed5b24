"""A real OpenAI-compatible server for the remote-runtime tests, and a proxy that watches it.

``TransformersServer`` runs ``transformers serve`` (transformers' own FastAPI server)
in a subprocess on 127.0.0.1, pinned to a local checkpoint folder, on the CPU, with
the model hub switched off. ``WatchingProxy`` sits between the studio and that server
and records what a network observer would see: how many completions are in flight at
once, which Authorization headers arrive, and how many requests were made.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

STARTUP_SECONDS = 180.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serving_available() -> str:
    """Empty when ``transformers serve`` can start here, else what is missing."""
    from transformers.utils.import_utils import is_serve_available

    if is_serve_available():
        return ""
    return "transformers serve needs fastapi, uvicorn, pydantic and openai (pip install 'transformers[serving]')"


class TransformersServer:
    """``transformers serve <folder>`` on 127.0.0.1:``port``; start, kill and start again."""

    def __init__(self, folder: Path, port: int, log_path: Path, hf_home: Path):
        self.folder, self.port, self.log_path, self.hf_home = Path(folder), port, Path(log_path), Path(hf_home)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        """The name the server is pinned to: requests naming another model are refused."""
        return str(self.folder)

    def start(self) -> None:
        (self.hf_home / "hub").mkdir(parents=True, exist_ok=True)  # an empty cache: /v1/models lists nothing
        env = dict(os.environ)
        env.update(
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            HF_HUB_DISABLE_UPDATE_CHECK="1",
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HOME=str(self.hf_home),
            OMP_NUM_THREADS="1",
        )
        command = [
            sys.executable,
            "-m",
            "transformers.cli.transformers",
            "serve",
            str(self.folder),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--device",
            "cpu",
            "--dtype",
            "float32",
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.kill()
        raise RuntimeError(f"transformers serve did not come up in {STARTUP_SECONDS:.0f} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """Like a crash: no graceful shutdown."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-size:]
        except OSError:
            return ""


class WatchingProxy:
    """An HTTP proxy on 127.0.0.1 that forwards to ``upstream`` (a base URL without /v1)
    and counts what passes. A dead upstream gets 502, as a reverse proxy would answer."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.completions = 0  # POST /v1/chat/completions received
        self.authorization: list[str] = []
        self.bodies: list[dict] = []  # the completion requests, as sent
        self.fail_next = 0  # answer this many completions with 503, as an overloaded server would
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="watching-proxy", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def reset(self) -> None:
        with self.lock:
            self.in_flight = self.max_in_flight = self.completions = 0
            self.authorization = []
            self.bodies = []

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection; the body ends when it closes

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
                pass

            def do_GET(self) -> None:  # noqa: N802
                self.forward(b"")

            def do_POST(self) -> None:  # noqa: N802
                self.forward(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def forward(self, body: bytes) -> None:
                completion = self.command == "POST" and self.path.endswith("/chat/completions")
                with proxy.lock:
                    proxy.authorization.append(self.headers.get("Authorization", ""))
                    overloaded = completion and proxy.fail_next > 0
                    if overloaded:
                        proxy.fail_next -= 1
                    if completion:
                        proxy.bodies.append(json.loads(body or b"{}"))
                        proxy.completions += 1
                        proxy.in_flight += 1
                        proxy.max_in_flight = max(proxy.max_in_flight, proxy.in_flight)
                if overloaded:
                    with proxy.lock:
                        proxy.in_flight -= 1
                    self.send_error(503, "Service Unavailable: overloaded")
                    return
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
                    with httpx.stream(
                        self.command, proxy.upstream + self.path, content=body, headers=headers, timeout=120.0
                    ) as response:
                        self.send_response(response.status_code)
                        self.send_header("Content-Type", response.headers.get("content-type", "application/json"))
                        self.end_headers()
                        for chunk in response.iter_raw():
                            self.wfile.write(chunk)
                            self.wfile.flush()
                except httpx.HTTPError:
                    self.send_error(502, "Bad Gateway: the upstream server does not answer")
                finally:
                    if completion:
                        with proxy.lock:
                            proxy.in_flight -= 1

        return Handler
