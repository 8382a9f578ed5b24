"""Jobs that run in the background of the server process, independent of any browser tab.

The UI starts a job here and polls it; closing or reloading the tab only stops the polling,
never the job. A reopened tab finds running jobs with ``active()`` and attaches to them.
After the pages, the run writes the job's downloads, so "Done" means ready to download."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .i18n import as_text, text
from .jobs import Job, Progress, run_job

if TYPE_CHECKING:
    from .engines.base import Engine
    from .settings import Settings

KEEP_FINISHED = 16  # finished runs remembered for tabs that come back to them


@dataclass
class JobRun:
    """What a tab needs to show a job in progress: its latest news, kept as it comes."""

    job: Job
    label: str  # the engine's label
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    phase: str = "starting"  # starting | pages | exports | done
    progress: Progress | None = None
    status: str = ""  # news of slow preparation (download, load, compile)
    partial_text: str = ""  # the page in progress, as the engine streams it
    errors: list[str] = field(default_factory=list)  # documents and pages that failed, with why (i18n.Text)
    pages_done: int = 0  # pages finished in this run (all documents)
    error: Exception | None = None  # the run itself failed (an engine error, a bug)
    export_error: str = ""  # i18n.Text when the exporter's error carries a message
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.finished is None

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started


class BackgroundJobs:
    """Runs at most one job at a time per engine family (the GPU is one), in a thread each."""

    def __init__(self, settings: Settings, *, after_pages: Callable[[Job], None] | None = None):
        self.settings = settings
        self.after_pages = after_pages  # e.g. write the downloads; its time counts as the run's
        self._runs: dict[str, JobRun] = {}
        self._lock = threading.Lock()
        self._one_at_a_time = threading.Lock()

    def start(self, job: Job, engine: Engine, settings: Settings | None = None) -> JobRun:
        """Start ``job`` (or return its run when it is already running here) with the settings its
        engine was made with (a per-run runtime or OCR language), the studio's by default."""
        with self._lock:
            current = self._runs.get(job.id)
            if current is not None and current.running:
                return current
            run = JobRun(job=job, label=engine.info().label)
            self._runs[job.id] = run
            self._forget_old()
        run.thread = threading.Thread(
            target=self._work, args=(run, engine, settings or self.settings), name=f"ocr-job-{job.id}", daemon=True
        )
        run.thread.start()
        return run

    def get(self, job_id: str) -> JobRun | None:
        with self._lock:
            return self._runs.get(job_id)

    def active(self) -> list[JobRun]:
        """Runs still going, oldest first."""
        with self._lock:
            return [run for run in self._runs.values() if run.running]

    def cancel(self, job_id: str) -> bool:
        run = self.get(job_id)
        if run is None or not run.running:
            return False
        run.cancel.set()
        return True

    def wait(self, job_id: str, timeout: float | None = None) -> JobRun | None:
        """Block until the run ends (tests, the API); returns it."""
        run = self.get(job_id)
        if run is not None and run.thread is not None:
            run.thread.join(timeout)
        return run

    def _work(self, run: JobRun, engine: Engine, settings: Settings) -> None:
        try:
            with self._one_at_a_time:  # a queued run waits here, showing "starting"
                try:
                    run.phase = "pages"
                    run_job(run.job, engine, settings, progress=lambda event: self._news(run, event), cancel=run.cancel)
                except Exception as exc:  # recorded in job.json too; the tab shows it
                    run.error = exc
            # the downloads are written outside the queue: the next job's pages never wait for them
            if self.after_pages is not None and run.job.pages_done:
                run.phase = "exports"
                self.after_pages(run.job)
        except Exception as exc:  # the pages are safe; only the files are missing
            run.export_error = as_text(exc)
        finally:
            run.phase = "done"
            run.partial_text = ""
            run.finished = time.monotonic()

    @staticmethod
    def _news(run: JobRun, event: Progress) -> None:
        if event.error:
            if event.page is not None:
                why = text("core.runner.page_error", document=event.document, page=event.page, reason=event.error)
            else:
                why = text("core.runner.document_error", document=event.document, reason=event.error)
            run.errors.append(why)
        if event.status is not None:
            run.status = event.status
            return
        if event.partial_text is not None:
            run.partial_text = event.partial_text
            return
        if event.page is not None:
            run.pages_done += 1
            run.partial_text = ""
            run.status = ""
        run.progress = event

    def _forget_old(self) -> None:
        finished = [key for key, run in self._runs.items() if not run.running]
        for key in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._runs[key]
