@echo off
rem OCR Studio: double-click to start it and open your browser. Close this window to stop it.
rem The first start installs the studio into .venv (a few minutes); later starts take seconds.
title OCR Studio
set "ROOT=%~dp0.."
set "PY=python"
if exist "%ROOT%\.venv\Scripts\python.exe" (
  set "PY="%ROOT%\.venv\Scripts\python.exe""
  goto run
)
where py >nul 2>nul
if not errorlevel 1 (
  set "PY=py -3"
  goto run
)
where python >nul 2>nul
if not errorlevel 1 goto run
echo OCR Studio needs Python 3.11 or newer: install it from https://www.python.org/downloads/ and start this again.
pause
exit /b 1
:run
%PY% "%ROOT%\launch.py" %*
if errorlevel 1 pause
