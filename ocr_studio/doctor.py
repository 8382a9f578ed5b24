"""The ``ocr-studio doctor`` report: what this machine can run, in rows of (label, value).

It sits above ``hardware`` (the GPU probe and profile) and ``runtime.capacity`` (the VRAM plan of
each model) rather than inside ``hardware``, so the GPU module never reaches up into the engines.
It asks ``hardware`` through the module (``hardware.probe()``), so a GPU simulated there shows here."""

from __future__ import annotations

import os
import sys

from . import hardware
from .engines import local_models
from .i18n import t
from .models.manager import hub_cache_dir, hub_offline
from .runtime.capacity import pages_in_flight
from .settings import Settings, SettingsError


def _gb(value: int) -> str:
    return f"{value / 1024**3:.1f} GB"


def doctor_report(settings: Settings) -> list[tuple[str, str]]:
    """(label, value) rows for `ocr-studio doctor`, in the current language: torch version, CUDA
    available, bf16 supported, GPU name, compute capability, VRAM, and the runtime profile in
    effect. Works without a GPU; never changes process state."""

    def yes(value: bool) -> str:
        return t("launcher.doctor.yes" if value else "launcher.doctor.no")

    rows: list[tuple[str, str]] = [("Python", sys.version.split()[0])]
    try:
        import torch
    except Exception as exc:
        return rows + [(t("launcher.doctor.torch"), t("launcher.doctor.torch_broken", error=str(exc)))]

    gpu = hardware.probe()
    rows.append((t("launcher.doctor.torch"), str(torch.__version__)))
    rows.append((t("launcher.doctor.cuda_build"), str(torch.version.cuda or t("launcher.doctor.cpu_build"))))
    available = yes(True) if gpu.available else t("launcher.doctor.no_because", reason=hardware._message(gpu.reason))
    rows.append((t("launcher.doctor.cuda_available"), available))  # the fix gets its own row below
    if gpu.available:
        try:
            bf16 = yes(torch.cuda.is_bf16_supported())
        except Exception as exc:
            bf16 = t("launcher.doctor.bf16_unknown", error=str(exc))
        rows.append((t("launcher.doctor.bf16"), bf16))
        rows.append((t("launcher.doctor.gpu"), gpu.name))
        if gpu.capability:
            capability = f"{gpu.capability[0]}.{gpu.capability[1]} ({gpu.sm})"
            rows.append((t("launcher.doctor.capability"), capability))
        rows.append((t("launcher.doctor.vram"), _gb(gpu.total_memory_bytes)))
        try:
            rows.append((t("launcher.doctor.kernels"), ", ".join(torch.cuda.get_arch_list())))
        except Exception:
            pass
        rows.append((t("launcher.doctor.flash_attn"), yes(gpu.flash_attn)))
        rows.append((t("launcher.doctor.triton"), yes(gpu.triton)))
        # the VRAM plan, per model
        for line in pages_in_flight(settings, gpu.total_memory_bytes, local_models(settings)):
            rows.append((t("capacity.title"), str(line.render())))
    else:
        rows.append((t("launcher.doctor.bf16"), t("launcher.doctor.bf16_no_gpu")))
    problem = hardware.gpu_problem()
    if problem is not None:
        rows.append((t("launcher.doctor.gpu_problem"), problem.what))
        rows.append((t("launcher.doctor.fix"), problem.fix))
    rows.append((t("launcher.doctor.nvml"), hardware.nvml_status()))
    versions = hardware.driver_versions()
    if versions is not None:
        rows.append((t("launcher.doctor.driver"), versions[0]))
        rows.append((t("launcher.doctor.driver_cuda"), versions[1]))
    try:
        profile = hardware.choose_profile(gpu, settings)
        rows += profile.rows()
    except SettingsError as exc:
        rows.append((t("launcher.profile.row_profile"), t("launcher.doctor.profile_error", error=str(exc))))
    budget = settings.vram_budget_gb
    shown = f"{budget:g} GB" if budget > 0 else t("launcher.doctor.vram_budget_auto")
    rows.append((t("launcher.doctor.vram_budget"), shown))
    cache = str(hub_cache_dir())
    rows.append(
        (t("launcher.doctor.model_cache"), t("launcher.doctor.offline", path=cache) if hub_offline() else cache)
    )
    compile_cache = os.environ.get("TORCHINDUCTOR_CACHE_DIR") or str(hardware.compile_cache_dir() / "inductor")
    rows.append((t("launcher.doctor.compile_cache"), compile_cache))
    return rows
