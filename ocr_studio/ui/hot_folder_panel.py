"""The studio's hot-folder switch: two folders, the formats, start and stop, and what it did.

One hot folder per studio (it belongs to the server, not to a tab: closing the tab leaves it
running, every tab shows it). Its files run as ordinary jobs through the studio's background
runner, one at a time beside the jobs started from the tabs, so the GPU is never asked for two
jobs at once and the files show up in the history. The engine, task and OCR languages are the
ones chosen in the inputs when it starts.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from ..engines import Task, get_engine
from ..exporters import FORMATS
from ..i18n import Message, error_text, render, t
from ..library.hot_folder import POLL_SECONDS, HotFolder, WatchEvent
from ..library.job_converter import JobConverter
from ..runtime import availability
from . import viewer
from .language import StaticText, localized

if TYPE_CHECKING:
    from ..jobs import Job
    from .app import Studio

STATUS_SECONDS = 2.0
RECENT = 5  # events shown under the status


class HotFolderSwitch:
    """The running hot folder of a studio, if any, and its latest news."""

    def __init__(self, studio: Studio):
        self.studio = studio
        self.settings = studio.settings
        self.watcher: HotFolder | None = None
        self.stop_event: threading.Event | None = None
        self.thread: threading.Thread | None = None
        self.events: deque[Message] = deque(maxlen=RECENT)
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def start(
        self,
        in_dir: str,
        out_dir: str,
        formats: list[str] | None,
        engine_name: str,
        task: str | None,
        languages: list[str] | str | None = None,
    ) -> None:
        """Start watching; raises ``ValueError`` (or the engine's or the folder's own error) with a
        message the user can act on. A hot folder already running is stopped first."""
        if not (in_dir or "").strip() or not (out_dir or "").strip():
            raise ValueError(t("watch.error.need_folders"))
        chosen = [f for f in (formats or []) if f in FORMATS]
        if not chosen:
            raise ValueError(t("watch.ui.no_formats"))
        settings = self.settings
        wanted = "+".join(languages) if isinstance(languages, list | tuple) else (languages or "")
        if wanted and wanted != settings.ocr_languages:
            settings = dataclasses.replace(settings, ocr_languages=wanted)
        engine = get_engine(engine_name, settings)
        info = availability.checked(engine, settings)
        if not info.available:
            raise ValueError(t("ui.request.unavailable", engine=render(info.label), reason=render(info.reason)))
        chosen_task = Task(task) if task else info.default_task
        if chosen_task not in info.tasks or chosen_task is Task.REGION:
            chosen_task = info.default_task

        def run(job: Job) -> Job:  # through the studio's runner: one job at a time, in the history
            self.studio.background.start(job, engine, settings)
            self.studio.background.wait(job.id)
            return self.studio.store.load(job.id)

        converter = JobConverter(settings, engine, chosen_task, chosen, run=run, store=self.studio.store)
        watcher = HotFolder(Path(in_dir.strip()), Path(out_dir.strip()), converter, on_event=self._news)
        self.stop()
        with self._lock:
            self.events.clear()
            self.watcher, self.stop_event = watcher, threading.Event()
            self.thread = threading.Thread(
                target=watcher.run, args=(self.stop_event, POLL_SECONDS), name="ocr-hot-folder", daemon=True
            )
            self.thread.start()

    def stop(self) -> None:
        with self._lock:
            if self.stop_event is not None:
                self.stop_event.set()
            thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)  # a file being converted finishes in the background

    def _news(self, event: WatchEvent) -> None:
        self.events.append(event.message())

    def status_markdown(self) -> str:
        """What the hot folder is doing, in the current language."""
        watcher = self.watcher
        if watcher is None:
            return t("watch.ui.off")
        names = {"folder": viewer._md_text(str(watcher.in_dir)), "out": viewer._md_text(str(watcher.out_dir))}
        counts = {"converted": watcher.converted, "failed": watcher.failed}
        if self.running and not (self.stop_event and self.stop_event.is_set()):
            text = t("watch.ui.running", pending=watcher.pending, **names, **counts)
        else:
            text = t("watch.ui.stopped", folder=names["folder"], **counts)
        if self.events:
            text += (
                "\n\n"
                + t("watch.ui.recent")
                + "\n"
                + "\n".join(f"- {viewer._md_text(event.render())}" for event in reversed(self.events))
            )
        return text


class HotFolderPanel:
    """The switch's components and handlers (``build`` places them in the Blocks)."""

    def __init__(self, studio: Studio):
        self.studio = studio
        self.settings = studio.settings
        self.switch = HotFolderSwitch(studio)

    @localized
    def start(self, in_dir, out_dir, formats, engine_name, task, languages=None, request: gr.Request | None = None):
        try:
            self.switch.start(in_dir, out_dir, formats, engine_name, task, languages)
        except Exception as exc:  # a wrong folder, an engine that cannot run: said, nothing started
            reason = viewer._md_text(error_text(exc))
            return {self.status: t("watch.ui.not_started", reason=reason), self.timer: gr.Timer(active=False)}
        return {self.status: self.switch.status_markdown(), self.timer: gr.Timer(active=True)}

    @localized
    def stop(self, request: gr.Request | None = None) -> dict:
        self.switch.stop()
        return {self.status: self.switch.status_markdown(), self.timer: gr.Timer(active=False)}

    @localized
    def refresh(self, request: gr.Request | None = None) -> dict:
        active = self.switch.running
        return {self.status: self.switch.status_markdown(), self.timer: gr.Timer(active=active)}

    def build(self, app: gr.Blocks, static: StaticText, inputs: list[Any], free: dict[str, Any]) -> HotFolderPanel:
        """The panel, folded away (most sessions never use it); ``inputs``: engine, task, OCR languages."""
        with gr.Accordion(static("watch.ui.title"), open=False, elem_id="hot-folder"):
            gr.Markdown(static("watch.ui.help"))
            with gr.Row():
                in_dir = gr.Textbox(
                    label=static("watch.ui.in_folder"),
                    placeholder=static("watch.ui.in_placeholder"),
                    elem_id="hot-folder-in",
                )
                out_dir = gr.Textbox(
                    label=static("watch.ui.out_folder"),
                    placeholder=static("watch.ui.out_placeholder"),
                    elem_id="hot-folder-out",
                )
            formats = gr.CheckboxGroup(
                [(static(f"core.format.{fmt}"), fmt) for fmt in FORMATS],
                value=[FORMATS[0]],  # Markdown
                label=static("watch.ui.formats"),
                elem_id="hot-folder-formats",
            )
            with gr.Row():
                start = gr.Button(
                    static("watch.ui.start"), variant="primary", elem_id="hot-folder-start", scale=0, min_width=200
                )
                stop = gr.Button(static("watch.ui.stop"), elem_id="hot-folder-stop", scale=0, min_width=140)
            self.status = gr.Markdown(static("watch.ui.off"), elem_id="hot-folder-status")
            self.timer = gr.Timer(STATUS_SECONDS, active=False)
        outputs = [self.status, self.timer]
        # not in the studio's API: reading and writing folders of the user's choosing is for the person
        # at the page (the CLI's `watch` is the scriptable way)
        start.click(self.start, [in_dir, out_dir, formats, *inputs], outputs, api_visibility="private", **free)
        stop.click(self.stop, None, outputs, api_visibility="private", **free)
        self.timer.tick(self.refresh, None, outputs, api_visibility="private", **free)
        app.load(self.refresh, None, outputs, api_visibility="private", **free)  # a tab opened while it runs
        return self
