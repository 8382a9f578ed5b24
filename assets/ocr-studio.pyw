"""OCR Studio for Windows without a console: double-click to start it and open the browser.

A small window shows what the launcher does (the first run installs the studio into .venv,
which takes a few minutes) and has a Stop button; closing the window stops the studio too."""

import runpy
import sys
from pathlib import Path

LAUNCHER = Path(__file__).resolve().parent.parent / "launch.py"
sys.argv = [str(LAUNCHER), "--window", *sys.argv[1:]]
runpy.run_path(str(LAUNCHER), run_name="__main__")
