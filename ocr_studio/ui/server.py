"""The web server: the studio's Blocks mounted on our own FastAPI app, run by uvicorn, so that
what is served, to whom, and with which headers is decided here (see SECURITY.md).

- everything goes through ``guard.Guard`` (Host allow-list, Origin check, per-launch token,
  security headers, downloads for anything that is not a raster image);
- Gradio may serve files from the workspace's ``exports`` folder and its own upload cache
  only; the ``jobs`` folder (inputs, page images, JSON) is blocked outright;
- ``/pwa_icon`` answers only the two sizes Gradio's manifest names, from memory.
"""

from __future__ import annotations

import functools
import io
import os
import threading
import time
import webbrowser
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import FastAPI, HTTPException
from fastapi.responses import Response

from ..i18n import t
from ..settings import Settings
from .app import CSS_PATH, build_app
from .guard import TOKEN_PARAMETER, Guard, allowed_hosts, new_token
from .language import LanguagePage, choose
from .theme import theme

ICON_PATH = Path(__file__).resolve().parents[2] / "assets" / "icon.png"  # present in a source checkout
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
ICON_SIZES = (192, 512)  # the sizes Gradio's manifest.json asks for
TOKEN_ENVIRONMENT = "OCR_STUDIO_LAUNCH_TOKEN"  # launch.py hands the token over here (never on a command line)
# Drops ?token= from the address bar once the cookie is set, so it is neither bookmarked nor shared.
HEAD = (
    "<script>if (new URLSearchParams(location.search).has('token')) "
    "history.replaceState(null, '', location.pathname + location.hash);</script>"
)


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
        "head": HEAD,
    }
    if ICON_PATH.is_file():
        options["favicon_path"] = str(ICON_PATH)
    return options


def create_app(settings: Settings, *, host: str, port: int, token: str | None) -> tuple[Guard, gr.Blocks]:
    """The guarded ASGI app and the Blocks inside it."""
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

    @property
    def server_name(self) -> str:
        return self.host

    @property
    def base_url(self) -> str:
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://[{shown}]:{self.port}/" if ":" in shown else f"http://{shown}:{self.port}/"

    @property
    def url(self) -> str:
        """The address to open: with the token when one is required."""
        return f"{self.base_url}?{TOKEN_PARAMETER}={self.token}" if self.token else self.base_url

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
    settings: Settings, *, host: str | None = None, port: int | None = None, token: str | None = None
) -> RunningServer:
    """Start the studio in a background thread and return once it answers. ``token``: the one to
    require (default: a fresh one, or none when ``require_token`` is off)."""
    import uvicorn

    host = host or settings.host
    port = port or settings.port
    if getattr(settings, "require_token", True):
        token = token or os.environ.pop(TOKEN_ENVIRONMENT, "") or new_token()
    else:
        token = None
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
    thread = threading.Thread(target=server.run, name="ocr-studio-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise OSError(t("ui.serve.cannot_start", host=host, port=port))
        time.sleep(0.02)
    return RunningServer(host=host, port=port, token=token, blocks=blocks, server=server, thread=thread)


def serve(settings: Settings, *, host: str | None = None, port: int | None = None, open_browser: bool = False) -> None:
    """Run the studio until interrupted (``ocr-studio serve``)."""
    host = host or settings.host
    if host not in LOOPBACK_HOSTS:
        print(t("ui.serve.public_host", host=host))
    from ..ports import busy_message, free_port

    wanted = port or settings.port
    port = free_port(host, wanted)  # a busy port is said plainly, and the next free one used
    if port != wanted:
        print(busy_message(wanted, port), flush=True)
    launched = bool(os.environ.get(TOKEN_ENVIRONMENT))  # launch.py announces the address itself, once
    running = start(settings, host=host, port=port)
    if not launched:
        print(t("ui.serve.running", url=running.url), flush=True)
    if running.token is None:
        print(t("ui.serve.no_token"))
    if open_browser:
        webbrowser.open(running.url)
    try:
        while running.thread.is_alive():
            running.thread.join(timeout=0.5)
    finally:
        running.close()
