"""The document library's search: every recognised block of every job in one SQLite FTS5 index,
found by its words in English and Russian (any form of a word), kept as pages finish, rebuilt
when damaged, and forgetting a job that is deleted. Jobs are real text-layer runs on PDFs made
here with PyMuPDF."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from ocr_studio.engines import get_engine
from ocr_studio.engines.base import Task
from ocr_studio.i18n import render
from ocr_studio.jobs import JobError, JobSpec, JobStore, run_job
from ocr_studio.settings import Settings
from tests.test_jobs import make_pdf, make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "workspace")


def convert(settings: Settings, source: Path):
    engine = get_engine("text-layer", settings)
    store = JobStore(settings.workspace)
    return run_job(store.create(JobSpec([source], "text-layer", Task.TEXT), engine, settings), engine, settings)


# --- deleting a job ------------------------------------------------------------------------------


def test_a_deleted_job_is_gone_from_disk_history_and_downloads(tmp_path, settings):
    keep = convert(settings, make_pdf(tmp_path / "keep.pdf", 1))
    gone = convert(settings, make_pdf(tmp_path / "gone.pdf", 2))
    exports = Path(settings.workspace) / "exports" / gone.id / "full"
    exports.mkdir(parents=True)
    (exports / "gone.md").write_text("Page 1 says hello", encoding="utf-8")
    store = JobStore(settings.workspace)

    store.delete(gone.id)

    assert not gone.dir.exists() and not exports.parent.exists()
    assert [job.id for job in store.history()] == [keep.id]
    assert not [p for p in store.root.iterdir() if p.name != keep.id]  # nothing left behind, renamed or not
    with pytest.raises(JobError, match="No job"):
        store.load(gone.id)
    assert store.load(keep.id).status == "done"


def test_deleting_refuses_a_running_job_a_bad_id_and_a_missing_job(tmp_path, settings):
    job = convert(settings, make_pdf(tmp_path / "report.pdf", 1))
    store = JobStore(settings.workspace)
    state = json.loads((job.dir / "job.json").read_text(encoding="utf-8"))
    state.update(status="running", pid=os.getppid())  # another process that is alive runs it
    (job.dir / "job.json").write_text(json.dumps(state), encoding="utf-8")

    with pytest.raises(JobError) as refused:
        store.delete(job.id)
    assert "cancel it" in str(refused.value) and "отмените" in render(refused.value.message, "ru")
    assert (job.dir / "job.json").is_file()

    for bad in ("../../etc", "", "ABC", job.id + "/.."):
        with pytest.raises(JobError, match="not a job id"):
            store.delete(bad)
    with pytest.raises(JobError, match="No job"):
        store.delete("0" * 20)
    assert (job.dir / "job.json").is_file()


def test_deleting_refuses_a_job_running_in_this_process(tmp_path, settings):
    from ocr_studio import jobs

    job = convert(settings, make_pdf(tmp_path / "report.pdf", 1))
    entered, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with jobs._running(job.id):  # what run_job holds while the job runs
            entered.set()
            leave.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert entered.wait(10)
        with pytest.raises(JobError, match="is running"):
            JobStore(settings.workspace).delete(job.id)
    finally:
        leave.set()
        thread.join()
    assert job.dir.is_dir()
    JobStore(settings.workspace).delete(job.id)  # once it stopped
    assert not job.dir.exists()
