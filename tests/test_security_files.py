"""Files the studio writes and keeps, attacked as the review of issue 24 did: a second Unix user
reading exports and Gradio's copies, a 1x100000 px PNG, a format that cannot be made, a job of
many broken files beside another job, damaged page images, a PID given to another process, and
an interrupted job resumed from its own copies of its inputs."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pymupdf
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from ocr_studio import exporters
from ocr_studio.engines import get_engine
from ocr_studio.engines.base import Engine, EngineInfo, RecognizeRequest, Task
from ocr_studio.jobs import Job, JobSpec, JobStore, process_start, run_job
from ocr_studio.results import Block, PageResult
from tests.badfiles import truncated_pdf, truncated_png
from tests.test_jobs import make_pdf, make_settings, page_words
from tests.test_ui_client import start_server

STRIP = (1, 100_000)  # 1 px wide, 100,000 px tall: past WebP's 16,383 and JPEG's 65,500 px


class StripEngine(Engine):
    """Stands for a GPU engine: one text block over the whole of every page it is given."""

    def info(self) -> EngineInfo:
        return EngineInfo(name="strip-vision", label="Strip vision", tasks=(Task.TEXT,), needs_gpu=True)

    def recognize(self, pages, request: RecognizeRequest) -> list[PageResult]:
        results = []
        for page in pages:
            width, height = page.image.size
            block = Block((0, 0, width, height), "Text", f"Seen page {page.number}")
            results.append(PageResult(page_number=page.number, width=width, height=height, blocks=[block]))
        return results


def strip_png(path: Path) -> Path:
    Image.new("L", STRIP, 255).save(path)
    assert path.stat().st_size < 1000  # a few hundred bytes, as in the review
    return path


def private(mode: int) -> bool:
    return not mode & 0o077


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The studio in this process (its Studio can be reached), the token off for scripting."""
    served, _url = start_server(tmp_path_factory.mktemp("workspace"), page_timeout=10)
    try:
        yield served
    finally:
        served.close()


def studio_of(server) -> object:
    return server.blocks.studio


def get(server, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{int(server.port)}{path}", timeout=60)


# --- 3: exports and Gradio's copies are their owner's alone --------------------------------------


def test_exports_and_gradios_copies_are_unreadable_by_another_user(server, tmp_path: Path) -> None:
    """Exports are 0600 in 0700 folders; Gradio's copy of what /convert returns sits in the studio's
    own 0700 temp folder (not the shared /tmp/gradio). Where this runs as root, ``nobody`` tries."""
    pdf = make_pdf(tmp_path / "payroll.pdf", 1)
    client = Client(server.base_url, verbose=False, download_files=str(tmp_path / "dl"))
    status, _markdown, files = client.predict(
        [handle_file(str(pdf))], "text-layer", "text", "", "", api_name="/convert"
    )
    assert "Done" in status and files, status
    workspace = Path(studio_of(server).settings.workspace)
    exported = [p for p in (workspace / "exports").rglob("*") if p.is_file()]
    assert any(p.name == "payroll.md" for p in exported)
    for path in exported:
        assert private(path.stat().st_mode), f"{path} is {oct(path.stat().st_mode)}"
    assert private((workspace / "exports").stat().st_mode)

    from ocr_studio.ui import temp_folder

    temp = Path(os.environ["GRADIO_TEMP_DIR"])
    if temp_folder._made is None:
        pytest.skip("GRADIO_TEMP_DIR was set before the studio started: the user's choice is kept")
    assert temp == temp_folder._made, "the studio's own temp folder, not a shared one"
    assert private(temp.stat().st_mode) and temp.stat().st_uid == os.getuid()
    copies = [p for p in temp.rglob("payroll.md")]
    assert copies, "Gradio keeps its copy of each returned file in that folder"

    if os.geteuid() != 0 or shutil.which("runuser") is None:
        return
    # a second user: the workspace in a folder anyone may enter, as a home folder often is
    shared = Path(tempfile.mkdtemp(prefix="h4-shared-"))
    try:
        shared.chmod(0o755)
        export = exporters.write_atomic(shared / "exports" / "payroll.md", b"salary 1000")
        exporters.private_folder(shared / "exports")
        readable = shared / "readable.txt"
        readable.write_text("public")
        readable.chmod(0o644)

        def as_nobody(*command: str) -> int:
            return subprocess.run(["runuser", "-u", "nobody", "--", *command], capture_output=True).returncode

        assert as_nobody("cat", str(readable)) == 0, "the other user can read what is meant to be readable"
        assert as_nobody("cat", str(export)) != 0
        assert as_nobody("ls", str(shared / "exports")) != 0
        assert as_nobody("ls", str(temp)) != 0
        assert as_nobody("cat", str(copies[0])) != 0
    finally:
        shutil.rmtree(shared, ignore_errors=True)


# --- 4: one hostile image never removes the other downloads --------------------------------------


def test_a_one_pixel_wide_strip_costs_no_download_and_its_page_view_answers(server, tmp_path: Path) -> None:
    """The review's 1x100000 px PNG beside a normal PDF: every download of both documents and the
    zip come back, the strip's searchable PDF holds its text, and its page view is an image."""
    studio = studio_of(server)
    engine = StripEngine()
    spec = JobSpec([strip_png(tmp_path / "strip.png"), make_pdf(tmp_path / "normal.pdf", 1)], "strip-vision", Task.TEXT)
    job = run_job(studio.store.create(spec, engine, studio.settings), engine, studio.settings)
    assert job.status == "done" and all(d.pages for d in job.documents)

    for index in (0, 1):
        for fmt in exporters.DOCUMENT_FORMATS:
            answer = get(server, f"/studio/download/{job.id}/{index}/{fmt}")
            assert answer.status_code == 200, (index, fmt, answer.text[:200])
            assert not answer.headers["content-disposition"].endswith('.failed.txt"'), (index, fmt)
    archive = zipfile.ZipFile(io.BytesIO(get(server, f"/studio/download/{job.id}/job/zip").content))
    names = set(archive.namelist())
    assert {f"{stem}/{stem}.{fmt}" for stem in ("strip", "normal") for fmt in exporters.DOCUMENT_FORMATS} <= names
    assert not [n for n in names if n.endswith(exporters.FAILED_SUFFIX)]
    with pymupdf.open(stream=archive.read("strip/strip.pdf"), filetype="pdf") as pdf:
        assert pdf[0].rect.height == pytest.approx(STRIP[1] * 72 / 200) and pdf[0].rect.width >= 1
        assert {"page", "1"} <= set(pdf[0].get_text().split())  # its text, squeezed into 1 pt
    assert studio.download_problems(studio.job(job.id)) == []

    view = get(server, f"/studio/page/{job.id}/0/1")
    assert view.status_code == 200, view.text[:200]
    shown = Image.open(io.BytesIO(view.content))
    assert shown.format == "WEBP" and max(shown.size) <= 16_383
    assert get(server, f"/studio/thumb/{job.id}/0/1").status_code == 200


def failing_pdf(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """The searchable PDF of ``name`` fails as the review's did (a codec's limit, say)."""
    real = exporters._searchable_pdf

    def searchable_pdf(doc, *args, **kwargs):
        if doc.name == name:
            raise OSError("broken data stream when writing image file")
        return real(doc, *args, **kwargs)

    monkeypatch.setattr(exporters, "_searchable_pdf", searchable_pdf)


def test_a_format_that_fails_costs_only_itself_and_the_status_says_so(
    server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_pdf(monkeypatch, "hostile.pdf")
    hostile, normal = make_pdf(tmp_path / "hostile.pdf", 1), make_pdf(tmp_path / "normal.pdf", 2)
    client = Client(server.base_url, verbose=False, download_files=str(tmp_path / "dl"))
    status, markdown, files = client.predict(
        [handle_file(str(hostile)), handle_file(str(normal))], "text-layer", "text", "", "", api_name="/convert"
    )
    assert not status.startswith("Done"), status  # never a clean "Done" while a download is broken
    assert "could not be made" in status and "hostile.pdf" in status and "broken data stream" in status, status
    assert page_words(2) in markdown
    names = {Path(f).name for f in files}
    assert {"normal.pdf", "normal.docx", "hostile.md", "hostile.docx", "hostile.pdf.failed.txt"} <= names, names
    note = next(Path(f) for f in files if Path(f).name == "hostile.pdf.failed.txt").read_text(encoding="utf-8")
    assert "hostile.pdf" in note and "broken data stream" in note
    with zipfile.ZipFile(next(f for f in files if f.endswith(".zip"))) as archive:
        assert {"normal/normal.pdf", "hostile/hostile.md", "hostile/hostile.pdf.failed.txt"} <= set(archive.namelist())

    studio = studio_of(server)
    [job] = [j for j in studio.store.history() if j.inputs[0].name == "hostile.pdf"]
    answer = get(server, f"/studio/download/{job.id}/0/pdf")
    assert answer.status_code == 200 and "broken data stream" in answer.text  # the note, not a 500
    assert get(server, f"/studio/download/{job.id}/1/pdf").content.startswith(b"%PDF")


def test_convert_writes_the_normal_pdf_beside_a_hostile_one(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ocr_studio.cli import main

    for name in list(os.environ):
        if name.startswith("OCR_STUDIO_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OCR_STUDIO_CONFIG", str(tmp_path / "absent.toml"))
    failing_pdf(monkeypatch, "hostile.pdf")
    hostile, normal = make_pdf(tmp_path / "in" / "hostile.pdf", 1), make_pdf(tmp_path / "in" / "normal.pdf", 1)
    out = tmp_path / "out"

    code = main(["convert", str(hostile), str(normal), "-o", str(out), "-q", "--format", "md,pdf,zip"])

    printed = capsys.readouterr().out
    assert code == 1 and "1 of 2 file(s) converted" in printed, printed
    [failed] = [line for line in printed.splitlines() if line.strip().startswith("FAILED")]
    assert "hostile.pdf" in failed and "broken data stream" in failed
    assert (out / "normal.pdf").read_bytes().startswith(b"%PDF") and (out / "hostile.md").is_file()
    assert "broken data stream" in (out / "hostile.pdf.failed.txt").read_text(encoding="utf-8")
    with zipfile.ZipFile(out / "ocr-studio.zip") as archive:
        assert {"normal/normal.pdf", "hostile/hostile.pdf.failed.txt"} <= set(archive.namelist())


# --- 5: many broken files: one worker, and no other job waits ------------------------------------


def test_many_broken_files_cost_one_worker_and_never_hold_up_another_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ocr_studio import page_worker
    from ocr_studio.ui.app import Studio

    settings = make_settings(tmp_path / "ws")
    studio = Studio(settings)
    engine = get_engine("text-layer", settings)
    broken = []
    for number in range(80):
        path = tmp_path / "in" / f"broken-{number:03d}.pdf"
        path.parent.mkdir(exist_ok=True)
        truncated_pdf(path, keep=0.15)  # too little is left to repair
        broken.append(path)
    good = make_pdf(tmp_path / "in" / "good.pdf", 1)
    big = run_job(
        studio.store.create(JobSpec([*broken, good], "text-layer", Task.TEXT), engine, settings), engine, settings
    )
    assert sum(1 for d in big.documents if d.error) == len(broken) and big.documents[-1].pages
    other = make_pdf(tmp_path / "in" / "other.pdf", 1)
    small = run_job(studio.store.create(JobSpec([other], "text-layer", Task.TEXT), engine, settings), engine, settings)

    starts: list[float] = []
    real_start = page_worker.PageWorker._start

    def counted_start(self) -> None:
        starts.append(time.monotonic())
        real_start(self)

    monkeypatch.setattr(page_worker.PageWorker, "_start", counted_start)
    began = time.monotonic()
    files = studio.exports(big)
    took = time.monotonic() - began
    assert len(starts) <= 1, f"{len(starts)} page workers for one job's exports"
    assert took < 30, f"the downloads of one good and {len(broken)} broken files took {took:.0f} s"
    assert set(files) == {len(broken), "zip", "failed"} and files["failed"] == {}
    with zipfile.ZipFile(files["zip"]) as archive:
        assert {name.split("/")[0] for name in archive.namelist()} == {"good"}  # no folder per broken file

    # the big job's exports are held up (as a hostile original would hold them); the other job's are not
    release, entered = threading.Event(), threading.Event()
    real_export = exporters.export_job

    def slow_export(docs, **kwargs):
        if len(docs) > 1:
            entered.set()
            release.wait(60)
        return real_export(docs, **kwargs)

    monkeypatch.setattr(exporters, "export_job", slow_export)
    studio._exports.clear()
    held = threading.Thread(target=studio.exports, args=(big,), daemon=True)
    held.start()
    try:
        assert entered.wait(30)
        began = time.monotonic()
        other_files = studio.exports(small)
        assert time.monotonic() - began < 20 and other_files[0]["md"].is_file()
        assert held.is_alive(), "the big job's exports were still being written all along"
    finally:
        release.set()
        held.join(60)


def test_a_job_writing_its_downloads_does_not_hold_up_the_next_jobs_pages(tmp_path: Path) -> None:
    from ocr_studio.runner import BackgroundJobs

    settings = make_settings(tmp_path / "ws")
    engine = get_engine("text-layer", settings)
    store = JobStore(settings.workspace)
    first = store.create(JobSpec([make_pdf(tmp_path / "a.pdf", 1)], "text-layer", Task.TEXT), engine, settings)
    second = store.create(JobSpec([make_pdf(tmp_path / "b.pdf", 1)], "text-layer", Task.TEXT), engine, settings)
    release = threading.Event()

    def downloads(job: Job) -> None:
        if job.id == first.id:
            release.wait(60)

    background = BackgroundJobs(settings, after_pages=downloads)
    try:
        background.start(first, engine)
        deadline = time.monotonic() + 30
        while background.get(first.id).phase != "exports" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert background.get(first.id).phase == "exports"
        run = background.start(second, engine)
        background.wait(second.id, timeout=30)
        assert not run.running and run.job.status == "done"
        assert background.get(first.id).running  # still writing its downloads
    finally:
        release.set()
        background.wait(first.id, timeout=30)


# --- 12: a damaged page image is found, redone, and never a 500 ----------------------------------


def media_client(store: JobStore):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from ocr_studio.ui import media

    class Stub:
        def job(self, job_id: str) -> Job:
            return store.load(job_id)

    app = FastAPI()
    app.include_router(media.router(Stub()))
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("damage", ["truncated", "folder", "symlink"])
def test_a_damaged_page_image_is_redone_and_its_page_view_answers_cleanly(tmp_path: Path, damage: str) -> None:
    settings = make_settings(tmp_path / "ws")
    engine = get_engine("text-layer", settings)
    store = JobStore(settings.workspace)
    source = make_pdf(tmp_path / "doc.pdf", 3)
    job = run_job(store.create(JobSpec([source], "text-layer", Task.TEXT), engine, settings), engine, settings)
    image = job.page_image_path(0, 2)
    untouched = job.page_image_path(0, 1).stat().st_mtime_ns
    if damage == "truncated":
        truncated_png(image, size=(300, 300))
    elif damage == "folder":
        image.unlink()
        image.mkdir()
        (image / "inside.txt").write_text("not an image")
    else:
        secret = tmp_path / "elsewhere.png"
        Image.new("RGB", (40, 40), (200, 0, 0)).save(secret)  # a readable image outside the job
        image.unlink()
        image.symlink_to(secret)

    reopened = store.load(job.id)
    assert reopened.status != "done" and "page 2 of doc.pdf" in reopened.message, reopened.message
    client = media_client(store)
    for route in ("page", "thumb"):
        answer = client.get(f"/studio/{route}/{job.id}/0/2")
        assert answer.status_code == 404 and "damaged" in answer.json()["detail"], (route, answer.text)
    assert client.get(f"/studio/page/{job.id}/0/1").status_code == 200

    again = run_job(store.create(JobSpec([source], "text-layer", Task.TEXT), engine, settings), engine, settings)
    assert again.status == "done" and [p.text() for p in again.documents[0].pages] == [page_words(n) for n in (1, 2, 3)]
    assert stat.S_ISREG(os.lstat(image).st_mode)
    with Image.open(image) as redone:
        redone.load()
    assert job.page_image_path(0, 1).stat().st_mtime_ns == untouched  # only the damaged page was redone
    assert client.get(f"/studio/page/{job.id}/0/2").status_code == 200


# --- 13: a PID given to another process ---------------------------------------------------------


@pytest.mark.skipif(process_start(os.getpid()) is None, reason="the system does not say when a process started")
def test_a_job_whose_pid_now_belongs_to_another_process_is_not_running(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "ws")
    engine = get_engine("text-layer", settings)
    store = JobStore(settings.workspace)
    job = store.create(JobSpec([make_pdf(tmp_path / "doc.pdf", 1)], "text-layer", Task.TEXT), engine, settings)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        path = job.dir / "job.json"
        state = json.loads(path.read_text())

        def recorded(started: str | None) -> str:
            state.update(status="running", pid=stranger.pid, pid_started=started)
            path.write_text(json.dumps(state))
            return store.load(job.id).status

        boot, ticks = process_start(stranger.pid).rsplit(":", 1)
        assert recorded(f"{boot}:{int(ticks) - 1}") == "interrupted"  # the crashed run started earlier
        assert recorded(f"another-boot:{ticks}") == "interrupted"  # or before a reboot
        assert recorded(process_start(stranger.pid)) == "running"  # the process that really runs it
    finally:
        stranger.kill()
        stranger.wait()
    assert store.load(job.id).status == "interrupted"


# --- 14: an interrupted job goes on from its own copies of its files ----------------------------


def stopped_job(tmp_path: Path, *, killed: bool, settings=None) -> tuple[object, Job]:
    """A three-page job stopped after page 1 (``killed``: the studio died, its run still recorded
    as running by a process that is gone; else cancelled), its upload gone as Gradio's temp files go."""
    settings = settings or make_settings(tmp_path / "ws")
    engine = get_engine("text-layer", settings)
    store = JobStore(settings.workspace)
    source = make_pdf(tmp_path / "upload" / "report.pdf", 3)
    job = run_job(store.create(JobSpec([source], "text-layer", Task.TEXT), engine, settings), engine, settings)
    for number in (2, 3):
        job.page_image_path(0, number).unlink()
        job.page_image_path(0, number).with_suffix(".json").unlink()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    path = job.dir / "job.json"
    state = json.loads(path.read_text())
    if killed:
        state.update(status="running", pid=gone.pid, pid_started="a-process-that-is-gone")
    else:
        state.update(status="cancelled")
    path.write_text(json.dumps(state))
    shutil.rmtree(source.parent)
    return settings, store.load(job.id)


def test_a_killed_job_goes_on_by_itself_when_the_studio_starts_again(tmp_path: Path) -> None:
    from ocr_studio.ui.app import Studio

    settings, job = stopped_job(tmp_path, killed=True)
    assert job.status == "interrupted" and len(job.documents[0].pages) == 1
    kept = job.page_image_path(0, 1).stat().st_mtime_ns
    studio = Studio(settings)
    [run] = studio.resume_killed()
    studio.background.wait(job.id, timeout=120)
    again = studio.store.load(job.id)
    assert again.status == "done", again.message
    assert [p.text() for p in again.documents[0].pages] == [page_words(n) for n in (1, 2, 3)]
    assert job.page_image_path(0, 1).stat().st_mtime_ns == kept  # only what was missing was done
    assert studio.resume_killed() == []  # nothing left to resume


def test_a_cancelled_job_resumes_with_one_click_and_says_why_when_it_cannot(tmp_path: Path) -> None:
    from ocr_studio.jobs import JobError
    from ocr_studio.ui.app import Studio

    settings, job = stopped_job(tmp_path, killed=False)
    studio = Studio(settings)
    assert studio.store.killed() == []  # cancelled on purpose: not resumed by itself
    copy = job.input_path(0)
    hidden = copy.with_name("hidden")
    copy.rename(hidden)
    with pytest.raises(JobError, match="copy of report.pdf is gone; drop the file again"):
        studio.resume_job(job.id)
    hidden.rename(copy)

    studio.resume_job(job.id)  # the Resume button's work
    studio.background.wait(job.id, timeout=120)
    again = studio.store.load(job.id)
    assert again.status == "done" and [p.text() for p in again.documents[0].pages][2] == page_words(3)
    with pytest.raises(JobError, match="only an interrupted or cancelled job"):
        studio.resume_job(job.id)


def test_the_resume_button_goes_on_with_the_job_on_screen(server, tmp_path: Path) -> None:
    studio = studio_of(server)
    _settings, job = stopped_job(tmp_path, killed=False, settings=studio.settings)
    client = Client(server.base_url, verbose=False, download_files=str(tmp_path / "dl"))
    client.predict(job.id, api_name="/resume")  # what the button sends: the job on screen
    studio.background.wait(job.id, timeout=120)
    again = studio.store.load(job.id)
    assert again.status == "done" and [p.text() for p in again.documents[0].pages][1] == page_words(2)
