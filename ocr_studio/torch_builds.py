"""Which PyTorch build fits this machine, and what is wrong with the one installed.

PyPI's ``torch`` is the wrong build on exactly the machines the studio is for: on Windows it
is CPU-only, and an RTX 50 card (Blackwell, sm_120) needs a CUDA 12.8+ build that only
PyTorch's own wheel index serves. This module decides, from facts anyone can gather without
torch (the OS and ``nvidia-smi``), which build and index to install, and diagnoses an installed
torch against the GPU (CPU-only build, no kernels for the GPU, driver too old), each time with
the exact command that fixes it.

Standard library only: ``launch.py`` imports it before anything is installed.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from dataclasses import dataclass

from .i18n import Message, message, render

INDEX = "https://download.pytorch.org/whl/"
DRIVER_DOWNLOAD = "https://www.nvidia.com/drivers"


@dataclass(frozen=True)
class NvidiaGpu:
    """What the NVIDIA driver says about the first GPU (nvidia-smi or NVML), torch not needed."""

    name: str
    capability: tuple[int, int] | None = None  # None where the driver is too old to say
    driver: str = ""  # "572.16"
    cuda_driver: tuple[int, int] | None = None  # the newest CUDA this driver runs ("CUDA Version" in nvidia-smi)

    @property
    def sm(self) -> str:
        return f"sm_{self.capability[0]}{self.capability[1]}" if self.capability else ""

    @property
    def driver_major(self) -> int:
        head = self.driver.split(".")[0]
        return int(head) if head.isdigit() else 0

    def driver_cuda(self) -> tuple[int, int] | None:
        """The newest CUDA the driver runs: as it says, else from its branch number."""
        if self.cuda_driver:
            return self.cuda_driver
        major = self.driver_major
        for branch, cuda in DRIVER_CUDA:
            if major >= branch:
                return cuda
        return None


# Driver branch -> newest CUDA it runs (NVIDIA's CUDA compatibility table; same on Linux and Windows).
DRIVER_CUDA: tuple[tuple[int, tuple[int, int]], ...] = (
    (580, (13, 0)),
    (575, (12, 9)),
    (570, (12, 8)),
    (560, (12, 6)),
    (550, (12, 4)),
    (535, (12, 2)),
    (525, (12, 0)),
    (520, (11, 8)),
    (515, (11, 7)),
    (510, (11, 6)),
    (495, (11, 5)),
    (470, (11, 4)),
    (465, (11, 3)),
    (460, (11, 2)),
    (455, (11, 1)),
    (450, (11, 0)),
)


@dataclass(frozen=True)
class CudaBuild:
    """One of PyTorch's CUDA wheel variants: its index tag, its CUDA, what it runs on."""

    tag: str  # "cu130"
    cuda: tuple[int, int]
    min_driver: int  # driver branch it needs (CUDA minor-version compatibility counted)
    min_capability: tuple[int, int]  # oldest GPU it has kernels for
    max_capability: tuple[int, int]  # newest GPU it has kernels for

    def runs(self, gpu: NvidiaGpu) -> bool:
        fits_gpu = gpu.capability is None or self.min_capability <= gpu.capability <= self.max_capability
        return fits_gpu and gpu.driver_major >= self.min_driver

    @property
    def index_url(self) -> str:
        return INDEX + self.tag


# Preferred first. cu130 is PyPI's Linux default since torch 2.9 and covers Turing..Blackwell
# (CUDA 13 dropped Maxwell, Pascal, Volta); cu128 is the first with sm_120 and runs on R570
# drivers, the first Blackwell drivers; cu126 is the build for older drivers (R525+, through
# CUDA 12 minor-version compatibility) and older GPUs, and has no Blackwell kernels.
CUDA_BUILDS: tuple[CudaBuild, ...] = (
    CudaBuild("cu130", (13, 0), 580, (7, 5), (12, 1)),
    CudaBuild("cu128", (12, 8), 570, (7, 0), (12, 0)),
    CudaBuild("cu126", (12, 6), 525, (5, 0), (9, 0)),
)


@dataclass(frozen=True)
class TorchChoice:
    """What to install: a build name, the index it comes from (None: PyPI), and why.

    ``why`` and ``caution`` are messages (launcher catalog); ``reason`` and ``warning`` are their
    text in the current language, as the launcher prints them."""

    build: str  # "cu130", "cpu", "pypi"
    index_url: str | None
    why: Message | str
    caution: Message | str = ""  # something the user must do besides (update the driver)

    @property
    def cuda(self) -> bool:
        return self.build.startswith("cu")

    @property
    def reason(self) -> str:
        return render(self.why)

    @property
    def warning(self) -> str:
        return render(self.caution)


def choose(system: str, gpu: NvidiaGpu | None, *, cpu_only: bool = False) -> TorchChoice:
    """The torch build for this OS ("Windows", "Linux", "Darwin") and GPU (None: no NVIDIA GPU).

    ``cpu_only``: the light install (the text-layer engine needs no CUDA)."""
    if system == "Darwin":
        return TorchChoice("pypi", None, message("launcher.torch.macos"))
    if cpu_only:
        return TorchChoice("cpu", INDEX + "cpu", message("launcher.torch.light"))
    if gpu is None:
        return TorchChoice("cpu", INDEX + "cpu", message("launcher.torch.no_gpu"))
    label: Message | str = gpu.name + (f", {gpu.sm}" if gpu.sm else "")
    if gpu.driver:
        label = message("launcher.torch.gpu_driver", gpu=label, driver=gpu.driver)
    for build in CUDA_BUILDS:
        if build.runs(gpu):
            return TorchChoice(
                build.tag, build.index_url, message("launcher.torch.cuda_build", gpu=label, cuda=_v(build.cuda))
            )
    # Nothing fits the driver: take the build that fits the GPU, and say the driver must be updated.
    fitting = [b for b in CUDA_BUILDS if gpu.capability is None or b.min_capability <= gpu.capability]
    build = fitting[0] if fitting else CUDA_BUILDS[-1]
    return TorchChoice(
        build.tag,
        build.index_url,
        message("launcher.torch.cuda_build", gpu=label, cuda=_v(build.cuda)),
        caution=message(
            "launcher.torch.driver_too_old",
            driver=gpu.driver or message("launcher.torch.driver_unknown"),
            needed=build.min_driver,
            url=DRIVER_DOWNLOAD,
        ),
    )


def driver_for(cuda: tuple[int, int]) -> int:
    """The oldest driver branch that runs this CUDA version."""
    return min((branch for branch, runs in DRIVER_CUDA if runs >= cuda), default=DRIVER_CUDA[0][0])


def _v(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def command_line(words: list[str], system: str) -> str:
    """A command as the user types it in this OS's shell."""
    return subprocess.list2cmdline(words) if system == "Windows" else shlex.join(words)


def reinstall_command(python: str, choice: TorchChoice, system: str) -> str:
    """The one command that replaces the installed torch with ``choice``."""
    words = [python, "-m", "pip", "install", "--force-reinstall", "torch", "torchvision"]
    if choice.index_url:
        words += ["--index-url", choice.index_url]
    return command_line(words, system)


# ----------------------------------------------------------------------------- the installed torch


@dataclass(frozen=True)
class TorchFacts:
    """What an installed torch says about itself (gathered by hardware.torch_facts)."""

    version: str
    cuda: str | None  # torch.version.cuda: "12.8", None for a CPU-only build
    cuda_available: bool
    arch_list: tuple[str, ...] = ()  # torch.cuda.get_arch_list(): ("sm_75", ..., "compute_90")


@dataclass(frozen=True)
class GpuProblem:
    """Why the GPU is not (fully) used, and the exact fix.

    Kept as messages (``why``, ``remedy``) so the sidebar shows them in each reader's language;
    ``what`` and ``fix`` are the text in the current language (``i18n.current_language()``)."""

    why: Message | str
    remedy: Message | str

    @property
    def what(self) -> str:
        return render(self.why)

    @property
    def fix(self) -> str:
        return render(self.remedy)

    def text(self) -> str:
        return render(message("launcher.gpu.with_fix", what=self.why, fix=self.remedy))


def arch_supported(capability: tuple[int, int], arch_list: list[str] | tuple[str, ...]) -> bool:
    """True when a build has binary kernels for the GPU (same major, minor not above) or PTX it
    can JIT-compile (compute_XY at or below the GPU); an empty list (unknown) counts as yes."""
    if not arch_list:
        return True
    major, minor = capability
    for arch in arch_list:
        kind, _, digits = arch.partition("_")
        digits = digits.rstrip("af")  # sm_90a, sm_100f: family-specific variants of the same target
        if not digits.isdigit() or len(digits) < 2:
            continue
        arch_major, arch_minor = int(digits[:-1]), int(digits[-1])
        if kind == "sm" and arch_major == major and arch_minor <= minor:
            return True
        if kind == "compute" and (arch_major, arch_minor) <= capability:
            return True
    return False


def _cuda_tuple(text: str | None) -> tuple[int, int] | None:
    try:
        major, minor = (text or "").split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        return None


def diagnose(torch: TorchFacts, gpu: NvidiaGpu | None, system: str, python: str) -> GpuProblem | None:
    """What stops this torch from using this NVIDIA GPU, with the fix; None when nothing does
    (or there is no NVIDIA GPU, or the OS is macOS)."""
    if gpu is None or system == "Darwin":
        return None
    right = choose(system, gpu)
    command = reinstall_command(python, right, system)
    fix = message("launcher.gpu.fix_and_warning", fix=command, warning=right.caution) if right.caution else command
    label = gpu.name + (f" ({gpu.sm})" if gpu.sm else "")
    if not torch.cuda:
        return GpuProblem(message("launcher.gpu.cpu_only", gpu=label, version=torch.version), fix)
    built_for = _cuda_tuple(torch.cuda)
    driver_runs = gpu.driver_cuda()
    too_old = built_for and driver_runs and (driver_runs[0] < built_for[0] or driver_runs < built_for)
    if too_old and (driver_runs[0] < built_for[0] or not torch.cuda_available):  # same major: minor compatibility
        older = next((b for b in CUDA_BUILDS if b.runs(gpu) and b.cuda <= driver_runs), None)
        needed = driver_for(built_for)
        remedy: Message
        if older is not None:
            choice = TorchChoice(older.tag, older.index_url, "")
            older_command = reinstall_command(python, choice, system)
            remedy = message("launcher.gpu.fix_or_driver", command=older_command, driver=needed, url=DRIVER_DOWNLOAD)
        else:
            remedy = message("launcher.gpu.update_driver", driver=needed, url=DRIVER_DOWNLOAD)
        why = message(
            "launcher.gpu.driver_too_old",
            driver=gpu.driver,
            runs=_v(driver_runs),
            version=torch.version,
            cuda=torch.cuda,
        )
        return GpuProblem(why, remedy)
    if gpu.capability and not arch_supported(gpu.capability, torch.arch_list):
        kernels = " ".join(a for a in torch.arch_list if a.startswith("sm_")) or message("launcher.gpu.no_kernels_none")
        why = message("launcher.gpu.no_kernels", version=torch.version, cuda=torch.cuda, gpu=label, kernels=kernels)
        return GpuProblem(why, fix)
    return None


# ----------------------------------------------------------------------------- nvidia-smi


def parse_nvidia_smi(query_csv: str, banner: str = "") -> NvidiaGpu | None:
    """The first GPU from ``nvidia-smi --query-gpu=name,compute_cap,driver_version
    --format=csv,noheader`` and the CUDA version from plain ``nvidia-smi``'s banner."""
    lines = [line for line in query_csv.splitlines() if line.strip()]
    if not lines:
        return None
    fields = [field.strip() for field in lines[0].split(",")]
    name = fields[0]
    capability = None
    if len(fields) > 1 and _cuda_tuple(fields[1]):
        capability = _cuda_tuple(fields[1])
    driver = fields[2] if len(fields) > 2 else ""
    cuda = None
    marker = "CUDA Version:"
    if marker in banner:
        cuda = _cuda_tuple(banner.split(marker, 1)[1].split()[0])
    return NvidiaGpu(name=name, capability=capability, driver=driver, cuda_driver=cuda)


def detect_nvidia(timeout: float = 10.0) -> NvidiaGpu | None:
    """The first NVIDIA GPU as the driver reports it, or None (no GPU, no driver, no nvidia-smi)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    try:
        query = subprocess.run(
            [smi, "--query-gpu=name,compute_cap,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=timeout,
            creationflags=flags,
        )
        if query.returncode != 0:  # drivers before R510 do not know compute_cap
            query = subprocess.run(
                [smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=timeout,
                creationflags=flags,
            )
            if query.returncode != 0:
                return None
            name, _, driver = query.stdout.splitlines()[0].partition(",") if query.stdout.strip() else ("", "", "")
            query.stdout = f"{name},,{driver.strip()}"
        banner = subprocess.run([smi], capture_output=True, text=True, timeout=timeout, creationflags=flags).stdout
    except (OSError, subprocess.SubprocessError, IndexError):
        return None
    return parse_nvidia_smi(query.stdout, banner)
