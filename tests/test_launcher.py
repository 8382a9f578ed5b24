"""The launcher's decisions for simulated machines: which PyTorch build and index, whether to make
``.venv``, what a first run executes, and the GPU truth checks with simulated torch builds — each
problem printed with the exact command that fixes it. No network, no GPU, nothing installed."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from ocr_studio import bootstrap, doctor, hardware, ports
from ocr_studio.bootstrap import BootstrapError, EnvState, execute, plan
from ocr_studio.torch_builds import NvidiaGpu, TorchFacts, choose, diagnose, parse_nvidia_smi
from ocr_studio.ui.sidebar import gpu_status_markdown

CU = "https://download.pytorch.org/whl/"
NAMES = {(7, 5): "Quadro T1000", (8, 6): "RTX 3060 Laptop", (9, 0): "H100", (12, 0): "RTX 5070 Ti Laptop"}


def nvidia(
    capability: tuple[int, int] | None, driver: str = "581.42", cuda: tuple[int, int] | None = None
) -> NvidiaGpu:
    name = NAMES.get(capability or (0, 0), "NVIDIA GPU")
    return NvidiaGpu(name=f"NVIDIA GeForce {name}", capability=capability, driver=driver, cuda_driver=cuda)


# ----------------------------------------------------------------------------- which build, which index

# system × GPU (compute capability, or none) → (build, index); a current driver (R580).
DECISIONS = [
    ("Windows", (12, 0), "cu130"),
    ("Windows", (9, 0), "cu130"),
    ("Windows", (8, 6), "cu130"),
    ("Windows", (7, 5), "cu130"),
    ("Windows", None, "cpu"),
    ("Linux", (12, 0), "cu130"),
    ("Linux", (9, 0), "cu130"),
    ("Linux", (8, 6), "cu130"),
    ("Linux", (7, 5), "cu130"),
    ("Linux", None, "cpu"),
    ("Darwin", None, "pypi"),
]


@pytest.mark.parametrize(("system", "capability", "build"), DECISIONS)
def test_the_torch_build_fits_the_os_and_the_gpu(system, capability, build):
    gpu = nvidia(capability) if capability else None
    choice = choose(system, gpu)
    assert choice.build == build
    assert choice.index_url == (None if build == "pypi" else CU + build)
    assert choice.warning == ""


@pytest.mark.parametrize(
    ("capability", "driver", "build", "warned"),
    [
        ((12, 0), "572.16", "cu128", False),  # the first Blackwell drivers (R570) run CUDA 12.8, not 13
        ((12, 0), "566.03", "cu130", True),  # no build runs on it: the driver must be updated
        ((8, 6), "560.94", "cu126", False),  # an Ampere laptop that has not updated its driver
        ((8, 6), "535.183.01", "cu126", False),  # CUDA 12 minor-version compatibility
        ((8, 6), "510.47", "cu130", True),
        ((7, 0), "581.42", "cu128", False),  # Volta: CUDA 13 dropped it
        ((6, 1), "581.42", "cu126", False),  # Pascal
        (None, "581.42", "cu130", False),  # a driver too old to report the capability
    ],
)
def test_the_driver_limits_the_cuda_build(capability, driver, build, warned):
    choice = choose("Windows", nvidia(capability, driver))
    assert choice.build == build
    assert bool(choice.warning) is warned
    if warned:
        assert "update the NVIDIA driver" in choice.warning


def test_the_light_install_takes_cpu_torch_even_with_a_gpu():
    assert choose("Linux", nvidia((12, 0)), cpu_only=True).index_url == CU + "cpu"
    assert choose("Darwin", None, cpu_only=True).index_url is None  # macOS: PyPI's torch is the light one


def test_nvidia_smi_output_is_read():
    gpu = parse_nvidia_smi(
        "NVIDIA GeForce RTX 5070 Ti Laptop GPU, 12.0, 581.42\n",
        "| NVIDIA-SMI 581.42   Driver Version: 581.42   CUDA Version: 13.0     |",
    )
    assert gpu == NvidiaGpu("NVIDIA GeForce RTX 5070 Ti Laptop GPU", (12, 0), "581.42", (13, 0))
    old = parse_nvidia_smi("Tesla T4,,470.82.01\n")  # compute_cap unknown to that driver
    assert old is not None and old.capability is None and old.driver_cuda() == (11, 4)
    assert parse_nvidia_smi("") is None


# ----------------------------------------------------------------------------- whether to make .venv

NOTHING = EnvState(exists=False)
FRESH = dict(
    system="Windows", current_python="C:/Python311/python.exe", venv_python_path="C:/s/.venv/Scripts/python.exe"
)


@pytest.mark.parametrize("system", ["Windows", "Linux", "Darwin"])
@pytest.mark.parametrize("capability", [(7, 5), (8, 6), (9, 0), (12, 0), None])
def test_a_fresh_clone_makes_the_venv_with_the_fitting_torch(system, capability):
    gpu = nvidia(capability) if capability else None
    chosen = plan(**{**FRESH, "system": system}, current=EnvState(), venv=NOTHING, gpu=gpu)
    assert chosen.create_venv and chosen.install_studio
    assert chosen.python.endswith("python.exe") and ".venv" in chosen.python
    assert chosen.torch == choose(system, gpu if system != "Darwin" else None)


@pytest.mark.parametrize("torch_build", ["cpu", "cuda"])
def test_a_python_that_already_has_the_studio_is_used_as_it_is(torch_build):
    """Torch CPU or CUDA already installed with the studio: nothing is installed or replaced
    (the GPU truth check then says whether that torch fits the GPU)."""
    chosen = plan(**FRESH, current=EnvState(studio=True, torch=True), venv=NOTHING, gpu=nvidia((12, 0)))
    assert chosen.ready and chosen.python == FRESH["current_python"]


def test_a_finished_venv_starts_at_once_and_a_half_made_one_is_completed():
    done = EnvState(studio=True, torch=True, current_marker=True)
    assert plan(**FRESH, current=EnvState(), venv=done, gpu=None).ready
    no_studio = plan(**FRESH, current=EnvState(), venv=EnvState(torch=True), gpu=nvidia((12, 0)))
    assert not no_studio.create_venv and no_studio.torch is None and no_studio.install_studio
    no_torch = plan(**FRESH, current=EnvState(), venv=EnvState(), gpu=nvidia((12, 0)))
    assert no_torch.torch is not None and no_torch.torch.build == "cu130" and no_torch.install_studio
    changed = plan(**FRESH, current=EnvState(), venv=EnvState(studio=True, torch=True), gpu=None)
    assert changed.install_studio and changed.torch is None  # pyproject.toml changed since: update


def test_a_user_made_environment_with_torch_keeps_its_torch():
    """A CUDA (or CPU) torch already in .venv is never swapped behind the user's back."""
    chosen = plan(**FRESH, current=EnvState(torch=True), venv=EnvState(studio=True, torch=True), gpu=nvidia((8, 6)))
    assert chosen.torch is None


# ----------------------------------------------------------------------------- what the first run runs


def test_the_first_run_makes_the_venv_installs_torch_from_its_index_then_the_studio(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'ocr-studio'\n")
    monkeypatch.delenv(bootstrap.TORCH_ENVIRONMENT, raising=False)
    monkeypatch.delenv(bootstrap.INDEX_ENVIRONMENT, raising=False)
    python = str(tmp_path / ".venv" / "bin" / "python")
    chosen = plan(**{**FRESH, "venv_python_path": python}, current=EnvState(), venv=NOTHING, gpu=nvidia((12, 0)))
    ran: list[list[str]] = []
    lines: list[str] = []

    def runner(words, say, *, piped, cwd):
        ran.append(words)
        if words[1:3] == ["-m", "venv"]:
            (tmp_path / ".venv").mkdir()
        return 0

    assert execute(tmp_path, chosen, lines.append, runner=runner, base_python="/usr/bin/python3") == python
    assert ran[0] == ["/usr/bin/python3", "-m", "venv", str(tmp_path / ".venv")]
    assert ran[1][:4] == [python, "-m", "pip", "install"]
    assert ran[1][-4:] == ["torch", "torchvision", "--index-url", CU + "cu130"]
    assert ran[2][-2:] == ["-e", str(tmp_path)]
    assert any("[2/3] Installing PyTorch" in line and "RTX 5070 Ti" in line for line in lines)
    marker = json.loads((tmp_path / ".venv" / bootstrap.MARKER).read_text())
    assert marker == {"pyproject": bootstrap.pyproject_digest(tmp_path), "torch": "cu130"}


def test_a_failed_torch_download_says_so_and_leaves_no_marker(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / ".venv").mkdir()
    chosen = plan(**FRESH, current=EnvState(), venv=EnvState(), gpu=None)
    with pytest.raises(BootstrapError, match="Installing PyTorch failed.*Run the launcher again"):
        execute(tmp_path, chosen, lambda line: None, runner=lambda *a, **k: 1)
    assert not (tmp_path / ".venv" / bootstrap.MARKER).exists()


def test_a_python_without_venv_support_is_told_the_package_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(bootstrap.platform, "system", lambda: "Linux")
    chosen = plan(**FRESH, current=EnvState(), venv=NOTHING, gpu=None)
    with pytest.raises(BootstrapError, match=r"sudo apt install python3\.\d+-venv"):
        execute(tmp_path, chosen, lambda line: None, runner=lambda *a, **k: 1)
    assert not (tmp_path / ".venv").exists()


def test_ci_names_the_torch_requirement_and_index_in_the_environment(monkeypatch):
    cpu = choose("Linux", None)
    monkeypatch.delenv(bootstrap.TORCH_ENVIRONMENT, raising=False)
    monkeypatch.delenv(bootstrap.INDEX_ENVIRONMENT, raising=False)
    assert bootstrap.torch_requirements(cpu) == ["torch", "torchvision", "--index-url", CU + "cpu"]
    monkeypatch.setenv(bootstrap.TORCH_ENVIRONMENT, "torch==2.13.0 torchvision==0.28.0")
    monkeypatch.setenv(bootstrap.INDEX_ENVIRONMENT, "pypi")  # pip's own indexes (and find-links)
    assert bootstrap.torch_requirements(cpu) == ["torch==2.13.0", "torchvision==0.28.0"]


# ----------------------------------------------------------------------------- GPU truth, simulated torch

FIX_CU130 = f"-m pip install --force-reinstall torch torchvision --index-url {CU}cu130"


def facts(version: str, cuda: str | None, available: bool, arch: tuple[str, ...] = ()) -> TorchFacts:
    return TorchFacts(version=version, cuda=cuda, cuda_available=available, arch_list=arch)


def test_a_gpu_with_cpu_only_torch_is_named_with_the_install_command():
    problem = diagnose(facts("2.14.1+cpu", None, False), nvidia((12, 0)), "Windows", r"C:\OCR Studio\.venv\python.exe")
    assert problem is not None
    assert "RTX 5070 Ti" in problem.what and "CPU-only build" in problem.what
    assert problem.fix == rf'"C:\OCR Studio\.venv\python.exe" {FIX_CU130}'  # quoted for cmd.exe


def test_torch_without_kernels_for_the_gpu_is_named_with_a_build_that_has_them():
    cu126 = ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90")
    problem = diagnose(facts("2.14.1+cu126", "12.6", True, cu126), nvidia((12, 0)), "Linux", "/s/.venv/bin/python")
    assert problem is not None and "no kernels for" in problem.what and "sm_120" in problem.what
    assert problem.fix == f"/s/.venv/bin/python {FIX_CU130}"
    on_r570 = diagnose(facts("2.14.1+cu126", "12.6", True, cu126), nvidia((12, 0), "572.16"), "Linux", "python")
    assert on_r570 is not None and on_r570.fix.endswith(f"{CU}cu128")
    blackwell = ("sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120")
    assert diagnose(facts("2.14.1+cu130", "13.0", True, blackwell), nvidia((12, 0)), "Linux", "python") is None
    assert diagnose(facts("2.14.1+cu130", "13.0", True, blackwell), nvidia((8, 6)), "Linux", "python") is None


def test_a_driver_too_old_for_the_torch_build_is_named_with_both_ways_out():
    problem = diagnose(facts("2.14.1+cu130", "13.0", False), nvidia((8, 6), "560.94", (12, 6)), "Windows", "python")
    assert problem is not None
    assert "560.94 runs CUDA up to 12.6" in problem.what and "built for CUDA 13.0" in problem.what
    assert problem.fix.startswith(f"python -m pip install --force-reinstall torch torchvision --index-url {CU}cu126")
    assert "update the NVIDIA driver to 580 or newer" in problem.fix
    blackwell = diagnose(facts("2.14.1+cu130", "13.0", False), nvidia((12, 0), "566.03"), "Windows", "python")
    assert blackwell is not None  # no CUDA build runs Blackwell on R565: only the driver update helps
    assert blackwell.fix.startswith("Update the NVIDIA driver to 580 or newer") and "pip" not in blackwell.fix


def test_no_nvidia_gpu_or_macos_is_no_problem():
    assert diagnose(facts("2.14.1+cpu", None, False), None, "Linux", "python") is None
    assert diagnose(facts("2.14.1", None, False), nvidia((12, 0)), "Darwin", "python") is None


def simulated_torch(version: str, cuda: str | None, available: bool, arch: list[str]) -> SimpleNamespace:
    return SimpleNamespace(
        __version__=version,
        version=SimpleNamespace(cuda=cuda),
        cuda=SimpleNamespace(is_available=lambda: available, get_arch_list=lambda: arch),
    )


def test_doctor_and_sidebar_show_the_problem_and_the_fix(monkeypatch):
    """A CPU-only torch on an RTX 5070 Ti laptop, as doctor and the sidebar show it."""
    hardware._reset_for_tests()
    cpu_torch = simulated_torch("2.14.1+cpu", None, False, [])
    laptop = nvidia((12, 0))
    problem = hardware.gpu_problem(cpu_torch, laptop)
    assert problem is not None and FIX_CU130 in problem.fix
    monkeypatch.setattr(hardware, "gpu_problem", lambda *args, **kwargs: problem)
    monkeypatch.setattr(hardware, "probe", lambda: hardware._no_cuda(cpu_torch))
    rows = dict(doctor.doctor_report(hardware.Settings()))
    assert rows["GPU problem"] == problem.what and rows["Fix"] == problem.fix
    shown = gpu_status_markdown(hardware.telemetry())
    assert "CPU-only build" in shown and f"```\n{problem.fix}\n```" in shown
    hardware._reset_for_tests()


def test_a_visible_gpu_without_kernels_is_flagged_in_the_sidebar_and_profile(monkeypatch):
    info = hardware.GpuInfo(
        True, "RTX 5070 Ti", (12, 0), 16 * 1024**3, reason="no kernels", fix="python -m pip …", arch_supported=False
    )
    monkeypatch.setattr(hardware, "probe", lambda: info)
    monkeypatch.setattr(hardware, "_nvml", lambda: None)
    shown = gpu_status_markdown(hardware.telemetry())
    assert "⚠️ no kernels" in shown and "python -m pip …" in shown
    notes = hardware.choose_profile(info, hardware.Settings()).notes
    assert any("no kernels for sm_120" in note and "python -m pip …" in note for note in notes)


# ----------------------------------------------------------------------------- ports


def test_a_busy_port_is_said_plainly_and_the_next_free_one_used():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        chosen = ports.free_port("127.0.0.1", taken)
        assert taken < chosen <= taken + ports.SEARCH
        assert ports.busy_message(taken, chosen) == (
            f"Port {taken} is in use by another program (or another OCR Studio); using port {chosen} instead."
        )
    assert ports.free_port("127.0.0.1", taken) == taken  # free again


def test_launcher_files_run_launch_py(tmp_path):
    assets = Path(__file__).resolve().parents[1] / "assets"
    assert "--window" in (assets / "ocr-studio.pyw").read_text(encoding="utf-8")
    for name in ("OCR Studio.bat", "OCR Studio.command", "ocr-studio.desktop"):
        assert "launch.py" in (assets / name).read_text(encoding="utf-8"), name


# ----------------------------------------------------------------------------- the launcher's own words


def test_the_launchers_gpu_check_prints_the_fix(monkeypatch, capsys):
    from ocr_studio import gpu_check
    from ocr_studio.torch_builds import GpuProblem

    monkeypatch.setattr(hardware, "gpu_problem", lambda: GpuProblem("PyTorch 2.14.1+cpu is a CPU-only build.", "pip …"))
    gpu_check.main()
    assert capsys.readouterr().out == (
        "GPU WARNING: PyTorch 2.14.1+cpu is a CPU-only build.\nStop OCR Studio, then fix it with:\n\n    pip …\n\n"
    )
    monkeypatch.setattr(hardware, "gpu_problem", lambda: None)
    gpu_check.main()
    assert capsys.readouterr().out == ""  # all is well: nothing said


WINDOW_SCRIPT = r"""
import json, sys, threading, time
sys.path.insert(0, sys.argv[1])
from ocr_studio.launcher_window import LauncherWindow

seen = {}

def work(report, stopped, on_ready):
    report("[1/3] Making the studio's own Python environment")
    on_ready("http://127.0.0.1:7860/?token=abc")
    report("OCR Studio is running at http://127.0.0.1:7860/?token=abc")
    stopped.wait(30)  # the server runs until Stop
    seen["stopped_by_button"] = stopped.is_set()
    return 0

window = LauncherWindow(work)

def press_stop():
    seen["status"] = window.status.cget("text")
    seen["open_enabled"] = str(window.open_button.cget("state"))
    seen["log"] = window.log.get("1.0", "end")
    window.stop_button.invoke()

window.root.after(1500, press_stop)
began = time.monotonic()
result = window.run()
seen["result"] = result
seen["seconds"] = time.monotonic() - began
seen["worker_alive"] = window.worker.is_alive()
print(json.dumps(seen))
"""


def test_the_pyw_window_shows_progress_and_stops_the_studio(tmp_path):
    """``ocr-studio.pyw`` has no console: its window shows the launcher's lines, enables "Open in
    browser" once the studio runs, and its Stop button stops the studio and closes the window."""
    import shutil
    import subprocess
    import sys

    pytest.importorskip("tkinter")
    if shutil.which("xvfb-run") is None or shutil.which("xauth") is None:
        pytest.skip("xvfb-run or xauth is not installed (apt-get install xvfb xauth): no display for the window")
    script = tmp_path / "window.py"
    script.write_text(WINDOW_SCRIPT, encoding="utf-8")
    repo = str(Path(__file__).resolve().parents[1])
    done = subprocess.run(
        ["xvfb-run", "-a", sys.executable, str(script), repo], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["status"].startswith("OCR Studio is running")
    assert seen["open_enabled"] == "normal"
    assert "[1/3] Making the studio's own Python environment" in seen["log"]
    assert seen["stopped_by_button"] is True and seen["result"] == 0 and not seen["worker_alive"]
    assert seen["seconds"] < 10


def test_serve_on_a_busy_port_says_so_and_takes_the_next_one(tmp_path):
    """``ocr-studio serve --port N`` with N taken: one plain sentence, the next free port (not a
    random one), and one "running at" line."""
    import os
    import signal
    import subprocess
    import sys
    import time
    import urllib.parse

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        expected = ports.free_port("127.0.0.1", taken)
        environment = dict(os.environ, OCR_STUDIO_WORKSPACE=str(tmp_path / "ws"), HF_HUB_OFFLINE="1")
        environment["OCR_STUDIO_CONFIG"] = str(tmp_path / "absent.toml")
        environment.pop("OCR_STUDIO_LAUNCH_TOKEN", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "ocr_studio", "serve", "--port", str(taken), "--no-browser"],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: list[str] = []
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                line = process.stdout.readline()  # type: ignore[union-attr]
                if not line:
                    break
                lines.append(line)
                if "is running at" in line:
                    break
            time.sleep(1)
        finally:
            process.send_signal(signal.SIGINT)
            rest, _ = process.communicate(timeout=30)
    said = "".join(lines) + rest
    assert f"Port {taken} is in use by another program (or another OCR Studio); using port {expected} instead." in said
    assert said.count("is running at") == 1, said
    url = said.split("is running at ", 1)[1].split()[0]
    assert urllib.parse.urlsplit(url).port == expected
