"""One file of the hot folder through the same job code as ``ocr-studio convert``: a job in the
workspace (so a file seen before is a cache hit, and an interrupted one resumes), run by the
engine, then the chosen formats exported from the job's pages.

Kept apart from ``hot_folder`` so the watcher stays about files and folders, and apart from the
CLI so the studio's switch runs it too (through its background runner, one job at a time)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..exporters import FORMATS, ExportError, export_document
from ..i18n import Message, message
from ..jobs import Job, JobSpec, JobStore, run_job
from .hot_folder import Converted, HotFolderError

if TYPE_CHECKING:
    from ..engines.base import Engine, Task
    from ..settings import Settings

# Runs a job to its end and returns it as it then is: ``run_job`` in the CLI; the studio's
# background runner (one job at a time beside the tabs' jobs) in the studio.
RunJob = Callable[[Job], Job]


class JobConverter:
    """Converts one file: the watcher's ``Convert``."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        task: Task,
        formats: Sequence[str],
        *,
        clean: bool = False,
        run: RunJob | None = None,
        store: JobStore | None = None,
    ):
        unknown = [f for f in formats if f not in FORMATS]
        if unknown or not formats:
            raise ExportError(
                message("core.export.unknown_formats", formats=", ".join(unknown), choices=", ".join(FORMATS))
            )
        self.settings, self.engine, self.task = settings, engine, task
        self.formats = list(dict.fromkeys(formats))
        self.clean = clean
        self.store = store or JobStore(Path(settings.workspace))
        self.run = run or (lambda job: run_job(job, engine, settings))

    def __call__(self, path: Path, out_folder: Path, stem: str) -> Converted:
        from ..page_worker import isolated_call

        spec = JobSpec(files=[Path(path)], engine=self.engine.info().name, task=self.task)
        job = self.run(self.store.create(spec, self.engine, self.settings))
        document = job.documents[0] if job.documents else None
        if document is not None and document.error:
            raise HotFolderError(Message.from_json(document.error))
        if job.status != "done":
            reason = Message.from_json(job.message or message(f"core.status.{job.status}"))
            raise HotFolderError(message("watch.error.job_not_done", reason=reason))
        if document is None or not document.pages:
            raise HotFolderError(message("watch.error.no_pages", name=Path(path).name))
        named = dataclasses.replace(document, name=stem + Path(path).suffix)
        isolate = isolated_call(self.settings)  # the original is read in a page worker only
        try:
            written = export_document(
                named,
                out_folder,
                self.formats,
                page_image=job.page_image,
                source_path=job.input_path(0),
                jpeg_quality=self.settings.pdf_jpeg_quality,
                isolate=isolate,
                clean=self.clean,
            )
        finally:
            close = getattr(isolate, "close", None)  # a worker kept for the export ends with it
            if close is not None:
                close()
        failures = job.page_errors[0] if job.page_errors else {}
        problems: list[Message | str] = [
            message("watch.error.page_failed", page=number, reason=Message.from_json(reason))
            for number, reason in sorted(failures.items())
        ]
        # a format that could not be made (its .failed.txt says why) is a problem too, not a success
        problems += [Message.from_json(reason) for reason in getattr(written, "failed", {}).values()]
        return Converted(written=written, problems=problems)
