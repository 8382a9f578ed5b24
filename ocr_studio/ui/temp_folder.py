"""Gradio's temporary folder, private to the user who runs the studio.

Gradio keeps a copy of every file it hands out (the downloads ``/convert`` returns) and of every
upload in ``GRADIO_TEMP_DIR``, by default a ``gradio`` folder in the system's temp folder whose
folders are 0755: another user of the computer could read copies of your documents there. Unless
the user chose a folder, the studio gives Gradio a fresh one of its own: ``tempfile.mkdtemp``
makes it new, owned by us and 0700 (never a folder someone else could have prepared), and it is
removed when the studio exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

ENVIRONMENT = "GRADIO_TEMP_DIR"
_made: Path | None = None


def use_private_temp() -> Path:
    """Point ``GRADIO_TEMP_DIR`` at a folder only this user can enter, unless the user set it;
    returns the folder. Call it before the Blocks are made: each component reads it then."""
    global _made
    chosen = os.environ.get(ENVIRONMENT)
    if chosen and (_made is None or Path(chosen) != _made):
        return Path(chosen)  # the user's choice
    if _made is None:
        _made = Path(tempfile.mkdtemp(prefix="ocr-studio-gradio-"))
        atexit.register(shutil.rmtree, _made, ignore_errors=True)
    os.environ[ENVIRONMENT] = str(_made)
    return _made
