"""GPU probe, runtime profile by compute capability, applied once; live telemetry.

CONTRACT (implementation pending): the names and signatures below are what the
CLI (doctor) and the UI (sidebar) use. Keep them. Importing this module must
not import torch at module level (the CLI's help stays fast); functions import it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .settings import Settings


@dataclass(frozen=True)
class GpuInfo:
    available: bool  # CUDA usable
    name: str = ""
    capability: tuple[int, int] | None = None
    total_memory_bytes: int = 0
    reason: str = ""  # why no GPU ("torch was built without CUDA", "no NVIDIA GPU found"...)


@dataclass(frozen=True)
class RuntimeProfile:
    name: str  # e.g. "Blackwell consumer (sm_120)", "Hopper (sm_90)", "CPU"
    device: str  # "cuda" | "cpu"
    dtype: str  # "bfloat16" | "float16" | "float32"
    attention: str  # "sdpa" | "flash_attention_2" | "eager"
    tf32: bool
    compiled_decode: bool
    compile_backend: str  # "inductor" | "cudagraphs" | "none"
    sources: dict[str, str]  # setting -> where its value came from ("auto", "config", "env", "flag")


def probe() -> GpuInfo:
    """Detect the GPU (cached: once per process)."""
    raise NotImplementedError


def choose_profile(gpu: GpuInfo, settings: Settings) -> RuntimeProfile:
    """Pure function: the profile for this GPU and these overrides (tests simulate GPUs)."""
    raise NotImplementedError


def runtime_profile(settings: Settings) -> RuntimeProfile:
    """probe() + choose_profile() + apply the process-wide settings exactly once."""
    raise NotImplementedError


def telemetry() -> dict[str, object]:
    """Live GPU state for the sidebar: name, capability, memory used/total, utilisation,
    temperature, power; keys missing where not available; {"available": False, "reason": ...}
    without CUDA. Never raises."""
    raise NotImplementedError


def doctor_report(settings: Settings) -> list[tuple[str, str]]:
    """(label, value) rows for `ocr-studio doctor`: torch version, CUDA available, bf16
    supported, GPU name, compute capability, VRAM, and the runtime profile in effect.
    Works without a GPU."""
    raise NotImplementedError
