"""Documents opened, pages rendered and (for CPU engines) recognised in a worker process.

Why a process: MuPDF and Tesseract hold the GIL (and MuPDF its own lock) for as long as a
page takes, and a hostile page can take hours (nested form XObjects, each drawing the next
ten times, render for ever from 2.5 KB) or gigabytes. In a worker, the job waits on a pipe,
so the server stays responsive; the worker gets a time budget per page
(``settings.page_timeout``) and an address-space limit (``settings.worker_memory_mb``, where
the OS has RLIMIT_AS); a page over budget fails alone ("page 3 took longer than 120 s to
render") and the worker is killed and started again for the next page; Cancel kills it at
once. MuPDF never parses an input file inside the server process.

The worker is one process per job run (``python -m ocr_studio.page_worker``: a fresh
interpreter, so nothing of the caller's ``__main__`` runs again); it keeps one document open at
a time. Requests and answers are pickled tuples, length-prefixed, on the worker's stdin and
stdout (a thread here reads them into a queue, so waiting never holds the GIL): ("ok", ...) or
an error tuple, with ("text", ...) and ("phase", ...) news in between.
"""

from __future__ import annotations

import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .documents import DocumentError, Page
from .i18n import LocalizedError, Message, message

if TYPE_CHECKING:
    from PIL import Image

    from .engines.base import Task
    from .results import PageResult
    from .settings import Settings

POLL_SECONDS = 0.05  # how often a wait looks at the cancel flag
STARTUP_SECONDS = 120.0  # a fresh worker's imports; not part of any page's budget
_FRAME = struct.Struct("!Q")  # the length of each pickled message
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]
_PARENT_ENVIRONMENT = "OCR_STUDIO_WORKER_PARENT"


class Channel:
    """Pickled messages over a pair of byte streams (the worker's stdin/stdout)."""

    def __init__(self, reader: Any, writer: Any):
        self.reader, self.writer = reader, writer

    def send(self, message: tuple) -> None:
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self.writer.write(_FRAME.pack(len(payload)) + payload)
        self.writer.flush()

    def recv(self) -> tuple:
        """The next message; EOFError when the other side is gone."""
        header = self._exactly(_FRAME.size)
        return pickle.loads(self._exactly(_FRAME.unpack(header)[0]))

    def _exactly(self, count: int) -> bytes:
        chunks, left = [], count
        while left:
            chunk = self.reader.read(left)
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)


class Cancelled(Exception):
    """The job was cancelled while the worker was busy; the worker was killed."""


class PageFailed(LocalizedError):
    """One page could not be done (over its time budget, or the worker died on it).
    The message names the page and says why; the job goes on with the next page."""


@dataclass
class Rendered:
    """A page the worker rendered (and recognised, when asked to)."""

    image: Image.Image
    warnings: list[str] = field(default_factory=list)
    result: PageResult | None = None


class WorkerPage(Page):
    """A page of a document open in the worker: its image is rendered there, on first use."""

    def __init__(self, worker: PageWorker, number: int, dpi: int):
        super().__init__(worker.name, number, dpi)
        self._worker = worker

    def _render(self) -> Image.Image:
        rendered = self._worker.render(self.number)
        self.warnings = rendered.warnings
        return rendered.image

    def _header_size(self) -> tuple[int, int]:
        return self.image.size


class PageWorker:
    """The parent's handle on one worker process: open a document, render or recognise its pages.

    Every wait is bounded by ``settings.page_timeout`` and watches ``cancel``; a worker that is
    killed (budget, cancel) or dies (out of memory, a crash) is started again on next use and
    reopens the current document. Use as a context manager, or call ``close``."""

    def __init__(self, settings: Settings, cancel: threading.Event | None = None):
        self.settings = settings
        self.cancel = cancel or threading.Event()
        self.budget = float(getattr(settings, "page_timeout", 120.0) or 120.0)
        self.name = ""
        self.page_count = 0
        self._opened: tuple[Path, str, str | None] | None = None
        self._process: subprocess.Popen | None = None
        self._channel: Channel | None = None
        self._inbox: queue.Queue[tuple | None] = queue.Queue()
        self._live_document = False  # whether the running process has the document open

    # ----- the document -------------------------------------------------------------------

    def open(self, path: Path, name: str, password: str | None = None) -> int:
        """Open ``path`` (shown to the user as ``name``) in the worker; its page count.
        Raises DocumentError as ``open_document`` would, with ``name`` in the message."""
        self._opened = (Path(path), name, password)
        self.name = name
        self._live_document = False
        self.page_count = self._ensure_document(message("core.worker.slow_open", name=name, seconds=self._seconds))
        return self.page_count

    def page(self, number: int, *, dpi: int | None = None) -> Page:
        if not 1 <= number <= self.page_count:
            raise DocumentError(
                message("core.document.no_such_page", name=self.name, page=str(number), count=self.page_count)
            )
        return WorkerPage(self, number, dpi or self.settings.limits.dpi)

    def render(self, number: int) -> Rendered:
        """Page ``number``'s image; PageFailed when it is over budget or kills the worker."""
        reply = self._page_request(("render", number), number)
        return Rendered(image=_image(reply[1]), warnings=list(reply[2]))

    def recognize(
        self,
        number: int,
        engine: str,
        task: Task,
        region: tuple[float, float, float, float] | None,
        on_text: Callable[[str], None] | None = None,
    ) -> Rendered:
        """Render page ``number`` and run the CPU engine ``engine`` on it, both in the worker."""
        from .results import PageResult

        reply = self._page_request(("recognize", number, engine, task.value, region), number, on_text=on_text)
        return Rendered(image=_image(reply[1]), warnings=list(reply[2]), result=PageResult.from_dict(reply[3]))

    def call(self, target: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """``module:function(*args, **kwargs)`` run in the worker, within ``timeout`` seconds (default
        the page budget), for other code that must read an input file with MuPDF (an export that
        copies the original pages, say). Arguments and result travel pickled. PageFailed when it
        is over time or kills the worker; its own exceptions come back as PageFailed too."""
        if self._process is None or self._process.poll() is not None:
            self.kill()
            self._start()
        budget, self.budget = self.budget, float(timeout or self.budget)
        try:
            reply = self._ask(
                ("call", target, args, kwargs),
                slow=message("core.worker.slow_call", target=target, seconds=self._seconds),
                died=message("core.worker.died_call", target=target),
            )
        finally:
            self.budget = budget
        return reply[1]

    # ----- the process ----------------------------------------------------------------------

    def close(self) -> None:
        if self._channel is not None and self._process is not None and self._process.poll() is None:
            try:
                self._channel.send(("exit",))
                self._process.wait(timeout=2)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        self.kill()

    def kill(self) -> None:
        """Stop the worker now, whatever it is doing (MuPDF mid-page included)."""
        process, self._process, self._channel = self._process, None, None
        self._live_document = False
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            try:
                stream.close()  # type: ignore[union-attr]
            except OSError:
                pass

    def __enter__(self) -> PageWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PACKAGE_ROOT), environment.get("PYTHONPATH")]))
        environment[_PARENT_ENVIRONMENT] = str(os.getpid())
        process = subprocess.Popen(
            [sys.executable, "-m", "ocr_studio.page_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=environment,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
        channel = Channel(process.stdout, process.stdin)
        inbox: queue.Queue[tuple | None] = queue.Queue()

        def read() -> None:
            try:
                while True:
                    inbox.put(channel.recv())
            except (EOFError, OSError, ValueError, pickle.UnpicklingError):
                inbox.put(None)

        threading.Thread(target=read, name="ocr-studio-page-worker-reader", daemon=True).start()
        memory = int(getattr(self.settings, "worker_memory_mb", 0) or 0)
        self._process, self._channel, self._inbox = process, channel, inbox
        budget, self.budget = self.budget, STARTUP_SECONDS
        try:
            self._ask(
                ("settings", self.settings, memory),
                slow=message("core.worker.slow_start"),
                died=message("core.worker.died_start"),
            )
        except PageFailed as exc:
            raise PageFailed(message("core.worker.cannot_start", detail=exc.message)) from None
        finally:
            self.budget = budget

    @property
    def _seconds(self) -> str:
        return f"{self.budget:.0f}"

    def _ensure_document(self, slow: Message) -> int:
        """A running worker with the current document open; its page count."""
        if self._process is None or self._process.poll() is not None:
            self.kill()
            self._start()
        if self._live_document:
            return self.page_count
        assert self._opened is not None
        path, name, password = self._opened
        try:
            reply = self._ask(
                ("open", str(path), name, password), slow=slow, died=message("core.worker.died_open", name=name)
            )
        except PageFailed as exc:
            raise DocumentError(exc.message, path=path) from None
        self._live_document = True
        return int(reply[1])

    def _page_request(self, request: tuple, number: int, *, on_text: Callable[[str], None] | None = None) -> tuple:
        self._ensure_document(message("core.worker.slow_reopen", name=self.name, page=number, seconds=self._seconds))
        return self._ask(
            request,
            slow=message("core.worker.slow_page", page=number, seconds=self._seconds),
            died=message("core.worker.died_page", page=number),
            on_text=on_text,
        )

    def _ask(
        self, request: tuple, *, slow: Message, died: Message, on_text: Callable[[str], None] | None = None
    ) -> tuple:
        """Send ``request`` and wait for its answer within the budget (see the class docstring)."""
        assert self._channel is not None and self._process is not None
        process, inbox = self._process, self._inbox
        phase = "render"
        try:
            self._channel.send(request)
        except (OSError, ValueError):
            self.kill()
            raise PageFailed(message("core.worker.stopped", what=died)) from None
        deadline = time.monotonic() + self.budget
        while True:
            if self.cancel.is_set():
                self.kill()
                raise Cancelled()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                phase_name = message(
                    "core.worker.phase_recognize" if phase == "recognize" else "core.worker.phase_render"
                )
                what = Message(slow.id, {**slow.args, "phase": phase_name})
                raise PageFailed(message("core.worker.timed_out", what=what))
            try:
                incoming = inbox.get(timeout=min(POLL_SECONDS, remaining))
            except queue.Empty:
                continue
            if incoming is None:  # the worker is gone: crashed, or killed for its memory
                try:
                    code = process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    code = None
                self.kill()
                raise PageFailed(message("core.worker.stopped_why", what=died, why=_exit_reason(code)))
            kind = incoming[0]
            if kind == "text":
                if on_text is not None:
                    on_text(incoming[1])
            elif kind == "phase":
                phase = incoming[1]
            elif kind == "ok":
                return incoming
            elif kind == "document-error":
                if request[0] == "open":
                    raise DocumentError(incoming[1], needs_password=bool(incoming[2]))
                raise PageFailed(incoming[1])
            elif kind == "engine-error":
                from .engines.base import EngineError

                raise EngineError(incoming[1])
            else:
                raise PageFailed(Message("core.worker.failed", {"what": died, "detail": incoming[1]}))


def run_isolated(settings: Settings, target: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
    """``module:function(*args, **kwargs)`` in a fresh worker (see ``PageWorker.call``)."""
    with PageWorker(settings) as worker:
        return worker.call(target, *args, timeout=timeout, **kwargs)


class IsolatedCalls:
    """``module:function`` calls (see ``PageWorker.call``) in one page worker, started on first use
    and reused until ``close`` (or the end of a ``with``): a job's exports read every original
    through one process, never one per document. Each call's budget is ``page_timeout`` per page
    of the document it is given (its first argument); a call over it kills the worker and the
    next call starts a fresh one. What exporters get to read an original file."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._worker: PageWorker | None = None
        self._lock = threading.Lock()  # one request at a time on the worker's pipe

    def __call__(self, target: str, *args: Any, **kwargs: Any) -> Any:
        pages = len(getattr(args[0], "pages", None) or ()) if args else 0
        timeout = self.settings.page_timeout * max(1, pages)
        with self._lock:
            if self._worker is None:
                self._worker = PageWorker(self.settings)
            return self._worker.call(target, *args, timeout=timeout, **kwargs)

    def close(self) -> None:
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()

    def __enter__(self) -> IsolatedCalls:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # a caller that never closed it: the worker still ends with it
        worker = self.__dict__.get("_worker")
        if worker is not None:
            worker.kill()


def isolated_call(settings: Settings) -> IsolatedCalls:
    """Calls in one page worker bound to ``settings`` (see ``IsolatedCalls``); close it when done."""
    return IsolatedCalls(settings)


def _image(data: tuple[str, tuple[int, int], bytes]) -> Image.Image:
    from PIL import Image

    mode, size, raw = data
    return Image.frombytes(mode, size, raw)


def _exit_reason(code: int | None) -> Message:
    if code is None:
        return message("core.worker.exit_none")
    if code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return message(
            "core.worker.exit_killed_memory" if name == "SIGKILL" else "core.worker.exit_killed", signal=name
        )
    return message("core.worker.exit_code", code=code)


# --- the worker process --------------------------------------------------------------------


def main() -> None:
    """The worker process: its protocol stream is the original stdout; anything a library prints
    goes to stderr instead, so it cannot corrupt a message."""
    _die_with_parent()
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    conn = Channel(sys.stdin.buffer, protocol)
    try:
        first = conn.recv()
    except EOFError:
        return
    _, settings, memory_mb = first
    import pymupdf  # noqa: F401  (loaded before the first page's clock starts)

    from .documents import open_document  # noqa: F401

    conn.send(("ok", "ready"))
    _serve(conn, settings, memory_mb)


def _serve(conn: Channel, settings: Settings, memory_mb: int) -> None:
    """The worker's loop: one request at a time until the pipe closes or ("exit",)."""
    from .documents import open_document

    _limit_memory(memory_mb)
    document = None
    engines: dict[str, Any] = {}
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        kind = request[0]
        if kind == "exit":
            return
        try:
            if kind == "open":
                _, path, name, password = request
                if document is not None:
                    document.close()
                    document = None
                try:
                    document = open_document(path, limits=settings.limits, password=password)
                except DocumentError as exc:
                    renamed = _renamed(exc.message, Path(path), name)
                    raise DocumentError(renamed, needs_password=exc.needs_password) from None
                document.name = name
                conn.send(("ok", document.page_count))
            elif kind == "render":
                page = _page(document, request[1])
                image = page.image
                conn.send(("ok", (image.mode, image.size, image.tobytes()), page.warnings))
                page.release()
            elif kind == "call":
                import importlib

                _, target, args, kwargs = request
                module, _, function = target.partition(":")
                conn.send(("ok", getattr(importlib.import_module(module), function)(*args, **kwargs)))
            elif kind == "recognize":
                _, number, engine_name, task, region = request
                page = _page(document, number)
                conn.send(("phase", "recognize"))
                result = _recognize(engines, settings, engine_name, task, region, page, conn)
                image = page.image  # after reading: an engine may have turned the page upright
                conn.send(
                    ("ok", (image.mode, image.size, image.tobytes()), page.warnings, result.to_dict(messages=True))
                )
                page.release()
            else:
                conn.send(("error", f"unknown request {kind!r}"))
        except MemoryError:
            conn.send(("error", _out_of_memory(memory_mb)))
        except DocumentError as exc:
            if isinstance(exc.__cause__, MemoryError):  # MuPDF's allocation failed under the limit
                conn.send(("error", _out_of_memory(memory_mb)))
            else:
                conn.send(("document-error", exc.message, exc.needs_password))
        except Exception as exc:
            from .engines.base import EngineError

            if isinstance(exc, EngineError):
                conn.send(("engine-error", getattr(exc, "message", None) or str(exc)))
            else:
                conn.send(("error", f"{type(exc).__name__}: {exc}"))


def _out_of_memory(memory_mb: int) -> Message:
    if memory_mb:
        return message("core.worker.out_of_memory_limit", limit=memory_mb)
    return message("core.worker.out_of_memory")


def _page(document: Any, number: int) -> Page:
    if document is None:
        raise DocumentError(message("core.document.no_open_document"))
    return document.page(number)


def _recognize(
    engines: dict[str, Any],
    settings: Settings,
    name: str,
    task: str,
    region: Any,
    page: Page,
    conn: Channel,
) -> PageResult:
    from .engines import get_engine
    from .engines.base import EngineError, RecognizeRequest, Task

    if name not in engines:
        engines[name] = get_engine(name, settings)
    request = RecognizeRequest(
        Task(task), tuple(region) if region else None, on_text=lambda text: conn.send(("text", text))
    )
    results = list(engines[name].recognize_stream(iter([page]), request))
    if len(results) != 1:
        raise EngineError(message("core.jobs.results_for_one_page", engine=name, count=len(results)))
    return results[0]


def _renamed(reason: Message, path: Path, name: str) -> Message:
    """Messages about the job's copy (``inputs/01.pdf``) name the file the user knows."""
    return reason.replaced(str(path), name).replaced(path.name, name)


def _limit_memory(megabytes: int) -> None:
    if megabytes <= 0:
        return
    try:
        import resource
    except ImportError:  # Windows: no RLIMIT_AS
        return
    limit = megabytes * 1024 * 1024
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):
        pass


def _die_with_parent() -> None:
    """On Linux, the kernel kills the worker when the server dies, even mid-page."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if str(os.getppid()) != os.environ.get(_PARENT_ENVIRONMENT, str(os.getppid())):  # the parent is gone
            os._exit(0)
    except OSError:
        pass


if __name__ == "__main__":
    main()
