"""The command line: ``serve`` (the default), ``convert``, ``watch``, ``search``, ``doctor`` and
``config-path``.

Thin on purpose: ``convert`` runs the same jobs as the UI (one job per file, so a
re-run only converts what changed and an interrupted run resumes), then writes the
exports. Errors users can act on are printed as one clean line, never a traceback.
Exit codes: 0 all went well, 1 something failed (the summary says what and why),
2 the command line or the settings are wrong, 130 interrupted.

Messages follow the locale (LC_ALL, LC_MESSAGES, LANG: ``i18n.from_environment``), unless
``OCR_STUDIO_LANGUAGE`` or the setting ``language`` fixes one; English by default. The help
text of the options (argparse) stays English: it names options and values that are English anyway.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from . import i18n
from .documents import SUPPORTED_SUFFIXES, DocumentError
from .engines import engine_names
from .engines.base import EngineError, Task
from .i18n import as_text, message, render, t, text
from .jobs import JobError, WorkspaceError
from .settings import Settings, SettingsError, default_config_path, load_settings

if TYPE_CHECKING:
    from .jobs import Job, Progress
    from .results import DocumentResult

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXPORT_FORMATS = ("md", "txt", "json", "html", "pdf", "docx", "epub", "fb2", "zip")  # exporters.FORMATS + zip
ZIP_NAME = "ocr-studio.zip"


class UsageError(i18n.LocalizedError):
    """The command line asks for something impossible; exit code 2."""


def main(argv: Sequence[str] | None = None) -> int:
    i18n.set_language(i18n.configured_language() or i18n.from_environment())
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse's own exit (usage error: 2, --help: 0)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    command = args.command or "serve"
    if args.command is None:  # `ocr-studio` alone: serve with the defaults
        args = parser.parse_args(["serve"])
    try:
        return COMMANDS[command](args)
    except UsageError as exc:
        _error(i18n.error_text(exc))
        return EXIT_USAGE
    except SettingsError as exc:
        _error(i18n.error_text(exc))
        return EXIT_USAGE
    except (DocumentError, EngineError, JobError) as exc:
        _error(i18n.error_text(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error(t("cli.error.interrupted"))
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="config file (default: see `ocr-studio config-path`)")
    common.add_argument("--workspace", metavar="DIR", help="where jobs and page images are kept")
    runtime = common.add_argument_group("runtime overrides (default: chosen from the GPU)")
    runtime.add_argument("--device", choices=("auto", "cuda", "cpu"))
    runtime.add_argument("--dtype", choices=("auto", "bfloat16", "float16", "float32"))
    runtime.add_argument("--attention", choices=("auto", "sdpa", "flash_attention_2", "eager"))
    runtime.add_argument("--compile", choices=("auto", "on", "off"), help="compiled decoding")
    remote = common.add_argument_group(
        "remote runtime (an OpenAI-compatible server; the API key only from OCR_STUDIO_REMOTE_API_KEY)"
    )
    remote.add_argument("--runtime", choices=("local", "remote"), help="where vision models run (default: local)")
    remote.add_argument("--remote-url", metavar="URL", help="server base URL, e.g. http://gpu-box:8000/v1")
    remote.add_argument("--remote-model", metavar="NAME", help="model name the server serves")
    remote.add_argument("--remote-concurrency", type=int, metavar="N", help="pages in flight at once (default 4)")

    parser = argparse.ArgumentParser(
        prog="ocr-studio",
        description="Local document OCR: a browser UI (the default) and a command line for folders of files.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", parents=[common], help="open the OCR Studio UI in the browser (default)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1: this computer only)")
    serve.add_argument("--port", type=int, help="port (default 7860)")
    serve.add_argument("--no-browser", action="store_true", help="do not open a browser tab")

    convert = commands.add_parser(
        "convert",
        parents=[common],
        help="convert files or folders (searched recursively) and write the results",
        description="Convert PDFs and images; folders are searched recursively for "
        + ", ".join(SUPPORTED_SUFFIXES)
        + " files.",
    )
    convert.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    convert.add_argument("-o", "--output", required=True, metavar="OUT", help="folder the results are written to")
    convert.add_argument("--engine", choices=engine_names(), help="engine (default from the settings)")
    convert.add_argument("--task", choices=[t.value for t in Task], help="what to extract (default: the engine's)")
    convert.add_argument("--pages", metavar="RANGE", help='page range of every file, e.g. "1-3,7" (default: all)')
    convert.add_argument(
        "--format",
        default="md",
        metavar="LIST",
        help=f"comma-separated output formats: {','.join(EXPORT_FORMATS)} (default: md)",
    )
    convert.add_argument("--dpi", type=int, help="page rendering resolution (default from the settings)")
    convert.add_argument("--password", help="password of encrypted PDFs (never stored)")
    convert.add_argument(
        "--lang",
        metavar="LANGS",
        help='OCR languages of the text-layer engine, e.g. "eng+rus" (default: the installed packs)',
    )
    convert.add_argument("--clean", action="store_true", help="leave page headers and footers out of md/txt/html/docx")
    convert.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    watch = commands.add_parser(
        "watch",
        parents=[common],
        help="a hot folder: convert files dropped into a folder (and its sub-folders) until stopped",
        description="Convert PDFs and images dropped into IN_DIR once they are completely copied; results go "
        "to OUT_DIR in the same sub-folders, a file that fails gets <name>.error.txt; done files are "
        "remembered in OUT_DIR, so a restart skips them.",
    )
    watch.add_argument("folder", metavar="IN_DIR", help="the folder to watch")
    watch.add_argument("-o", "--out", required=True, metavar="OUT_DIR", help="folder the results are written to")
    watch.add_argument("--engine", choices=engine_names(), help="engine (default from the settings)")
    watch.add_argument("--task", choices=[t.value for t in Task], help="what to extract (default: the engine's)")
    watch.add_argument(
        "--format",
        default="md",
        metavar="LIST",
        help=f"comma-separated output formats: {','.join(f for f in EXPORT_FORMATS if f != 'zip')} (default: md)",
    )
    watch.add_argument("--dpi", type=int, help="page rendering resolution (default from the settings)")
    watch.add_argument("--lang", metavar="LANGS", help='OCR languages of the text-layer engine, e.g. "eng+rus"')
    watch.add_argument("--clean", action="store_true", help="leave page headers and footers out of the text formats")
    watch.add_argument("--interval", type=float, default=2.0, metavar="S", help="seconds between scans (default 2)")
    watch.add_argument(
        "--settle", type=float, default=2.0, metavar="S", help="seconds a file must stay unchanged (default 2)"
    )
    watch.add_argument("--once", action="store_true", help="convert what is there, then exit")

    search = commands.add_parser(
        "search",
        parents=[common],
        help="search the text of every converted document",
        description="Find words in every job of the workspace, in any of their forms (English and Russian): "
        'all words must be in one block; "quoted words" as a phrase; a word ending in * as a prefix. '
        "Exit code 0: found, 1: nothing found, 2: no words given.",
    )
    search.add_argument("query", nargs="+", metavar="WORD", help="what to find")
    search.add_argument("--limit", type=int, default=20, metavar="N", help="show at most N matches (default 20)")
    commands.add_parser("doctor", parents=[common], help="show the GPU, the runtime profile and the engines")
    commands.add_parser("config-path", parents=[common], help="print the config file's path")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        name: getattr(args, name, None)
        for name in (
            "workspace",
            "device",
            "dtype",
            "attention",
            "compile",
            "runtime",
            "remote_url",
            "remote_model",
            "remote_concurrency",
        )
    }
    overrides["dpi"] = getattr(args, "dpi", None)
    overrides["engine"] = getattr(args, "engine", None)
    overrides["ocr_languages"] = getattr(args, "lang", None)
    settings = load_settings(config_path=args.config, overrides=overrides)
    if i18n.configured_language(settings):  # the config file's language, where the environment sets none
        i18n.set_language(i18n.configured_language(settings))
    return settings


# --- serve ---------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    try:
        from .ui.server import serve
    except ImportError as exc:
        _error(t("cli.error.ui_cannot_start", detail=str(exc)))
        return EXIT_FAILED
    port = args.port if args.port is not None else settings.port  # 0: a port the system hands out
    serve(settings, host=args.host or settings.host, port=port, open_browser=not args.no_browser)
    return EXIT_OK


# --- doctor / config-path ------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import doctor_report
    from .engines import engine_infos

    settings = settings_from(args)
    rows = list(doctor_report(settings))
    rows += [
        (t("cli.doctor.config_file"), str(_config_path(args))),
        (t("cli.doctor.workspace"), str(settings.workspace)),
    ]
    _print_rows(rows)
    print("\n" + t("cli.doctor.engines"))
    for info in engine_infos(settings):
        state = t("cli.doctor.available") if info.available else t("cli.doctor.unavailable")
        gpu = t("cli.doctor.needs_gpu") if info.needs_gpu else ""
        print(f"  {info.name:<12} {state}{gpu}" + (f" — {render(info.reason)}" if info.reason else ""))
    if settings.runtime == "remote":
        from .runtime.client import remote_status

        print("\n" + render(remote_status(settings)).replace("**", "").replace("`", ""))
    return EXIT_OK


def cmd_config_path(args: argparse.Namespace) -> int:
    print(_config_path(args))
    return EXIT_OK


def _config_path(args: argparse.Namespace) -> Path:
    """The same file load_settings reads: --config, else $OCR_STUDIO_CONFIG, else the default."""
    return Path(args.config or os.environ.get("OCR_STUDIO_CONFIG") or default_config_path())


def _print_rows(rows: list[tuple[str, str]]) -> None:
    width = max((len(label) for label, _ in rows), default=0)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


# --- convert -------------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    """What became of one input, for the summary."""

    path: Path
    job: Job | None = None
    error: str | None = None
    written: list[Path] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)  # failed pages, cache hits...
    folder: Path = Path()  # where under OUT its results go: its sub-folder in the folder it was found in
    skipped: bool = False  # found in a folder but neither a PDF nor an image
    warnings: list[str] = dataclasses.field(default_factory=list)  # a damaged (repaired) file...

    @property
    def document(self) -> DocumentResult | None:
        return self.job.documents[0] if self.job is not None and self.job.documents else None


def _engine_and_task(args: argparse.Namespace, settings: Settings) -> tuple[Any, Any, Task]:
    """The engine, its info and the task a run asks for, checked the same way for ``convert`` and
    ``watch``: the engine can run here, it offers the task, the OCR languages are installed."""
    from .engines import get_engine

    engine = get_engine(settings.engine, settings)
    info = engine.info()
    if not info.available:
        raise EngineError(message("cli.error.engine_unavailable", engine=info.name, reason=info.reason))
    task = Task(args.task) if args.task else info.default_task
    if task not in info.tasks:
        tasks = ", ".join(each.value for each in info.tasks)
        raise UsageError(message("cli.error.task_unsupported", engine=info.name, task=repr(task.value), tasks=tasks))
    if args.lang is not None:
        check_languages(args.lang)
    return engine, info, task


def cmd_convert(args: argparse.Namespace) -> int:
    from .jobs import JobSpec, JobStore, run_job
    from .library.search_index import keep_index

    keep_index()  # pages are searchable as soon as they are written
    formats = parse_formats(args.format)
    settings = settings_from(args)
    engine, info, task = _engine_and_task(args, settings)

    found, missing, skipped = collect_inputs([Path(p) for p in args.paths])
    folders = dict(found)
    inputs = list(folders)
    outcomes = [Outcome(path=path, error=message) for path, message in missing]
    outcomes += [Outcome(path=path, skipped=True) for path in skipped]
    store = JobStore(settings.workspace)
    bars = ProgressBars(disabled=args.quiet)
    engine_failure: str | None = None
    try:
        for number, path in enumerate(inputs, start=1):
            bars.label = f"[{number}/{len(inputs)}] {path.name}"
            outcome = Outcome(path=path, folder=folders[path])
            outcomes.append(outcome)
            if engine_failure is not None:
                outcome.error = text("cli.convert.not_converted", reason=engine_failure)
                continue
            spec = JobSpec(files=[path], engine=info.name, task=task, pages=args.pages, password=args.password)
            try:
                job = store.create(spec, engine, settings)
                if job.status == "done":
                    outcome.notes.append(text("cli.convert.cached"))
                outcome.job = run_job(job, engine, settings, progress=bars)
            except WorkspaceError as exc:  # read-only or full: one line for this file, the batch goes on
                bars.close()
                outcome.error = as_text(exc)
                continue
            bars.close()
            record_job(outcome)
            if outcome.job.status == "failed":
                engine_failure = outcome.job.message
    finally:
        bars.close()

    out_dir = Path(args.output)
    from .page_worker import isolated_call

    with isolated_call(settings) as isolate:  # one page worker reads every original, then ends
        export_outcomes(
            outcomes,
            out_dir,
            formats,
            clean=args.clean,
            jpeg_quality=settings.pdf_jpeg_quality,
            isolate=isolate,
        )
    print_summary(outcomes, out_dir)
    return EXIT_OK if outcomes and all(o.error is None and not _page_failures(o) for o in outcomes) else EXIT_FAILED


def parse_formats(text: str) -> list[str]:
    formats = list(dict.fromkeys(f.strip().lower().lstrip(".") for f in text.split(",") if f.strip()))
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown or not formats:
        named = ", ".join(unknown) or message("cli.error.none_given")
        raise UsageError(message("cli.error.unknown_format", named=named, choices=",".join(EXPORT_FORMATS)))
    return formats


def check_languages(value: str) -> None:
    """``--lang``: refused up front (exit 2) when written wrong or not installed, naming the packages."""
    from .engines import tesseract

    try:
        languages = tesseract.resolve_languages(value)
    except tesseract.LanguageError as exc:
        raise UsageError(message("cli.error.lang", value=value, problem=exc.message)) from None
    problem = tesseract.language_problem(languages)
    if problem is not None:
        raise UsageError(message("cli.error.lang", value=value, problem=problem))


def collect_inputs(paths: list[Path]) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]], list[Path]]:
    """Files to convert, each with the sub-folder its results go to under OUT (named files
    always, at the top; folders searched recursively by suffix, keeping their structure); the
    paths that yield nothing, with why; and the files in folders that are neither PDF nor image."""
    files: list[tuple[Path, Path]] = []
    problems: list[tuple[Path, str]] = []
    skipped: list[Path] = []
    for path in paths:
        if path.is_dir():
            every = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            found = [p for p in every if p.suffix.lower() in SUPPORTED_SUFFIXES]
            if not found:
                problems.append((path, text("cli.convert.no_files_in_folder", suffixes=", ".join(SUPPORTED_SUFFIXES))))
            files.extend((p, p.parent.relative_to(path)) for p in found)
            skipped.extend(p for p in every if p.suffix.lower() not in SUPPORTED_SUFFIXES)
        elif path.exists():
            files.append((path, Path()))
        else:
            problems.append((path, text("cli.convert.path_missing")))
    unique = list(dict.fromkeys(path for path, _ in files))
    folders = dict(reversed(files))  # a file named twice keeps its first place
    return [(path, folders[path]) for path in unique], problems, list(dict.fromkeys(skipped))


def record_job(outcome: Outcome) -> None:
    job, doc = outcome.job, outcome.document
    assert job is not None
    if doc is not None and doc.error:
        outcome.error = doc.error
        if _about_the_password(doc.error):  # the UI asks for it; here it is a flag
            outcome.error = text("cli.convert.password_hint", reason=doc.error)
    elif job.status == "failed":
        outcome.error = job.message or text("cli.convert.engine_failed")
    elif job.status != "done":
        status = t(f"core.status.{job.status}")
        outcome.error = (
            t("cli.convert.status_reason", status=status, reason=render(job.message)) if job.message else status
        )
    for number, reason in sorted((job.page_errors[0] if job.page_errors else {}).items()):
        outcome.notes.append(text("cli.convert.page_failed", page=number, reason=reason))
    if doc is not None:
        outcome.warnings += document_warnings(doc)


def _about_the_password(error: str) -> bool:
    carried = getattr(error, "message", None)
    if isinstance(carried, i18n.Message):
        return carried.id in ("core.document.password_required", "core.document.password_wrong")
    return "password" in error  # a job file written before messages had ids


def document_warnings(doc: DocumentResult) -> list[str]:
    """What every page of a document warns about (a PDF MuPDF had to repair), and which pages
    came out blank after that repair, once each rather than once a page."""
    pages = [p for p in doc.pages if p.width]
    if not pages:
        return []
    shared = [w for w in pages[0].warnings if all(w in p.warnings for p in pages[1:])]
    blank = [p.page_number for p in pages if any(_is_blank_after_repair(w) for w in p.warnings)]
    if blank:
        shared.append(text("cli.convert.blank_after_repair", count=len(blank), pages=_page_list(blank)))
    return shared


def _is_blank_after_repair(warning: str) -> bool:
    carried = getattr(warning, "message", None)
    if isinstance(carried, i18n.Message):
        return carried.id == "core.document.blank_after_repair"
    return "came out blank after the repair" in warning  # a job file written before messages had ids


def _page_list(numbers: list[int]) -> str:
    """[2, 5, 6, 7] → "2, 5-7"."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def _page_failures(outcome: Outcome) -> int:
    return len(outcome.job.page_errors[0]) if outcome.job is not None and outcome.job.page_errors else 0


def export_outcomes(
    outcomes: list[Outcome],
    out_dir: Path,
    formats: list[str],
    *,
    clean: bool,
    jpeg_quality: int | None = None,
    isolate: Any = None,
) -> None:
    """Each converted document (or what was finished of it) as ``OUT/<stem>.<format>``;
    inputs sharing a stem become ``report``, ``report-2``...; ``zip`` bundles them all.
    ``isolate`` (``page_worker.isolated_call``) reads original files for the searchable PDF."""
    from .exporters import FORMATS, ExportError, document_folder_names, export_document, export_job

    ready = [o for o in outcomes if o.document is not None and o.document.pages]
    if not ready:
        return
    # Names come from this run's inputs (a cached job keeps the name of the file it was made for),
    # unique within each output folder; the zip holds them all, so its names are unique across folders.
    named = [dataclasses.replace(o.document, name=o.path.name) for o in ready]  # type: ignore[arg-type]
    stems = document_folder_names(named)
    by_folder: dict[Path, list[int]] = {}
    for index, outcome in enumerate(ready):
        by_folder.setdefault(outcome.folder, []).append(index)
    file_stems = list(stems)
    for indexes in by_folder.values():
        for index, stem in zip(indexes, document_folder_names([named[i] for i in indexes]), strict=True):
            file_stems[index] = stem
    docs, file_docs = _renamed(named, stems, ready), _renamed(named, file_stems, ready)
    file_formats = [f for f in formats if f != "zip"]

    def failed(outcome: Outcome, exc: BaseException) -> None:
        detail = i18n.error_message(exc)
        outcome.error = outcome.error or text("cli.convert.export_failed", folder=str(out_dir), detail=detail)

    for outcome, doc in zip(ready, file_docs, strict=True):  # one document's failure is its own
        if not file_formats:
            break
        try:
            written = export_document(
                doc,
                out_dir / outcome.folder,
                file_formats,
                page_image=outcome.job.page_image,  # type: ignore[union-attr]
                source_path=outcome.job.input_path(0),  # type: ignore[union-attr]
                jpeg_quality=jpeg_quality,
                isolate=isolate,
                clean=clean,
            )
        except (ExportError, OSError) as exc:
            failed(outcome, exc)
            continue
        outcome.written += written
        if written.failed:  # its other formats are written; a note says why in each one's place
            outcome.error = outcome.error or next(iter(written.failed.values()))
    if "zip" in formats:
        jobs = [o.job for o in ready]
        try:
            made = export_job(
                docs,
                zip_path=out_dir / ZIP_NAME,
                page_image=functools.partial(_first_document_page, jobs),  # picklable: it may go to the worker
                clean=clean,
                formats=file_formats or FORMATS,
                input_path=lambda index: jobs[index].input_path(0),  # type: ignore[union-attr]
                jpeg_quality=jpeg_quality,
                isolate=isolate,
            )
        except (ExportError, OSError) as exc:
            for outcome in ready:
                failed(outcome, exc)
            return
        for index, outcome in enumerate(ready):
            outcome.written.append(made.zip)  # type: ignore[arg-type]
            if index in made.failed:
                outcome.error = outcome.error or next(iter(made.failed[index].values()))


def _renamed(docs: list[DocumentResult], stems: list[str], outcomes: list[Outcome]) -> list[DocumentResult]:
    return [dataclasses.replace(d, name=s + o.path.suffix) for d, s, o in zip(docs, stems, outcomes, strict=True)]


def _first_document_page(jobs: list[Any], index: int, number: int) -> Any:
    """Page ``number`` of the one document of ``jobs[index]`` (each CLI input is its own job)."""
    return jobs[index].page_image(0, number)


def print_summary(outcomes: list[Outcome], out_dir: Path, stream: TextIO | None = None) -> None:
    stream = stream or sys.stdout
    skipped = [o for o in outcomes if o.skipped]
    outcomes = [o for o in outcomes if not o.skipped]
    ok = [o for o in outcomes if o.error is None and not _page_failures(o)]
    converted = t("cli.summary.converted", ok=len(ok), count=len(outcomes), folder=str(out_dir))
    print(f"\n{converted}", file=stream)
    labels = {key: t(f"cli.summary.{key}") for key in ("ok", "warning", "partial", "failed", "skipped")}
    width = max(len(label) for label in labels.values())
    indent = " " * (width + 3)
    for outcome in outcomes:
        doc = outcome.document
        if outcome.error is None:
            pages = t("cli.summary.pages", count=len(doc.pages) if doc is not None else 0)
            names = ", ".join(dict.fromkeys(str(outcome.folder / p.name) for p in outcome.written))
            names = names or t("cli.summary.nothing_written")
            key = "partial" if _page_failures(outcome) else "warning" if outcome.warnings else "ok"
            print(f"  {labels[key]:<{width}} {outcome.path}  ({pages}) -> {names}", file=stream)
        else:
            print(f"  {labels['failed']:<{width}} {outcome.path}: {render(outcome.error)}", file=stream)
            if outcome.written:
                files = ", ".join(p.name for p in outcome.written)
                print(indent + t("cli.summary.finished_written", files=files), file=stream)
        for note in [*outcome.warnings, *outcome.notes]:
            print(f"{indent}{render(note)}", file=stream)
    for outcome in skipped:
        print(f"  {labels['skipped']:<{width}} {outcome.path}: {t('cli.summary.neither')}", file=stream)


# --- watch ---------------------------------------------------------------------------------


def cmd_watch(args: argparse.Namespace) -> int:
    """The hot folder until Ctrl+C (or, with ``--once``, until nothing is left to convert)."""
    import threading
    import time

    from .exporters import FORMATS
    from .library.hot_folder import HotFolder, HotFolderError, WatchEvent
    from .library.job_converter import JobConverter

    formats = list(dict.fromkeys(f.strip().lower().lstrip(".") for f in args.format.split(",") if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        named = ", ".join(unknown) or message("cli.error.none_given")
        raise UsageError(message("watch.error.unknown_format", named=named, choices=",".join(FORMATS)))
    settings = settings_from(args)
    engine, info, task = _engine_and_task(args, settings)

    def report(event: WatchEvent) -> None:
        stream = sys.stderr if event.kind in ("failed", "folder_missing", "output_unavailable") else sys.stdout
        print(render(event.message()), file=stream, flush=True)

    converter = JobConverter(settings, engine, task, formats, clean=args.clean)
    try:
        watcher = HotFolder(Path(args.folder), Path(args.out), converter, settle_seconds=args.settle, on_event=report)
    except HotFolderError as exc:
        raise UsageError(exc.message) from None
    where = {"folder": str(watcher.in_dir), "out": str(watcher.out_dir), "formats": ",".join(formats)}
    print(t("watch.cli.watching", engine=info.name, **where), flush=True)
    try:
        if args.once:  # until nothing is waiting; a folder that is not there is an error here
            watcher.poll()
            while watcher.pending and not watcher.missing:
                time.sleep(max(args.interval, 0.01))
                watcher.poll()
            if watcher.missing:
                return EXIT_FAILED
        else:
            watcher.run(threading.Event(), interval=max(args.interval, 0.1))
    except KeyboardInterrupt:
        _error(t("watch.cli.interrupted"))
        return EXIT_INTERRUPTED
    finally:
        print(t("watch.cli.stopped", converted=watcher.converted, failed=watcher.failed), flush=True)
    return EXIT_FAILED if watcher.failed else EXIT_OK


class ProgressBars:
    """One tqdm bar per file, counting pages, on stderr; errors printed above the bars."""

    def __init__(self, *, disabled: bool = False):
        self.disabled = disabled
        self.label = ""  # the file being converted, e.g. "[2/7] report.pdf"
        self.bar: Any = None

    def __call__(self, event: Progress) -> None:
        from tqdm import tqdm

        if event.partial_text is not None:
            return
        if event.status is not None:  # downloading / loading / compiling a model
            if self.bar is not None:
                self.bar.set_postfix_str(render(event.status)[:60], refresh=True)
            elif not self.disabled:
                tqdm.write(render(event.status), file=sys.stderr)
            return
        if event.page is None and event.error is None:  # a document was opened
            self.close()
            self.bar = tqdm(
                total=event.pages_total,
                initial=event.pages_done,
                desc=self.label or event.document,
                unit=t("cli.convert.progress_unit"),
                file=sys.stderr,
                disable=self.disabled,
                leave=True,
            )
            return
        if event.error is not None and not self.disabled:
            tqdm.write(f"{event.document}: {render(event.error)}", file=sys.stderr)
        if event.page is not None and self.bar is not None:
            self.bar.update(event.pages_done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# --- search --------------------------------------------------------------------------------


def cmd_search(args: argparse.Namespace) -> int:
    """Matches as "document, page N: snippet (job id)", the matched words in [brackets]."""
    from .library.search_index import Query, SearchIndexError, search

    query = " ".join(args.query)
    if Query.parse(query) is None:
        raise UsageError(message("library.search.no_words"))
    if args.limit < 1:
        raise UsageError(message("library.search.bad_limit", value=args.limit))
    settings = settings_from(args)
    try:
        hits = search(settings.workspace, query, limit=args.limit + 1)
    except SearchIndexError as exc:
        _error(i18n.error_text(exc))
        return EXIT_FAILED
    if not hits:
        print(t("library.search.no_hits", query=query), file=sys.stderr)
        return EXIT_FAILED
    for hit in hits[: args.limit]:
        line = t("library.search.hit", document=hit.document, page=hit.page, snippet=hit.snippet_text())
        print(f"{line}  ({t('library.search.job', job_id=hit.job_id)})")
    if len(hits) > args.limit:
        print(t("library.search.more", count=args.limit), file=sys.stderr)
    return EXIT_OK


def _error(line: str) -> None:
    print(t("cli.error.line", message=line), file=sys.stderr)


COMMANDS = {
    "serve": cmd_serve,
    "convert": cmd_convert,
    "watch": cmd_watch,
    "search": cmd_search,
    "doctor": cmd_doctor,
    "config-path": cmd_config_path,
}
