"""The job's pipeline around an engine that runs in the studio's process (GPU and remote
engines): pages are rendered ahead in one thread and written behind in another, so the
engine never waits for MuPDF or the disk, while cancel, resume, a page that cannot be
rendered and a full disk end as they always did. Real PDFs, the real page worker; the
engine stands for a GPU engine and reads each page's image."""

from __future__ import annotations

import errno
import hashlib
import json
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from ocr_studio import jobs
from ocr_studio.engines.base import Engine, EngineInfo, RecognizeRequest, Task
from ocr_studio.jobs import Job, JobSpec, JobStore, Progress, WorkspaceError, run_job
from ocr_studio.page_worker import PageWorker
from ocr_studio.results import Block, PageResult
from tests.test_jobs import make_pdf, make_settings

SLOW = 0.2  # seconds: a slow render, a slow write, a slow page for the engine


class StreamingEngine(Engine):
    """Stands for a GPU engine: it runs here on the images the worker rendered, streams its
    results, spends ``work`` seconds on each page, and records when it took each page."""

    def __init__(self, work: float = 0.0):
        self.work = work
        self.took: dict[int, float] = {}  # page number -> when the engine got it
        self.started = self.finished = 0.0

    def info(self) -> EngineInfo:
        return EngineInfo(name="streaming-vision", label="Streaming vision", tasks=(Task.TEXT,), needs_gpu=True)

    def recognize(self, pages, request: RecognizeRequest) -> list[PageResult]:
        return list(self.recognize_stream(pages, request))

    def recognize_stream(self, pages, request: RecognizeRequest):
        self.started = time.monotonic()
        for page in pages:
            self.took[page.number] = time.monotonic()
            read = hashlib.sha256(page.image.tobytes()).hexdigest()[:16]  # what this page's pixels say
            time.sleep(self.work)
            width, height = page.size
            self.finished = time.monotonic()
            yield PageResult(
                page_number=page.number,
                width=width,
                height=height,
                blocks=[Block(bbox=(0, 0, width, height), text=f"page {page.number}: {read}")],
            )


def start(workspace: Path, source: Path, engine: Engine, **settings: object) -> tuple[Job, object]:
    config = make_settings(workspace, **settings)
    job = JobStore(config.workspace).create(JobSpec([source], "streaming-vision", Task.TEXT), engine, config)
    return job, config


def on_disk(job: Job) -> list[int]:
    """The pages whose files are whole: the JSON reads back and the PNG decodes."""
    folder = job.dir / job.inputs[0].folder
    numbers = []
    for path in sorted(folder.glob("page-*.json")):
        result = PageResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
        with Image.open(path.with_suffix(".png")) as image:
            image.load()
        numbers.append(result.page_number)
    assert not list(folder.glob(".*.tmp")), "a write was left half done"
    return numbers


def texts(job: Job) -> list[str]:
    return [page.text() for doc in job.documents for page in doc.pages]


def threads_left(before: set[threading.Thread], seconds: float = 10.0) -> list[str]:
    """Threads started since ``before`` and still alive (the worker's pipe reader ends once its
    process is gone, so give it a moment)."""
    deadline = time.monotonic() + seconds
    while True:
        left = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def test_the_engine_takes_the_next_page_while_the_last_one_is_written(tmp_path, monkeypatch):
    source = make_pdf(tmp_path / "six.pdf", 6)
    writes: dict[int, tuple[float, float]] = {}
    real_write = jobs._write_page

    def slow_write(folder, result, image):
        began = time.monotonic()
        time.sleep(SLOW)
        real_write(folder, result, image)
        writes[result.page_number] = (began, time.monotonic())

    monkeypatch.setattr(jobs, "_write_page", slow_write)
    engine = StreamingEngine()
    job, settings = start(tmp_path / "ws", source, engine)
    job = run_job(job, engine, settings)

    assert job.status == "done" and on_disk(job) == [1, 2, 3, 4, 5, 6]
    for number in range(1, 6):  # in line, page N+1 came only after page N's files were written
        assert engine.took[number + 1] < writes[number][1], f"page {number + 1} waited for page {number}'s write"


def test_pages_are_rendered_while_the_engine_reads(tmp_path, monkeypatch):
    source = make_pdf(tmp_path / "six.pdf", 6)
    real_render = PageWorker.render

    def slow_render(self, number):
        time.sleep(SLOW)
        return real_render(self, number)

    monkeypatch.setattr(PageWorker, "render", slow_render)
    engine = StreamingEngine(work=SLOW)
    job, settings = start(tmp_path / "ws", source, engine)
    job = run_job(job, engine, settings)

    assert job.status == "done" and on_disk(job) == [1, 2, 3, 4, 5, 6]
    serial = 6 * (SLOW + SLOW)  # render, then read, page after page: 2.4 s
    assert engine.finished - engine.started < 0.75 * serial  # about max(render, read) × 6 + one render


def test_cancel_stops_every_thread_and_keeps_whole_pages_that_a_resume_completes(tmp_path):
    source = make_pdf(tmp_path / "eight.pdf", 8)
    before = set(threading.enumerate())
    cancel = threading.Event()
    events: list[Progress] = []

    def cancel_after_page_three(event: Progress) -> None:
        events.append(event)
        if event.page == 3 and event.partial_text is None:
            cancel.set()

    engine = StreamingEngine(work=0.05)
    job, settings = start(tmp_path / "ws", source, engine)
    job = run_job(job, engine, settings, progress=cancel_after_page_three, cancel=cancel)

    assert job.status == "cancelled"
    assert threads_left(before) == []  # no render thread, no writer, no worker left behind
    assert on_disk(job) == [1, 2, 3]  # as with the writes in line: nothing written after the cancel
    assert [e.page for e in events if e.page is not None and e.partial_text is None] == [1, 2, 3]
    assert {1, 2, 3} <= set(engine.took) <= {1, 2, 3, 4}  # the engine read at most one page more

    again_engine = StreamingEngine()
    again, settings = start(tmp_path / "ws", source, again_engine)
    assert again.id == job.id
    again = run_job(again, again_engine, settings)
    assert again.status == "done" and sorted(again_engine.took) == [4, 5, 6, 7, 8]  # only the rest
    whole_engine = StreamingEngine()
    whole, settings = start(tmp_path / "other-ws", source, whole_engine)
    whole = run_job(whole, whole_engine, settings)
    assert texts(again) == texts(whole) and len(set(texts(whole))) == 8
    assert threads_left(before) == []


def test_cancel_stops_a_render_under_way_at_once(tmp_path):
    from tests.test_security import bomb_pdf

    before = set(threading.enumerate())
    engine = StreamingEngine()
    job, settings = start(tmp_path / "ws", bomb_pdf(tmp_path / "laughs.pdf"), engine, page_timeout=600)
    cancel = threading.Event()
    threading.Timer(1.5, cancel.set).start()  # the render thread is deep in the XObject bomb by then
    began = time.monotonic()
    job = run_job(job, engine, settings, cancel=cancel)

    assert job.status == "cancelled" and time.monotonic() - began < 1.5 + 5  # not the 600 s page budget
    assert engine.took == {} and threads_left(before) == []


def test_a_page_that_cannot_be_rendered_fails_alone_and_in_its_place(tmp_path):
    source = make_pdf(tmp_path / "mixed.pdf", 3, big_pages=[2])  # page 2: 3000×3000 px at 72 DPI
    events: list[Progress] = []
    engine = StreamingEngine()
    job, settings = start(tmp_path / "ws", source, engine, max_image_megapixels=1)
    job = run_job(job, engine, settings, progress=events.append)

    assert job.status == "done"
    assert sorted(engine.took) == [1, 3]  # the engine never got the page that failed
    pages = job.documents[0].pages
    assert [p.page_number for p in pages] == [1, 2, 3]
    assert pages[1].blocks == [] and "too large" in pages[1].warnings[0]
    assert job.page_errors[0] == {2: pages[1].warnings[0]}
    finished = [(e.page, e.pages_done, e.error) for e in events if e.page is not None and e.partial_text is None]
    assert finished == [(1, 1, None), (2, 2, pages[1].warnings[0]), (3, 3, None)]  # reported in page order


def test_a_full_disk_stops_the_job_as_before_and_a_resume_finishes_it(tmp_path, monkeypatch):
    source = make_pdf(tmp_path / "four.pdf", 4)
    real_write = jobs._write_page

    def disk_full_on_page_two(folder, result, image):
        if result.page_number == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(folder, result, image)

    monkeypatch.setattr(jobs, "_write_page", disk_full_on_page_two)
    before = set(threading.enumerate())
    engine = StreamingEngine()
    job, settings = start(tmp_path / "ws", source, engine)
    with pytest.raises(WorkspaceError, match="No space left on device"):
        run_job(job, engine, settings)  # raised in the job's thread, not lost in the writer's

    assert threads_left(before) == []
    stored = JobStore(settings.workspace).load(job.id)
    assert stored.status == "failed" and "No space left on device" in stored.message
    assert on_disk(stored) == [1]  # nothing after the page that could not be written

    monkeypatch.setattr(jobs, "_write_page", real_write)  # space again
    again_engine = StreamingEngine()
    again, settings = start(tmp_path / "ws", source, again_engine)
    again = run_job(again, again_engine, settings)
    assert again.status == "done" and sorted(again_engine.took) == [2, 3, 4]
    assert on_disk(again) == [1, 2, 3, 4]
