@echo off
rem OCR Studio: double-click to start it and open your browser. Close this window to stop it.
title OCR Studio
set "ROOT=%~dp0.."
set "PY=python"
where py >nul 2>nul && set "PY=py -3"
if exist "%ROOT%\.venv\Scripts\python.exe" set "PY="%ROOT%\.venv\Scripts\python.exe""
%PY% "%ROOT%\launch.py" %*
if errorlevel 1 pause
