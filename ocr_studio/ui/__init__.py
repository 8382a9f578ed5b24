"""The Gradio user interface: ``build_app`` for embedding and tests, ``serve`` for the CLI."""

from .app import build_app
from .server import launch_options, serve

__all__ = ["build_app", "launch_options", "serve"]
