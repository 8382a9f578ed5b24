"""Persisted jobs: files + engine + settings, run page by page, written as they finish.

CONTRACT (implementation pending): the names and signatures below are what the
CLI and UI use. Keep them.

Workspace layout (``settings.workspace``)::

    jobs/<job_id>/job.json                 spec, status, per-document state (atomic writes)
    jobs/<job_id>/docs/<NN>-<stem>/page-0001.json   PageResult.to_dict()
    jobs/<job_id>/docs/<NN>-<stem>/page-0001.png    the page image the engine saw
    jobs/<job_id>/inputs/...               copies of the input files (so a job can resume
                                           and reopen after the uploads are gone)

``job_id`` is a hash of the inputs' content + engine.settings_key() + task + page
range + dpi + region: the same request hits the same job (the cache).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .results import DocumentResult

if TYPE_CHECKING:
    from PIL import Image

    from .engines.base import Engine, Task
    from .settings import Settings


@dataclass
class JobSpec:
    files: list[Path]
    engine: str
    task: Task
    pages: str | None = None  # page range, "1-3,7"; None = all
    region: tuple[float, float, float, float] | None = None
    password: str | None = None  # for encrypted PDFs; never written to disk


@dataclass
class Progress:
    """Sent after every page (and once per document that fails to open)."""

    document: str  # file name
    document_index: int
    document_count: int
    page: int | None  # page number just finished (None for a document-level event)
    pages_done: int  # in this document
    pages_total: int  # in this document (after the page range)
    message: str = ""
    error: str | None = None
    partial_text: str | None = None  # streaming text of the page in progress


@dataclass
class Job:
    id: str
    dir: Path
    spec: JobSpec
    status: str  # "pending" | "running" | "done" | "cancelled" | "failed" | "interrupted"
    created: float
    documents: list[DocumentResult] = field(default_factory=list)

    def page_image_path(self, document_index: int, page_number: int) -> Path:
        raise NotImplementedError

    def page_image(self, document_index: int, page_number: int) -> Image.Image:
        raise NotImplementedError


class JobStore:
    def __init__(self, workspace: Path): ...

    def create(self, spec: JobSpec, engine: Engine, settings: Settings) -> Job:
        """A new job, or the existing one with the same key (cache hit)."""
        raise NotImplementedError

    def load(self, job_id: str) -> Job:
        raise NotImplementedError

    def history(self, limit: int = 50) -> list[Job]:
        """Jobs, newest first (documents loaded lazily is fine)."""
        raise NotImplementedError


def run_job(
    job: Job,
    engine: Engine,
    settings: Settings,
    *,
    progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
) -> Job:
    """Run (or resume) ``job``: skips pages already on disk, writes each page as soon
    as it is done, stops after the current batch when ``cancel`` is set. A document
    that fails to open is recorded (DocumentResult.error) and the others go on."""
    raise NotImplementedError
