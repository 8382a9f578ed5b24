"""The sidebar's words: GPU status, the runtime profile in effect, and recent jobs.

Pure functions from data to Markdown/choices, so they are testable without a server; they
speak the current language (``i18n.use_language``: the tab's).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .. import i18n
from ..i18n import render, t
from . import job_names
from .language import number

if TYPE_CHECKING:
    from ..hardware import RuntimeProfile
    from ..jobs import Job
    from ..models.manager import LoadedInfo

GIB = 1024**3
PROFILE_ROWS = (  # (the launcher catalog's row label, the profile setting it shows)
    ("row_device", "device"),
    ("row_dtype", "dtype"),
    ("row_attention", "attention"),
    ("row_tf32", "tf32"),
    ("row_compile", "compile"),
    ("row_backend", "compile_backend"),
)


def _first(data: Mapping[str, Any], *keys: str) -> Any:
    """The first of ``keys`` present in ``data`` (telemetry keys are optional)."""
    for key in keys:
        value = data.get(key)
        if value is not None and value != "":
            return value
    return None


def _gib(value: Any) -> str:
    return t("ui.gpu.gib", value=number(float(value) / GIB))


def _bar(fraction: float, width: int = 20) -> str:
    fraction = min(max(fraction, 0.0), 1.0)
    filled = round(fraction * width)
    return "█" * filled + "░" * (width - filled)


def _code(text: str) -> str:
    return f"\n```\n{text}\n```"


def gpu_status_markdown(telemetry: Mapping[str, Any]) -> str:
    """What the GPU is doing, or plainly why there is none."""
    if not telemetry.get("available"):
        reason = render(telemetry.get("reason")) or t("ui.gpu.no_gpu_found")
        reason, _, fix = reason.partition(" Fix: ")  # an older hardware.py glued the command on
        fix = render(telemetry.get("fix")) or fix
        line = t("ui.gpu.no_cuda", reason=reason.rstrip(". "))
        return line + (f"  \n{t('ui.gpu.fix')}{_code(fix)}" if fix else "")
    lines = [f"**{telemetry.get('name') or t('ui.gpu.unnamed')}**"]
    if telemetry.get("problem"):  # visible to torch, but without kernels for it
        problem = render(telemetry["problem"])
        fix = render(telemetry.get("fix"))
        lines.append(
            t("ui.gpu.problem_fix", problem=problem) + _code(fix) if fix else t("ui.gpu.problem", problem=problem)
        )
    capability = _first(telemetry, "capability", "compute_capability")
    if capability:
        if isinstance(capability, (tuple, list)):
            capability = ".".join(str(part) for part in capability)
        sm = telemetry.get("sm")
        lines.append(
            t("ui.gpu.capability_sm", value=capability, sm=sm) if sm else t("ui.gpu.capability", value=capability)
        )
    used = _first(telemetry, "memory_used_bytes", "memory_used", "vram_used_bytes")
    total = _first(telemetry, "memory_total_bytes", "memory_total", "vram_total_bytes", "total_memory_bytes")
    if used is not None and total:
        bar = _bar(float(used) / float(total))
        lines.append(f"{t('ui.gpu.vram', used=_gib(used), total=_gib(total))}  \n`{bar}`")
    elif total:
        lines.append(t("ui.gpu.vram_total", total=_gib(total)))
    utilisation = _first(telemetry, "utilization_percent", "utilisation_percent", "utilization", "utilisation")
    if utilisation is not None:
        lines.append(t("ui.gpu.utilisation", value=f"{float(utilisation):.0f}"))
    temperature = _first(telemetry, "temperature_c", "temperature")
    if temperature is not None:
        lines.append(t("ui.gpu.temperature", value=f"{float(temperature):.0f}"))
    power = _first(telemetry, "power_w", "power_watts", "power")
    if power is not None:
        limit = _first(telemetry, "power_limit_w")
        watts = f"{float(power):.0f}"
        lines.append(
            t("ui.gpu.power_limit", value=watts, limit=f"{float(limit):.0f}")
            if limit
            else t("ui.gpu.power", value=watts)
        )
    return "  \n".join(lines)


def runtime_markdown(profile: RuntimeProfile | None, error: str | None = None) -> str:
    """The runtime settings the engines use, and where each came from."""
    if profile is None:
        return t("ui.runtime.unavailable", reason=error or t("ui.runtime.unknown_error"))
    sources = getattr(profile, "sources", {}) or {}
    switch = {True: t("launcher.profile.on"), False: t("launcher.profile.off")}
    values = {
        "device": profile.device,
        "dtype": profile.dtype,
        "attention": profile.attention,
        "tf32": switch[bool(profile.tf32)],
        "compile": switch[bool(profile.compiled_decode)],
        "compile_backend": profile.compile_backend,
    }
    lines = [f"**{profile.name}**"]
    for row, key in PROFILE_ROWS:
        label, source = t(f"launcher.profile.{row}"), sources.get(key)
        if source:
            source = t(f"launcher.profile.source.{source}")
            lines.append(t("ui.runtime.row_source", label=label, value=values[key], source=source))
        else:
            lines.append(t("ui.runtime.row", label=label, value=values[key]))
    lines += [f"ℹ️ {render(note)}" for note in getattr(profile, "notes", ())]  # overrides that could not be honoured
    return "  \n".join(lines)


def loaded_models_markdown(loaded: Iterable[LoadedInfo], budget_bytes: int | None) -> str:
    """Models the manager holds in memory, most recently used first, against the budget."""
    items = list(loaded)
    if not items:
        return t("ui.models.none")
    lines = []
    for info in items:
        ago = max(0, int(time.time() - info.last_used))
        size = _gib(info.size_bytes)
        lines.append(t("ui.models.loaded", model=info.key.model_id, size=size, dtype=info.key.dtype, seconds=ago))
    used = sum(info.size_bytes for info in items)
    if budget_bytes:
        lines.append(t("ui.models.budget", used=_gib(used), budget=_gib(budget_bytes)))
    return "  \n".join(lines)


def loaded_model_choices(loaded: Iterable[LoadedInfo]) -> list[tuple[str, str]]:
    """(label, key label) pairs for the unload menu."""
    return [(info.key.model_id, info.key.label()) for info in loaded]


def disk_models_markdown(cached: Iterable[tuple[str, int, Any]]) -> str:
    """Models downloaded to the hub cache (what deleting the cache would free)."""
    items = list(cached)
    if not items:
        return t("ui.models.none_on_disk")
    return "<small>" + "  \n".join(f"{repo} · {_gib(size)}" for repo, size, _ in items) + "</small>"


def job_label(job: Job, engine_labels: Mapping[str, str] | None = None) -> str:
    """One line that identifies a job in the history list, in the tab's language: when, its name
    (job_names: the user's, else its first file's), the engine as the engine menu names it, the
    task and how it ended — no internal ids such as ``text-layer/text``."""
    when = time.strftime("%m-%d %H:%M", time.localtime(job.created))
    task = getattr(job.spec.task, "value", job.spec.task)
    task_name = t(f"core.task.{task}") if f"core.task.{task}" in i18n.catalog("en") else str(task)
    engine = (engine_labels or {}).get(job.spec.engine) or job.spec.engine
    status = history_status(job)
    word = t(f"ui.history.{status}") if status in HISTORY_STATUSES else status
    name = job_names.name_of(job)
    return t("studio.history.label", when=when, name=name, engine=engine, task=task_name, status=word)


HISTORY_STATUSES = ("done", "partial", "failed", "cancelled", "interrupted", "running", "pending")


def history_status(job: Job) -> str:
    """done, partial, failed, cancelled, running… from the job file alone (pages unread)."""
    failed_documents = sum(1 for d in job.documents if d.error)
    failed_pages = sum(len(errors) for errors in job.page_errors)
    if job.status == "done":
        if job.documents and failed_documents == len(job.documents):
            return "failed"
        return "partial" if failed_documents or failed_pages else "done"
    return job.status


def history_choices(jobs: Iterable[Job], engine_labels: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(label, job id) pairs for the recent-jobs dropdown, newest first."""
    return [(job_label(job, engine_labels), job.id) for job in jobs]
