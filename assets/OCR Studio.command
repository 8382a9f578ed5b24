#!/bin/sh
# OCR Studio for macOS: double-click to start it and open your browser.
# Press Ctrl+C or close this Terminal window to stop it.
cd "$(dirname "$0")/.." || exit 1
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
exec "$PY" launch.py "$@"
