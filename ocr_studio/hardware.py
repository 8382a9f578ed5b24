"""GPU probe, runtime profile by compute capability, applied once; live telemetry.

The profile decides how models run on this machine: dtype, attention kernel, TF32,
compiled decoding. It is chosen from the GPU's compute capability, each choice can be
overridden (config file < environment < CLI flag, see settings.py), and every choice
with where it came from is shown in the sidebar and in ``ocr-studio doctor``.

Importing this module must not import torch (the CLI's help stays fast); functions do.

Words: what is kept (a GPU's reason, a profile's notes) is ``i18n.Text`` — English text that
carries its message, so the sidebar renders it in the reader's language (``i18n.render``); what
is made to be shown at once (``RuntimeProfile.rows``, ``doctor.doctor_report``) is in the current
language. The messages are in ``locales/launcher.*.toml`` (``launcher.gpu``, ``.profile``, ``.doctor``).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from . import gpu_families
from .i18n import Message, Text, t, text
from .settings import APP_NAME, Settings, SettingsError
from .torch_builds import GpuProblem, NvidiaGpu, TorchFacts, arch_supported, detect_nvidia, diagnose

NO_GPU = Message("launcher.gpu.no_gpu")
NO_GPU_SENTENCE = str(NO_GPU)  # English, for code that searches for it
PROFILE_FIELDS = ("device", "dtype", "attention", "tf32", "compile", "compile_backend")

_DTYPE_ALIASES = {
    "auto": "auto",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
}
_ATTENTION_CHOICES = ("auto", "sdpa", "flash_attention_2", "eager")
_SWITCH_CHOICES = {"auto": "auto", "on": "on", "true": "on", "1": "on", "yes": "on", "off": "off", "false": "off"}
_SWITCH_CHOICES |= {"0": "off", "no": "off"}
_DEVICE_CHOICES = ("auto", "cuda", "cpu")
_BACKEND_CHOICES = ("auto", "inductor", "cudagraphs")


@dataclass(frozen=True)
class GpuInfo:
    """What this process can run on: the first CUDA GPU and the kernels available for it."""

    available: bool  # CUDA usable
    name: str = ""
    capability: tuple[int, int] | None = None
    total_memory_bytes: int = 0
    reason: str = ""  # why no GPU ("torch was built without CUDA", "no NVIDIA GPU found"...); an i18n.Text
    flash_attn: bool = False  # the flash_attn package is installed
    triton: bool = False  # triton is importable and can compile for this GPU (inductor works)
    arch_supported: bool = True  # this torch build ships kernels for the GPU's architecture
    fix: str = ""  # the exact command that makes the GPU usable, where something is wrong (torch_builds.py)
    # (with no usable GPU too: the sidebar and doctor show it on its own, not glued to the reason)

    @property
    def sm(self) -> str:
        """The capability as NVIDIA writes it ("sm_120"), "" without a GPU."""
        return f"sm_{self.capability[0]}{self.capability[1]}" if self.capability else ""


@dataclass(frozen=True)
class RuntimeProfile:
    name: str  # e.g. "Blackwell consumer (sm_120)", "Hopper (sm_90)", "CPU"
    device: str  # "cuda" | "cpu"
    dtype: str  # "bfloat16" | "float16" | "float32"
    attention: str  # "sdpa" | "flash_attention_2" | "eager"
    tf32: bool
    compiled_decode: bool
    compile_backend: str  # "inductor" | "cudagraphs" | "none"
    sources: dict[str, str]  # setting -> where its value came from ("auto", "config", "env", "flag", "override")
    notes: tuple[str, ...] = ()  # overrides that could not be honoured and why; warnings about the GPU (i18n.Text)

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) rows for doctor, in the current language; each value says where it came from."""

        def show(value: object, setting: str) -> str:
            source = t(f"launcher.profile.source.{self.sources.get(setting, 'auto')}")
            return t("launcher.profile.value_source", value=value, source=source)

        def switch(on: bool) -> str:
            return t("launcher.profile.on" if on else "launcher.profile.off")

        rows = [
            (t("launcher.profile.row_profile"), self.name),
            (t("launcher.profile.row_device"), show(self.device, "device")),
            (t("launcher.profile.row_dtype"), show(self.dtype, "dtype")),
            (t("launcher.profile.row_attention"), show(self.attention, "attention")),
            (t("launcher.profile.row_tf32"), show(switch(self.tf32), "tf32")),
            (t("launcher.profile.row_compile"), show(switch(self.compiled_decode), "compile")),
            (t("launcher.profile.row_backend"), show(self.compile_backend, "compile_backend")),
        ]
        rows += [(t("launcher.profile.row_note"), _render(note)) for note in self.notes]
        return rows


# ----------------------------------------------------------------------------- probe

_probe_lock = threading.Lock()
_probed: GpuInfo | None = None


def probe() -> GpuInfo:
    """Detect the GPU (cached: once per process). Never raises."""
    global _probed
    with _probe_lock:
        if _probed is None:
            _probed = _probe_uncached()
        return _probed


def _probe_uncached() -> GpuInfo:
    try:
        import torch
    except Exception as exc:  # a broken torch install must not take the CLI down
        return GpuInfo(available=False, reason=text("launcher.gpu.torch_broken", error=str(exc), no_gpu=NO_GPU))
    try:
        if not torch.cuda.is_available():
            return _no_cuda(torch)
        props = torch.cuda.get_device_properties(0)
        capability = (int(props.major), int(props.minor))
        supported = _arch_in_build(capability, list(torch.cuda.get_arch_list()))
        problem = None if supported else gpu_problem(torch)
        return GpuInfo(
            available=True,
            name=str(props.name),
            capability=capability,
            total_memory_bytes=int(props.total_memory),
            flash_attn=flash_attn_installed(),
            triton=_triton_works(),
            arch_supported=supported,
            reason=_as_text(problem.why) if problem else "",
            fix=_as_text(problem.remedy) if problem else "",
        )
    except Exception as exc:
        return GpuInfo(available=False, reason=text("launcher.gpu.cuda_failed", error=str(exc), no_gpu=NO_GPU))


def _no_cuda(torch_module: object) -> GpuInfo:
    """Why torch has no CUDA here (an i18n.Text), and the fix on its own where one is known."""
    problem = gpu_problem(torch_module)
    if problem is not None:
        reason = text("launcher.gpu.until_then", what=problem.why, no_gpu=NO_GPU)
        return GpuInfo(available=False, reason=reason, fix=_as_text(problem.remedy))
    cuda_build = getattr(getattr(torch_module, "version", None), "cuda", None)
    if not cuda_build:
        return GpuInfo(available=False, reason=text("launcher.gpu.no_cuda_build", no_gpu=NO_GPU))
    nvml_names = _nvml_gpu_names()
    if nvml_names:
        reason = text("launcher.gpu.driver_maybe_old", gpu=nvml_names[0], cuda=str(cuda_build), no_gpu=NO_GPU)
        return GpuInfo(available=False, reason=reason)
    return GpuInfo(available=False, reason=text("launcher.gpu.no_cuda_gpu", no_gpu=NO_GPU))


def _as_text(value: Message | str) -> str:
    """A message as ``i18n.Text`` (English that remembers it); text as it is."""
    return Text(value) if isinstance(value, Message) else value


def _message(value: object) -> Message | str:
    """What to nest in a message: a Text's Message (rendered in the outer message's language)."""
    return value.message if isinstance(value, Text) else value  # type: ignore[return-value]


def _render(value: object) -> str:
    """Kept words (``i18n.Text``, a Message, plain text) in the current language."""
    from .i18n import render

    return render(value)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- GPU truth


def torch_facts(torch_module: object) -> TorchFacts:
    """What an installed (or simulated) torch says about its build, never raising."""
    cuda = getattr(torch_module, "cuda", None)
    try:
        available = bool(cuda.is_available())  # type: ignore[union-attr]
    except Exception:
        available = False
    try:
        arch_list = tuple(cuda.get_arch_list()) if available else ()  # type: ignore[union-attr]
    except Exception:
        arch_list = ()
    return TorchFacts(
        version=str(getattr(torch_module, "__version__", "?")),
        cuda=getattr(getattr(torch_module, "version", None), "cuda", None) or None,
        cuda_available=available,
        arch_list=arch_list,
    )


def nvidia_gpu() -> NvidiaGpu | None:
    """The first NVIDIA GPU as its driver describes it (NVML, else nvidia-smi), torch not asked."""
    nvml = _nvml()
    if nvml is not None:
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(0)  # type: ignore[attr-defined]
            name = _text(nvml.nvmlDeviceGetName(handle))  # type: ignore[attr-defined]
            try:
                capability = tuple(int(x) for x in nvml.nvmlDeviceGetCudaComputeCapability(handle))  # type: ignore[attr-defined]
            except Exception:
                capability = None
            driver = _text(nvml.nvmlSystemGetDriverVersion())  # type: ignore[attr-defined]
            try:
                cuda = int(nvml.nvmlSystemGetCudaDriverVersion())  # type: ignore[attr-defined]
                cuda_driver = (cuda // 1000, (cuda % 1000) // 10)
            except Exception:
                cuda_driver = None
            return NvidiaGpu(name=name, capability=capability, driver=driver, cuda_driver=cuda_driver)  # type: ignore[arg-type]
        except Exception:
            pass
    return detect_nvidia()


_problem_lock = threading.Lock()
_problem: dict[str, GpuProblem | None] = {}


def gpu_problem(torch_module: object | None = None, nvidia: NvidiaGpu | None | bool = True) -> GpuProblem | None:
    """Why the NVIDIA GPU cannot be used by this torch, with the exact fix; None when it can (or
    there is none). With no arguments: the real torch and GPU, looked at once per process.
    Tests pass a simulated torch and ``nvidia`` (an NvidiaGpu, or None for no GPU)."""
    cached = torch_module is None and nvidia is True
    if cached:
        with _problem_lock:
            if "value" in _problem:
                return _problem["value"]
    if torch_module is None:
        try:
            import torch as torch_module
        except Exception:
            return None
    gpu = nvidia_gpu() if nvidia is True else nvidia
    problem = diagnose(torch_facts(torch_module), gpu or None, platform.system(), sys.executable)  # type: ignore[arg-type]
    if cached:
        with _problem_lock:
            _problem["value"] = problem
    return problem


def flash_attn_installed() -> bool:
    """Whether the flash_attn package is importable (checked without importing it)."""
    try:
        return importlib.util.find_spec("flash_attn") is not None
    except (ImportError, ValueError):
        return False


def _triton_works() -> bool:
    """Triton importable and able to compile for the visible GPU (what inductor needs)."""
    try:
        from torch.utils._triton import has_triton

        return bool(has_triton())
    except Exception:
        return False


def _arch_in_build(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """True when the torch build has binary kernels for this GPU (same major, minor not above)
    or PTX it can JIT-compile (compute_XY at or below the GPU)."""
    return arch_supported(capability, arch_list)


# ----------------------------------------------------------------------------- choose


def _origin(settings: Settings, name: str) -> str:
    """Where a setting's value came from. Settings may carry an ``origins`` map
    (config/env/flag); without it a non-"auto" value is reported as an override."""
    origins = getattr(settings, "origins", None)
    value = str(getattr(settings, name)).strip().lower()
    if value == "auto":
        return "auto"
    if isinstance(origins, dict) and name in origins:
        return str(origins[name])
    return "override"


def _normalised(settings: Settings, name: str, choices: dict[str, str] | tuple[str, ...]) -> str:
    raw = str(getattr(settings, name)).strip().lower()
    table = choices if isinstance(choices, dict) else {choice: choice for choice in choices}
    if raw not in table:
        valid = ", ".join(dict.fromkeys(table.values()))
        raise SettingsError(
            t("launcher.profile.invalid_setting", name=name, value=repr(getattr(settings, name)), choices=valid)
        )
    return table[raw]


def choose_profile(gpu: GpuInfo, settings: Settings) -> RuntimeProfile:
    """Pure function: the profile for this GPU and these overrides (tests simulate GPUs).

    Raises SettingsError for a value that is not a valid choice; an override that is valid
    but cannot work on this GPU falls back to what works, with the reason in ``notes``."""
    device_setting = _normalised(settings, "device", _DEVICE_CHOICES)
    dtype_setting = _normalised(settings, "dtype", _DTYPE_ALIASES)
    attention_setting = _normalised(settings, "attention", _ATTENTION_CHOICES)
    tf32_setting = _normalised(settings, "tf32", _SWITCH_CHOICES)
    compile_setting = _normalised(settings, "compile", _SWITCH_CHOICES)
    backend_setting = _normalised(settings, "compile_backend", _BACKEND_CHOICES)
    sources = {name: _origin(settings, name) for name in PROFILE_FIELDS}
    notes: list[str] = []

    use_cuda = gpu.available and gpu.capability is not None and device_setting != "cpu"
    if device_setting == "cuda" and not use_cuda:
        reason = gpu.reason or Message("launcher.profile.unknown_reason")
        notes.append(text("launcher.profile.cuda_unusable", reason=_message(reason)))

    if not use_cuda:
        dtype = "float32"
        if dtype_setting not in ("auto", "float32"):
            notes.append(text("launcher.profile.cpu_dtype", dtype=dtype_setting))
        attention = "eager" if attention_setting == "eager" else "sdpa"
        if attention_setting == "flash_attention_2":
            notes.append(text("launcher.profile.cpu_flash"))
        if tf32_setting == "on":
            notes.append(text("launcher.profile.cpu_tf32"))
        if compile_setting == "on":
            notes.append(text("launcher.profile.cpu_compile"))
        return RuntimeProfile(
            name="CPU",
            device="cpu",
            dtype=dtype,
            attention=attention,
            tf32=False,
            compiled_decode=False,
            compile_backend="none",
            sources=sources,
            notes=tuple(notes),
        )

    assert gpu.capability is not None
    capability = gpu.capability
    family = gpu_families.family(capability)  # what this architecture can do (gpu_families.py)
    bf16_ok = family.bf16
    fp16_ok = family.fp16
    if not gpu.arch_supported:
        fix = Message("launcher.profile.no_kernels_fix", {"fix": _message(gpu.fix)}) if gpu.fix else "."
        notes.append(text("launcher.profile.no_kernels", sm=gpu.sm, fix=fix))

    # dtype
    auto_dtype = "bfloat16" if bf16_ok else "float16" if fp16_ok else "float32"
    if not fp16_ok:  # older than Volta
        notes.append(text("launcher.profile.old_gpu", sm=gpu.sm))
    if dtype_setting == "auto":
        dtype = auto_dtype
    elif dtype_setting == "bfloat16" and not bf16_ok:
        dtype = "float16" if fp16_ok else "float32"
        notes.append(text("launcher.profile.no_bf16", gpu=gpu.name or gpu.sm, sm=gpu.sm, dtype=dtype))
    elif dtype_setting == "float16" and not fp16_ok:
        dtype = "float32"
        notes.append(text("launcher.profile.slow_fp16", sm=gpu.sm))
    else:
        dtype = dtype_setting

    # attention
    flash_fits_gpu = family.flash_attention
    flash_ok = gpu.flash_attn and flash_fits_gpu and dtype in ("bfloat16", "float16")
    if attention_setting == "auto":
        attention = "flash_attention_2" if flash_ok else "sdpa"
    elif attention_setting == "flash_attention_2" and not flash_ok:
        attention = "sdpa"
        if not gpu.flash_attn:
            why = Message("launcher.profile.no_flash_package")
        elif not flash_fits_gpu:
            why = Message("launcher.profile.flash_unsupported", {"sm": gpu.sm})
        else:
            why = Message("launcher.profile.flash_dtype", {"dtype": dtype})
        notes.append(text("launcher.profile.no_flash", why=why))
    else:
        attention = attention_setting

    # TF32 (float32 matmuls on tensor cores)
    tf32_capable = family.tf32
    if tf32_setting == "on" and not tf32_capable:
        notes.append(text("launcher.profile.tf32_old", sm=gpu.sm))
    tf32 = tf32_capable and tf32_setting != "off"

    # compiled decoding (static cache + torch.compile / CUDA graphs)
    compiled = compile_setting != "off"
    if not compiled:
        backend = "none"
    elif backend_setting == "cudagraphs":
        backend = "cudagraphs"
    elif gpu.triton:
        backend = "inductor"
    else:
        backend = "cudagraphs"
        if backend_setting == "inductor":
            notes.append(text("launcher.profile.no_triton"))

    return RuntimeProfile(
        name=gpu_families.family_name(capability),
        device="cuda",
        dtype=dtype,
        attention=attention,
        tf32=tf32,
        compiled_decode=compiled,
        compile_backend=backend,
        sources=sources,
        notes=tuple(notes),
    )


# ----------------------------------------------------------------------------- apply once

_apply_lock = threading.Lock()
_applied_tf32: bool | None = None
_cache_env_set = False
apply_count = 0  # how many times process-wide state was changed (observable by tests and doctor)


def compile_cache_dir() -> Path:
    """Where compiled kernels persist between launches, so the second launch compiles faster."""
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / "torch-compile"


def _torch_default_inductor_dir() -> str | None:
    """Inductor's default cache dir (under /tmp, lost on reboot), which torch itself puts into
    TORCHINDUCTOR_CACHE_DIR once anything asks for it; None where torch cannot say."""
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir

        return os.path.abspath(default_cache_dir())
    except Exception:
        return None


def _apply_process_settings(profile: RuntimeProfile) -> None:
    """Set the process-wide torch state the profile asks for, once; later calls with the same
    profile change nothing. The user's own environment variables always win."""
    global _applied_tf32, _cache_env_set, apply_count
    with _apply_lock:
        changed = False
        if profile.compiled_decode and not _cache_env_set:
            cache = compile_cache_dir()
            if os.environ.get("TORCHINDUCTOR_CACHE_DIR") in (None, "", _torch_default_inductor_dir()):
                # unset, or torch's own /tmp default (torch writes it into the environment itself)
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache / "inductor")
            os.environ.setdefault("TORCHINDUCTOR_FX_GRAPH_CACHE", "1")
            os.environ.setdefault("TORCHINDUCTOR_AUTOGRAD_CACHE", "1")
            os.environ.setdefault("TRITON_CACHE_DIR", str(cache / "triton"))
            _cache_env_set = changed = True
        if profile.device == "cuda" and _applied_tf32 != profile.tf32:
            import torch

            # legacy API only: mixing it with the fp32_precision API makes torch raise
            torch.set_float32_matmul_precision("high" if profile.tf32 else "highest")
            torch.backends.cuda.matmul.allow_tf32 = profile.tf32
            torch.backends.cudnn.allow_tf32 = profile.tf32
            _applied_tf32 = profile.tf32
            changed = True
        if changed:
            apply_count += 1


def runtime_profile(settings: Settings) -> RuntimeProfile:
    """probe() + choose_profile() + apply the process-wide settings exactly once."""
    profile = choose_profile(probe(), settings)
    _apply_process_settings(profile)
    return profile


# ----------------------------------------------------------------------------- NVML

_nvml_lock = threading.Lock()
_nvml_state: dict[str, object] = {}  # "module", "error"


def _nvml() -> object | None:
    """pynvml, initialised once; None (with the reason remembered) where it cannot be."""
    with _nvml_lock:
        if "module" in _nvml_state or "error" in _nvml_state:
            return _nvml_state.get("module")
        try:
            import pynvml

            pynvml.nvmlInit()
            _nvml_state["module"] = pynvml
        except Exception as exc:  # no library, no driver, no permission
            _nvml_state["error"] = _nvml_error_text(exc)
        return _nvml_state.get("module")


def _nvml_error_text(exc: Exception) -> str:
    said = str(exc) or type(exc).__name__
    if "NVML Shared Library Not Found" in said or "libnvidia-ml" in said:
        return Text(Message("launcher.gpu.nvml_missing"))
    if isinstance(exc, ImportError):
        return Text(Message("launcher.gpu.nvml_not_installed"))
    return said


def nvml_status() -> str:
    """Either "available" or why not, in a few words (the current language)."""
    if _nvml() is not None:
        return t("launcher.gpu.nvml_available")
    error = _nvml_state.get("error") or Message("launcher.gpu.unknown")
    return t("launcher.gpu.nvml_unavailable", error=_message(error))


def _nvml_gpu_names() -> list[str]:
    nvml = _nvml()
    if nvml is None:
        return []
    try:
        count = nvml.nvmlDeviceGetCount()  # type: ignore[attr-defined]
        return [_text(nvml.nvmlDeviceGetName(nvml.nvmlDeviceGetHandleByIndex(i))) for i in range(count)]  # type: ignore[attr-defined]
    except Exception:
        return []


def driver_versions() -> tuple[str, str] | None:
    """The NVIDIA driver's version and the CUDA version it supports, from NVML; None where NVML cannot say."""
    nvml = _nvml()
    if nvml is None:
        return None
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())  # type: ignore[attr-defined]
        cuda_driver = int(nvml.nvmlSystemGetCudaDriverVersion())  # type: ignore[attr-defined]
    except Exception:
        return None
    return driver, f"{cuda_driver // 1000}.{(cuda_driver % 1000) // 10}"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _nvml_handle(nvml: object, torch_module: object) -> object:
    """The NVML handle of torch's device 0 (matched by PCI bus id: CUDA_VISIBLE_DEVICES may reorder)."""
    try:
        props = torch_module.cuda.get_device_properties(0)  # type: ignore[attr-defined]
        bus_id = f"{props.pci_domain_id:08X}:{props.pci_bus_id:02X}:{props.pci_device_id:02X}.0"
        return nvml.nvmlDeviceGetHandleByPciBusId(bus_id)  # type: ignore[attr-defined]
    except Exception:
        return nvml.nvmlDeviceGetHandleByIndex(0)  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------- telemetry


def telemetry() -> dict[str, object]:
    """Live GPU state for the sidebar: name, capability, memory used/total, utilisation,
    temperature, power; keys missing where not available; {"available": False, "reason": ...}
    without CUDA. Never raises.

    Keys: available, name, capability ("12.0"), sm ("sm_120"), memory_used_bytes,
    memory_total_bytes, torch_allocated_bytes, torch_reserved_bytes, utilization_percent,
    memory_utilization_percent, temperature_c, power_w, power_limit_w, nvml (bool)."""
    try:
        gpu = probe()
        if not gpu.available:
            reason = gpu.reason or text("launcher.gpu.no_cuda_gpu", no_gpu=NO_GPU)
            return {"available": False, "reason": reason, **({"fix": gpu.fix} if gpu.fix else {})}
        # (an NVIDIA GPU that is present but unusable comes with "fix": the command, see gpu_problem)
        import torch

        data: dict[str, object] = {"available": True, "name": gpu.name, "sm": gpu.sm}
        if not gpu.arch_supported:  # torch sees the GPU but every kernel launch would fail
            data["problem"] = gpu.reason or text("launcher.gpu.no_kernels_short", sm=gpu.sm)
            data["fix"] = gpu.fix
        if gpu.capability:
            data["capability"] = f"{gpu.capability[0]}.{gpu.capability[1]}"
        data["memory_total_bytes"] = gpu.total_memory_bytes
        if torch.cuda.is_initialized():  # never create a CUDA context just to look
            data["torch_allocated_bytes"] = int(torch.cuda.memory_allocated(0))
            data["torch_reserved_bytes"] = int(torch.cuda.memory_reserved(0))
            free, total = torch.cuda.mem_get_info(0)
            data["memory_used_bytes"] = int(total - free)
            data["memory_total_bytes"] = int(total)
        data.update(_nvml_readings(torch))
        return data
    except Exception as exc:
        return {"available": False, "reason": text("launcher.gpu.status_failed", error=str(exc))}


def _nvml_readings(torch_module: object) -> dict[str, object]:
    nvml = _nvml()
    if nvml is None:
        return {"nvml": False}
    readings: dict[str, object] = {"nvml": True}
    try:
        handle = _nvml_handle(nvml, torch_module)
    except Exception:
        return {"nvml": False}
    probes = {
        "memory": lambda: nvml.nvmlDeviceGetMemoryInfo(handle),  # type: ignore[attr-defined]
        "utilization": lambda: nvml.nvmlDeviceGetUtilizationRates(handle),  # type: ignore[attr-defined]
        "temperature_c": lambda: int(nvml.nvmlDeviceGetTemperature(handle, 0)),  # type: ignore[attr-defined]
        "power_w": lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0,  # type: ignore[attr-defined]
        "power_limit_w": lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0,  # type: ignore[attr-defined]
    }
    for key, read in probes.items():
        try:
            value = read()
        except Exception:  # laptops often lack power readings; skip what is not supported
            continue
        if key == "memory":
            readings["memory_used_bytes"] = int(value.used)
            readings["memory_total_bytes"] = int(value.total)
        elif key == "utilization":
            readings["utilization_percent"] = int(value.gpu)
            readings["memory_utilization_percent"] = int(value.memory)
        else:
            readings[key] = value
    return readings


def _reset_for_tests() -> None:
    """Forget the probe and the applied state (tests simulate several processes)."""
    global _probed, _applied_tf32, _cache_env_set, apply_count
    with _probe_lock, _apply_lock:
        _probed = None
        _problem.clear()
        _applied_tf32 = None
        _cache_env_set = False
        apply_count = 0


__all__ = [
    "GpuInfo",
    "RuntimeProfile",
    "choose_profile",
    "compile_cache_dir",
    "driver_versions",
    "flash_attn_installed",
    "gpu_problem",
    "probe",
    "runtime_profile",
    "telemetry",
]
