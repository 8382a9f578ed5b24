"""OCR Studio for Windows without a console window: double-click to start it and open
the browser. It keeps running in the background; use "OCR Studio.bat" instead if you
want a window that shows where it runs and stops it when closed."""

import runpy
import sys
from pathlib import Path

LAUNCHER = Path(__file__).resolve().parent.parent / "launch.py"
sys.argv = [str(LAUNCHER), *sys.argv[1:]]
runpy.run_path(str(LAUNCHER), run_name="__main__")
