"""The web server: the studio's Blocks mounted on our own FastAPI app, run by uvicorn, so that
what is served, to whom, and with which headers is decided here (see SECURITY.md).

- everything goes through ``guard.Guard`` (Host allow-list, Origin check, per-launch token and
  the per-launch path its cookie is bound to, security headers, downloads for anything that is
  not a raster image);
- the server listens on a socket it bound itself (``ports.listen``) and tells the launcher the
  port it holds through a file, never through a request that carries the token;
- Gradio may serve files from the workspace's ``exports`` folder and its own upload cache
  only; the ``jobs`` folder (inputs, page images, JSON) is blocked outright;
- ``/pwa_icon`` answers only the two sizes Gradio's manifest names, from memory.
"""

from __future__ import annotations

import functools
import io
import os
import socket
import threading
import time
import webbrowser
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import FastAPI, HTTPException
from fastapi.responses import Response

from .. import access_codes
from ..i18n import t
from ..settings import Settings
from .app import CSS_PATH, build_app
from .guard import TOKEN_PARAMETER, Guard, allowed_hosts, new_prefix, new_token
from .language import LanguagePage, choose
from .theme import theme

ICON_PATH = Path(__file__).resolve().parents[2] / "assets" / "icon.png"  # present in a source checkout
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
ICON_SIZES = (192, 512)  # the sizes Gradio's manifest.json asks for
TOKEN_ENVIRONMENT = "OCR_STUDIO_LAUNCH_TOKEN"  # launch.py hands the token over here (never on a command line)
# launch.py names a file (in a folder only its user can enter) where the server writes the port it
# holds once it answers: the launcher learns the real port without sending the token anywhere.
READY_ENVIRONMENT = "OCR_STUDIO_LAUNCH_READY"


def workspace_folders(settings: Settings) -> tuple[Path, Path]:
    """(the exports folder Gradio may serve, the jobs folder it never may)."""
    workspace = Path(settings.workspace).expanduser().resolve()
    return workspace / "exports", workspace / "jobs"


def launch_options(settings: Settings, *, host: str | None = None, port: int | None = None) -> dict[str, Any]:
    """Keyword arguments for ``gr.mount_gradio_app``: upload limit, only exports served, jobs blocked."""
    exports, jobs = workspace_folders(settings)
    options: dict[str, Any] = {
        "server_name": host or settings.host,
        "server_port": port or settings.port,
        "max_file_size": f"{int(settings.max_upload_mb)}mb",
        "allowed_paths": [str(exports)],
        "blocked_paths": [str(jobs)],
        "css_paths": [str(CSS_PATH)],
        "theme": theme(),  # fonts with regular Cyrillic (theme.py)
        "show_error": True,
        "footer_links": ["api"],
    }
    if ICON_PATH.is_file():
        options["favicon_path"] = str(ICON_PATH)
    return options


def create_app(
    settings: Settings, *, host: str, port: int, token: str | None, prefix: str | None = None
) -> tuple[Guard, gr.Blocks]:
    """The guarded ASGI app and the Blocks inside it; with a token, the browser's session lives
    under ``prefix`` (default: a fresh random one)."""
    blocks = build_app(settings)
    options = launch_options(settings, host=host, port=port)
    for folder in (*workspace_folders(settings),):
        folder.mkdir(parents=True, exist_ok=True)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    studio = getattr(blocks, "studio", None)
    try:
        from . import media

        app.include_router(media.router(studio))
    except (ImportError, AttributeError):  # an app without media routes still serves
        pass
    _add_icon_routes(app, options.get("favicon_path"))
    gr.mount_gradio_app(app, blocks, "/", i18n=getattr(blocks, "i18n_instance", None), **options)
    extra = [name.strip() for name in str(getattr(settings, "allowed_hosts", "") or "").split(",")]
    guard = Guard(
        LanguagePage(app, settings),
        hosts=allowed_hosts(host, [e for e in extra if e]),
        port=port,
        token=token,
        language=lambda cookies, accept: choose(settings, cookies, accept),
        prefix=prefix or new_prefix(),
    )
    return guard, blocks


def _add_icon_routes(app: FastAPI, icon: str | None) -> None:
    """Gradio resizes its icon to any size asked for (``/pwa_icon/24000``: gigabytes, a minute);
    these routes, registered first, answer only the manifest's sizes, made once."""

    @functools.lru_cache(maxsize=len(ICON_SIZES))
    def resized(size: int) -> bytes:
        from PIL import Image

        with Image.open(icon) as image:  # type: ignore[arg-type]
            buffer = io.BytesIO()
            image.convert("RGBA").resize((size, size)).save(buffer, format="PNG")
        return buffer.getvalue()

    @app.get("/pwa_icon/{size}")
    def pwa_icon(size: str) -> Response:
        if icon is None or not size.isdigit() or int(size) not in ICON_SIZES:
            raise HTTPException(status_code=404, detail=t("ui.media.icon_sizes", sizes=", ".join(map(str, ICON_SIZES))))
        return Response(resized(int(size)), media_type="image/png")


@dataclass
class RunningServer:
    """A started studio: where it answers, its token, and how to stop it."""

    host: str
    port: int
    token: str | None
    blocks: gr.Blocks
    server: Any = field(repr=False)
    thread: threading.Thread = field(repr=False)
    prefix: str = ""  # the per-launch path of the browser's session ("" without a token)

    @property
    def server_name(self) -> str:
        return self.host

    @property
    def base_url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://[{shown}]:{self.port}/" if ":" in shown else f"http://{shown}:{self.port}/"

    @property
    def url(self) -> str:
        """The address to open: with the token when one is required (the answer sends the
        browser on to ``app_url`` with the session cookie)."""
        return f"{self.base_url}?{TOKEN_PARAMETER}={self.token}" if self.token else self.base_url

    def link(self) -> str:
        """An address for a browser to open: a fresh one-time code (``access_codes``), so the
        browser's history keeps nothing that opens the studio again."""
        if not self.token:
            return self.base_url
        return f"{self.base_url}?{access_codes.PARAMETER}={access_codes.new_code(self.token)}"

    @property
    def app_url(self) -> str:
        """Where the studio's page is, for a browser with the session cookie."""
        return self.base_url + self.prefix.strip("/") + ("/" if self.prefix else "")

    @property
    def headers(self) -> dict[str, str]:
        """What a script (gradio_client, httpx) sends to be let in."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def close(self) -> None:
        """Stop serving. Streams still open (a client's heartbeat) are cut after a second, quietly."""
        import logging

        errors = logging.getLogger("uvicorn.error")
        level = errors.level
        errors.setLevel(logging.CRITICAL)  # "Exception in ASGI application" for each cut stream
        try:
            self.server.should_exit = True
            self.thread.join(timeout=10)
        finally:
            errors.setLevel(level)
        try:
            self.blocks.close(verbose=False)
        except Exception:  # the server is down either way
            pass


def start(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    token: str | None = None,
    sock: socket.socket | None = None,
) -> RunningServer:
    """Start the studio in a background thread and return once it answers. ``token``: the one to
    require (default: a fresh one, or none when ``require_token`` is off). ``sock``: a listening
    socket to serve on (``ports.listen``); else ``port`` is bound here, exactly (``OSError`` if taken)."""
    import uvicorn

    from ..ports import bind

    host = host or settings.host
    if getattr(settings, "require_token", True):
        token = token or os.environ.pop(TOKEN_ENVIRONMENT, "") or new_token()
    else:
        token = None
    if sock is None:
        try:
            sock = bind(host, port or settings.port)
        except OSError:
            raise OSError(t("ui.serve.cannot_start", host=host, port=port or settings.port)) from None
    port = int(sock.getsockname()[1])
    app, blocks = create_app(settings, host=host, port=port, token=token)
    config = uvicorn.Config(
        app,
        host=host.strip("[]"),
        port=port,
        log_level="warning",
        lifespan="on",
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # the caller owns Ctrl+C
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="ocr-studio-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise OSError(t("ui.serve.cannot_start", host=host, port=port))
        time.sleep(0.02)
    return RunningServer(
        host=host, port=port, token=token, blocks=blocks, server=server, thread=thread, prefix=app.prefix
    )


def report_ready(port: int, path: str) -> None:
    """Tell the launcher the port this server holds: written whole (a temporary file renamed)."""
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(str(port), encoding="ascii")
    os.replace(partial, target)


def serve(settings: Settings, *, host: str | None = None, port: int | None = None, open_browser: bool = False) -> None:
    """Run the studio until interrupted (``ocr-studio serve``)."""
    host = host or settings.host
    if host not in LOOPBACK_HOSTS:
        print(t("ui.serve.public_host", host=host))
    from ..ports import busy_message, listen

    wanted = port if port is not None else settings.port
    sock = listen(host, wanted)  # a busy port is said plainly, and the next free one used
    port = int(sock.getsockname()[1])
    ready = os.environ.pop(READY_ENVIRONMENT, "")
    launched = bool(os.environ.get(TOKEN_ENVIRONMENT))  # launch.py announces the address itself, once
    if wanted and port != wanted and not launched:
        print(busy_message(wanted, port), flush=True)
    running = start(settings, host=host, port=port, sock=sock)
    if ready:
        report_ready(running.port, ready)
    if not launched:
        print(t("ui.serve.running", url=running.link()), flush=True)
        if running.token is not None:
            print(t("launcher.launch.token", token=running.token), flush=True)
    if running.token is None:
        print(t("ui.serve.no_token"))
    if open_browser:
        webbrowser.open(running.link())
    try:
        while running.thread.is_alive():
            running.thread.join(timeout=0.5)
    finally:
        running.close()
