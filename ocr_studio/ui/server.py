"""The web server: the studio's Blocks mounted on our own FastAPI app, so that what is
served, to whom, and with which headers is decided here (see SECURITY.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from ..settings import Settings
from .app import CSS_PATH, build_app

ICON_PATH = Path(__file__).resolve().parents[2] / "assets" / "icon.png"  # present in a source checkout
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def launch_options(settings: Settings, *, host: str | None = None, port: int | None = None) -> dict[str, Any]:
    """Keyword arguments for ``Blocks.launch``: local only, upload limit, only the workspace served."""
    workspace = Path(settings.workspace).expanduser().resolve()
    options: dict[str, Any] = {
        "server_name": host or settings.host,
        "server_port": port or settings.port,
        "share": False,
        "max_file_size": f"{int(settings.max_upload_mb)}mb",
        "allowed_paths": [str(workspace)],
        "css_paths": [str(CSS_PATH)],
        "theme": gr.themes.Soft(primary_hue="indigo", secondary_hue="slate"),
        "show_error": True,
        "footer_links": ["api"],
    }
    if ICON_PATH.is_file():
        options["favicon_path"] = str(ICON_PATH)
    return options


def serve(settings: Settings, *, host: str | None = None, port: int | None = None, open_browser: bool = False) -> None:
    """Run the studio until interrupted (``ocr-studio serve``)."""
    options = launch_options(settings, host=host, port=port)
    if options["server_name"] not in LOOPBACK_HOSTS:
        print(
            f"Warning: serving on {options['server_name']}: anyone who can reach this address can use the "
            "studio and read its results. Use 127.0.0.1 to keep it private."
        )
    app = build_app(settings)
    app.launch(inbrowser=open_browser, quiet=True, prevent_thread_lock=True, **options)
    print(f"OCR Studio is running at {app.local_url}  (Ctrl+C stops it)", flush=True)
    try:
        app.block_thread()
    finally:
        app.close(verbose=False)
