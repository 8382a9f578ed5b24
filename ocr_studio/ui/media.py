"""What the viewer loads besides Gradio's own payloads: page images at display size,
page thumbnails and export downloads, each from a job in the workspace (see viewer.py).

``router(studio)`` returns the FastAPI routes under ``/studio/``; ``server.py`` mounts them
beside the Gradio app, behind the same Host/token checks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

PREFIX = "/studio"


def router(studio: Any) -> APIRouter:
    """The media routes for ``studio`` (an ``app.Studio``)."""
    return APIRouter(prefix=PREFIX)
