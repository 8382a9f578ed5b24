"""The sidebar's words: GPU status, the runtime profile in effect, and recent jobs.

Pure functions from data to Markdown/choices, so they are testable without a server.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..hardware import RuntimeProfile
    from ..jobs import Job
    from ..models.manager import LoadedInfo

GIB = 1024**3


def _first(data: Mapping[str, Any], *keys: str) -> Any:
    """The first of ``keys`` present in ``data`` (telemetry keys are optional)."""
    for key in keys:
        value = data.get(key)
        if value is not None and value != "":
            return value
    return None


def _gib(value: Any) -> str:
    return f"{float(value) / GIB:.1f} GiB"


def _bar(fraction: float, width: int = 20) -> str:
    fraction = min(max(fraction, 0.0), 1.0)
    filled = round(fraction * width)
    return "█" * filled + "░" * (width - filled)


def gpu_status_markdown(telemetry: Mapping[str, Any]) -> str:
    """What the GPU is doing, or plainly why there is none."""
    if not telemetry.get("available"):
        reason = str(telemetry.get("reason") or "no NVIDIA GPU was found").rstrip(".")
        reason, _, fix = reason.partition(" Fix: ")  # an NVIDIA GPU torch cannot use: the command that fixes it
        return f"**No CUDA GPU.** {reason.rstrip('.')}." + (f"  \n⚠️ Fix it with:\n```\n{fix}\n```" if fix else "")
    lines = [f"**{telemetry.get('name') or 'NVIDIA GPU'}**"]
    if telemetry.get("problem"):  # visible to torch, but without kernels for it
        fix = f" Fix it with:\n```\n{telemetry['fix']}\n```" if telemetry.get("fix") else ""
        lines.append(f"⚠️ {telemetry['problem']}{fix}")
    capability = _first(telemetry, "capability", "compute_capability")
    if capability:
        if isinstance(capability, (tuple, list)):
            capability = ".".join(str(part) for part in capability)
        sm = telemetry.get("sm")
        lines.append(f"Compute capability: {capability}" + (f" ({sm})" if sm else ""))
    used = _first(telemetry, "memory_used_bytes", "memory_used", "vram_used_bytes")
    total = _first(telemetry, "memory_total_bytes", "memory_total", "vram_total_bytes", "total_memory_bytes")
    if used is not None and total:
        lines.append(f"VRAM: {_gib(used)} / {_gib(total)}  \n`{_bar(float(used) / float(total))}`")
    elif total:
        lines.append(f"VRAM: {_gib(total)}")
    utilisation = _first(telemetry, "utilization_percent", "utilisation_percent", "utilization", "utilisation")
    if utilisation is not None:
        lines.append(f"Utilisation: {float(utilisation):.0f} %")
    temperature = _first(telemetry, "temperature_c", "temperature")
    if temperature is not None:
        lines.append(f"Temperature: {float(temperature):.0f} °C")
    power = _first(telemetry, "power_w", "power_watts", "power")
    if power is not None:
        limit = _first(telemetry, "power_limit_w")
        lines.append(f"Power: {float(power):.0f} W" + (f" of {float(limit):.0f} W" if limit else ""))
    return "  \n".join(lines)


def runtime_markdown(profile: RuntimeProfile | None, error: str | None = None) -> str:
    """The runtime settings the engines use, and where each came from."""
    if profile is None:
        return f"Runtime profile unavailable: {error or 'unknown error'}"
    sources = getattr(profile, "sources", {}) or {}
    rows = [
        ("Device", "device", profile.device),
        ("Precision", "dtype", profile.dtype),
        ("Attention", "attention", profile.attention),
        ("TF32", "tf32", "on" if profile.tf32 else "off"),
        ("Compiled decode", "compile", "on" if profile.compiled_decode else "off"),
        ("Compile backend", "compile_backend", profile.compile_backend),
    ]
    lines = [f"**{profile.name}**"]
    for label, key, value in rows:
        source = sources.get(key)
        lines.append(f"{label}: `{value}`" + (f" <small>({source})</small>" if source else ""))
    lines += [f"ℹ️ {note}" for note in getattr(profile, "notes", ())]  # overrides that could not be honoured
    return "  \n".join(lines)


def loaded_models_markdown(loaded: Iterable[LoadedInfo], budget_bytes: int | None) -> str:
    """Models the manager holds in memory, most recently used first, against the budget."""
    items = list(loaded)
    if not items:
        return "No model loaded. A vision engine loads its model on its first page."
    lines = []
    for info in items:
        ago = max(0, int(time.time() - info.last_used))
        lines.append(f"**{info.key.model_id}** · {_gib(info.size_bytes)} · `{info.key.dtype}` · used {ago} s ago")
    used = sum(info.size_bytes for info in items)
    if budget_bytes:
        lines.append(f"{_gib(used)} of a {_gib(budget_bytes)} budget")
    return "  \n".join(lines)


def loaded_model_choices(loaded: Iterable[LoadedInfo]) -> list[tuple[str, str]]:
    """(label, key label) pairs for the unload menu."""
    return [(info.key.model_id, info.key.label()) for info in loaded]


def disk_models_markdown(cached: Iterable[tuple[str, int, Any]]) -> str:
    """Models downloaded to the hub cache (what deleting the cache would free)."""
    items = list(cached)
    if not items:
        return "<small>No models downloaded yet.</small>"
    return "<small>" + "  \n".join(f"{repo} · {_gib(size)}" for repo, size, _ in items) + "</small>"


def job_label(job: Job) -> str:
    """One line that identifies a job in the history list."""
    names = [path.name for path in job.spec.files]
    files = names[0] if names else "(no files)"
    if len(names) > 1:
        files += f" +{len(names) - 1}"
    when = time.strftime("%m-%d %H:%M", time.localtime(job.created))
    task = getattr(job.spec.task, "value", job.spec.task)
    return f"{when} · {files} · {job.spec.engine}/{task} · {history_status(job)}"


def history_status(job: Job) -> str:
    """done, partial, failed, cancelled, running… from the job file alone (pages unread)."""
    failed_documents = sum(1 for d in job.documents if d.error)
    failed_pages = sum(len(errors) for errors in job.page_errors)
    if job.status == "done":
        if job.documents and failed_documents == len(job.documents):
            return "failed"
        return "partial" if failed_documents or failed_pages else "done"
    return job.status


def history_choices(jobs: Iterable[Job]) -> list[tuple[str, str]]:
    """(label, job id) pairs for the recent-jobs dropdown, newest first."""
    return [(job_label(job), job.id) for job in jobs]
