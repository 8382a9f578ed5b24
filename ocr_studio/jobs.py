"""Persisted jobs: files + engine + settings, run page by page, written as they finish.

Workspace layout (``settings.workspace``)::

    jobs/<job_id>/job.json                 spec, status, per-document state (atomic writes)
    jobs/<job_id>/docs/<NN>-<stem>/page-0001.json   PageResult.to_dict()
    jobs/<job_id>/docs/<NN>-<stem>/page-0001.png    the page image the engine saw
    jobs/<job_id>/inputs/<NN>.<kind>       copies of the input files (so a job can resume and
                                           reopen after the uploads are gone), under neutral
                                           names; only PDFs and images are ever stored

The server never serves the ``jobs`` folder (see SECURITY.md). Pages are opened, rendered and,
for CPU engines, recognised in a worker process (``page_worker``) with a time budget per page.
For engines that run in this process (GPU, remote) a thread renders a few pages ahead and
another writes the finished ones, so the engine does not wait on MuPDF or the disk.

``job_id`` is a hash of the inputs' content + engine.settings_key() + task + page
range + dpi + region: the same request hits the same job (the cache).

A page's JSON is written (atomically, after its PNG) as soon as the engine returns it
(the writer is at most one page behind the engine), so whatever happens next — cancel, an engine
failure, a killed process — every finished page survives (a kill loses at most the page
being written), and running the job again only does the pages still missing.
The password of an encrypted PDF lives in memory only (``JobSpec.password``).
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import shutil
import stat
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .i18n import LocalizedError, Message, as_text, error_message, loaded, message, stored, text
from .results import DocumentResult, PageResult

if TYPE_CHECKING:
    from PIL import Image

    from .documents import Document, Page
    from .engines.base import Engine, Task
    from .page_worker import PageWorker
    from .settings import Settings

JOB_FILE = "job.json"
JOB_FORMAT = 1  # bump when the key or the layout changes meaning
HASH_CHUNK = 1024 * 1024
JOB_ID = r"[0-9a-f]{8,64}"
STATUSES = ("pending", "running", "done", "cancelled", "failed", "interrupted", "damaged")
RENDER_AHEAD = 4  # pages rendered before the engine asks for them (a Letter page at 200 DPI is ~8 MB)


class JobError(LocalizedError):
    """A job cannot be found or read. The message says which and why."""


class WorkspaceError(JobError):
    """The workspace cannot be written (read-only, full, gone). The message says where and why."""

    @classmethod
    def from_os_error(cls, exc: OSError, workspace: Path) -> WorkspaceError:
        why = exc.strerror or str(exc)
        return cls(message("core.jobs.workspace_unwritable", workspace=str(workspace), detail=why))


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
    """Sent after every page (and once per document that fails to open).

    Also sent, with ``page=None`` and ``error=None``, once per document when it has
    been opened (``pages_done`` then counts pages already on disk from an earlier
    run, so progress bars can start there), and with ``partial_text`` set while an
    engine streams the text of ``page`` (the page in progress, not yet finished), and
    with ``status`` set while the engine prepares (downloads, loads or compiles a model).
    """

    document: str  # file name
    document_index: int  # 0-based
    document_count: int
    page: int | None  # page number just finished (None for a document-level event)
    pages_done: int  # in this document
    pages_total: int  # in this document (after the page range)
    message: str = ""
    error: str | None = None
    partial_text: str | None = None  # streaming text of the page in progress
    status: str | None = None  # news of slow preparation: downloading, loading, compiling a model


@dataclass(frozen=True)
class InputFile:
    """One input as the job keeps it: the name the user knows, where it came from,
    its copy inside the job folder and the folder its pages are written to."""

    name: str
    source: str  # the path the user gave
    sha256: str
    size: int
    copy: str | None  # relative to the job folder; None when the file could not be copied
    folder: str  # docs/<NN>-<stem>, relative to the job folder

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "sha256": self.sha256,
            "size": self.size,
            "copy": self.copy,
            "folder": self.folder,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputFile:
        return cls(
            name=str(data["name"]),
            source=str(data.get("source", "")),
            sha256=str(data.get("sha256", "")),
            size=int(data.get("size", 0)),
            copy=data.get("copy"),
            folder=str(data["folder"]),
        )


@dataclass
class Job:
    id: str
    dir: Path
    spec: JobSpec
    status: str  # "pending" | "running" | "done" | "cancelled" | "failed" | "interrupted"
    created: float
    documents: list[DocumentResult] = field(default_factory=list)
    message: str = ""  # why the job failed or stopped (i18n.Text when it came from a catalog)
    updated: float = 0.0
    inputs: list[InputFile] = field(default_factory=list)
    # per document: page number -> why that page failed (it has a PageResult with the warning); i18n.Text
    page_errors: list[dict[int, str]] = field(default_factory=list)

    def page_image_path(self, document_index: int, page_number: int) -> Path:
        """Where the PNG of a page (``document_index`` 0-based, ``page_number`` 1-based) is."""
        return self.dir / self.inputs[document_index].folder / f"page-{page_number:04d}.png"

    def page_image(self, document_index: int, page_number: int) -> Image.Image:
        """The page image the engine saw; raises JobError when it was never saved or is not a whole
        PNG file of its own (cut short, a folder, a link: see ``page_image_whole``)."""
        from PIL import Image

        path = self.page_image_path(document_index, page_number)
        try:
            if not page_image_whole(path):
                raise OSError(message("files.page.not_whole").render())
            with Image.open(path) as image:
                return image.convert("RGB")
        except OSError as exc:
            name = self.inputs[document_index].name
            raise JobError(message("core.jobs.no_page_image", page=page_number, name=name, detail=str(exc))) from exc

    def input_path(self, document_index: int) -> Path | None:
        """The job's own copy of an input file (what exporters read the original pages from),
        or None when it was never copied or is gone."""
        item = self.inputs[document_index]
        path = self.dir / item.copy if item.copy else None
        return path if path is not None and path.is_file() else None

    @property
    def finished(self) -> bool:
        return self.status == "done"

    @property
    def pages_done(self) -> int:
        return sum(len(doc.pages) for doc in self.documents)


class JobStore:
    """The jobs of one workspace: create (or find) by key, load, list."""

    def __init__(self, workspace: Path):
        self.workspace = Path(workspace)
        self.root = self.workspace / "jobs"

    def create(self, spec: JobSpec, engine: Engine, settings: Settings) -> Job:
        """A new job, or the existing one with the same key (cache hit). A file that is neither
        a PDF nor an image is not stored (the run reports it); WorkspaceError when the
        workspace cannot be written."""
        try:
            return self._create(spec, engine, settings)
        except OSError as exc:
            raise WorkspaceError.from_os_error(exc, self.workspace) from exc

    def _create(self, spec: JobSpec, engine: Engine, settings: Settings) -> Job:
        from .documents import not_supported_message, sniff

        files = [Path(f) for f in spec.files]
        digests = [_file_digest(f) for f in files]
        key = _job_key(spec, engine, settings, [d for d, _ in digests])
        job_id = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]
        job_dir = self.root / job_id
        if (job_dir / JOB_FILE).is_file():
            try:
                job = self.load(job_id)
            except JobError:  # a damaged job file: written again below, finished pages kept
                pass
            else:
                job.spec.password = spec.password
                return job

        inputs = []
        documents = []
        for index, (path, (digest, size)) in enumerate(zip(files, digests, strict=True)):
            stem = _safe_name(path.stem) or "document"
            folder = f"docs/{index + 1:02d}-{stem}"
            document = _new_document_state(path.name)
            copy = None
            # too large or unreadable: documents.py says so when the job runs
            if size <= settings.limits.max_file_bytes and not digest.startswith("unreadable:"):
                kind = sniff(path)
                if kind is None:
                    document["refused"] = stored(not_supported_message(path.name))
                else:
                    copy = _copy_input(path, job_dir / "inputs", f"{index + 1:02d}.{kind}")
            (job_dir / folder).mkdir(parents=True, exist_ok=True)
            inputs.append(
                InputFile(name=path.name, source=str(path), sha256=digest, size=size, copy=copy, folder=folder)
            )
            documents.append(document)
        now = time.time()
        state = {
            "format": JOB_FORMAT,
            "id": job_id,
            "key": key,
            "status": "pending",
            "message": "",
            "created": now,
            "updated": now,
            "pid": None,
            "spec": {
                "files": [str(f) for f in files],
                "engine": spec.engine,
                "task": _task_value(spec.task),
                "pages": spec.pages,
                "region": list(spec.region) if spec.region is not None else None,
            },
            "settings": {k: v for k, v in settings.public_dict().items() if not k.startswith("remote_api")},
            "inputs": [i.to_dict() for i in inputs],
            "documents": documents,
        }
        _write_json(job_dir / JOB_FILE, state)
        job = _job_from_state(job_dir, state)
        job.spec.password = spec.password
        return job

    def load(self, job_id: str) -> Job:
        """The job as it is on disk, finished pages included; never runs anything."""
        if not re.fullmatch(JOB_ID, job_id or ""):
            raise JobError(message("core.jobs.not_a_job_id", job_id=repr(job_id)))
        job_dir = self.root / job_id
        state = _read_state(job_dir)
        try:
            return _job_from_state(job_dir, state)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            detail = f"{type(exc).__name__}: {exc}"
            raise JobError(
                message("core.jobs.job_file_damaged_error", path=str(job_dir / JOB_FILE), detail=detail)
            ) from exc

    def delete(self, job_id: str) -> None:
        """Remove a job for good: its folder (input copies, pages, page images) and its downloads;
        the delete listeners (the search index) drop what they hold of it. A job that runs (here or
        in another process) is refused: cancel it first. The folder is renamed away first, so the
        history never lists half a job. JobError when ``job_id`` is not a job's id, there is no
        such job or it runs."""
        if not re.fullmatch(JOB_ID, job_id or ""):
            raise JobError(message("core.jobs.not_a_job_id", job_id=repr(job_id)))
        job_dir = self.root / job_id
        if not job_dir.is_dir():
            raise JobError(message("core.jobs.no_such_job", job_id=job_id, folder=str(self.root)))
        with _LOCKS_GUARD:
            lock = _LOCKS.setdefault(job_id, threading.Lock())
        if not lock.acquire(blocking=False):  # run_job holds it while the job runs in this process
            raise JobError(message("library.jobs.running", job_id=job_id))
        try:
            state = _raw_state(job_dir)
            if (
                isinstance(state, dict)
                and state.get("status") == "running"
                and _is_alive(state.get("pid"), job_id, state.get("pid_started"))
            ):
                raise JobError(message("library.jobs.running", job_id=job_id))
            trash = self.root / f".deleted-{job_id}-{os.getpid()}-{time.monotonic_ns()}"
            try:
                os.replace(job_dir, trash)
            except OSError as exc:
                raise JobError(message("library.jobs.delete_failed", job_id=job_id, detail=str(exc))) from exc
            problems: list[str] = []
            for folder in (trash, self.workspace / "exports" / job_id):
                try:
                    shutil.rmtree(folder)
                except FileNotFoundError:
                    pass
                except OSError as exc:  # a file held open elsewhere (Windows): the rest is gone, say what is left
                    problems.append(str(exc))
        finally:
            lock.release()
        for listener in list(_DELETE_LISTENERS):
            listener(self.workspace, job_id)
        if problems:
            raise JobError(message("library.jobs.delete_failed", job_id=job_id, detail="; ".join(problems[:3])))

    def history(self, limit: int = 50, *, pages: bool = True) -> list[Job]:
        """Jobs, newest first. A job whose files cannot be read is listed with status "damaged"
        and says why; the others are shown as usual. ``pages=False`` leaves the page results
        unread (``documents`` then holds names only): enough for a list of jobs."""
        if not self.root.is_dir():
            return []
        found: list[tuple[float, Path, dict[str, Any] | None, str]] = []
        for job_dir in self.root.iterdir():
            if not job_dir.is_dir() or not re.fullmatch(JOB_ID, job_dir.name):
                continue
            try:
                state = _read_state(job_dir)
                found.append((float(state.get("created", 0)), job_dir, state, ""))
            except (JobError, TypeError, ValueError) as exc:
                raw = _raw_state(job_dir)
                created = raw.get("created") if isinstance(raw, dict) else None
                created = float(created) if isinstance(created, int | float) else _mtime(job_dir)
                found.append((created, job_dir, None, as_text(exc)))
        found.sort(key=lambda item: (item[0], item[1].name), reverse=True)
        jobs = []
        for created, job_dir, state, problem in found[:limit]:
            try:
                if state is None:
                    raise JobError(problem)
                jobs.append(_job_from_state(job_dir, state, pages=pages))
            except Exception as exc:  # one bad field never hides the other jobs
                raw = state if state is not None else _raw_state(job_dir)
                jobs.append(_damaged_job(job_dir, raw, created, as_text(exc) or type(exc).__name__))
        return jobs

    def killed(self, limit: int = 50) -> list[Job]:
        """Jobs whose run was killed (recorded as running by a process that is gone: a crash, a
        kill -9, a power cut), newest first: what a restarted studio resumes by itself."""
        found = []
        for job in self.history(limit=limit, pages=False):
            raw = _raw_state(job.dir) if job.status == "interrupted" else None
            if isinstance(raw, dict) and raw.get("status") == "running":
                found.append(job)
        return found


RESUMABLE = ("interrupted", "cancelled")
# what one run of a job may set apart from the studio's settings (the UI's runtime and OCR
# languages; the DPI is part of the job's key): a resumed run uses the job's own
_RUN_SETTINGS = ("runtime", "ocr_languages", "dpi")


def resume_plan(job: Job, settings: Settings) -> tuple[Engine, Settings]:
    """The engine and settings that go on with ``job`` where it stopped, from its own copies of its
    inputs (``jobs/<id>/inputs/``): no file needs dropping again. The settings are the job's own
    (its runtime, OCR languages, DPI) and the engine must still be the one its pages came from.
    JobError says why not: not interrupted or cancelled, an unfinished document's copy is gone,
    the engine cannot run or its settings changed since."""
    import dataclasses

    from .engines import get_engine

    if job.status not in RESUMABLE:
        raise JobError(message("files.resume.not_resumable", status=message(f"core.status.{job.status}")))
    state = _read_state(job.dir)
    for index, (item, doc) in enumerate(zip(job.inputs, state["documents"], strict=True)):
        pages = doc.get("pages")
        finished = pages is not None and all(_page_done(job.dir / item.folder, n, doc) for n in pages)
        if item.copy and not finished and job.input_path(index) is None:
            raise JobError(message("files.resume.input_gone", name=item.name))
    own = state.get("settings") if isinstance(state.get("settings"), dict) else {}
    changes = {name: own[name] for name in _RUN_SETTINGS if name in own and own[name] is not None}
    try:
        run_settings = dataclasses.replace(settings, **changes)
        engine = get_engine(job.spec.engine, run_settings)
    except Exception as exc:
        raise JobError(
            message("files.resume.engine_unavailable", engine=job.spec.engine, reason=error_message(exc))
        ) from exc
    made_with = (state.get("key") or {}).get("engine_settings")
    now = json.loads(json.dumps(engine.settings_key(), sort_keys=True, default=str))
    if made_with is not None and json.loads(json.dumps(made_with, sort_keys=True, default=str)) != now:
        raise JobError(message("files.resume.engine_changed", engine=job.spec.engine))
    return engine, run_settings


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
    that fails to open is recorded (DocumentResult.error) and the others go on.

    An EngineError ends the job with status "failed" (finished pages kept) instead of
    raising. A second call for a job already running in this process waits for the
    first to finish, then returns at once if it is done (and every page file is whole:
    a missing or damaged one is done again). WorkspaceError when the workspace cannot be
    written."""
    try:
        return _run_job(job, engine, settings, progress, cancel)
    except OSError as exc:
        raise WorkspaceError.from_os_error(exc, job.dir.parent.parent) from exc


def _run_job(
    job: Job,
    engine: Engine,
    settings: Settings,
    progress: Callable[[Progress], None] | None,
    cancel: threading.Event | None,
) -> Job:
    from .engines.base import EngineError

    with _running(job.id):
        state = _read_state(job.dir)
        redo = _missing_pages(job.dir, state) if state["status"] == "done" else []
        if state["status"] == "done" and not redo and not _retry_with_password(state, job.spec.password):
            return _refresh(job, state)

        state.update(status="running", message="", pid=os.getpid(), pid_started=_OWN_START, updated=time.time())
        _write_json(job.dir / JOB_FILE, state)
        try:
            run = _Run(job, state, engine, settings, progress or (lambda _p: None), cancel or threading.Event())
            outcome = run.documents()
            stopped = stored(text("core.jobs.cancelled"))
            state.update(status=outcome, message=stopped if outcome == "cancelled" else "")
        except EngineError as exc:
            state.update(status="failed", message=stored(as_text(exc)))
        except BaseException as exc:  # a bug or an interrupt: record it, keep the pages, let it surface
            interrupted = isinstance(exc, KeyboardInterrupt | SystemExit)
            state.update(status="interrupted" if interrupted else "failed", message=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            state.update(pid=None, pid_started=None, updated=time.time())
            _write_json(job.dir / JOB_FILE, state)
        return _refresh(job, state)


class _Run:
    """One pass over a job's documents; owns the bookkeeping that run_job would clutter."""

    def __init__(
        self,
        job: Job,
        state: dict[str, Any],
        engine: Engine,
        settings: Settings,
        progress: Callable[[Progress], None],
        cancel: threading.Event,
    ):
        self.job, self.state, self.engine, self.settings = job, state, engine, settings
        self.progress, self.cancel = progress, cancel
        self.inputs = [InputFile.from_dict(i) for i in state["inputs"]]
        self.task = _task(state["spec"]["task"])
        region = state["spec"].get("region")
        self.region = tuple(region) if region else None
        self.engine_name = engine.info().name
        # the job file is written from the job's thread and from a document's writer thread
        self.state_lock = threading.RLock()

    def save_state(self) -> None:
        with self.state_lock:
            self.state["updated"] = time.time()
            _write_json(self.job.dir / JOB_FILE, self.state)

    def documents(self) -> str:
        """Every document in order; "done", or "cancelled" when asked to stop."""
        from .page_worker import Cancelled, PageWorker

        where = _where_pages_run(self.engine, self.settings)
        worker = PageWorker(self.settings, self.cancel) if where != "here" else None
        try:
            for index, item in enumerate(self.inputs):
                if self.cancel.is_set():
                    return "cancelled"
                doc_state = self.state["documents"][index]
                folder = self.job.dir / item.folder
                if doc_state.get("refused") and not doc_state.get("error"):
                    self.document_failed(index, item, doc_state, loaded(doc_state["refused"]))
                    continue  # never stored, never opened
                if doc_state.get("error") and not (doc_state.get("needs_password") and self.job.spec.password):
                    continue  # recorded before; opening it again would fail the same way
                if doc_state.get("pages") is not None and all(
                    _page_done(folder, n, doc_state) for n in doc_state["pages"]
                ):
                    continue
                if worker is None:
                    document = self.open(index, item, doc_state)
                    if document is None:
                        continue
                    with document:
                        finished = self.pages_of(index, item, doc_state, document, folder)
                else:
                    if self.open(index, item, doc_state, worker=worker) is None:
                        continue
                    pages = self.pages_in_worker if where == "worker" else self.pages_of
                    finished = pages(index, item, doc_state, worker, folder)
                if not finished:
                    return "cancelled"
        except Cancelled:
            return "cancelled"
        finally:
            if worker is not None:
                worker.close()
        return "done"

    def open(
        self, index: int, item: InputFile, doc_state: dict[str, Any], *, worker: PageWorker | None = None
    ) -> Document | PageWorker | None:
        """The document, opened here or (with ``worker``) in the page worker; None when it fails."""
        from .documents import DocumentError, open_document

        path = self.job.dir / item.copy if item.copy else Path(item.source)
        try:
            if worker is not None:
                worker.open(path, item.name, self.job.spec.password)
                return worker
            document = open_document(path, limits=self.settings.limits, password=self.job.spec.password)
            document.name = item.name
            return document
        except DocumentError as exc:
            reason = as_text(_renamed(exc.message, path, item.name))
            self.document_failed(index, item, doc_state, reason, needs_password=exc.needs_password)
        except Exception as exc:  # one unreadable file never stops the others
            from .page_worker import Cancelled

            if isinstance(exc, Cancelled):
                raise
            reason = text("core.jobs.open_failed", name=item.name, detail=error_message(exc))
            self.document_failed(index, item, doc_state, reason)
        return None

    def document_failed(
        self, index: int, item: InputFile, doc_state: dict[str, Any], reason: str, *, needs_password: bool = False
    ) -> None:
        doc_state.update(error=stored(reason), needs_password=needs_password)
        self.save_state()
        self.emit(index, item, page=None, done=0, total=0, error=reason, message=reason)

    def plan(
        self, index: int, item: InputFile, doc_state: dict[str, Any], page_count: int, folder: Path
    ) -> tuple[list[int], int, int] | None:
        """(the pages still to do, pages done, pages wanted) of an opened document; None when
        its page range is wrong (recorded as the document's error)."""
        from .documents import DocumentError, check_page_budget, parse_page_range

        try:
            numbers = parse_page_range(self.job.spec.pages, page_count)
            check_page_budget(numbers, self.settings.limits)
        except DocumentError as exc:
            self.document_failed(index, item, doc_state, as_text(exc))
            return None
        doc_state.update(page_count=page_count, pages=numbers, error=None, needs_password=False)
        self.save_state()
        folder.mkdir(parents=True, exist_ok=True)
        todo = [n for n in numbers if not _page_done(folder, n, doc_state)]
        done, total = len(numbers) - len(todo), len(numbers)
        self.emit(index, item, page=None, done=done, total=total, message=text("core.jobs.opened", name=item.name))
        return todo, done, total

    def page_failed(
        self,
        index: int,
        item: InputFile,
        doc_state: dict[str, Any],
        folder: Path,
        failure: PageResult,
        done: int,
        total: int,
    ) -> None:
        """Record a page that could not be done (its PageResult carries why) and tell the caller."""
        failure.engine, failure.task = self.engine_name, self.task.value
        with self.state_lock:
            doc_state.setdefault("failed_pages", {})[str(failure.page_number)] = stored(failure.warnings[0])
            self.save_state()
        _write_page(folder, failure, None)
        self.emit(index, item, page=failure.page_number, done=done, total=total, error=failure.warnings[0])

    def pages_in_worker(
        self, index: int, item: InputFile, doc_state: dict[str, Any], worker: PageWorker, folder: Path
    ) -> bool:
        """The missing pages of one document, each rendered and recognised in the worker (CPU
        engines); a page over budget fails alone. False when cancelled."""
        from .documents import Page
        from .page_worker import Cancelled, PageFailed

        planned = self.plan(index, item, doc_state, worker.page_count, folder)
        if planned is None:
            return True
        todo, done, total = planned
        for number in todo:
            if self.cancel.is_set():
                return False

            def on_text(text: str, number: int = number, done: int = done) -> None:
                self.emit(index, item, page=number, done=done, total=total, partial_text=text)

            try:
                rendered = worker.recognize(number, self.engine_name, self.task, self.region, on_text=on_text)
            except Cancelled:
                return False
            except PageFailed as exc:
                done += 1
                failure = PageResult(page_number=number, width=0, height=0, warnings=[as_text(exc)])
                self.page_failed(index, item, doc_state, folder, failure, done, total)
                continue
            page = Page.from_image(rendered.image, number=number, dpi=self.settings.dpi, document_name=item.name)
            page.warnings = rendered.warnings
            assert rendered.result is not None
            self.finish(page, rendered.result)
            _write_page(folder, rendered.result, rendered.image)
            self.written(index, rendered.result)
            done += 1
            self.emit(index, item, page=number, done=done, total=total)
        return not self.cancel.is_set()

    def pages_of(
        self, index: int, item: InputFile, doc_state: dict[str, Any], document: Document | PageWorker, folder: Path
    ) -> bool:
        """The missing pages of one document, rendered here or in the worker and recognised by
        the engine in this process; False when cancelled.

        Pages from the worker (GPU and remote engines) are rendered ahead in one thread and
        written behind in another, so the engine does not wait on MuPDF or the disk: a GPU's
        continuous batching keeps decoding, a server's window of pages stays full. The writer
        is one page behind: the engine's next result waits for the page before it to be on
        disk, so a cancel that comes while page N is written (or reported) keeps exactly the
        pages it kept when the writes were in line, and the engine reads at most one page more.
        A document opened here (a CPU engine the worker cannot build) is rendered and written
        in this thread, as the engine asks."""
        from .engines.base import EngineError, RecognizeRequest
        from .page_worker import PageWorker

        planned = self.plan(index, item, doc_state, document.page_count, folder)
        if planned is None:
            return True
        todo, done, total = planned
        pipelined = isinstance(document, PageWorker)
        writer = _PageWriter(behind=pipelined)
        tally = [done]  # pages done so far; only the writer changes it
        stopped = [False]  # whether a cancel had come when the last page was written and reported

        def failed(failure: PageResult) -> None:  # a page that could not be rendered; in the writer
            tally[0] += 1
            self.page_failed(index, item, doc_state, folder, failure, tally[0], total)

        def written(page: Page, result: PageResult) -> None:  # a finished page; in the writer
            self.finish(page, result)
            _write_page(folder, result, page.image)
            self.written(index, result)
            page.release()
            tally[0] += 1
            self.emit(index, item, page=page.number, done=tally[0], total=total)
            stopped[0] = self.cancel.is_set()  # where the loop in line looked: no page after this one

        source = _PageSource(document, todo, self.cancel, ahead=RENDER_AHEAD if pipelined else 0)
        in_flight: deque[Page] = deque()  # pages the engine has taken, oldest first

        def pulled() -> Iterator[Page]:
            """Pages as the engine asks for them; a page that could not be rendered is recorded
            as failed at that moment, as it always was, and never reaches the engine."""
            for page in source:
                if isinstance(page, PageResult):
                    writer.put(partial(failed, page))
                    continue
                in_flight.append(page)
                yield page

        def on_text(text: str) -> None:
            page = in_flight[0].number if in_flight else None
            self.emit(index, item, page=page, done=tally[0], total=total, partial_text=text)

        def on_status(message: str) -> None:
            self.emit(index, item, page=None, done=tally[0], total=total, message=message, status=message)

        request = RecognizeRequest(self.task, self.region, on_text=on_text, on_status=on_status)  # type: ignore[arg-type]
        cancelled = False
        source.start()  # the first pages render while the engine loads its model
        try:
            results = self.engine.recognize_stream(pulled(), request)
            try:
                for result in results:
                    if not in_flight:
                        raise EngineError(message("core.jobs.too_many_results", engine=self.engine_name))
                    page = in_flight.popleft()
                    writer.wait()  # the page before this one is on disk
                    writer.check()  # a write that failed (the disk is full) stops the job, as before
                    if stopped[0]:  # cancelled while that page was written: this one never came before
                        page.release()
                        cancelled = True
                        break
                    writer.put(partial(written, page, result))
                    if self.cancel.is_set():
                        cancelled = True
                        break
            finally:
                results.close()  # a cancel stops the engine after what is in flight
        finally:
            source.close()  # no render thread outlives the document...
            writer.close()  # ...and every page handed over is on disk before resume or the checks look
        writer.check()
        if cancelled or self.cancel.is_set():
            return False
        if in_flight:
            raise EngineError(message("core.jobs.no_result", engine=self.engine_name, page=in_flight[0].number))
        return True

    def written(self, index: int, result: PageResult) -> None:
        """A page is on disk: tell the listeners (the search index). One that fails never fails the job."""
        for listener in list(_PAGE_LISTENERS):
            try:
                listener(self.job, index, result)
            except Exception:
                pass  # the search index catches up from the job files when it is next searched

    def finish(self, page: Page, result: PageResult) -> None:
        """Stamp a result with what the job knows (page number, engine, render warnings)."""
        result.page_number = page.number
        rendering = [w for w in getattr(page, "warnings", []) if w not in result.warnings]
        result.warnings = [*rendering, *result.warnings]  # e.g. a damaged page MuPDF rendered in part
        result.engine = result.engine or self.engine_name
        result.task = result.task or self.task.value

    def emit(self, index: int, item: InputFile, *, page: int | None, done: int, total: int, **extra: Any) -> None:
        self.progress(
            Progress(
                document=item.name,
                document_index=index,
                document_count=len(self.inputs),
                page=page,
                pages_done=done,
                pages_total=total,
                **extra,
            )
        )


# --- listeners ------------------------------------------------------------------------
# Who hears of pages written and jobs deleted: the search index (library/search_index.py), which
# registers itself here, so that jobs import nothing of the library above them.

PageListener = Callable[["Job", int, PageResult], None]  # (job, document index, the page's result)
DeleteListener = Callable[[Path, str], None]  # (workspace, job id)
_PAGE_LISTENERS: list[PageListener] = []
_DELETE_LISTENERS: list[DeleteListener] = []


def add_listeners(*, page: PageListener | None = None, deleted: DeleteListener | None = None) -> None:
    """Call ``page`` after every page a job writes (in the job's writer thread) and ``deleted``
    after a job is deleted; adding the same function twice adds it once."""
    for listener, listeners in ((page, _PAGE_LISTENERS), (deleted, _DELETE_LISTENERS)):
        if listener is not None and listener not in listeners:
            listeners.append(listener)  # type: ignore[arg-type]


# --- state on disk -------------------------------------------------------------------

_ACTIVE: set[str] = set()
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@contextmanager
def _running(job_id: str) -> Iterator[None]:
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(job_id, threading.Lock())
    with lock:
        _ACTIVE.add(job_id)
        try:
            yield
        finally:
            _ACTIVE.discard(job_id)


def process_start(pid: int) -> str | None:
    """What tells this life of process ``pid`` from a later process given the same number (after
    a crash and a reboot, say): on Linux the boot's id and the start time in clock ticks since boot
    (``/proc/<pid>/stat`` field 22). None where the system does not say (the caller then trusts
    the PID alone)."""
    try:
        fields = Path(f"/proc/{int(pid)}/stat").read_text(encoding="ascii", errors="replace")
        started = fields[fields.rindex(")") + 2 :].split()[19]  # after "pid (comm) ", field 3 is first
    except (OSError, ValueError, IndexError):
        return None
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        boot = ""
    return f"{boot}:{started}"


_OWN_START = process_start(os.getpid())


def _is_alive(pid: int | None, job_id: str, started: str | None = None) -> bool:
    """Whether the process recorded as running a job still runs it: the PID is alive and, where
    its start was recorded (``started``, see ``process_start``), it is still the same process."""
    if not pid:
        return False
    if pid == os.getpid():
        return job_id in _ACTIVE
    if os.name != "posix":  # os.kill would terminate the process on Windows
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but belongs to someone else: its start time still tells
        pass
    if started:
        now = process_start(pid)
        if now is not None and now != started:
            return False  # the number was given to another process since
    return True


def _read_state(job_dir: Path) -> dict[str, Any]:
    path = job_dir / JOB_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JobError(message("core.jobs.no_such_job", job_id=job_dir.name, folder=str(job_dir.parent))) from None
    except (OSError, ValueError) as exc:
        raise JobError(message("core.jobs.job_file_unreadable", path=str(path), detail=str(exc))) from exc
    if not isinstance(state, dict) or "inputs" not in state or "documents" not in state:
        raise JobError(message("core.jobs.not_a_job_file", path=str(path)))
    problem = _state_problem(state)
    if problem:
        raise JobError(message("core.jobs.job_file_damaged", path=str(path), problem=problem))
    return state


def _state_problem(state: dict[str, Any]) -> Message | None:
    """What is wrong with the shape of a job file ("" when nothing), so that one bad field
    makes that job "damaged" instead of breaking whatever reads it."""
    inputs, documents, spec = state.get("inputs"), state.get("documents"), state.get("spec")
    if not isinstance(inputs, list) or not isinstance(documents, list) or len(inputs) != len(documents):
        return message("core.jobs.problem_inputs")
    if not isinstance(spec, dict) or not isinstance(spec.get("files", []), list):
        return message("core.jobs.problem_request")
    if not isinstance(state.get("created", 0), int | float) or not isinstance(state.get("status", ""), str):
        return message("core.jobs.problem_status")
    for number, (item, doc) in enumerate(zip(inputs, documents, strict=True), start=1):
        if not isinstance(item, dict) or not all(isinstance(item.get(key), str) for key in ("name", "folder")):
            return message("core.jobs.problem_input", number=number)
        if not isinstance(doc, dict):
            return message("core.jobs.problem_document", number=number)
        pages = doc.get("pages")
        if pages is not None and not (isinstance(pages, list) and all(isinstance(n, int) for n in pages)):
            return message("core.jobs.problem_pages", number=number)
        if not isinstance(doc.get("failed_pages") or {}, dict):
            return message("core.jobs.problem_failed_pages", number=number)
    return None


def _job_from_state(job_dir: Path, state: dict[str, Any], *, pages: bool = True) -> Job:
    spec_data = state["spec"]
    region = spec_data.get("region")
    spec = JobSpec(
        files=[Path(f) for f in spec_data.get("files", [])],
        engine=str(spec_data.get("engine", "")),
        task=_task(spec_data.get("task", "text")),
        pages=spec_data.get("pages"),
        region=tuple(region) if region else None,  # type: ignore[arg-type]
    )
    inputs = [InputFile.from_dict(i) for i in state["inputs"]]
    status = str(state.get("status", "pending"))
    reason = _text_field(state.get("message"))
    if status == "running" and not _is_alive(
        state.get("pid"), str(state.get("id", job_dir.name)), state.get("pid_started")
    ):
        status = "interrupted"
        reason = reason or text("core.jobs.interrupted")
    documents = [
        _load_document(job_dir, item, doc)
        if pages
        else DocumentResult(name=item.name, error=_text_field(doc.get("error")) or None)
        for item, doc in zip(inputs, state["documents"], strict=True)
    ]
    if status == "done" and pages:
        missing = [
            message("core.jobs.page_of", page=n, name=item.name)
            for item, doc, result in zip(inputs, state["documents"], documents, strict=True)
            for n in sorted(set(doc.get("pages") or []) - _whole_pages(job_dir / item.folder, doc, result))
        ]
        if missing:  # never silently: the job says so, and running it again redoes those pages
            status = "interrupted"
            more = "core.jobs.missing_pages_more" if len(missing) > 3 else "core.jobs.missing_pages"
            reason = text(more, pages=missing[:3])
        elif any(p.unread for result in documents for p in result.pages):
            status = "pending"  # a page that could not be read is read again when the job runs, never served
    return Job(
        id=job_dir.name,
        dir=job_dir,
        spec=spec,
        status=status,
        created=float(state.get("created", 0.0)),
        documents=documents,
        message=reason,
        updated=float(state.get("updated", 0.0)),
        inputs=inputs,
        page_errors=[
            {int(n): _text_field(m) for n, m in (d.get("failed_pages") or {}).items()} for d in state["documents"]
        ],
    )


def _whole_pages(folder: Path, doc_state: dict[str, Any], result: DocumentResult) -> set[int]:
    """The page numbers of a document whose result was read and whose image (if it has one) is whole."""
    return {
        p.page_number
        for p in result.pages
        if not _needs_image(doc_state, p.page_number) or page_image_whole(_page_png(folder, p.page_number))
    }


def _text_field(value: Any) -> str:
    """A text field of a job file as read back: a stored message as ``i18n.Text``, an old plain
    string as it is ("" for nothing)."""
    value = loaded(value)
    return value if isinstance(value, str) else "" if value is None else str(value)


def _refresh(job: Job, state: dict[str, Any]) -> Job:
    """Update ``job`` in place from ``state`` (the caller's object keeps its password)."""
    fresh = _job_from_state(job.dir, state)
    job.status, job.message, job.updated = fresh.status, fresh.message, fresh.updated
    job.documents, job.inputs, job.page_errors = fresh.documents, fresh.inputs, fresh.page_errors
    return job


def _load_document(job_dir: Path, item: InputFile, doc_state: dict[str, Any]) -> DocumentResult:
    folder = job_dir / item.folder
    wanted = doc_state.get("pages")
    if wanted is None:
        paths = sorted(folder.glob("page-*.json")) if folder.is_dir() else []
    else:
        paths = [_page_json(folder, n) for n in wanted]
    pages = []
    for path in paths:
        try:
            pages.append(PageResult.from_dict(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, KeyError):
            continue  # not written yet (or unreadable): the next run does it again
    return DocumentResult(
        name=item.name,
        pages=pages,
        page_count=int(doc_state.get("page_count") or 0),
        error=_text_field(doc_state.get("error")) or None,
    )


def _new_document_state(name: str) -> dict[str, Any]:
    return {"name": name, "page_count": 0, "pages": None, "error": None, "needs_password": False, "failed_pages": {}}


def _retry_with_password(state: dict[str, Any], password: str | None) -> bool:
    return bool(password) and any(d.get("needs_password") for d in state["documents"])


def _write_json(path: Path, data: dict[str, Any]) -> None:
    _write_atomic(path, json.dumps(data, ensure_ascii=False, indent=2, default=str).encode("utf-8"))


def _write_atomic(path: Path, payload: bytes) -> None:
    """Write to a temporary file beside ``path`` and move it into place, so a reader
    (or a resumed run) sees either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _page_json(folder: Path, number: int) -> Path:
    return folder / f"page-{number:04d}.json"


def _page_done(folder: Path, number: int, doc_state: dict[str, Any] | None = None) -> bool:
    """Whether page ``number`` is on disk and whole; a missing or damaged page file means do it again,
    and so does a page the engine could not read (``unread``: e.g. Tesseract was missing then).
    With ``doc_state`` (the document in the job file) its image counts too, unless the page failed
    (a failed page has none): one cut short, or a folder or a link in its place, means do it again."""
    try:
        result = PageResult.from_dict(json.loads(_page_json(folder, number).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    if result.unread:
        return False
    return not _needs_image(doc_state, number) or page_image_whole(_page_png(folder, number))


def _needs_image(doc_state: dict[str, Any] | None, number: int) -> bool:
    """Whether page ``number`` of a document (its state in the job file) was recognised and so has
    its image on disk; a page recorded as failed has none."""
    failed = (doc_state or {}).get("failed_pages") or {}
    return doc_state is not None and str(number) not in failed


def _page_png(folder: Path, number: int) -> Path:
    return folder / f"page-{number:04d}.png"


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk every whole PNG ends with


def page_image_whole(path: Path) -> bool:
    """Whether ``path`` is a whole page image as the job wrote it: a regular file (not a folder,
    not a link to somewhere else) that starts as a PNG and ends with its IEND chunk, which a file
    cut short by a crash or a full disk does not. Two small reads, so every page of a job can be
    checked whenever the job is loaded."""
    path = Path(path)
    try:
        if path.is_symlink():
            return False
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size < len(_PNG_SIGNATURE) + len(_PNG_END):
            return False
        head = os.read(fd, len(_PNG_SIGNATURE))
        os.lseek(fd, -len(_PNG_END), os.SEEK_END)
        return head == _PNG_SIGNATURE and os.read(fd, len(_PNG_END)) == _PNG_END
    except OSError:
        return False
    finally:
        os.close(fd)


def _missing_pages(job_dir: Path, state: dict[str, Any]) -> list[str]:
    """ "page N of name" for every wanted page whose file is missing or damaged."""
    missing = []
    for item, doc in zip(state["inputs"], state["documents"], strict=True):
        folder = job_dir / str(item["folder"])
        missing += [f"page {n} of {item['name']}" for n in doc.get("pages") or [] if not _page_done(folder, n, doc)]
    return missing


def _raw_state(job_dir: Path) -> Any:
    """A job file as parsed JSON, whatever its shape; None when it is not JSON at all."""
    try:
        return json.loads((job_dir / JOB_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _damaged_job(job_dir: Path, state: dict[str, Any] | None, created: float, reason: str) -> Job:
    """A job whose files cannot be read, as the history lists it: status "damaged", and why."""
    spec_data = state.get("spec") if isinstance(state, dict) else None
    spec_data = spec_data if isinstance(spec_data, dict) else {}
    files = spec_data.get("files")
    spec = JobSpec(
        files=[Path(str(f)) for f in files] if isinstance(files, list) else [],
        engine=str(spec_data.get("engine", "")),
        task=_task("text"),
    )
    why = text("core.jobs.damaged", reason=reason)
    return Job(id=job_dir.name, dir=job_dir, spec=spec, status="damaged", created=created, message=why)


def _write_page(folder: Path, result: PageResult, image: Image.Image | None) -> None:
    """The PNG first, then the JSON: a page counts as done once its JSON exists."""
    if image is not None:
        import io

        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        target = _page_png(folder, result.page_number)
        if target.is_dir() and not target.is_symlink():  # a damaged job: a folder where the image goes
            shutil.rmtree(target)
        _write_atomic(target, buffer.getvalue())
    payload = json.dumps(result.to_dict(messages=True), ensure_ascii=False, indent=2).encode("utf-8")
    _write_atomic(_page_json(folder, result.page_number), payload)


def _render(document: Document | PageWorker, number: int) -> tuple[Page | None, PageResult | None]:
    """(the page with its image rendered, None), or (None, a PageResult saying why it
    failed): a broken page fails alone instead of taking its batch with it. A cancel while
    the worker renders raises ``page_worker.Cancelled``."""
    from .page_worker import Cancelled, PageFailed, WorkerPage

    page = None
    try:
        page = document.page(number)
        page.image  # noqa: B018  (rendered once and cached by the page)
        return page, None
    except Cancelled:
        raise
    except Exception as exc:
        width = height = 0
        if page is not None and not isinstance(page, WorkerPage):  # a worker page's size needs its image
            try:
                width, height = page.size
            except Exception:
                pass
        if isinstance(exc, PageFailed):
            reason = as_text(exc)
        else:
            reason = text("core.jobs.page_render_failed", page=number, detail=error_message(exc))
        return None, PageResult(page_number=number, width=width, height=height, warnings=[reason])


_END = object()  # no more pages


class _PageSource:
    """The pages of one document for the engine, in order, each rendered once; in place of
    a page that cannot be rendered, the PageResult that says why (see ``_render``). A
    cancel, or a worker killed by one (``page_worker.Cancelled``), ends the pages early.

    With ``ahead`` > 0 a thread renders up to ``ahead`` pages before the engine asks, so
    taking a page costs the engine nothing; that thread is the only one touching the
    document until ``close``. With 0 each page is rendered when the engine asks for it."""

    def __init__(
        self,
        document: Document | PageWorker,
        numbers: list[int],
        cancel: threading.Event,
        *,
        ahead: int,
    ):
        self.document, self.numbers, self.cancel = document, numbers, cancel
        self.ahead = ahead
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, ahead))
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.ahead > 0:
            self._thread = threading.Thread(target=self._render_ahead, name="ocr-studio-render-ahead", daemon=True)
            self._thread.start()

    def __iter__(self) -> Iterator[Page | PageResult]:
        if self._thread is None:
            yield from self._rendered()
            return
        while True:
            page = self._queue.get()
            if page is _END:
                if self._error is not None:
                    raise self._error
                return
            if self.cancel.is_set():  # as in line: after a cancel the engine gets no page
                if not isinstance(page, PageResult):
                    page.release()
                return
            yield page

    def close(self) -> None:
        """Stop rendering (after the page under way) and drop the pages nobody took."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        while True:
            try:
                page = self._queue.get_nowait()
            except queue.Empty:
                break
            if page is not _END and not isinstance(page, PageResult):
                page.release()

    def _rendered(self) -> Iterator[Page | PageResult]:
        from .page_worker import Cancelled

        for number in self.numbers:
            if self.cancel.is_set() or self._stop.is_set():
                return
            try:
                page, failure = _render(self.document, number)
            except Cancelled:  # the worker was killed mid-page; the job stops as cancelled
                return
            if page is None:
                assert failure is not None
                yield failure
            else:
                yield page

    def _render_ahead(self) -> None:
        try:
            for page in self._rendered():
                if not self._put(page):
                    if not isinstance(page, PageResult):
                        page.release()
                    return
        except BaseException as exc:  # raised to the engine where it takes its next page
            self._error = exc
        finally:
            self._put(_END)

    def _put(self, item: Any) -> bool:
        """Queue ``item``, waiting for room while the engine still takes pages; False once closed."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False


class _PageWriter:
    """A document's writes (page files, the job file, progress), done in the order they come.

    With ``behind`` they run in one thread, so the engine does not wait on the disk; the first
    error (the disk is full) stops the writes and is raised by ``check`` in the job's thread,
    as it was raised there before. Without ``behind`` each write runs at once, in the caller's
    thread."""

    def __init__(self, *, behind: bool):
        self.error: BaseException | None = None
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        if behind:
            self._thread = threading.Thread(target=self._work, name="ocr-studio-page-writer", daemon=True)
            self._thread.start()

    def put(self, write: Callable[[], None]) -> None:
        if self._thread is None:
            write()
        else:
            self._queue.put(write)

    def wait(self) -> None:
        """Return once every write handed over is done (or skipped after an error)."""
        if self._thread is not None:
            self._queue.join()

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Return once every write handed over is done; the thread is gone."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _work(self) -> None:
        while True:
            write = self._queue.get()
            try:
                if write is None:
                    return
                if self.error is None:
                    write()
            except BaseException as exc:  # raised in the job's thread by check()
                self.error = exc
            finally:
                self._queue.task_done()


# --- inputs and the cache key ------------------------------------------------------


def _file_digest(path: Path) -> tuple[str, int]:
    """sha256 of the content, read in chunks; an unreadable file gets a key from its path
    (it is recorded as failed when the job runs)."""
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except OSError:
        return "unreadable:" + str(Path(path).absolute()), 0
    return digest.hexdigest(), size


def _copy_input(path: Path, folder: Path, name: str) -> str | None:
    """Copy ``path`` into ``folder`` as ``name`` (neutral: ``01.pdf``, never the uploader's
    name) via a temp file + rename; the path relative to the job folder, or None when the
    file cannot be read. Messages about the copy name the original (``_renamed``)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".copy.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        return None
    return target.relative_to(folder.parent).as_posix()


def _renamed(reason: Message, path: Path, name: str) -> Message:
    """A message about the job's copy (``inputs/01.pdf``) naming the file the user knows."""
    return reason.replaced(str(path), name).replaced(path.name, name)


def _where_pages_run(engine: Engine, settings: Settings) -> str:
    """Where a job's pages are handled: "worker" (opened, rendered and recognised in the page
    worker: CPU engines it can build again by name), "render" (opened and rendered there, the
    engine runs here: GPU engines, and remote ones, which keep several pages in flight from
    this process), or "here" (a CPU engine object the worker cannot
    build, e.g. a test double around an engine: it needs the document in this process)."""
    from .engines import get_engine

    info = engine.info()
    if info.needs_gpu or info.runs == "server":  # a model here, or a server's pages in flight
        return "render"
    try:
        rebuilt = get_engine(info.name, settings)
    except Exception:
        return "here"
    return "worker" if type(rebuilt) is type(engine) else "here"


def _job_key(spec: JobSpec, engine: Engine, settings: Settings, digests: list[str]) -> dict[str, Any]:
    pages = (spec.pages or "").replace(" ", "") or None
    return {
        "format": JOB_FORMAT,
        "inputs": digests,
        "engine": spec.engine,
        "engine_settings": engine.settings_key(),
        "task": _task_value(spec.task),
        "pages": pages,
        "dpi": settings.dpi,
        "region": [float(v) for v in spec.region] if spec.region is not None else None,
    }


def _task(value: Any) -> Task:
    from .engines.base import Task

    return value if isinstance(value, Task) else Task(str(value))


def _task_value(task: Any) -> str:
    return _task(task).value


def _safe_name(name: str) -> str:
    """A file-name-safe version of ``name`` (letters, digits, ``.-_``), at most 60 characters."""
    return re.sub(r"[^\w.-]+", "_", name).strip("._")[:60]
