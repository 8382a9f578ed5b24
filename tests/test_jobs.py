"""Jobs: every page on disk as soon as it is done, resume after a kill, cancel, cache,
history, and one bad file never stopping the others. The engine is the real
text-layer engine on PDFs made here with PyMuPDF."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pymupdf
import pytest

from ocr_studio.engines import get_engine
from ocr_studio.engines.base import Engine, EngineError, EngineInfo, RecognizeRequest, Task
from ocr_studio.jobs import Job, JobSpec, JobStore, Progress, run_job
from ocr_studio.results import PageResult
from ocr_studio.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]


# --- helpers shared with tests/test_cli.py ---------------------------------------------------


def page_words(number: int) -> str:
    return f"Page {number} says hello number {number * 7}"


def make_pdf(path: Path, pages: int, *, big_pages: Sequence[int] = (), **save_options: object) -> Path:
    """A PDF whose page N carries the text page_words(N); ``big_pages`` are 3000×3000 pt."""
    pdf = pymupdf.open()
    for number in range(1, pages + 1):
        size = {"width": 3000, "height": 3000} if number in big_pages else {}
        page = pdf.new_page(**size)
        page.insert_text((72, 72), page_words(number), fontsize=14)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.save(path, **save_options)
    pdf.close()
    return path


def make_settings(workspace: Path, **overrides: object) -> Settings:
    """Settings from defaults only (no user config, no environment), small pages for speed."""
    values = {"workspace": str(workspace), "dpi": 72, **overrides}
    return load_settings(config_path=workspace / "no-config.toml", environ={}, overrides=values)


class CountingEngine(Engine):
    """The real engine, counting which pages it is asked to recognize."""

    def __init__(self, inner: Engine, *, fail_on_page: int | None = None):
        self.inner = inner
        self.fail_on_page = fail_on_page
        self.seen: list[int] = []

    def info(self) -> EngineInfo:
        return self.inner.info()

    def batch_size(self, task: Task) -> int:
        return self.inner.batch_size(task)

    def settings_key(self) -> dict[str, object]:
        return self.inner.settings_key()

    def recognize(self, pages, request: RecognizeRequest) -> list[PageResult]:
        numbers = [p.number for p in pages]
        if self.fail_on_page in numbers:
            raise EngineError("The GPU ran out of memory; close other programs and try again.")
        self.seen += numbers
        return self.inner.recognize(pages, request)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "workspace")


@pytest.fixture
def engine(settings: Settings) -> CountingEngine:
    return CountingEngine(get_engine("text-layer", settings))


def page_files(job: Job, document_index: int = 0) -> list[str]:
    return sorted(p.name for p in (job.dir / job.inputs[document_index].folder).glob("page-*"))


def texts(job: Job) -> list[str]:
    return [page.text() for doc in job.documents for page in doc.pages]


# --- tests -------------------------------------------------------------------------------------


def test_every_page_is_written_with_its_image_and_reopens_without_the_engine(tmp_path, settings, engine):
    source = make_pdf(tmp_path / "report.pdf", 3)
    store = JobStore(settings.workspace)
    events: list[Progress] = []
    job = run_job(
        store.create(JobSpec([source], "text-layer", Task.TEXT), engine, settings),
        engine,
        settings,
        progress=events.append,
    )

    assert job.status == "done"
    assert texts(job) == [page_words(n) for n in (1, 2, 3)]
    assert page_files(job) == [f"page-000{n}.{ext}" for n in (1, 2, 3) for ext in ("json", "png")]
    assert [e.page for e in events if e.page is not None and e.partial_text is None] == [1, 2, 3]
    assert [e.pages_done for e in events if e.page is not None and e.partial_text is None] == [1, 2, 3]
    assert all(e.pages_total == 3 and e.document == "report.pdf" for e in events)
    image = job.page_image(0, 2)
    assert (
        image.size == (job.documents[0].pages[1].width, job.documents[0].pages[1].height) == (595, 842)
    )  # A4 at 72 DPI

    source.unlink()  # the upload is gone: the job has its own copy and its results
    reopened = JobStore(settings.workspace).load(job.id)
    assert reopened.status == "done"
    assert texts(reopened) == texts(job)
    assert reopened.documents[0].name == "report.pdf"
    assert json.loads((job.dir / "job.json").read_text())["status"] == "done"


KILLED_RUN = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from tests.test_jobs import make_settings
    from ocr_studio.engines import get_engine
    from ocr_studio.engines.base import Task
    from ocr_studio.jobs import JobSpec, JobStore, run_job

    settings = make_settings(Path(sys.argv[2]))
    engine = get_engine("text-layer", settings)
    job = JobStore(settings.workspace).create(JobSpec([Path(sys.argv[3])], "text-layer", Task.TEXT), engine, settings)

    def progress(event):
        if event.page == 2 and event.partial_text is None:
            os._exit(9)  # as if the power went: no cleanup, no status update

    run_job(job, engine, settings, progress=progress)
    """
)


def test_a_killed_job_resumes_where_it_stopped(tmp_path, settings, engine):
    source = make_pdf(tmp_path / "long.pdf", 5)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(REPO), str(settings.workspace), str(source)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == 9, killed.stderr

    store = JobStore(settings.workspace)
    [interrupted] = store.history()
    assert interrupted.status == "interrupted"  # job.json still says running; its process is gone
    assert page_files(interrupted) == ["page-0001.json", "page-0001.png", "page-0002.json", "page-0002.png"]
    folder = interrupted.dir / interrupted.inputs[0].folder
    before = {p.name: p.stat().st_mtime_ns for p in folder.glob("page-*")}

    job = store.create(JobSpec([source], "text-layer", Task.TEXT), engine, settings)
    assert job.id == interrupted.id
    job = run_job(job, engine, settings)

    assert job.status == "done"
    assert engine.seen == [3, 4, 5]  # pages 1-2 were not recomputed...
    assert {name: (folder / name).stat().st_mtime_ns for name in before} == before  # ...nor rewritten
    uninterrupted = run_job(*_fresh_job(tmp_path / "other", source))
    assert texts(job) == texts(uninterrupted) == [page_words(n) for n in range(1, 6)]


def _fresh_job(workspace: Path, source: Path) -> tuple[Job, Engine, Settings]:
    settings = make_settings(workspace)
    engine = get_engine("text-layer", settings)
    return JobStore(workspace).create(JobSpec([source], "text-layer", Task.TEXT), engine, settings), engine, settings


def test_cancel_keeps_finished_pages_and_running_again_completes(tmp_path, settings, engine):
    source = make_pdf(tmp_path / "doc.pdf", 4)
    store = JobStore(settings.workspace)
    spec = JobSpec([source], "text-layer", Task.TEXT)
    cancel = threading.Event()

    def progress(event: Progress) -> None:
        if event.page == 1:
            cancel.set()

    job = run_job(store.create(spec, engine, settings), engine, settings, progress=progress, cancel=cancel)
    assert job.status == "cancelled"
    assert page_files(job) == ["page-0001.json", "page-0001.png"]
    assert texts(store.load(job.id)) == [page_words(1)]
    assert store.load(job.id).status == "cancelled"

    again = run_job(store.create(spec, engine, settings), engine, settings)
    assert again.id == job.id and again.status == "done"
    assert engine.seen == [1, 2, 3, 4]  # page 1 once, then the rest
    assert texts(again) == [page_words(n) for n in range(1, 5)]


def test_same_request_hits_the_cache_without_calling_the_engine(tmp_path, settings, engine):
    source = make_pdf(tmp_path / "doc.pdf", 2)
    copy_elsewhere = tmp_path / "elsewhere" / "renamed.pdf"
    copy_elsewhere.parent.mkdir()
    copy_elsewhere.write_bytes(source.read_bytes())
    store = JobStore(settings.workspace)
    first = run_job(store.create(JobSpec([source], "text-layer", Task.TEXT), engine, settings), engine, settings)
    assert engine.seen == [1, 2]

    fresh_engine = CountingEngine(get_engine("text-layer", settings))
    second = store.create(JobSpec([copy_elsewhere], "text-layer", Task.TEXT), fresh_engine, settings)
    assert second.id == first.id and second.status == "done"  # same content, same request
    assert texts(run_job(second, fresh_engine, settings)) == texts(first)
    assert fresh_engine.seen == []


def test_a_different_request_is_a_different_job(tmp_path, settings, engine):
    source = make_pdf(tmp_path / "doc.pdf", 3)
    other_source = make_pdf(tmp_path / "other.pdf", 4)
    store = JobStore(settings.workspace)
    spec = JobSpec([source], "text-layer", Task.TEXT)
    base = store.create(spec, engine, settings).id
    variants = [
        store.create(spec, engine, make_settings(settings.workspace, dpi=100)),
        store.create(JobSpec([source], "text-layer", Task.MARKDOWN), engine, settings),
        store.create(JobSpec([source], "text-layer", Task.TEXT, pages="1-2"), engine, settings),
        store.create(JobSpec([source], "text-layer", Task.REGION, region=(0, 0, 100, 100)), engine, settings),
        store.create(JobSpec([other_source], "text-layer", Task.TEXT), engine, settings),
        store.create(
            spec, get_engine("text-layer", make_settings(settings.workspace, tesseract_language="deu")), settings
        ),
    ]
    ids = [job.id for job in variants]
    assert base not in ids and len(set(ids)) == len(ids)
    assert store.create(spec, engine, settings).id == base


def test_history_lists_jobs_newest_first(tmp_path, settings, engine):
    source = make_pdf(tmp_path / "doc.pdf", 3)
    store = JobStore(settings.workspace)
    created = []
    for pages in ("1", "2", "3"):
        created.append(
            run_job(
                store.create(JobSpec([source], "text-layer", Task.TEXT, pages=pages), engine, settings),
                engine,
                settings,
            ).id
        )
        time.sleep(0.02)
    history = store.history()
    assert [job.id for job in history] == created[::-1]
    assert [texts(job) for job in history] == [[page_words(3)], [page_words(2)], [page_words(1)]]
    assert [job.id for job in store.history(limit=2)] == created[:0:-1]
    listed = store.history(pages=False)  # what the sidebar's job list reads: no page results
    assert [job.id for job in listed] == created[::-1]
    assert [job.status for job in listed] == [job.status for job in history]
    assert all(doc.name == "doc.pdf" and doc.pages == [] for job in listed for doc in job.documents)


def test_one_bad_file_does_not_stop_the_good_one(tmp_path, settings, engine):
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(os.urandom(4096))
    good = make_pdf(tmp_path / "good.pdf", 2)
    store = JobStore(settings.workspace)
    errors: list[Progress] = []
    job = run_job(
        store.create(JobSpec([bad, good], "text-layer", Task.TEXT), engine, settings),
        engine,
        settings,
        progress=lambda e: errors.append(e) if e.error else None,
    )

    assert job.status == "done"
    broken, fine = job.documents
    assert fine.error is None and [p.text() for p in fine.pages] == [page_words(1), page_words(2)]
    assert broken.pages == [] and "broken.pdf" in broken.error and "not a PDF" in broken.error
    assert [(e.document, e.error) for e in errors] == [("broken.pdf", broken.error)]
    assert store.load(job.id).documents[0].error == broken.error  # persisted in job.json


def test_a_page_that_cannot_be_rendered_fails_alone(tmp_path):
    settings = make_settings(tmp_path / "workspace", max_image_megapixels=1)  # page 2 is 3000×3000 px at 72 DPI
    engine = get_engine("text-layer", settings)
    source = make_pdf(tmp_path / "mixed.pdf", 3, big_pages=[2])
    store = JobStore(settings.workspace)
    job = run_job(store.create(JobSpec([source], "text-layer", Task.TEXT), engine, settings), engine, settings)

    assert job.status == "done"
    pages = job.documents[0].pages
    assert [p.page_number for p in pages] == [1, 2, 3]
    assert pages[0].text() == page_words(1) and pages[2].text() == page_words(3)
    assert pages[1].blocks == [] and "too large" in pages[1].warnings[0]
    assert set(store.load(job.id).page_errors[0]) == {2}


def test_an_engine_failure_fails_the_job_and_keeps_finished_pages(tmp_path, settings):
    source = make_pdf(tmp_path / "doc.pdf", 3)
    failing = CountingEngine(get_engine("text-layer", settings), fail_on_page=2)
    store = JobStore(settings.workspace)
    spec = JobSpec([source], "text-layer", Task.TEXT)
    job = run_job(store.create(spec, failing, settings), failing, settings)

    assert job.status == "failed" and "out of memory" in job.message
    assert texts(job) == [page_words(1)]
    reopened = store.load(job.id)
    assert reopened.status == "failed" and reopened.message == job.message

    working = CountingEngine(get_engine("text-layer", settings))
    done = run_job(store.create(spec, working, settings), working, settings)
    assert done.status == "done" and working.seen == [2, 3]


def test_the_password_is_used_but_never_written(tmp_path, settings, engine):
    password = "Sesame-7f3c"
    locked = make_pdf(
        tmp_path / "locked.pdf",
        1,
        encryption=pymupdf.PDF_ENCRYPT_AES_256,
        user_pw=password,
        owner_pw=password + "owner",
    )
    store = JobStore(settings.workspace)
    without = run_job(store.create(JobSpec([locked], "text-layer", Task.TEXT), engine, settings), engine, settings)
    assert without.documents[0].error and "password" in without.documents[0].error.lower()

    job = store.create(JobSpec([locked], "text-layer", Task.TEXT, password=password), engine, settings)
    assert job.id == without.id  # the password is not part of the key...
    job = run_job(job, engine, settings)
    assert job.documents[0].error is None and texts(job) == [page_words(1)]  # ...but it is used
    for path in settings.workspace.rglob("*"):
        if path.is_file():
            assert password.encode() not in path.read_bytes(), path
