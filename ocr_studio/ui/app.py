"""The Gradio app: layout and wiring. No model logic here: it calls the job API (jobs, the
background runner), the engine registry, the exporters and the hardware probe; the reader's
HTML comes from viewer.py, its images and downloads from media.py, its behaviour in the
browser (linked boxes and text, zoom, keys, thumbnails) from reader.js.

Every word on the page is in the tab's language (language.py): the texts of the Blocks are
``StaticText`` keys the browser translates on its first paint, and every event handler runs in
its request's language (``@localized``), so what it renders with ``t()`` — status, viewer,
downloads, sidebar, the core's stored messages through ``i18n.render`` — is in that language."""

from __future__ import annotations

import dataclasses
import html
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import gradio as gr

from .. import __version__, exporters, hardware, i18n
from ..documents import DocumentError, parse_page_range, sniff
from ..engines import EngineInfo, Task, engine_infos, get_engine, local_models, tesseract
from ..engines.tesseract import LanguageError, language_choices
from ..i18n import Message, error_text, render, t
from ..jobs import RESUMABLE, Job, JobSpec, JobStore, resume_plan, run_job
from ..library.search_index import keep_index
from ..runner import BackgroundJobs, JobRun
from ..runtime import availability, capacity
from ..settings import Settings
from . import hot_folder_panel, job_names, language, sidebar, temp_folder, viewer
from .language import StaticText, localized
from .search import LIMIT as SEARCH_LIMIT
from .search import hits_html, note_html, parse_target

log = logging.getLogger(__name__)
UI_DIR = Path(__file__).resolve().parent
CSS_PATH = UI_DIR / "style.css"
READER_JS = UI_DIR / "reader.js"
SEARCH_JS = UI_DIR / "search.js"
GPU_REFRESH_SECONDS = 3.0
POLL_SECONDS = 0.5  # how often a tab asks a running job for news
FORMAT_NAMES = {"md": "Markdown", "json": "JSON", "html": "HTML", "pdf": "PDF", "docx": "Word"}  # "txt": in words


def format_name(fmt: str) -> str:
    """A download format as the bar names it."""
    return t("ui.downloads.text_format") if fmt == "txt" else FORMAT_NAMES.get(fmt, fmt.upper())


def ocr_languages(settings: Settings, ui_lang: str | None = None) -> str:
    """The languages the picker starts with: the setting's; else Russian and English for a Russian
    tab with the Russian pack installed; else the installed supported packs (a setting that names
    no language leaves the picker empty; the engine note says why)."""
    try:
        return tesseract.starting_languages(ui_lang or i18n.current_language(), configured=settings.ocr_languages)
    except LanguageError:
        return ""


class InputError(ValueError):
    """A request the user can fix (no files, unavailable engine...)."""


def engine_label(info: EngineInfo | None, name: str = "") -> Message | str:
    """An engine's name in the tab's language: a catalog row (studio.engine.<name>) where the
    engine's own label is English words, else its label (a Text from a catalog, or a model's name)."""
    name = info.name if info is not None else name
    if f"studio.engine.{name}" in i18n.catalog("en"):
        return Message(f"studio.engine.{name}")
    return info.label if info is not None else name


class Studio:
    """The app's state and event handlers; components are attached by ``build_app``."""

    def __init__(self, settings: Settings):
        self.settings = settings
        Path(settings.workspace).mkdir(parents=True, exist_ok=True)
        self.store = JobStore(Path(settings.workspace))
        keep_index()  # pages are searchable as soon as they are written
        self.infos: dict[str, EngineInfo] = {info.name: info for info in engine_infos(settings)}
        self.background = BackgroundJobs(settings, after_pages=self._write_downloads)
        self._jobs: OrderedDict[str, tuple[float, Job]] = OrderedDict()  # recently shown, by job.json mtime
        self._exports: dict[tuple[str, bool], tuple[float, dict]] = {}
        self._lock = threading.Lock()
        self._page_counts: dict[tuple[str, int, bool], int | None] = {}  # dropped files, by path and mtime
        self._export_locks: dict[tuple[str, bool], threading.Lock] = {}  # one per job and view

    # ----- engines and tasks ---------------------------------------------------------------

    def engine_labels(self) -> list[tuple[Message | str, str]]:
        """(label, name) of every engine; an unavailable one says so."""
        return [
            (
                engine_label(info)
                if info.available
                else Message("ui.engine.unavailable_choice", {"engine": engine_label(info)}),
                name,
            )
            for name, info in self.infos.items()
        ]

    def engine_choices(self) -> list[tuple[str, str]]:
        return [(render(label), name) for label, name in self.engine_labels()]

    def default_engine(self) -> str:
        preferred = self.infos.get(self.settings.engine)
        if preferred is not None and preferred.available:
            return preferred.name
        available = [name for name, info in self.infos.items() if info.available]
        return available[0] if available else next(iter(self.infos), "")

    @staticmethod
    def task_choices(info: EngineInfo | None) -> list[tuple[str, str]]:
        return [(t(f"core.task.{task.value}"), task.value) for task in (info.tasks if info else ())]

    @staticmethod
    def engine_note(info: EngineInfo | None) -> str:
        if info is None:
            return ""
        if not info.available:
            reason = render(info.reason) or t("ui.engine.no_reason")
            return t("ui.engine.unavailable", engine=render(engine_label(info)), reason=reason)
        where = "gpu" if info.needs_gpu else "cpu"
        return t(f"ui.engine.{where}_note", note=render(info.reason)) if info.reason else t(f"ui.engine.{where}")

    @localized
    def engine_changed(self, name: str, request: gr.Request | None = None) -> dict:
        info = self.infos.get(name)
        choices = self.task_choices(info)
        values = [value for _, value in choices]
        default = info.default_task.value if info and info.default_task.value in values else None
        value = default or (values[0] if values else None)
        return {
            self.languages: gr.update(visible=not (info and info.needs_gpu)),
            self.region: gr.update(visible=value == Task.REGION.value),
            self.task: gr.update(choices=choices, value=value),
            self.engine_info: self.engine_note(info),
            self.run_button: gr.update(interactive=bool(info and info.available)),
        }

    # ----- starting jobs ----------------------------------------------------------------------

    @staticmethod
    def parse_region(text: str | None) -> tuple[float, float, float, float]:
        """ "x1, y1, x2, y2" in page pixels (as the page view shows them) → a box."""
        parts = [p for p in (text or "").replace(";", ",").replace(" ", ",").split(",") if p]
        try:
            x1, y1, x2, y2 = (float(p) for p in parts)
        except ValueError:
            raise InputError(t("ui.request.region_numbers")) from None
        if x2 <= x1 or y2 <= y1 or min(x1, y1) < 0:
            raise InputError(t("ui.request.region_corners"))
        return (x1, y1, x2, y2)

    def _start(
        self,
        files: list[str] | None,
        engine_name: str,
        task: str,
        pages: str,
        password: str,
        region: str = "",
        runtime: str = "",
        languages: list[str] | str | None = None,
    ):
        """Validate a request and create (or find) its job; returns (job, engine, the run's settings)."""
        paths = [Path(f) for f in (files or []) if f]
        if not paths:
            raise InputError(t("ui.request.no_files"))
        settings = self.settings
        if runtime and runtime != settings.runtime:
            if runtime not in ("local", "remote"):
                raise InputError(t("core.engine.unknown_runtime", runtime=repr(runtime)))
            settings = dataclasses.replace(settings, runtime=runtime)
        chosen_languages = "+".join(languages) if isinstance(languages, list | tuple) else (languages or "")
        if chosen_languages and chosen_languages != settings.ocr_languages:  # the OCR languages of this run
            settings = dataclasses.replace(settings, ocr_languages=chosen_languages)
        known = self.infos.get(engine_name)
        if known is None:
            raise InputError(t("ui.request.unknown_engine", engine=engine_name, choices=", ".join(self.infos)))
        try:  # the engine as this run will use it (its runtime, its languages), checked now, not at start-up
            engine = get_engine(engine_name, settings)
        except Exception as exc:
            raise InputError(t("ui.request.unavailable", engine=render(known.label), reason=error_text(exc))) from None
        info = availability.checked(engine, settings)
        if not info.available:
            raise InputError(t("ui.request.unavailable", engine=render(info.label), reason=render(info.reason)))
        try:
            chosen = Task(task) if task else info.default_task
        except ValueError:
            raise InputError(t("ui.request.unknown_task", task=task)) from None
        if chosen not in info.tasks:
            task_name = t(f"core.task.{chosen.value}")
            raise InputError(t("ui.request.task_unsupported", engine=render(info.label), task=task_name))
        box = self.parse_region(region) if chosen is Task.REGION else None
        self.check_pages(paths, pages, password)
        spec = JobSpec(
            files=paths,
            engine=engine_name,
            task=chosen,
            pages=(pages or "").strip() or None,
            region=box,
            password=password or None,
        )
        return self.store.create(spec, engine, settings), engine, settings

    @localized
    def run(
        self,
        files,
        engine_name,
        task,
        pages,
        password,
        region,
        runtime,
        languages=None,
        request: gr.Request | None = None,
    ) -> dict:
        """The Run button: starts the job in the background (it outlives this tab) and lets
        the timer follow it."""
        try:
            job, engine, settings = self._start(files, engine_name, task, pages, password, region, runtime, languages)
        except Exception as exc:  # InputError, EngineError, DocumentError: all shown as they are
            return {self.status: t("ui.request.not_started", reason=viewer._md_text(error_text(exc)))}
        run = self.background.start(job, engine, settings)
        return {
            **self.clear_view(),
            self.job_id: job.id,
            self.seen: -1,
            self.status: self.progress_markdown(run),
            self.timer: gr.Timer(active=True),
            self.inputs: gr.Accordion(open=False),
            **self.busy(True),
        }

    def busy(self, running: bool, job: Job | None = None) -> dict:
        """Run and Cancel as the state is: Run off and Cancel shown while a job runs, and back;
        Resume shown for a stopped ``job`` that can go on from its own copies of its files."""
        return {
            self.run_button: gr.update(interactive=not running),
            self.cancel_button: gr.update(visible=running),
            self.resume_button: gr.update(visible=not running and job is not None and job.status in RESUMABLE),
        }

    # ----- resuming a job from its own copies of its files --------------------------------------

    def resume_job(self, job_id: str) -> JobRun:
        """Go on with a stopped job where it stopped, from the copies of its inputs it keeps: no
        file needs dropping again. JobError says why not."""
        job = self.store.load(job_id)
        engine, settings = resume_plan(job, self.settings)
        return self.background.start(job, engine, settings)

    def resume_killed(self) -> list[JobRun]:
        """At start: the jobs a studio was running when it was killed go on by themselves."""
        runs = []
        for job in self.store.killed():
            try:
                runs.append(self.resume_job(job.id))
            except Exception as exc:  # it stays interrupted, with its Resume button and why
                log.warning("Job %s not resumed: %s", job.id, exc)
        return runs

    @localized
    def resume(self, job_id: str, request: gr.Request | None = None) -> dict:
        """The Resume button: the job on screen goes on in the background, followed by the timer."""
        try:
            run = self.resume_job(job_id)
        except Exception as exc:
            return {self.status: t("files.resume.not_resumed", reason=viewer._md_text(error_text(exc)))}
        return {
            self.job_id: run.job.id,
            self.seen: -1,
            self.status: self.progress_markdown(run),
            self.timer: gr.Timer(active=True),
            **self.busy(True),
        }

    # ----- checks made as files are dropped and pages typed, before Run -------------------------

    def page_count(self, path: Path, password: str | None = None) -> int | None:
        """How many pages a dropped file has (None: not known without its password, or unreadable:
        the run says why), remembered per file; counted in a page worker, as every input is read."""
        try:
            key = (str(path), path.stat().st_mtime_ns, bool(password))
        except OSError:
            return None
        with self._lock:
            if key in self._page_counts:
                return self._page_counts[key]
        from ..page_worker import PageFailed, PageWorker

        try:  # MuPDF parses a dropped file in a page worker only, never in the server (SECURITY.md)
            with PageWorker(self.settings) as worker:
                count: int | None = worker.open(path, path.name, password or None)
        except (DocumentError, PageFailed):
            count = None
        with self._lock:
            self._page_counts[key] = count
        return count

    def check_pages(self, paths: list[Path], pages: str | None, password: str | None = None) -> str:
        """The page range against the dropped documents: InputError when it is not a range ("abc")
        or beyond every document; else a note of what it chooses (empty for all pages)."""
        if not (pages or "").strip():
            return ""
        counts = [count for count in (self.page_count(path, password) for path in paths) if count]
        try:
            chosen = parse_page_range(pages, max(counts, default=10**6))
        except DocumentError as exc:
            raise InputError(error_text(exc)) from None
        if not counts:
            return ""
        return t("studio.inputs.pages_ok", pages=len(chosen), count=max(counts))

    @localized
    def check_files(self, files: list[str] | None, request: gr.Request | None = None) -> dict:
        """Files as they are dropped: what is neither a PDF nor an image (a .txt, a .docx, a troff
        page) is taken out of the drop zone at once, and the status says which and why."""
        paths = [Path(f) for f in (files or []) if f]
        refused = [path for path in paths if sniff(path) is None]
        if not refused:
            return {self.status: t("ui.actions.ready")}
        kept = [str(path) for path in paths if path not in refused]
        names = ", ".join(path.name for path in refused)
        reason = t("studio.inputs.refused_reason")
        return {
            self.files: kept or None,
            self.status: t("studio.inputs.refused", count=len(refused), names=viewer._md_text(names), reason=reason),
        }

    @localized
    def pages_typed(self, files, pages, password, engine_name, request: gr.Request | None = None) -> dict:
        """The page range as it is typed: a wrong one says why and keeps Run off until it is right."""
        paths = [Path(f) for f in (files or []) if f]
        info = self.infos.get(engine_name)
        try:
            note = self.check_pages(paths, pages, password)
        except InputError as exc:
            return {
                self.status: t("studio.inputs.pages_bad", reason=viewer._md_text(str(exc))),
                self.run_button: gr.update(interactive=False),
            }
        return {
            self.status: note or t("ui.actions.ready"),
            self.run_button: gr.update(interactive=bool(info and info.available)),
        }

    @localized
    def cancel(self, job_id: str, request: gr.Request | None = None) -> str:
        if job_id and self.background.cancel(job_id):
            return t("ui.actions.cancelling")
        return t("ui.actions.nothing_running")

    @localized
    def convert(
        self,
        files,
        engine_name,
        task,
        pages,
        password="",
        region="",
        runtime="",
        languages=None,
        request: gr.Request | None = None,
    ):
        """API endpoint: (files, engine, task, pages[, password, region, runtime, OCR languages]) ->
        (status, markdown, exports). The status names every failed document and page with its reason."""
        try:
            job, engine, settings = self._start(files, engine_name, task, pages, password, region, runtime, languages)
            job = run_job(job, engine, settings)
        except Exception as exc:
            return t("ui.request.failed", reason=error_text(exc)), "", []
        markdown = "\n\n".join(d.markdown() for d in job.documents if d.pages)
        failure = ""
        try:
            files_out = self._export_list(self.exports(job))
        except Exception as exc:
            failure = "\n" + t("ui.request.export_failed", reason=error_text(exc))
            files_out = []
        status = viewer.job_summary(job, plain=True, problems=self.download_problems(job)) + failure
        return status, markdown, files_out

    @staticmethod
    def _export_list(exports: dict) -> list[str]:
        paths = [str(exports["zip"])] if exports.get("zip") else []
        for key, value in exports.items():
            if isinstance(key, int):
                paths.extend(str(path) for path in value.values())
        return paths

    # ----- following a run ----------------------------------------------------------------------

    @staticmethod
    def progress_markdown(run: JobRun) -> str:
        elapsed = t("ui.progress.seconds", seconds=f"{run.elapsed:.0f}")
        if run.phase == "starting":
            return t("ui.progress.waiting", elapsed=elapsed)
        if run.phase == "exports":
            return t("ui.progress.exports", elapsed=elapsed)
        event = run.progress
        if event is None:
            label, status = viewer._md_text(render(run.label)), viewer._md_text(render(run.status))
            return t("ui.progress.starting", label=label, status=status, elapsed=elapsed)
        total = max(event.pages_total, 1)
        filled = round(20 * event.pages_done / total)
        line = t(
            "ui.progress.working",
            document=viewer._md_text(event.document),
            index=event.document_index + 1,
            count=event.document_count,
            done=event.pages_done,
            total=event.pages_total,
            elapsed=elapsed,
        )
        line += f"  \n`{'█' * filled}{'░' * (20 - filled)}`"
        if run.status:
            line += f" {viewer._md_text(render(run.status))}"
        if run.errors:
            line += "\n" + "\n".join(f"- ⚠ {viewer._md_text(render(e))}" for e in run.errors[-3:])
        return line

    @localized
    def poll(
        self,
        job_id: str,
        document_index: int | None,
        page_number: int | None,
        seen: int,
        request: gr.Request | None = None,
    ) -> dict:
        """The timer's tick while a job runs: progress, newly finished pages, and the result."""
        run = self.background.get(job_id) if job_id else None
        if run is None:
            return {self.timer: gr.Timer(active=False)}
        if run.running:
            update: dict = {self.status: self.progress_markdown(run)}
            if run.pages_done != seen and run.phase == "pages":
                job = self.job(job_id)
                update[self.seen] = run.pages_done
                if page_number is None and job.pages_done:
                    update.update(self.show_first(job))
                else:
                    update.update(self.navigator(job, int(document_index or 0)))
            if page_number is None and run.partial_text:
                update[self.text_view] = "```text\n" + run.partial_text.replace("```", "ˋˋˋ") + "\n```"
            return update
        job = self.job(job_id)
        status = viewer.job_summary(job, run.elapsed, problems=self.download_problems(job))
        if run.error is not None and viewer._md_text(error_text(run.error)) not in status:
            reason = t("ui.progress.run_error", kind=type(run.error).__name__, reason=error_text(run.error))
            status += f"\n- {viewer._md_text(reason)}"
        if run.export_error:
            status += "\n- " + t("ui.progress.downloads_failed", reason=viewer._md_text(render(run.export_error)))
        if page_number is None:
            result = self.show_first(job)
        else:
            result = self.show_page(job, int(document_index or 0), page_number)
        result.update(
            {
                self.status: status,
                self.timer: gr.Timer(active=False),
                self.seen: run.pages_done,
                self.history: gr.update(choices=self.history_choices()),
                **self.busy(False, job),
            }
        )
        result.update(self.models_view())  # a run may have loaded a model
        return result

    def attach(self) -> dict:
        """A tab that opens (or reloads) while a job runs follows that job."""
        active = self.background.active()
        if not active:
            return {}
        run = active[-1]
        return {
            self.job_id: run.job.id,
            self.seen: -1,
            self.status: self.progress_markdown(run),
            self.timer: gr.Timer(active=True),
            self.inputs: gr.Accordion(open=False),
            **self.busy(True),
        }

    # ----- jobs and their downloads -------------------------------------------------------------

    def job(self, job_id: str) -> Job:
        """The job as on disk, read again only when its job.json changed (a running job)."""
        path = self.store.root / job_id / "job.json" if job_id else None
        try:
            stamp = path.stat().st_mtime if path is not None else 0.0
        except (OSError, ValueError):  # ValueError: a NUL in the id; load() refuses what is not an id
            stamp = 0.0
        with self._lock:
            cached = self._jobs.get(job_id)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        job = self.store.load(job_id)
        with self._lock:
            self._jobs[job_id] = (stamp, job)
            self._jobs.move_to_end(job_id)
            while len(self._jobs) > 8:
                self._jobs.popitem(last=False)
        return job

    def exports_dir(self, job: Job, clean: bool) -> Path:
        """Downloads live apart from the job's inputs and pages: the only files served as files."""
        return Path(self.settings.workspace) / "exports" / job.id / ("clean" if clean else "full")

    def exports(self, job: Job, *, clean: bool = False) -> dict[int | str, Any]:
        """Every document's files and the job's zip ({document index: {format: path}, "zip": path,
        "failed": {document index: {format: why}}}), written once per job state and reused. A
        format that could not be made maps to its ``.failed.txt`` note, which says why.

        One lock per job and view: writing one job's downloads never makes another job's wait,
        and its originals are read through one page worker for the whole export."""
        key = (job.id, clean)
        with self._lock:
            lock = self._export_locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                cached = self._exports.get(key)
            if cached is not None and cached[0] == job.updated:
                return cached[1]
            out_dir = self.exports_dir(job, clean)
            files: dict[int | str, Any] = {}
            if any(d.pages for d in job.documents):
                from ..page_worker import isolated_call

                exporters.private_folder(out_dir.parents[1])  # <workspace>/exports: its owner's alone
                with isolated_call(self.settings) as isolate:  # originals are read in the page worker only
                    made = exporters.export_job(
                        job.documents,
                        out_dir=out_dir,
                        zip_path=out_dir / f"ocr-studio-{job.id[:12]}.zip",
                        page_image=job.page_image,
                        clean=clean,
                        formats=exporters.DOCUMENT_FORMATS,
                        input_path=job.input_path,
                        jpeg_quality=self.settings.pdf_jpeg_quality,
                        isolate=isolate,
                    )
                files.update(made.documents)
                files["zip"] = made.zip
                files["failed"] = made.failed
                if sum(1 for d in job.documents if d.pages) > 1:  # the whole job as one e-book too
                    files["books"] = self._job_books(job, out_dir, clean)
            with self._lock:
                self._exports[key] = (job.updated, files)
            return files

    def _job_books(self, job: Job, out_dir: Path, clean: bool) -> dict[str, Path]:
        """The job's EPUB and FB2, each document under its name; none when they cannot be made
        (the documents' own books and the zip are there all the same)."""
        from ..job_books import job_books_or_none

        stem, title = f"ocr-studio-{job.id[:12]}", job_names.name_of(job)
        return job_books_or_none(job.documents, out_dir, stem, page_image=job.page_image, clean=clean, title=title)

    def download_problems(self, job: Job, *, clean: bool = False) -> list[str]:
        """The downloads of ``job`` that could not be made, each with why (empty when all are fine
        or none were written yet): the status never says a clean "Done" while one is broken."""
        with self._lock:
            cached = self._exports.get((job.id, clean))
        if cached is None or cached[0] != job.updated:
            return []
        failed = cached[1].get("failed") or {}
        return [render(reason) for index in sorted(failed) for reason in failed[index].values()]

    def _write_downloads(self, job: Job) -> None:
        """After a run's pages: write the downloads the tab will offer (the run's last phase)."""
        self.exports(self.job(job.id), clean=False)  # read once: the tab's last tick reuses it

    @staticmethod
    def empty_downloads(text: object) -> str:
        """The download bar before a page is done (``text``: our catalog's words, or their key)."""
        return f'<div class="downloads empty">{text}</div>'

    def downloads_html(self, job: Job | None, document_index: int, clean: bool) -> str:
        """One place for every download, saying what each gives."""
        if job is None or not any(d.pages for d in job.documents):
            return self.empty_downloads(html.escape(t("ui.downloads.empty")))
        base = f"{viewer.MEDIA_PREFIX}/download/{job.id}"
        query = f"?clean={int(bool(clean))}"
        parts = ['<div class="downloads">']
        document_index = min(max(document_index, 0), len(job.documents) - 1)
        document = job.documents[document_index]
        if document.pages:
            links = " ".join(
                f'<a href="{base}/{document_index}/{fmt}{query}" download>{html.escape(format_name(fmt))}</a>'
                for fmt in exporters.DOCUMENT_FORMATS
            )
            parts.append(
                f'<span class="dl-group"><span class="dl-what">{html.escape(t("ui.downloads.this_document"))}</span> '
                f'<span class="dl-name">{html.escape(document.name)}</span>: {links}</span>'
            )
        count = sum(1 for d in job.documents if d.pages)
        books = [fmt for fmt in ("epub", "fb2") if count > 1]  # one book of the whole job
        books_links = "".join(
            f' <a href="{base}/job/{fmt}{query}" download>{html.escape(format_name(fmt))}</a>' for fmt in books
        )
        parts.append(
            f'<span class="dl-group"><span class="dl-what">{html.escape(t("ui.downloads.whole_job"))}</span> '
            f'<a href="{base}/job/zip{query}" download>ZIP</a>{books_links} '
            f"<small>{html.escape(t('ui.downloads.zip_note', count=count))}</small></span>"
        )
        parts.append("</div>")
        return "".join(parts)

    # ----- the viewer -------------------------------------------------------------------------

    def clear_view(self) -> dict:
        return {
            self.document: gr.update(choices=[], value=None),
            self.page: gr.update(choices=[], value=None),
            self.page_view: viewer.message_html(t("ui.viewer.first_page_soon")),
            self.text_view: "",
            self.raw_view: "",
            self.json_view: "",
            self.downloads: self.downloads_html(None, 0, False),
        }

    def navigator(self, job: Job, document_index: int) -> dict:
        """New pages in the page list (a running job), the current choice kept."""
        return {
            self.document: gr.update(choices=viewer.document_choices(job)),
            self.page: gr.update(choices=viewer.page_numbers(job, document_index)),
        }

    def show_page(
        self,
        job: Job | None,
        document_index: int | None,
        page_number: int | None,
        clean=None,
        found: int | None = None,
    ) -> dict:
        """The viewer for one page, with the downloads of its document; block ``found`` marked."""
        if job is None:
            return self.clear_view()
        view = viewer.page_view(job, int(document_index or 0), page_number, found)
        return {
            self.document: gr.update(choices=viewer.document_choices(job), value=view.document_index),
            self.page: gr.update(choices=viewer.page_numbers(job, view.document_index), value=view.page_number),
            self.page_view: view.page_html,
            self.text_view: view.text_html or viewer._md_text(view.note),
            self.raw_view: view.markdown,
            self.json_view: view.json_text,
            self.downloads: self.downloads_html(job, view.document_index, bool(clean)),
        }

    def show_first(self, job: Job) -> dict:
        document_index, page_number = viewer.first_page(job)
        return self.show_page(job, document_index, page_number)

    @localized
    def navigate(
        self,
        job_id: str,
        document_index: int | None,
        page_number: int | None,
        clean=False,
        request: gr.Request | None = None,
        *,
        step: int = 0,
    ) -> dict:
        if not job_id:
            return {}
        job = self.job(job_id)
        if step:
            document_index, page_number = viewer.step_page(job, int(document_index or 0), page_number, step)
        return self.show_page(job, document_index, page_number, clean)

    @localized
    def goto(self, job_id: str, target: str, clean: bool = False, request: gr.Request | None = None) -> dict:
        """A thumbnail's "document:page" (from reader.js) → that page."""
        try:
            document_index, page_number = (int(part) for part in (target or "").split(":")[:2])
        except ValueError:
            return {}
        return self.navigate(job_id, document_index, page_number, clean)

    @localized
    def choose_document(
        self, job_id: str, document_index: int | None, clean: bool = False, request: gr.Request | None = None
    ) -> dict:
        if not job_id:
            return {}
        job = self.job(job_id)
        numbers = viewer.page_numbers(job, int(document_index or 0))
        return self.show_page(job, document_index, numbers[0] if numbers else None, clean)

    @localized
    def set_clean(self, clean: bool, job_id: str, document_index: int | None, request: gr.Request | None = None) -> str:
        """Downloads with or without page headers and footers; the view keeps them."""
        job = self.job(job_id) if job_id else None
        return self.downloads_html(job, int(document_index or 0), bool(clean))

    @localized
    def open_job(self, job_id: str, request: gr.Request | None = None) -> dict:
        """Reopen a job from the history list: its first page and its status, failures included."""
        if not job_id:
            return {}
        try:
            job = self.job(job_id)
        except Exception as exc:
            return {self.status: t("ui.request.cannot_open", reason=viewer._md_text(error_text(exc)))}
        result = self.show_first(job)
        run = self.background.get(job_id)
        if run is not None and run.running:
            result.update({self.job_id: job.id, self.seen: -1, self.timer: gr.Timer(active=True), **self.busy(True)})
            result[self.status] = self.progress_markdown(run)
        else:
            result.update({self.job_id: job.id, self.status: viewer.job_summary(job), **self.busy(False, job)})
        return result

    @localized
    def reopen(self, target: str, request: gr.Request | None = None) -> dict:
        """The page a tab showed before a language switch reloaded it ("job:document:page", from
        reader.js): the same job, document and page, now in the new language."""
        job_id, _, place = (target or "").partition(":")
        result = self.open_job(job_id)
        if self.page_view not in result:  # no such job (deleted meanwhile): the tab starts empty
            return result
        document, _, page = place.partition(":")
        if document.isdigit() and page.isdigit():
            result.update(self.show_page(self.job(job_id), int(document), int(page)))
        return result

    # ----- search across all jobs ------------------------------------------------------------

    @localized
    def search_library(self, query: str, request: gr.Request | None = None) -> str:
        """The search box: the blocks of every job that have all the words, as matches to click."""
        from ..library.search_index import Query, SearchIndexError, search

        query = (query or "").strip()
        if not query:
            return ""
        if Query.parse(query) is None:
            return note_html(t("library.search.no_words"))
        try:
            hits = search(self.settings.workspace, query, limit=SEARCH_LIMIT + 1)
        except SearchIndexError as exc:
            return note_html(error_text(exc))
        return hits_html(hits, query)

    @localized
    def open_hit(self, target: str, clean: bool = False, request: gr.Request | None = None) -> dict:
        """A match clicked ("job:document:page:block" from search.js): its page, its box marked."""
        parsed = parse_target(target)
        if parsed is None:
            return {}
        job_id, document_index, page_number, block = parsed
        try:
            job = self.job(job_id)
        except Exception as exc:  # deleted since the search
            return {self.status: t("library.ui.open_failed", reason=viewer._md_text(error_text(exc)))}
        result = self.show_page(job, document_index, page_number, clean, found=block)
        result.update({self.job_id: job.id, self.status: viewer.job_summary(job)})
        return result

    # ----- the sidebar ------------------------------------------------------------------------

    def history_choices(self, text: str = "") -> list[tuple[str, str]]:
        """The recent jobs, named in the tab's language; only those whose line holds ``text``."""
        try:
            labels = {name: render(engine_label(info)) for name, info in self.infos.items()}
            choices = sidebar.history_choices(self.store.history(limit=200 if text else 30, pages=False), labels)
        except Exception:
            return []
        wanted = text.strip().casefold()
        return [choice for choice in choices if wanted in choice[0].casefold()][:30]

    @localized
    def refresh_history(self, text: str = "", request: gr.Request | None = None) -> dict:
        return gr.update(choices=self.history_choices(text or ""))

    @localized
    def filter_history(self, text: str, request: gr.Request | None = None) -> dict:
        """The history's search box: the list narrows as the user types."""
        text = text or ""
        choices = self.history_choices(text)
        note = t("studio.history.no_match", text=viewer._md_text(text.strip())) if text.strip() and not choices else ""
        return {self.history: gr.update(choices=choices), self.history_note: note}

    def job_name(self, job_id: str | None) -> str:
        """The chosen job's name, for the rename box."""
        try:
            return job_names.name_of(self.job(job_id)) if job_id else ""
        except Exception:
            return ""

    def _forget(self, job_id: str) -> None:
        """Drop what is kept of a job in memory (renamed: its zip's name; deleted: all of it)."""
        with self._lock:
            self._jobs.pop(job_id, None)
            for key in [key for key in self._exports if key[0] == job_id]:
                del self._exports[key]

    @localized
    def rename_job(self, job_id: str | None, name: str, text: str = "", request: gr.Request | None = None) -> dict:
        """The history's Rename: the job's own name, shown in the list and given to its zip."""
        if not job_id:
            return {self.history_note: t("studio.history.choose_first")}
        try:
            now = job_names.rename(self.job(job_id), name)
        except Exception as exc:
            return {self.history_note: t("ui.request.cannot_open", reason=viewer._md_text(error_text(exc)))}
        self._forget(job_id)
        return {
            self.history: gr.update(choices=self.history_choices(text or ""), value=job_id),
            self.history_name: now,
            self.history_note: t("studio.history.renamed", name=viewer._md_text(now)),
        }

    @localized
    def delete_job(
        self, job_id: str | None, pending: str | None, shown: str | None, request: gr.Request | None = None
    ) -> dict:
        """The history's Delete, pressed twice: the job's folder and downloads leave the workspace
        (``JobStore.delete``; the search index follows). A running job is refused: cancel it first."""
        if not job_id:
            return {self.history_note: t("studio.history.choose_first"), self.pending_delete: ""}
        name = viewer._md_text(self.job_name(job_id) or job_id)
        if pending != job_id:
            return {self.history_note: t("studio.history.confirm_delete", name=name), self.pending_delete: job_id}
        try:
            self.store.delete(job_id)
        except Exception as exc:
            reason = viewer._md_text(error_text(exc))
            return {
                self.history_note: t("studio.history.not_deleted", name=name, reason=reason),
                self.pending_delete: "",
            }
        self._forget(job_id)
        result = {
            self.history: gr.update(choices=self.history_choices(), value=None),
            self.history_name: "",
            self.history_note: t("studio.history.deleted", name=name),
            self.pending_delete: "",
        }
        if shown == job_id:  # the job on screen is gone: so is its page
            result.update({**self.clear_view(), self.job_id: "", self.status: t("ui.actions.ready")})
            result[self.page_view] = viewer.EMPTY_HTML.format(html.escape(t("ui.viewer.start")))
        return result

    @localized
    def gpu_markdown(self, request: gr.Request | None = None) -> str:
        try:
            telemetry = hardware.telemetry()
            panel = sidebar.gpu_status_markdown(telemetry)
            if telemetry.get("available") and telemetry.get("memory_total_bytes"):
                lines = capacity.pages_in_flight(
                    self.settings, int(telemetry["memory_total_bytes"]), local_models(self.settings)
                )
                panel += "  \n" + "  \n".join(render(line) for line in lines)  # the VRAM plan of each model
            return panel
        except Exception as exc:  # telemetry never raises by contract; stay safe anyway
            return t("ui.gpu.unavailable", reason=error_text(exc))

    def runtime_text(self) -> str:
        try:
            return sidebar.runtime_markdown(hardware.runtime_profile(self.settings))
        except Exception as exc:
            return sidebar.runtime_markdown(None, str(exc))

    def runtime_shown(self) -> bool:
        """The runtime profile means something with a GPU; on the CPU (dtype, sdpa, TF32…) it is noise."""
        try:
            return hardware.runtime_profile(self.settings).device != "cpu"
        except Exception:
            return True  # a profile that cannot be made says why

    @localized
    def loaded_models_text(self, request: gr.Request | None = None) -> str:
        """Models in memory against the budget: cheap, refreshed with the GPU status."""
        try:
            from ..models.manager import model_manager

            manager = model_manager(self.settings)
            loaded = manager.loaded()
            return sidebar.loaded_models_markdown(loaded, manager.budget() if loaded else None)
        except Exception as exc:  # the sidebar never breaks the page
            return t("ui.models.unavailable", reason=error_text(exc))

    def models_view(self) -> dict:
        """Models in memory, the unload menu and the models on disk (a scan of the hub cache:
        on page load, after a run and after an unload, not on every timer tick)."""
        text = self.loaded_models_text()
        try:
            from ..models.manager import cached_models, model_manager

            choices = sidebar.loaded_model_choices(model_manager(self.settings).loaded())
            disk = sidebar.disk_models_markdown(cached_models())
        except Exception as exc:  # the sidebar never breaks the page
            choices, disk = [], t("ui.models.unavailable", reason=error_text(exc))
        return {
            self.models: text,
            self.model_menu: gr.update(choices=choices, value=choices[0][1] if choices else None),
            self.model_row: gr.update(visible=bool(choices)),  # no menu, no Unload with nothing to unload
            self.disk_models: disk,
        }

    @localized
    def unload_model(self, label: str | None, request: gr.Request | None = None) -> dict:
        """The sidebar's Unload button: frees the chosen model (or every model with no choice)."""
        from ..models.manager import model_manager

        manager = model_manager(self.settings)
        if label:
            for info in manager.loaded():
                if info.key.label() == label:
                    manager.unload(info.key)
        else:
            manager.unload_all()
        return self.models_view()

    @localized
    def server_status(self, runtime: str | None = None, request: gr.Request | None = None) -> str:
        """The inference server's health, for the sidebar (only when one is configured)."""
        if not self.settings.remote_url:
            return ""
        from ..runtime.client import remote_status

        status = remote_status(dataclasses.replace(self.settings, runtime="remote"))
        if (runtime or self.settings.runtime) != "remote":
            status += f"  \n<small>{t('ui.sidebar.server_not_in_use')}</small>"
        return status

    @localized
    def on_load(self, request: gr.Request | None = None) -> dict:
        """A tab opens: the sidebar's news, the OCR languages for the tab's language, and the
        running job if there is one."""
        lang = i18n.current_language()
        return {
            self.gpu: self.gpu_markdown(),
            self.runtime: self.runtime_text(),
            self.runtime_group: gr.update(visible=self.runtime_shown()),
            self.history: gr.update(choices=self.history_choices()),
            self.languages: gr.update(
                choices=language_choices(lang),
                value=[code for code in ocr_languages(self.settings, lang).split("+") if code],
            ),
            **self.models_view(),
            **self.attach(),
        }


def build_app(settings: Settings) -> gr.Blocks:
    """The studio's Blocks; ``server.py`` serves it with ``launch_options(settings)``. Its texts are
    ``StaticText`` keys (``blocks.i18n_instance``): the browser shows them in the tab's language."""
    temp_folder.use_private_temp()  # Gradio's copies of downloads and uploads: this user's alone
    studio = Studio(settings)
    # what this studio was running when it was killed goes on, from the jobs' own copies of their files
    threading.Thread(target=studio.resume_killed, name="ocr-studio-resume", daemon=True).start()
    engine = studio.default_engine()
    info = studio.infos.get(engine)
    free = {"concurrency_limit": None, "show_progress": "hidden"}
    reader_js = READER_JS.read_text(encoding="utf-8")
    search_js = SEARCH_JS.read_text(encoding="utf-8")
    static = StaticText()

    start_lang = i18n.configured_language(settings) or i18n.DEFAULT_LANGUAGE
    task_choices = [(static(f"core.task.{task.value}"), task.value) for task in (info.tasks if info else ())]
    ocr_choices = [
        (static.made(f"ui.static.ocr_language.{code}", lambda index=index: language_choices()[index][0]), code)
        for index, (_, code) in enumerate(language_choices())
    ]

    with gr.Blocks(title="OCR Studio", analytics_enabled=False, fill_width=True) as app:
        # drawn closed: reader.js opens it on a large screen, or where the user left it open
        with gr.Sidebar(label=static("ui.sidebar.title"), elem_id="sidebar", width=320, open=False):
            studio.switch = gr.Radio(  # its value is the tab's language code, translated like a label
                language.names(),
                value=static.made("ui.static.language_code", i18n.current_language),
                label=static("ui.sidebar.language"),
                elem_id="language-switch",
                container=False,
            )
            gr.Markdown(static("ui.sidebar.recent"))
            history_filter = gr.Textbox(
                label=static("studio.history.filter"),
                placeholder=static("studio.history.filter_placeholder"),
                elem_id="history-filter",
                max_lines=1,
            )
            studio.history = gr.Dropdown(  # custom values: API scripts open a job by its id
                choices=[],
                label=static("ui.sidebar.reopen"),
                elem_id="history",
                interactive=True,
                value=None,
                allow_custom_value=True,
            )
            studio.history_name = gr.Textbox(
                label=static("studio.history.name"),
                placeholder=static("studio.history.name_placeholder"),
                elem_id="history-name",
                max_lines=1,
            )
            with gr.Row():
                rename_button = gr.Button(static("studio.history.rename"), size="sm", elem_id="history-rename")
                delete_button = gr.Button(
                    static("studio.history.delete"), size="sm", variant="stop", elem_id="history-delete"
                )
            history_refresh = gr.Button(static("ui.sidebar.refresh"), size="sm", elem_id="history-refresh")
            studio.history_note = gr.Markdown("", elem_id="history-note")
            studio.pending_delete = gr.State("")  # Delete asks once: the job a second press removes
            # the GPU and the runtime: folded, they matter to few users and only now and then
            with gr.Accordion(static("studio.sidebar.details"), open=False, elem_id="gpu-details"):
                gr.Markdown(static("ui.sidebar.gpu"))
                studio.gpu = gr.Markdown(static("ui.sidebar.checking_gpu"), elem_id="gpu-status")
                with gr.Group(visible=False, elem_id="runtime-group") as studio.runtime_group:  # not on a CPU
                    gr.Markdown(static("ui.sidebar.runtime"))
                    studio.runtime = gr.Markdown("…", elem_id="runtime-profile")
                with gr.Group(visible=bool(settings.remote_url)):
                    gr.Markdown(static("ui.sidebar.server"))
                    studio.server = gr.Markdown("", elem_id="server-status")
                    server_check = gr.Button(static("ui.sidebar.check_server"), size="sm", elem_id="server-check")
                gr.Markdown(static("ui.sidebar.models"))
                studio.models = gr.Markdown("…", elem_id="loaded-models")
                with gr.Row(visible=False) as studio.model_row:
                    studio.model_menu = gr.Dropdown(
                        choices=[],
                        label=static("ui.sidebar.model"),
                        elem_id="model-menu",
                        scale=3,
                        show_label=False,
                        container=False,
                    )
                    unload_button = gr.Button(static("ui.sidebar.unload"), size="sm", elem_id="unload-model", scale=1)
                studio.disk_models = gr.Markdown("", elem_id="disk-models")
            gr.Markdown(
                static("ui.sidebar.footer", workspace=str(settings.workspace), version=__version__),
                elem_id="sidebar-footer",
            )
            # the words reader.js gives Gradio's sidebar button (its own aria-label is English only)
            gr.HTML(static("studio.sidebar.toggle"), elem_id="sidebar-toggle-label", visible="hidden")

        gr.HTML('<h1 class="studio-title">OCR Studio</h1>', elem_id="title", padding=False)
        with gr.Accordion(static("ui.inputs.title"), open=True, elem_id="inputs") as studio.inputs:
            gr.Markdown(static("ui.app.help"), elem_id="help")
            with gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=260):
                    studio.files = gr.File(
                        file_count="multiple",
                        label=static("ui.inputs.files"),
                        elem_id="dropzone",
                        height=170,
                    )
                with gr.Column(scale=2, min_width=260):
                    studio.engine = gr.Dropdown(
                        choices=static.choices(studio.engine_labels()),
                        value=engine,
                        label=static("ui.inputs.engine"),
                        elem_id="engine-select",
                    )
                    studio.engine_info = gr.Markdown(
                        static.made(f"ui.static.engine_note.{engine}", lambda: studio.engine_note(info)),
                        elem_id="engine-note",
                    )
                    studio.runtime_select = gr.Radio(
                        [
                            (static("ui.inputs.this_computer"), "local"),
                            (static("ui.inputs.server", url=str(settings.remote_url)), "remote"),
                        ],
                        value=settings.runtime if settings.runtime in ("local", "remote") else "local",
                        label=static("ui.inputs.runs_on"),
                        elem_id="runtime-select",
                        visible=bool(settings.remote_url),
                    )
                    studio.task = gr.Dropdown(
                        choices=task_choices,
                        value=info.default_task.value if info and info.tasks else None,
                        label=static("ui.inputs.task"),
                        elem_id="task-select",
                    )
                    studio.languages = gr.Dropdown(
                        choices=ocr_choices,
                        value=[code for code in ocr_languages(settings, start_lang).split("+") if code],
                        multiselect=True,
                        label=static("ui.inputs.ocr_languages"),
                        elem_id="ocr-languages",
                        visible=not (info and info.needs_gpu),
                    )
                    studio.region = gr.Textbox(
                        "",
                        label=static("ui.inputs.region"),
                        placeholder=static("ui.inputs.region_placeholder"),
                        elem_id="region-box",
                        visible=False,
                    )
                    with gr.Row():
                        studio.pages = gr.Textbox(
                            label=static("ui.inputs.pages"),
                            placeholder=static("ui.inputs.pages_placeholder"),
                            elem_id="page-range",
                            min_width=120,
                        )
                        studio.password = gr.Textbox(
                            label=static("ui.inputs.password"),
                            type="password",
                            placeholder=static("ui.inputs.password_placeholder"),
                            elem_id="pdf-password",
                            min_width=120,
                        )
        with gr.Row(elem_id="action-bar", equal_height=True):
            with gr.Column(scale=1, min_width=200, elem_id="status-column"):
                studio.status = gr.Markdown(static("ui.actions.ready"), elem_id="status")
            studio.run_button = gr.Button(
                static("ui.actions.run"),
                variant="primary",
                elem_id="run-button",
                interactive=bool(info and info.available),
                scale=0,
                min_width=90,
            )
            studio.cancel_button = cancel_button = gr.Button(  # shown while a job runs (Studio.busy)
                static("ui.actions.cancel"),
                variant="stop",
                elem_id="cancel-button",
                scale=0,
                min_width=90,
                visible=False,
            )
            studio.resume_button = gr.Button(  # shown for a stopped job (Studio.busy)
                static("files.resume.button"),
                elem_id="resume-button",
                scale=0,
                min_width=90,
                visible=False,
            )
        # the job on screen; a hidden textbox rather than State so the API's show_page can name a job
        studio.job_id = gr.Textbox("", visible="hidden", elem_id="job-id")
        studio.seen = gr.State(-1)
        studio.timer = gr.Timer(POLL_SECONDS, active=False)

        with gr.Accordion(static("library.ui.title"), open=False, elem_id="search"):
            with gr.Row(equal_height=True):
                studio.search_box = gr.Textbox(
                    label=static("library.ui.label"),
                    placeholder=static("library.ui.placeholder"),
                    elem_id="search-box",
                    show_label=False,
                    container=False,
                    max_lines=1,
                    scale=4,
                )
                search_button = gr.Button(
                    static("library.ui.button"), elem_id="search-button", scale=0, min_width=90, size="sm"
                )
            studio.search_results = gr.HTML("", elem_id="search-results", padding=False)

        with gr.Row(elem_id="navigator", equal_height=True):
            studio.document = gr.Dropdown(
                choices=[],
                label=static("ui.navigator.document"),
                elem_id="document-select",
                allow_custom_value=True,
                scale=3,
                min_width=160,
                show_label=False,
                container=False,
            )
            prev_button = gr.Button(
                static("ui.navigator.previous"), elem_id="prev-page", scale=0, min_width=96, size="sm"
            )
            studio.page = gr.Dropdown(
                choices=[],
                label=static("ui.navigator.page"),
                elem_id="page-select",
                allow_custom_value=True,
                scale=1,
                min_width=90,
                show_label=False,
                container=False,
            )
            next_button = gr.Button(static("ui.navigator.next"), elem_id="next-page", scale=0, min_width=96, size="sm")

        with gr.Row(equal_height=False, elem_id="reader"):
            with gr.Column(scale=2, min_width=300, elem_id="page-column"):  # the page gets most of the room
                studio.page_view = gr.HTML(
                    viewer.EMPTY_HTML.format(static("ui.viewer.start")),
                    elem_id="page-view",
                    padding=False,
                    head=f"<script>{reader_js}</script><script>{search_js}</script>",
                )
            with gr.Column(scale=1, min_width=300, elem_id="text-column"):
                with gr.Tabs(elem_id="result-tabs"):
                    with gr.Tab(static("ui.tabs.text"), id="tab-text"):
                        studio.text_view = gr.Markdown(
                            "",
                            elem_id="text-view",
                            latex_delimiters=viewer.LATEX_DELIMITERS,
                            buttons=["copy"],
                            container=True,
                            padding=True,
                            sanitize_html=True,
                        )
                    with gr.Tab(static("ui.tabs.markdown"), id="tab-raw"):
                        studio.raw_view = gr.Code(
                            "", language="markdown", elem_id="markdown-raw", wrap_lines=True, show_label=False
                        )
                    with gr.Tab(static("ui.tabs.json"), id="tab-json"):
                        studio.json_view = gr.Code("", language="json", elem_id="json-view", show_label=False)

        with gr.Row(elem_id="download-bar", equal_height=True):
            studio.downloads = gr.HTML(
                studio.empty_downloads(static("ui.downloads.empty")), elem_id="downloads", padding=False
            )
            studio.clean = gr.Checkbox(
                False, label=static("ui.downloads.clean"), elem_id="clean-exports", scale=0, min_width=260
            )
        # the hot folder: its own panel, folded away; it starts with the engine, task and languages above
        panel = hot_folder_panel.HotFolderPanel(studio)
        studio.hot_folder = panel.build(app, static, [studio.engine, studio.task, studio.languages], free)
        # reader.js writes "document:page" here when a thumbnail is clicked
        goto = gr.Textbox(visible="hidden", elem_id="goto-page")
        # search.js writes "job:document:page:block" here when a match is clicked
        search_open = gr.Textbox(visible="hidden", elem_id="search-open")
        # reader.js writes "job:document:page" here after a language switch reloaded the tab
        reopen = gr.Textbox(visible="hidden", elem_id="reopen-job")

        # API-only outputs for the `convert` endpoint (gradio_client), hidden from the page.
        api_trigger = gr.Button(visible=False, elem_id="convert-trigger")
        api_status = gr.Textbox(visible=False)
        api_markdown = gr.Textbox(visible=False)
        api_files = gr.File(visible=False, file_count="multiple")

        viewer_outputs = [
            studio.document,
            studio.page,
            studio.page_view,
            studio.text_view,
            studio.raw_view,
            studio.json_view,
            studio.downloads,
        ]
        model_outputs = [studio.models, studio.model_menu, studio.model_row, studio.disk_models]
        follow_outputs = [
            studio.status,
            studio.job_id,
            studio.seen,
            studio.timer,
            studio.inputs,
            studio.run_button,
            studio.cancel_button,
            studio.resume_button,
        ]
        poll_outputs = [*viewer_outputs, *follow_outputs, studio.history, *model_outputs]
        request_inputs = [
            studio.files,
            studio.engine,
            studio.task,
            studio.pages,
            studio.password,
            studio.region,
            studio.runtime_select,
            studio.languages,
        ]
        where = [studio.job_id, studio.document, studio.page]

        studio.engine.change(
            studio.engine_changed,
            studio.engine,
            [studio.task, studio.engine_info, studio.run_button, studio.region, studio.languages],
            api_visibility="private",
            **free,
        )
        studio.run_button.click(studio.run, request_inputs, poll_outputs, api_name="run", **free)
        cancel_button.click(studio.cancel, studio.job_id, studio.status, api_name="cancel", **free)
        studio.resume_button.click(studio.resume, studio.job_id, poll_outputs, api_name="resume", **free)
        studio.timer.tick(studio.poll, [*where, studio.seen], poll_outputs, api_visibility="private", **free)
        api_trigger.click(
            studio.convert,
            request_inputs,
            [api_status, api_markdown, api_files],
            api_name="convert",
            concurrency_limit=1,
            concurrency_id="ocr-job",
        )
        studio.task.change(
            lambda task: gr.update(visible=task == Task.REGION.value),
            studio.task,
            studio.region,
            api_visibility="private",
            **free,
        )
        studio.document.input(
            studio.choose_document,
            [studio.job_id, studio.document, studio.clean],
            viewer_outputs,
            api_name="show_document",
            **free,
        )
        studio.page.input(studio.navigate, [*where, studio.clean], viewer_outputs, api_name="show_page", **free)

        def previous_page(job_id, document_index, page_number, clean, request: gr.Request | None = None) -> dict:
            return studio.navigate(job_id, document_index, page_number, clean, request, step=-1)

        def next_page(job_id, document_index, page_number, clean, request: gr.Request | None = None) -> dict:
            return studio.navigate(job_id, document_index, page_number, clean, request, step=1)

        prev_button.click(previous_page, [*where, studio.clean], viewer_outputs, api_visibility="private", **free)
        next_button.click(next_page, [*where, studio.clean], viewer_outputs, api_visibility="private", **free)
        goto.change(studio.goto, [studio.job_id, goto, studio.clean], viewer_outputs, api_visibility="private", **free)
        studio.search_box.submit(
            studio.search_library, studio.search_box, studio.search_results, api_name="search", **free
        )
        search_button.click(
            studio.search_library, studio.search_box, studio.search_results, api_visibility="private", **free
        )
        search_open.change(
            studio.open_hit,
            [search_open, studio.clean],
            [*viewer_outputs, studio.job_id, studio.status],
            api_visibility="private",
            **free,
        )
        studio.clean.change(
            studio.set_clean,
            [studio.clean, studio.job_id, studio.document],
            studio.downloads,
            api_visibility="private",
            **free,
        )
        studio.history.input(studio.open_job, studio.history, poll_outputs, api_name="open_job", **free)
        studio.history.input(studio.job_name, studio.history, studio.history_name, api_visibility="private", **free)
        history_refresh.click(studio.refresh_history, history_filter, studio.history, api_visibility="private", **free)
        history_filter.input(
            studio.filter_history,
            history_filter,
            [studio.history, studio.history_note],
            api_visibility="private",
            **free,
        )
        history_tools = [studio.history, studio.history_name, studio.history_note]
        rename_button.click(
            studio.rename_job,
            [studio.history, studio.history_name, history_filter],
            history_tools,
            api_name="rename_job",
            **free,
        )
        studio.history_name.submit(
            studio.rename_job,
            [studio.history, studio.history_name, history_filter],
            history_tools,
            api_visibility="private",
            **free,
        )
        delete_button.click(
            studio.delete_job,
            [studio.history, studio.pending_delete, studio.job_id],
            [*history_tools, studio.pending_delete, *viewer_outputs, studio.job_id, studio.status],
            api_name="delete_job",
            **free,
        )
        reopen.change(studio.reopen, reopen, poll_outputs, api_visibility="private", **free)
        studio.files.upload(
            studio.check_files, studio.files, [studio.files, studio.status], api_visibility="private", **free
        )
        studio.pages.change(  # every change, typed or deleted: the range is checked as it is typed
            studio.pages_typed,
            [studio.files, studio.pages, studio.password, studio.engine],
            [studio.status, studio.run_button],
            api_visibility="private",
            **free,
        )
        gpu_timer = gr.Timer(GPU_REFRESH_SECONDS)
        server_check.click(studio.server_status, studio.runtime_select, studio.server, api_name="server_status", **free)
        studio.runtime_select.change(
            studio.server_status, studio.runtime_select, studio.server, api_visibility="private", **free
        )
        if settings.remote_url:
            app.load(studio.server_status, studio.runtime_select, studio.server, api_visibility="private", **free)
        gpu_timer.tick(studio.gpu_markdown, None, studio.gpu, api_visibility="private", **free)
        gpu_timer.tick(studio.loaded_models_text, None, studio.models, api_visibility="private", **free)
        unload_button.click(studio.unload_model, studio.model_menu, model_outputs, api_name="unload_model", **free)
        app.load(
            studio.on_load,
            None,
            [
                studio.gpu,
                studio.runtime,
                studio.runtime_group,
                studio.history,
                studio.languages,
                *model_outputs,
                *follow_outputs,
            ],
            api_visibility="private",
            **free,
        )
        # the switch: a cookie remembers the choice, and the tab reloads in that language
        studio.switch.input(None, studio.switch, None, js=language.switch_script(), api_visibility="private")

    static.widget("upload_text.drop_file", "studio.inputs.drop_files")  # many files are welcome
    app.i18n_instance = static.gradio()  # before mounting: the page's config carries the texts
    app.queue(default_concurrency_limit=1)
    app.studio = studio  # type: ignore[attr-defined]  # for tests, the server and embedding
    return app
