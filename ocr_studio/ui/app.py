"""The Gradio app: layout and wiring. No model logic here: it calls the job API
(ocr_studio.jobs), the engine registry, the exporters and the hardware probe."""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import gradio as gr

from .. import __version__, exporters, hardware
from ..engines import EngineInfo, Task, engine_infos, get_engine
from ..jobs import Job, JobSpec, JobStore, Progress, run_job
from ..settings import Settings
from . import sidebar, viewer

UI_DIR = Path(__file__).resolve().parent
CSS_PATH = UI_DIR / "style.css"
DOCUMENT_FORMATS = ("md", "txt", "json", "html")
EXPORT_FORMATS = (*DOCUMENT_FORMATS, "zip")
GPU_REFRESH_SECONDS = 3.0

HELP = (
    "Drop PDFs or images, pick an engine and press **Run**. Each page appears with its layout boxes on the "
    "left and its text on the right; exports are written to your workspace. Nothing leaves this computer "
    "unless you configure a remote server."
)


class InputError(ValueError):
    """A request the user can fix (no files, unavailable engine...)."""


class Studio:
    """The app's state and event handlers; components are attached by ``build_app``."""

    def __init__(self, settings: Settings):
        self.settings = settings
        Path(settings.workspace).mkdir(parents=True, exist_ok=True)
        self.store = JobStore(Path(settings.workspace))
        self.infos: dict[str, EngineInfo] = {info.name: info for info in engine_infos(settings)}
        self._cancels: dict[str, threading.Event] = {}
        self._jobs: OrderedDict[str, Job] = OrderedDict()  # recently shown jobs, so paging is instant
        self._exports: dict[tuple[str, bool], dict[str, Any]] = {}
        self.clean_exports = False  # a local, single-user studio: one preference for every tab
        self._lock = threading.Lock()

    # ----- engines and tasks ---------------------------------------------------------------

    def engine_choices(self) -> list[tuple[str, str]]:
        return [
            (info.label if info.available else f"{info.label} (unavailable)", name) for name, info in self.infos.items()
        ]

    def default_engine(self) -> str:
        preferred = self.infos.get(self.settings.engine)
        if preferred is not None and preferred.available:
            return preferred.name
        available = [name for name, info in self.infos.items() if info.available]
        return available[0] if available else next(iter(self.infos), "")

    @staticmethod
    def task_choices(info: EngineInfo | None) -> list[tuple[str, str]]:
        return [(task.label, task.value) for task in (info.tasks if info else ())]

    @staticmethod
    def engine_note(info: EngineInfo | None) -> str:
        if info is None:
            return ""
        if not info.available:
            return f"⚠️ **{info.label} is not available here:** {info.reason or 'no reason given'}"
        parts = ["Runs on the GPU." if info.needs_gpu else "Runs on the CPU, no model needed."]
        if info.reason:
            parts.append(f"ℹ️ {info.reason}")
        return " ".join(parts)

    def engine_changed(self, name: str) -> dict:
        info = self.infos.get(name)
        choices = self.task_choices(info)
        values = [value for _, value in choices]
        default = info.default_task.value if info and info.default_task.value in values else None
        value = default or (values[0] if values else None)
        return {
            self.region: gr.update(visible=value == Task.REGION.value),
            self.task: gr.update(choices=choices, value=value),
            self.engine_info: self.engine_note(info),
            self.run_button: gr.update(interactive=bool(info and info.available)),
        }

    # ----- jobs -----------------------------------------------------------------------------

    @staticmethod
    def parse_region(text: str | None) -> tuple[float, float, float, float]:
        """ "x1, y1, x2, y2" in page pixels (as the page view shows them) → a box."""
        parts = [p for p in (text or "").replace(";", ",").replace(" ", ",").split(",") if p]
        try:
            x1, y1, x2, y2 = (float(p) for p in parts)
        except ValueError:
            raise InputError(
                "Type the region as four numbers x1, y1, x2, y2 in page pixels, e.g. 100, 200, 900, 450 "
                "(hover the page image to read positions)."
            ) from None
        if x2 <= x1 or y2 <= y1 or min(x1, y1) < 0:
            raise InputError("The region's second corner must be right of and below the first (x1 < x2, y1 < y2).")
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
    ):
        """Validate a request and create (or find) its job."""
        paths = [Path(f) for f in (files or []) if f]
        if not paths:
            raise InputError("Add at least one PDF or image first (drop files on the drop zone).")
        info = self.infos.get(engine_name)
        if info is None:
            raise InputError(f"Unknown engine {engine_name!r}. Choose one of: {', '.join(self.infos)}.")
        if not info.available:
            raise InputError(f"{info.label} is not available here: {info.reason}")
        try:
            chosen = Task(task) if task else info.default_task
        except ValueError:
            raise InputError(f"Unknown task {task!r}.") from None
        if chosen not in info.tasks:
            raise InputError(f"{info.label} cannot do “{chosen.label}”. Choose one of its tasks.")
        box = self.parse_region(region) if chosen is Task.REGION else None
        settings = self.settings
        if runtime and runtime != settings.runtime:
            if runtime not in ("local", "remote"):
                raise InputError(f"Unknown runtime {runtime!r}: use 'local' or 'remote'.")
            settings = dataclasses.replace(settings, runtime=runtime)
        engine = get_engine(engine_name, settings)
        spec = JobSpec(
            files=paths,
            engine=engine_name,
            task=chosen,
            pages=(pages or "").strip() or None,
            region=box,
            password=password or None,
        )
        return self.store.create(spec, engine, settings), engine

    def _remember(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = job
            self._jobs.move_to_end(job.id)
            while len(self._jobs) > 8:
                self._jobs.popitem(last=False)

    def _job(self, job_id: str) -> Job | None:
        if not job_id:
            return None
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            job = self.store.load(job_id)
            self._remember(job)
        return job

    def _export(self, job: Job) -> dict[int | str, dict[str, Path] | Path]:
        """Write every document's md/txt/json/html and the job's zip into ``<job>/exports``
        (``exports-clean`` without page headers and footers when the user asked for that).

        Returns {document index: {format: file}} plus "zip": the zip file; cached per job."""
        clean = self.clean_exports
        with self._lock:
            cached = self._exports.get((job.id, clean))
        if cached is not None and cached.get("updated") == job.updated:
            return cached["files"]
        out_dir = Path(job.dir) / ("exports-clean" if clean else "exports")
        finished = [(i, d) for i, d in enumerate(job.documents) if d.pages]
        files: dict[int | str, dict[str, Path] | Path] = {}
        if finished:
            folders = exporters.document_folder_names([d for _, d in finished])
            for (index, document), folder in zip(finished, folders, strict=True):
                written = exporters.export_document(
                    document,
                    out_dir / folder,
                    DOCUMENT_FORMATS,
                    page_image=job.page_image,
                    document_index=index,
                    clean=clean,
                )
                files[index] = {path.suffix.lstrip("."): path for path in written if path.parent == out_dir / folder}
            files["zip"] = exporters.export_job_zip(
                job.documents, out_dir / f"ocr-studio-{job.id[:12]}.zip", page_image=job.page_image, clean=clean
            )
        with self._lock:
            self._exports[(job.id, clean)] = {"updated": job.updated, "files": files}
        return files

    def _run_with_progress(self, job: Job, engine, cancel: threading.Event):
        """Run the job in a worker thread; yields Progress events, then the finished job (or raises)."""
        events: queue.Queue[Progress | None] = queue.Queue()
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["job"] = run_job(job, engine, self.settings, progress=events.put, cancel=cancel)
            except Exception as exc:  # shown to the user; what is on disk stays
                outcome["error"] = exc
            finally:
                events.put(None)

        worker = threading.Thread(target=work, name=f"ocr-job-{job.id}", daemon=True)
        worker.start()
        try:
            while True:
                event = events.get()
                batch = [event]
                while event is not None and not events.empty():  # coalesce bursts of streamed text
                    event = events.get_nowait()
                    batch.append(event)
                yield [e for e in batch if e is not None]
                if batch[-1] is None:
                    break
        finally:
            if worker.is_alive():  # the browser went away: stop after the current page
                cancel.set()
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("job", job)

    @staticmethod
    def progress_markdown(event: Progress) -> str:
        number = event.document_index + 1
        total = max(event.pages_total, 1)
        bar = "█" * round(20 * event.pages_done / total) + "░" * (20 - round(20 * event.pages_done / total))
        line = (
            f"**Working** on *{event.document}* (document {number} of {event.document_count}): "
            f"page {event.pages_done} of {event.pages_total}  \n`{bar}`"
        )
        if event.message:
            line += f"  \n{event.message}"
        return line

    def run(self, files, engine_name, task, pages, password, region, runtime, request: gr.Request):
        """The Run button: streams per-page progress, then shows the first page and the exports."""
        key = getattr(request, "session_hash", None) or "default"
        cancel = threading.Event()
        self._cancels[key] = cancel
        started = time.monotonic()
        try:
            job, engine = self._start(files, engine_name, task, pages, password, region, runtime)
        except Exception as exc:  # InputError, EngineError, DocumentError: all shown as they are
            gr.Warning(str(exc))
            yield {self.status: f"⚠️ {exc}"}
            return
        yield {self.status: f"Starting *{engine.info().label}* on {len(job.spec.files)} file(s)…", self.job_id: job.id}
        errors: list[str] = []
        runner = self._run_with_progress(job, engine, cancel)
        failure: Exception | None = None
        try:
            while True:
                batch = next(runner)
                update: dict = {}
                for event in batch:
                    if event.error:
                        message = f"{event.document}: {event.error}"
                        errors.append(message)
                        gr.Warning(message)
                    elif event.status is not None:
                        update[self.status] = f"⏳ {event.status}"
                    elif event.page is not None or event.partial_text is None:
                        update[self.status] = self.progress_markdown(event)
                    if event.partial_text:
                        update[self.markdown_view] = event.partial_text
                if update:
                    yield update
        except StopIteration as stop:
            job = stop.value or job
        except Exception as exc:
            failure = exc
            try:
                job = self.store.load(job.id)
            except Exception:
                pass
        finally:
            runner.close()
            self._cancels.pop(key, None)
        self._remember(job)
        status = viewer.job_summary(job)
        if failure is not None:
            status = f"⚠️ **Stopped:** {failure}\n\n" + status
            gr.Warning(str(failure))
        status += f"  \n*{time.monotonic() - started:.1f} s*"
        result = self.show_job(job, status=status)
        result[self.history] = gr.update(choices=self.history_choices(), value=job.id)
        result.update(self.models_view())  # a run may have loaded a model
        yield result

    def cancel(self, request: gr.Request) -> str:
        event = self._cancels.get(getattr(request, "session_hash", None) or "default")
        if event is None:
            return "Nothing is running."
        event.set()
        return "Cancelling after the current page…"

    def convert(self, files, engine_name, task, pages, password="", region="", runtime=""):
        """API endpoint: (files, engine, task, pages[, password, region, runtime]) -> (status, markdown, exports)."""
        try:
            job, engine = self._start(files, engine_name, task, pages, password, region, runtime)
            job = run_job(job, engine, self.settings)
        except Exception as exc:
            return f"Error: {exc}", "", []
        self._remember(job)
        markdown = "\n\n".join(d.markdown() for d in job.documents if d.pages)
        status = viewer.job_summary(job).replace("**", "").replace("⚠️ ", "Error: ")
        try:
            files_out = self._export_list(self._export(job))
        except Exception as exc:
            status += f"\n\nExport failed: {exc}"
            files_out = []
        return status, markdown, files_out

    @staticmethod
    def _export_list(exports: dict) -> list[str]:
        paths = [str(exports["zip"])] if "zip" in exports else []
        for key, value in exports.items():
            if key != "zip":
                paths.extend(str(path) for path in value.values())
        return paths

    # ----- the viewer -------------------------------------------------------------------------

    def show_page(self, job: Job | None, document_index: int | None, page_number: int | None) -> dict:
        """The viewer for one page, with the download buttons for its document."""
        if job is None:
            return {self.page_image: None, self.markdown_view: "", self.markdown_raw: "", self.json_view: None}
        view = viewer.page_view(job, int(document_index or 0), page_number)
        numbers = viewer.page_numbers(job, view.document_index)
        result = {
            self.document: gr.update(choices=viewer.document_choices(job), value=view.document_index),
            self.page: gr.update(choices=numbers, value=view.page_number),
            self.page_image: view.annotated,
            self.page_note: view.note,
            self.page_legend: viewer.legend_html(view.boxes),
            self.markdown_view: view.markdown,
            self.markdown_raw: view.markdown,
            self.json_view: view.data,
        }
        try:
            exports = self._export(job)
        except Exception as exc:  # the results are on disk; only the files are missing
            exports = {}
            result[self.page_note] = f"{view.note} ⚠️ Export failed: {exc}".strip()
        document_files = exports.get(view.document_index, {})
        for fmt, button in self.download_buttons.items():
            path = exports.get("zip") if fmt == "zip" else document_files.get(fmt)
            result[button] = gr.update(value=str(path) if path else None, interactive=path is not None)
        return result

    def show_job(self, job: Job, *, status: str | None = None) -> dict:
        """The whole result panel for ``job``: first page, every export, status."""
        document_index, page_number = viewer.first_page(job)
        result = self.show_page(job, document_index, page_number)
        result[self.job_id] = job.id
        try:
            result[self.downloads] = self._export_list(self._export(job)) or None
        except Exception:
            result[self.downloads] = None
        if status is not None:
            result[self.status] = status
        return result

    def navigate(self, job_id: str, document_index: int | None, page_number: int | None, step: int = 0) -> dict:
        job = self._job(job_id)
        if job is None:
            return {}
        if step:
            document_index, page_number = viewer.step_page(job, int(document_index or 0), page_number, step)
        return self.show_page(job, document_index, page_number)

    def choose_document(self, job_id: str, document_index: int | None) -> dict:
        job = self._job(job_id)
        if job is None:
            return {}
        numbers = viewer.page_numbers(job, int(document_index or 0))
        return self.show_page(job, document_index, numbers[0] if numbers else None)

    def set_clean_exports(self, clean: bool, job_id: str, document_index: int | None, page_number: int | None):
        """The "without headers/footers" choice: later downloads follow it; the view keeps them."""
        self.clean_exports = bool(clean)
        job = self._job(job_id)
        if job is None:
            return {}
        result = self.show_page(job, document_index, page_number)
        try:
            result[self.downloads] = self._export_list(self._export(job)) or None
        except Exception:
            result[self.downloads] = None
        return result

    def open_job(self, job_id: str) -> dict:
        if not job_id:
            return {}
        try:
            job = self.store.load(job_id)
        except Exception as exc:
            return {self.status: f"⚠️ Cannot open that job: {exc}"}
        self._remember(job)
        return self.show_job(job, status=viewer.job_summary(job))

    # ----- the sidebar ------------------------------------------------------------------------

    def history_choices(self) -> list[tuple[str, str]]:
        try:
            return sidebar.history_choices(self.store.history(limit=30, pages=False))
        except Exception:
            return []

    def gpu_markdown(self) -> str:
        try:
            return sidebar.gpu_status_markdown(hardware.telemetry())
        except Exception as exc:  # telemetry never raises by contract; stay safe anyway
            return f"GPU status unavailable: {exc}"

    def runtime_text(self) -> str:
        try:
            return sidebar.runtime_markdown(hardware.runtime_profile(self.settings))
        except Exception as exc:
            return sidebar.runtime_markdown(None, str(exc))

    def loaded_models_text(self) -> str:
        """Models in memory against the budget: cheap, refreshed with the GPU status."""
        try:
            from ..models.manager import model_manager

            manager = model_manager(self.settings)
            loaded = manager.loaded()
            return sidebar.loaded_models_markdown(loaded, manager.budget() if loaded else None)
        except Exception as exc:  # the sidebar never breaks the page
            return f"Model list unavailable: {exc}"

    def models_view(self) -> dict:
        """Models in memory, the unload menu and the models on disk (a scan of the hub cache:
        on page load, after a run and after an unload, not on every timer tick)."""
        text = self.loaded_models_text()
        try:
            from ..models.manager import cached_models, model_manager

            choices = sidebar.loaded_model_choices(model_manager(self.settings).loaded())
            disk = sidebar.disk_models_markdown(cached_models())
        except Exception as exc:  # the sidebar never breaks the page
            choices, disk = [], f"Model list unavailable: {exc}"
        return {
            self.models: text,
            self.model_menu: gr.update(choices=choices, value=choices[0][1] if choices else None),
            self.disk_models: disk,
        }

    def unload_model(self, label: str | None) -> dict:
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

    def server_status(self, runtime: str | None = None) -> str:
        """The inference server's health, for the sidebar (only when one is configured)."""
        if not self.settings.remote_url:
            return ""
        from ..remote import remote_status

        status = remote_status(dataclasses.replace(self.settings, runtime="remote"))
        if (runtime or self.settings.runtime) != "remote":
            status += "  \n<small>Not in use: pages run on this computer.</small>"
        return status

    def on_load(self) -> dict:
        return {
            self.gpu: self.gpu_markdown(),
            self.runtime: self.runtime_text(),
            self.history: gr.update(choices=self.history_choices()),
            **self.models_view(),
        }


def build_app(settings: Settings) -> gr.Blocks:
    """The studio's Blocks; launch it with ``launch_options(settings)``."""
    studio = Studio(settings)
    engine = studio.default_engine()
    info = studio.infos.get(engine)
    task_choices = studio.task_choices(info)
    free = {"concurrency_limit": None, "show_progress": "hidden"}
    heavy = {"concurrency_limit": 1, "concurrency_id": "ocr-job"}

    with gr.Blocks(title="OCR Studio", analytics_enabled=False, fill_width=True) as app:
        with gr.Sidebar(label="Status", elem_id="sidebar", width=330):
            gr.Markdown("### GPU")
            studio.gpu = gr.Markdown("Checking the GPU…", elem_id="gpu-status")
            gr.Markdown("### Runtime profile")
            studio.runtime = gr.Markdown("…", elem_id="runtime-profile")
            with gr.Group(visible=bool(settings.remote_url)):
                gr.Markdown("### Inference server")
                studio.server = gr.Markdown("", elem_id="server-status")
                server_check = gr.Button("Check server", size="sm", elem_id="server-check")
            gr.Markdown("### Models in memory")
            studio.models = gr.Markdown("…", elem_id="loaded-models")
            with gr.Row():
                studio.model_menu = gr.Dropdown(
                    choices=[], label="Model", elem_id="model-menu", scale=3, show_label=False, container=False
                )
                unload_button = gr.Button("Unload", size="sm", elem_id="unload-model", scale=1)
            studio.disk_models = gr.Markdown("", elem_id="disk-models")
            gr.Markdown("### Recent jobs")
            studio.history = gr.Dropdown(
                choices=[], label="Reopen a job", elem_id="history", interactive=True, value=None
            )
            history_refresh = gr.Button("Refresh list", size="sm", elem_id="history-refresh")
            gr.Markdown(f"<small>Workspace: `{settings.workspace}` · v{__version__}</small>")

        gr.Markdown(f"# OCR Studio\n{HELP}", elem_id="title")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                studio.files = gr.File(
                    file_count="multiple",
                    label="Documents (PDF, PNG, JPEG, TIFF, WebP…) — drop several at once",
                    elem_id="dropzone",
                    height=300,
                )
            with gr.Column(scale=2, min_width=280):
                studio.engine = gr.Dropdown(
                    choices=studio.engine_choices(), value=engine, label="Engine", elem_id="engine-select"
                )
                studio.engine_info = gr.Markdown(studio.engine_note(info), elem_id="engine-note")
                studio.runtime_select = gr.Radio(
                    [("This computer", "local"), (f"Server ({settings.remote_url})", "remote")],
                    value=settings.runtime if settings.runtime in ("local", "remote") else "local",
                    label="Runs on",
                    elem_id="runtime-select",
                    visible=bool(settings.remote_url),
                )
                studio.task = gr.Dropdown(
                    choices=task_choices,
                    value=info.default_task.value if info and info.tasks else None,
                    label="Task",
                    elem_id="task-select",
                )
                studio.region = gr.Textbox(
                    "",
                    label="Region: x1, y1, x2, y2 in page pixels",
                    placeholder="e.g. 100, 200, 900, 450",
                    elem_id="region-box",
                    visible=False,
                )
                with gr.Row():
                    studio.pages = gr.Textbox(label="Pages", placeholder="all, or e.g. 1-3,7", elem_id="page-range")
                    studio.password = gr.Textbox(
                        label="PDF password", type="password", placeholder="if encrypted", elem_id="pdf-password"
                    )
                with gr.Row():
                    studio.run_button = gr.Button(
                        "Run", variant="primary", elem_id="run-button", interactive=bool(info and info.available)
                    )
                    cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel-button")
        studio.status = gr.Markdown("Ready.", elem_id="status")
        studio.job_id = gr.State("")

        with gr.Row(elem_id="navigator", equal_height=True):
            studio.document = gr.Dropdown(choices=[], label="Document", elem_id="document-select", scale=3)
            prev_button = gr.Button("◀ Previous", elem_id="prev-page", scale=1, size="sm")
            studio.page = gr.Dropdown(choices=[], label="Page", elem_id="page-select", scale=1)
            next_button = gr.Button("Next ▶", elem_id="next-page", scale=1, size="sm")

        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                studio.page_image = gr.AnnotatedImage(
                    label="Page with layout boxes",
                    elem_id="page-image",
                    color_map=viewer.CATEGORY_COLORS,
                    show_legend=False,
                    height=760,
                )
                studio.page_legend = gr.HTML("", elem_id="page-legend")
                studio.page_note = gr.Markdown("", elem_id="page-note")
            with gr.Column(scale=1):
                with gr.Tabs(elem_id="result-tabs"):
                    with gr.Tab("Markdown", id="tab-markdown"):
                        studio.markdown_view = gr.Markdown(
                            "",
                            elem_id="markdown-view",
                            latex_delimiters=viewer.LATEX_DELIMITERS,
                            height=760,
                            buttons=["copy"],
                            container=True,
                            padding=True,
                        )
                    with gr.Tab("Raw Markdown", id="tab-raw"):
                        studio.markdown_raw = gr.Code(
                            "", language="markdown", elem_id="markdown-raw", lines=30, max_lines=40, wrap_lines=True
                        )
                    with gr.Tab("JSON", id="tab-json"):
                        studio.json_view = gr.JSON(elem_id="json-view", open=True, max_height=760)

        with gr.Row():
            gr.Markdown("### Downloads")
            studio.clean = gr.Checkbox(
                False, label="Leave page headers and footers out of the downloads", elem_id="clean-exports"
            )
        with gr.Row(elem_id="download-row"):
            studio.download_buttons = {
                fmt: gr.DownloadButton(f"{fmt.upper()}", elem_id=f"download-{fmt}", interactive=False, size="md")
                for fmt in EXPORT_FORMATS
            }
        studio.downloads = gr.File(label="All exports", file_count="multiple", interactive=False, elem_id="downloads")

        # API-only outputs for the `convert` endpoint (gradio_client), hidden from the page.
        api_trigger = gr.Button(visible=False, elem_id="convert-trigger")
        api_status = gr.Textbox(visible=False)
        api_markdown = gr.Textbox(visible=False)
        api_files = gr.File(visible=False, file_count="multiple")

        viewer_outputs = [
            studio.document,
            studio.page,
            studio.page_image,
            studio.page_note,
            studio.page_legend,
            studio.markdown_view,
            studio.markdown_raw,
            studio.json_view,
            *studio.download_buttons.values(),
        ]
        model_outputs = [studio.models, studio.model_menu, studio.disk_models]
        result_outputs = [
            *viewer_outputs,
            studio.status,
            studio.job_id,
            studio.history,
            studio.downloads,
            *model_outputs,
        ]

        # what a conversion request is made of, for the Run button and the /convert API alike
        request_inputs = [
            studio.files,
            studio.engine,
            studio.task,
            studio.pages,
            studio.password,
            studio.region,
            studio.runtime_select,
        ]
        studio.engine.change(
            studio.engine_changed,
            studio.engine,
            [studio.task, studio.engine_info, studio.run_button, studio.region],
            api_visibility="private",
            **free,
        )
        studio.run_button.click(
            studio.run,
            request_inputs,
            result_outputs,
            api_name="run",
            show_progress="minimal",
            **heavy,
        )
        cancel_button.click(studio.cancel, None, studio.status, api_name="cancel", **free)
        api_trigger.click(
            studio.convert,
            request_inputs,
            [api_status, api_markdown, api_files],
            api_name="convert",
            **heavy,
        )
        studio.task.change(
            lambda task: gr.update(visible=task == Task.REGION.value),
            studio.task,
            studio.region,
            api_visibility="private",
            **free,
        )
        studio.document.input(
            studio.choose_document, [studio.job_id, studio.document], viewer_outputs, api_name="show_document", **free
        )
        studio.page.input(
            studio.navigate,
            [studio.job_id, studio.document, studio.page],
            viewer_outputs,
            api_name="show_page",
            **free,
        )
        prev_button.click(
            lambda j, d, p: studio.navigate(j, d, p, -1),
            [studio.job_id, studio.document, studio.page],
            viewer_outputs,
            api_visibility="private",
            **free,
        )
        next_button.click(
            lambda j, d, p: studio.navigate(j, d, p, 1),
            [studio.job_id, studio.document, studio.page],
            viewer_outputs,
            api_visibility="private",
            **free,
        )
        studio.clean.change(
            studio.set_clean_exports,
            [studio.clean, studio.job_id, studio.document, studio.page],
            [*viewer_outputs, studio.downloads],
            api_name="clean_exports",
            **free,
        )
        studio.history.input(studio.open_job, studio.history, result_outputs, api_name="open_job", **free)
        history_refresh.click(
            lambda: gr.update(choices=studio.history_choices()), None, studio.history, api_visibility="private", **free
        )
        timer = gr.Timer(GPU_REFRESH_SECONDS)
        server_check.click(studio.server_status, studio.runtime_select, studio.server, api_name="server_status", **free)
        studio.runtime_select.change(
            studio.server_status, studio.runtime_select, studio.server, api_visibility="private", **free
        )
        if settings.remote_url:
            app.load(studio.server_status, None, studio.server, api_visibility="private", **free)
        timer.tick(studio.gpu_markdown, None, studio.gpu, api_visibility="private", **free)
        timer.tick(studio.loaded_models_text, None, studio.models, api_visibility="private", **free)
        unload_button.click(studio.unload_model, studio.model_menu, model_outputs, api_name="unload_model", **free)
        app.load(
            studio.on_load,
            None,
            [studio.gpu, studio.runtime, studio.history, *model_outputs],
            api_visibility="private",
            **free,
        )

    app.queue(default_concurrency_limit=1)
    app.studio = studio  # type: ignore[attr-defined]  # for tests and embedding
    return app
