"""The hot folder: files dropped into a folder are converted once complete, by the real job code
(the text-layer engine reads the PDFs' own text), with failures, restarts and a vanishing drive."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ocr_studio.cli import main
from ocr_studio.engines import get_engine
from ocr_studio.engines.base import Task
from ocr_studio.library.hot_folder import ERROR_SUFFIX, STATE_FILE, HotFolder, HotFolderError
from ocr_studio.library.job_converter import JobConverter
from ocr_studio.settings import load_settings
from tests.test_jobs import make_pdf, page_words


@pytest.fixture(autouse=True)
def no_user_settings(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("OCR_STUDIO_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OCR_STUDIO_CONFIG", str(tmp_path / "absent-config.toml"))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Spy:
    """The real converter, counting what it was asked to convert and how big the file was then."""

    def __init__(self, tmp_path: Path, formats: tuple[str, ...] = ("md",)):
        settings = load_settings(overrides={"workspace": str(tmp_path / "workspace"), "dpi": 72})
        engine = get_engine("text-layer", settings)
        self.real = JobConverter(settings, engine, Task(engine.info().default_task), list(formats))
        self.calls: list[tuple[str, int]] = []

    def __call__(self, path: Path, out_folder: Path, stem: str):
        self.calls.append((path.name, path.stat().st_size))
        return self.real(path, out_folder, stem)


def watcher(tmp_path: Path, spy, clock: Clock, **kwargs) -> HotFolder:
    return HotFolder(tmp_path / "in", tmp_path / "out", spy, settle_seconds=2.0, clock=clock, **kwargs)


def settle(folder: HotFolder, clock: Clock, scans: int = 2) -> None:
    for _ in range(scans):
        clock.now += 2.5
        folder.poll()


def test_a_file_copied_in_slowly_is_converted_once_and_only_when_complete(tmp_path):
    source = make_pdf(tmp_path / "source" / "report.pdf", 3)
    data = source.read_bytes()
    target = tmp_path / "in" / "2024" / "report.pdf"
    target.parent.mkdir(parents=True)
    spy, clock = Spy(tmp_path), Clock()
    folder = watcher(tmp_path, spy, clock)

    chunk = max(1, len(data) // 8)
    with open(target, "wb") as handle:
        for start in range(0, len(data), chunk):  # a slow copy: a little more at every scan
            handle.write(data[start : start + chunk])
            handle.flush()
            clock.now += 1.5
            folder.poll()
            assert spy.calls == [], "taken while the copy was in progress"
    assert folder.pending == 1
    settle(folder, clock, scans=3)

    assert spy.calls == [("report.pdf", len(data))]  # once, and complete
    markdown = (tmp_path / "out" / "2024" / "report.md").read_text(encoding="utf-8")  # sub-folder mirrored
    assert all(page_words(n) in markdown for n in (1, 2, 3))
    assert not list((tmp_path / "out").rglob("*" + ERROR_SUFFIX))
    settle(folder, clock, scans=3)
    assert len(spy.calls) == 1  # never again while it does not change


def test_a_bad_file_gets_an_error_file_with_the_reason_and_the_others_go_on(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.pdf").write_bytes(b"this is not a pdf at all" * 40)
    make_pdf(tmp_path / "in" / "good.pdf", 1)
    spy, clock = Spy(tmp_path), Clock()
    events = []
    folder = watcher(tmp_path, spy, clock, on_event=events.append)

    folder.poll()
    settle(folder, clock)

    reason = (tmp_path / "out" / ("broken.pdf" + ERROR_SUFFIX)).read_text(encoding="utf-8")
    assert "broken.pdf" in reason and "not a PDF" in reason
    assert not (tmp_path / "out" / "broken.md").exists()
    assert page_words(1) in (tmp_path / "out" / "good.md").read_text(encoding="utf-8")
    assert sorted((e.kind, str(e.path)) for e in events) == [("converted", "good.pdf"), ("failed", "broken.pdf")]
    assert (folder.converted, folder.failed) == (1, 1)
    settle(folder, clock)
    assert len(spy.calls) == 2  # the bad file is not tried again and again


def test_done_files_are_skipped_after_a_restart_and_a_changed_file_is_converted_again(tmp_path):
    make_pdf(tmp_path / "in" / "a.pdf", 1)
    make_pdf(tmp_path / "in" / "deep" / "b.pdf", 2)
    spy, clock = Spy(tmp_path), Clock()
    first = watcher(tmp_path, spy, clock)
    first.poll()
    settle(first, clock)
    assert sorted(name for name, _ in spy.calls) == ["a.pdf", "b.pdf"]
    assert (tmp_path / "out" / STATE_FILE).is_file()

    restarted_spy = Spy(tmp_path)
    restarted = watcher(tmp_path, restarted_spy, clock)
    restarted.poll()
    settle(restarted, clock, scans=3)
    assert restarted_spy.calls == []  # both remembered
    assert restarted.pending == 0

    make_pdf(tmp_path / "in" / "a.pdf", 2)  # a new version under the same name
    os.utime(tmp_path / "in" / "a.pdf", ns=(10**18, 10**18))
    restarted.poll()
    settle(restarted, clock)
    assert [name for name, _ in restarted_spy.calls] == ["a.pdf"]
    assert page_words(2) in (tmp_path / "out" / "a.md").read_text(encoding="utf-8")


def test_a_watched_folder_that_disappears_and_comes_back_is_watched_again(tmp_path):
    make_pdf(tmp_path / "in" / "first.pdf", 1)
    spy, clock = Spy(tmp_path), Clock()
    events = []
    folder = watcher(tmp_path, spy, clock, on_event=events.append)
    folder.poll()
    settle(folder, clock)
    assert [name for name, _ in spy.calls] == ["first.pdf"]
    kept = tmp_path / "kept.pdf"
    shutil.copy2(tmp_path / "in" / "first.pdf", kept)

    shutil.rmtree(tmp_path / "in")  # the drive is unplugged
    settle(folder, clock, scans=3)
    assert [e.kind for e in events if e.kind.startswith("folder")] == ["folder_missing"]  # said once

    (tmp_path / "in").mkdir()  # ... and plugged in again, with one new file
    shutil.copy2(kept, tmp_path / "in" / "first.pdf")  # the same file, as it was: already done
    make_pdf(tmp_path / "in" / "second.pdf", 2)
    folder.poll()
    settle(folder, clock)

    assert [e.kind for e in events if e.kind.startswith("folder")] == ["folder_missing", "folder_back"]
    assert [name for name, _ in spy.calls] == ["first.pdf", "second.pdf"]
    assert page_words(2) in (tmp_path / "out" / "second.md").read_text(encoding="utf-8")


def test_a_folder_that_is_missing_at_start_is_waited_for(tmp_path):
    spy, clock = Spy(tmp_path), Clock()
    folder = watcher(tmp_path, spy, clock)
    folder.poll()
    assert folder.missing
    make_pdf(tmp_path / "in" / "late.pdf", 1)
    folder.poll()
    settle(folder, clock)
    assert [name for name, _ in spy.calls] == ["late.pdf"]


def test_an_output_folder_inside_the_watched_one_is_left_out_and_the_same_folder_is_refused(tmp_path):
    make_pdf(tmp_path / "in" / "scan.pdf", 1)
    spy, clock = Spy(tmp_path, formats=("md", "pdf")), Clock()
    folder = HotFolder(tmp_path / "in", tmp_path / "in" / "done", spy, settle_seconds=2.0, clock=clock)
    folder.poll()
    settle(folder, clock, scans=4)
    assert [name for name, _ in spy.calls] == ["scan.pdf"]  # its searchable PDF is not taken as new input
    assert (tmp_path / "in" / "done" / "scan.pdf").is_file()
    with pytest.raises(HotFolderError, match="must not be the watched folder"):
        HotFolder(tmp_path / "in", tmp_path / "in" / ".." / "in", spy)


def test_files_of_the_same_name_in_one_folder_get_their_own_results(tmp_path):
    make_pdf(tmp_path / "in" / "report.pdf", 1)
    spy, clock = Spy(tmp_path), Clock()
    folder = watcher(tmp_path, spy, clock)
    folder.poll()
    settle(folder, clock)
    make_pdf(tmp_path / "source" / "report.pdf", 2)
    import pymupdf

    with pymupdf.open(tmp_path / "source" / "report.pdf") as pdf:
        pdf[1].get_pixmap(dpi=72).save(tmp_path / "in" / "report.png")
    folder.poll()
    settle(folder, clock)
    assert (tmp_path / "out" / "report.md").is_file() and (tmp_path / "out" / "report-2.md").is_file()
    assert page_words(1) in (tmp_path / "out" / "report.md").read_text(encoding="utf-8")


def test_the_watch_command_converts_reports_and_remembers(tmp_path, capsys):
    make_pdf(tmp_path / "in" / "good.pdf", 2)
    (tmp_path / "in" / "sub").mkdir()
    (tmp_path / "in" / "sub" / "bad.pdf").write_bytes(b"%PDF-1.7 but nothing else" * 10)
    (tmp_path / "in" / "notes.txt").write_text("not a document")
    args = ["watch", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--once", "--settle", "0"]
    args += ["--interval", "0.05", "--format", "md,txt", "--workspace", str(tmp_path / "ws"), "--dpi", "72"]

    assert main(args) == 1  # one file failed
    out, err = capsys.readouterr()
    assert "converted good.pdf -> good.md, good.txt" in out
    assert "FAILED sub/bad.pdf" in err
    assert "1 converted, 1 failed" in out
    assert page_words(2) in (tmp_path / "out" / "good.txt").read_text(encoding="utf-8")
    assert (tmp_path / "out" / "sub" / ("bad.pdf" + ERROR_SUFFIX)).is_file()

    (tmp_path / "in" / "sub" / "bad.pdf").unlink()
    assert main(args) == 0  # restarted: the good file is remembered, nothing to do
    assert "0 converted, 0 failed" in capsys.readouterr().out


def test_the_watch_command_refuses_an_unknown_format_and_the_same_folder(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    assert main(["watch", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--format", "md,zip"]) == 2
    assert "zip" in capsys.readouterr().err
    assert main(["watch", str(tmp_path / "in"), "--out", str(tmp_path / "in"), "--once"]) == 2
    assert "must not be the watched folder" in capsys.readouterr().err


def test_the_studio_switch_watches_a_folder_and_says_what_it_did(tmp_path):
    import time

    from ocr_studio import i18n
    from ocr_studio.settings import Settings
    from ocr_studio.ui.app import build_app

    studio = build_app(Settings(workspace=tmp_path / "ws", dpi=72)).studio  # type: ignore[attr-defined]
    panel = studio.hot_folder
    refused = panel.start(str(tmp_path / "in"), "  ", ["md"], "text-layer", None)
    assert "both folders" in refused[panel.status] and panel.switch.watcher is None

    make_pdf(tmp_path / "in" / "memo.pdf", 2)
    started = panel.start(str(tmp_path / "in"), str(tmp_path / "out"), ["md", "epub"], "text-layer", None)
    assert "Watching" in started[panel.status]
    deadline = time.monotonic() + 120
    while panel.switch.watcher.converted == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert page_words(2) in (tmp_path / "out" / "memo.md").read_text(encoding="utf-8")
    assert (tmp_path / "out" / "memo.epub").is_file()
    status = panel.refresh()[panel.status]
    assert "1 converted" in status and "converted memo.pdf" in status and "memo.md, memo.epub" in status
    assert any(job.status == "done" for job in studio.store.history())  # an ordinary job: in the history

    stopped = panel.stop()[panel.status]
    assert "Stopped watching" in stopped and not panel.switch.running
    with i18n.use_language("ru"):
        assert "распознан memo.pdf" in panel.switch.status_markdown()


def test_an_output_folder_that_cannot_be_written_keeps_the_file_waiting_not_failed(tmp_path):
    from ocr_studio.library import hot_folder

    make_pdf(tmp_path / "in" / "scan.pdf", 1)
    calls = []

    def convert(path: Path, out_folder: Path, stem: str):
        calls.append(path.name)
        if len(calls) == 1:  # the output drive is gone the first time
            raise FileNotFoundError(2, "No such file or directory", str(out_folder / f"{stem}.md"))
        return hot_folder.Converted([out_folder / f"{stem}.md"])

    clock, events = Clock(), []
    folder = watcher(tmp_path, convert, clock, on_event=events.append)
    folder.poll()
    settle(folder, clock)
    assert calls == ["scan.pdf"] and [e.kind for e in events] == ["output_unavailable"]
    assert folder.failed == 0 and not list(tmp_path.rglob("*" + ERROR_SUFFIX))
    settle(folder, clock)
    assert calls == ["scan.pdf"]  # not hammered while the output is away
    clock.now += hot_folder.OUTPUT_RETRY_SECONDS
    settle(folder, clock, scans=3)
    assert calls == ["scan.pdf", "scan.pdf"] and events[-1].kind == "converted"


def test_watch_once_on_a_folder_that_is_not_there_says_so_and_fails(tmp_path, capsys):
    args = ["watch", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"), "--once", "--settle", "0"]
    assert main([*args, "--workspace", str(tmp_path / "ws")]) == 1
    assert "is not there" in capsys.readouterr().err


def test_the_watch_command_speaks_russian_with_a_russian_locale(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LC_ALL", "ru_RU.UTF-8")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "битый.pdf").write_bytes(b"not a pdf" * 50)
    args = ["watch", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--once", "--settle", "0"]
    assert main([*args, "--interval", "0.05", "--workspace", str(tmp_path / "ws")]) == 1
    out, err = capsys.readouterr()
    assert "Слежу за" in out and "ОШИБКА битый.pdf" in err and "с ошибкой 1" in out
    assert "битый.pdf" in (tmp_path / "out" / ("битый.pdf" + ERROR_SUFFIX)).read_text(encoding="utf-8")


def test_stopping_lets_the_file_in_hand_finish_and_leaves_the_rest_for_next_time(tmp_path):
    import threading

    from ocr_studio.library import hot_folder

    for name in ("a.pdf", "b.pdf", "c.pdf"):
        make_pdf(tmp_path / "in" / name, 1)
    stop, calls = threading.Event(), []

    def convert(path: Path, out_folder: Path, stem: str):
        calls.append(path.name)
        stop.set()  # the user presses Stop while the first file converts
        return hot_folder.Converted([])

    clock = Clock()
    folder = watcher(tmp_path, convert, clock)
    folder.poll()
    clock.now += 2.5
    folder.run(stop, interval=0)  # one scan: takes the first ready file, sees the stop, ends
    assert calls == ["a.pdf"] and folder.pending == 2
