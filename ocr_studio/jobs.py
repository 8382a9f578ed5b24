"""Persisted jobs: files + engine + settings, run page by page, written as they finish.

Workspace layout (``settings.workspace``)::

    jobs/<job_id>/job.json                 spec, status, per-document state (atomic writes)
    jobs/<job_id>/docs/<NN>-<stem>/page-0001.json   PageResult.to_dict()
    jobs/<job_id>/docs/<NN>-<stem>/page-0001.png    the page image the engine saw
    jobs/<job_id>/inputs/<NN>/<name>       copies of the input files (so a job can resume
                                           and reopen after the uploads are gone)

``job_id`` is a hash of the inputs' content + engine.settings_key() + task + page
range + dpi + region: the same request hits the same job (the cache).

A page's JSON is written (atomically, after its PNG) the moment the engine returns
it, so whatever happens next — cancel, an engine failure, a killed process — every
finished page survives, and running the job again only does the pages still missing.
The password of an encrypted PDF lives in memory only (``JobSpec.password``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .results import DocumentResult, PageResult

if TYPE_CHECKING:
    from PIL import Image

    from .documents import Document, Page
    from .engines.base import Engine, Task
    from .settings import Settings

JOB_FILE = "job.json"
JOB_FORMAT = 1  # bump when the key or the layout changes meaning
HASH_CHUNK = 1024 * 1024
STATUSES = ("pending", "running", "done", "cancelled", "failed", "interrupted")


class JobError(Exception):
    """A job cannot be found or read. The message says which and why."""


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
    message: str = ""  # why the job failed or stopped
    updated: float = 0.0
    inputs: list[InputFile] = field(default_factory=list)
    # per document: page number -> why that page failed (it has a PageResult with the warning)
    page_errors: list[dict[int, str]] = field(default_factory=list)

    def page_image_path(self, document_index: int, page_number: int) -> Path:
        """Where the PNG of a page (``document_index`` 0-based, ``page_number`` 1-based) is."""
        return self.dir / self.inputs[document_index].folder / f"page-{page_number:04d}.png"

    def page_image(self, document_index: int, page_number: int) -> Image.Image:
        """The page image the engine saw; raises JobError when it was never saved."""
        from PIL import Image

        path = self.page_image_path(document_index, page_number)
        try:
            with Image.open(path) as image:
                return image.convert("RGB")
        except OSError as exc:
            raise JobError(f"No image for page {page_number} of {self.inputs[document_index].name}: {exc}") from exc

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
        """A new job, or the existing one with the same key (cache hit)."""
        files = [Path(f) for f in spec.files]
        digests = [_file_digest(f) for f in files]
        key = _job_key(spec, engine, settings, [d for d, _ in digests])
        job_id = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]
        job_dir = self.root / job_id
        if (job_dir / JOB_FILE).is_file():
            job = self.load(job_id)
            job.spec.password = spec.password
            return job

        inputs = []
        for index, (path, (digest, size)) in enumerate(zip(files, digests, strict=True)):
            stem = _safe_name(path.stem) or "document"
            folder = f"docs/{index + 1:02d}-{stem}"
            copy = None
            if size <= settings.limits.max_file_bytes:  # too large: documents.py says so when the job runs
                copy = _copy_input(path, job_dir / "inputs" / f"{index + 1:02d}")
            (job_dir / folder).mkdir(parents=True, exist_ok=True)
            inputs.append(
                InputFile(name=path.name, source=str(path), sha256=digest, size=size, copy=copy, folder=folder)
            )
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
            "documents": [_new_document_state(i.name) for i in inputs],
        }
        _write_json(job_dir / JOB_FILE, state)
        job = _job_from_state(job_dir, state)
        job.spec.password = spec.password
        return job

    def load(self, job_id: str) -> Job:
        """The job as it is on disk, finished pages included; never runs anything."""
        if not re.fullmatch(r"[0-9a-f]{8,64}", job_id or ""):
            raise JobError(f"{job_id!r} is not a job id.")
        job_dir = self.root / job_id
        return _job_from_state(job_dir, _read_state(job_dir))

    def history(self, limit: int = 50, *, pages: bool = True) -> list[Job]:
        """Jobs, newest first. Unreadable job folders are skipped. ``pages=False`` leaves the
        page results unread (``documents`` then holds names only): enough for a list of jobs."""
        if not self.root.is_dir():
            return []
        states = []
        for job_dir in self.root.iterdir():
            try:
                states.append((job_dir, _read_state(job_dir)))
            except JobError:
                continue
        states.sort(key=lambda item: (float(item[1].get("created", 0)), item[0].name), reverse=True)
        return [_job_from_state(job_dir, state, pages=pages) for job_dir, state in states[:limit]]


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
    first to finish, then returns at once if it is done."""
    from .engines.base import EngineError

    with _running(job.id):
        state = _read_state(job.dir)
        if state["status"] == "done" and not _retry_with_password(state, job.spec.password):
            return _refresh(job, state)

        state.update(status="running", message="", pid=os.getpid(), updated=time.time())
        _write_json(job.dir / JOB_FILE, state)
        try:
            run = _Run(job, state, engine, settings, progress or (lambda _p: None), cancel or threading.Event())
            outcome = run.documents()
            stopped = "Cancelled; the finished pages are kept. Run it again to go on."
            state.update(status=outcome, message=stopped if outcome == "cancelled" else "")
        except EngineError as exc:
            state.update(status="failed", message=str(exc))
        except BaseException as exc:  # a bug or an interrupt: record it, keep the pages, let it surface
            interrupted = isinstance(exc, KeyboardInterrupt | SystemExit)
            state.update(status="interrupted" if interrupted else "failed", message=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            state.update(pid=None, updated=time.time())
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

    def save_state(self) -> None:
        self.state["updated"] = time.time()
        _write_json(self.job.dir / JOB_FILE, self.state)

    def documents(self) -> str:
        """Every document in order; "done", or "cancelled" when asked to stop."""
        for index, item in enumerate(self.inputs):
            if self.cancel.is_set():
                return "cancelled"
            doc_state = self.state["documents"][index]
            folder = self.job.dir / item.folder
            if doc_state.get("error") and not (doc_state.get("needs_password") and self.job.spec.password):
                continue  # recorded before; opening it again would fail the same way
            if doc_state.get("pages") is not None and all(_page_json(folder, n).is_file() for n in doc_state["pages"]):
                continue
            document = self.open(index, item, doc_state)
            if document is None:
                continue
            with document:
                if not self.pages_of(index, item, doc_state, document, folder):
                    return "cancelled"
        return "done"

    def open(self, index: int, item: InputFile, doc_state: dict[str, Any]) -> Document | None:
        from .documents import DocumentError, open_document

        path = self.job.dir / item.copy if item.copy else Path(item.source)
        try:
            return open_document(path, limits=self.settings.limits, password=self.job.spec.password)
        except DocumentError as exc:
            self.document_failed(index, item, doc_state, str(exc), needs_password=exc.needs_password)
        except Exception as exc:  # one unreadable file never stops the others
            self.document_failed(index, item, doc_state, f"{item.name} could not be opened: {exc}")
        return None

    def document_failed(
        self, index: int, item: InputFile, doc_state: dict[str, Any], message: str, *, needs_password: bool = False
    ) -> None:
        doc_state.update(error=message, needs_password=needs_password)
        self.save_state()
        self.emit(index, item, page=None, done=0, total=0, error=message, message=message)

    def pages_of(
        self, index: int, item: InputFile, doc_state: dict[str, Any], document: Document, folder: Path
    ) -> bool:
        """The missing pages of one document; False when cancelled."""
        from .documents import DocumentError, check_page_budget, parse_page_range

        try:
            numbers = parse_page_range(self.job.spec.pages, document.page_count)
            check_page_budget(numbers, self.settings.limits)
        except DocumentError as exc:
            self.document_failed(index, item, doc_state, str(exc))
            return True
        doc_state.update(page_count=document.page_count, pages=numbers, error=None, needs_password=False)
        self.save_state()
        folder.mkdir(parents=True, exist_ok=True)
        todo = [n for n in numbers if not _page_json(folder, n).is_file()]
        done, total = len(numbers) - len(todo), len(numbers)
        self.emit(index, item, page=None, done=done, total=total, message=f"Opened {item.name}")

        in_flight: deque[Page] = deque()

        def rendered() -> Iterator[Page]:
            """Pages for the engine, rendered as it asks for them; a page that cannot be
            rendered is recorded as failed here and never reaches the engine."""
            nonlocal done
            for number in todo:
                if self.cancel.is_set():
                    return
                page, failure = _render(document, number)
                if page is None:
                    assert failure is not None
                    failure.engine, failure.task = self.engine_name, self.task.value
                    doc_state.setdefault("failed_pages", {})[str(number)] = failure.warnings[0]
                    self.save_state()
                    _write_page(folder, failure, None)
                    done += 1
                    self.emit(index, item, page=number, done=done, total=total, error=failure.warnings[0])
                    continue
                in_flight.append(page)
                yield page

        def on_text(text: str) -> None:
            page = in_flight[0].number if in_flight else None
            self.emit(index, item, page=page, done=done, total=total, partial_text=text)

        from .engines.base import EngineError, RecognizeRequest

        def on_status(message: str) -> None:
            self.emit(index, item, page=None, done=done, total=total, message=message, status=message)

        request = RecognizeRequest(self.task, self.region, on_text=on_text, on_status=on_status)  # type: ignore[arg-type]
        results = self.engine.recognize_stream(rendered(), request)
        try:
            for result in results:
                if not in_flight:
                    raise EngineError(
                        f"The {self.engine_name} engine returned more results than pages; "
                        "nothing more of this document was kept. Try again, or report this engine bug."
                    )
                page = in_flight.popleft()
                self.finish(page, result)
                _write_page(folder, result, page.image)
                page.release()
                done += 1
                self.emit(index, item, page=page.number, done=done, total=total)
                if self.cancel.is_set():
                    return False
        finally:
            results.close()  # a cancel stops the engine after what is in flight
        if in_flight and not self.cancel.is_set():
            raise EngineError(
                f"The {self.engine_name} engine returned no result for page {in_flight[0].number}; "
                "the pages before it are kept. Try again, or report this engine bug."
            )
        return not self.cancel.is_set()

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


def _is_alive(pid: int | None, job_id: str) -> bool:
    """Whether the process recorded as running a job still runs it."""
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
    except OSError:  # exists, but belongs to someone else
        return True
    return True


def _read_state(job_dir: Path) -> dict[str, Any]:
    path = job_dir / JOB_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JobError(f"No job {job_dir.name} in {job_dir.parent}.") from None
    except (OSError, ValueError) as exc:
        raise JobError(f"The job file {path} cannot be read: {exc}") from exc
    if not isinstance(state, dict) or "inputs" not in state or "documents" not in state:
        raise JobError(f"The job file {path} is not an OCR Studio job.")
    return state


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
    message = str(state.get("message", ""))
    if status == "running" and not _is_alive(state.get("pid"), str(state.get("id", job_dir.name))):
        status = "interrupted"
        message = message or "The run stopped before it finished (closed or crashed); run it again to resume."
    return Job(
        id=job_dir.name,
        dir=job_dir,
        spec=spec,
        status=status,
        created=float(state.get("created", 0.0)),
        documents=[
            _load_document(job_dir, item, doc) if pages else DocumentResult(name=item.name, error=doc.get("error"))
            for item, doc in zip(inputs, state["documents"], strict=True)
        ],
        message=message,
        updated=float(state.get("updated", 0.0)),
        inputs=inputs,
        page_errors=[{int(n): str(m) for n, m in (d.get("failed_pages") or {}).items()} for d in state["documents"]],
    )


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
        error=doc_state.get("error"),
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


def _write_page(folder: Path, result: PageResult, image: Image.Image | None) -> None:
    """The PNG first, then the JSON: a page counts as done once its JSON exists."""
    if image is not None:
        import io

        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        _write_atomic(folder / f"page-{result.page_number:04d}.png", buffer.getvalue())
    payload = json.dumps(result.to_dict(), ensure_ascii=False, indent=2).encode("utf-8")
    _write_atomic(_page_json(folder, result.page_number), payload)


def _render(document: Document, number: int) -> tuple[Page | None, PageResult | None]:
    """(the page with its image rendered, None), or (None, a PageResult saying why it
    failed): a broken page fails alone instead of taking its batch with it."""
    page = None
    try:
        page = document.page(number)
        page.image  # noqa: B018  (rendered once and cached by the page)
        return page, None
    except Exception as exc:
        width = height = 0
        if page is not None:
            try:
                width, height = page.size
            except Exception:
                pass
        message = f"Page {number} could not be rendered: {exc}"
        return None, PageResult(page_number=number, width=width, height=height, warnings=[message])


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


def _copy_input(path: Path, folder: Path) -> str | None:
    """Copy ``path`` into ``folder`` under its own name (so messages about the copy name the
    file the user knows) via a temp file + rename; None when it cannot be read."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".copy.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        return None
    return target.relative_to(folder.parent.parent).as_posix()


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
