"""The small window of ``ocr-studio.pyw``: what the launcher says, and a Stop button.

``pythonw`` has no console, so without this window the first run's install would be invisible
and the studio could only be stopped from the task manager. The window shows the launcher's
lines as they come (the first run's progress included), opens the browser on request, and
stops the studio when Stop is pressed or the window is closed.

Standard library only (tkinter): it runs before anything is installed. Its words are in the
launcher's language (set by ``launch.py``; ``launcher.window.*`` in the catalog).
"""

from __future__ import annotations

import queue
import threading
import webbrowser
from collections.abc import Callable

from .i18n import t

Report = Callable[[str], None]
Work = Callable[[Report, threading.Event, Callable[..., None]], int]


class LauncherWindow:
    """A log, the address once it runs, "Open in browser" and "Stop OCR Studio"."""

    def __init__(self, work: Work) -> None:
        import tkinter as tk
        from tkinter import ttk

        self.tk = tk
        self.lines: queue.Queue[str] = queue.Queue()
        self.stopped = threading.Event()
        self.url: str | Callable[[], str] = ""
        self.result = 0
        self.root = tk.Tk()
        self.root.title("OCR Studio")
        self.root.geometry("640x320")
        self.root.minsize(420, 200)
        self.status = ttk.Label(self.root, text=t("launcher.window.starting"), anchor="w")
        self.status.pack(fill="x", padx=8, pady=(8, 4))
        self.log = tk.Text(self.root, height=12, wrap="word", state="disabled", font=("TkFixedFont", 9))
        self.log.pack(fill="both", expand=True, padx=8)
        buttons = ttk.Frame(self.root)
        buttons.pack(fill="x", padx=8, pady=8)
        self.open_button = ttk.Button(buttons, text=t("launcher.window.open"), command=self.open, state="disabled")
        self.open_button.pack(side="left")
        self.stop_button = ttk.Button(buttons, text=t("launcher.window.stop"), command=self.stop)
        self.stop_button.pack(side="right")
        self.root.protocol("WM_DELETE_WINDOW", self.stop)
        self.worker = threading.Thread(target=self._work, args=(work,), name="ocr-studio-launcher", daemon=True)

    def _work(self, work: Work) -> None:
        try:
            self.result = work(self.lines.put, self.stopped, self._ready)
        except Exception as exc:  # shown, not lost with a console that does not exist
            self.lines.put(t("launcher.window.crashed", error=str(exc)))
            self.result = 1
        self.lines.put("\x00done")

    def _ready(self, url: str | Callable[[], str]) -> None:
        self.url = url  # or what makes a fresh one-time link for every opening (launch.py)
        self.lines.put("\x00ready")

    def _poll(self) -> None:
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line == "\x00ready":
                self.status.configure(text=t("launcher.window.running"))
                self.open_button.configure(state="normal")
            elif line == "\x00done":
                if self.stopped.is_set():
                    self.root.destroy()
                    return
                said = "launcher.window.stopped" if self.result == 0 else "launcher.window.failed"
                self.status.configure(text=t(said))
                self.open_button.configure(state="disabled")
                self.stop_button.configure(text=t("launcher.window.close"), command=self.root.destroy)
            else:
                self.log.configure(state="normal")
                self.log.insert("end", line + "\n")
                self.log.see("end")
                self.log.configure(state="disabled")
        self.root.after(100, self._poll)

    def open(self) -> None:
        if self.url:
            webbrowser.open(self.url() if callable(self.url) else self.url)

    def stop(self) -> None:
        """Stop the studio; the window closes once it is down."""
        if not self.worker.is_alive():
            self.root.destroy()
            return
        self.stopped.set()
        self.status.configure(text=t("launcher.window.stopping"))
        self.stop_button.configure(state="disabled")

    def run(self) -> int:
        self.worker.start()
        self.root.after(100, self._poll)
        self.root.mainloop()
        self.stopped.set()
        self.worker.join(timeout=15)
        return self.result


def run_in_window(work: Work) -> int:
    """Run ``work`` (the launcher) behind a small window; raises ImportError without tkinter or a display."""
    try:
        window = LauncherWindow(work)
    except Exception as exc:  # tkinter.TclError: no display
        raise ImportError(str(exc)) from exc
    return window.run()
