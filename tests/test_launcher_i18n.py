"""The launcher, the first run, the GPU check and doctor speak the user's language (issue 16):
Russian where the locale (or OCR_STUDIO_LANGUAGE, or the config file) says Russian, English by
default; commands, paths and URLs stay exactly as they are. No network, no GPU, nothing installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocr_studio import bootstrap, doctor, gpu_check, hardware, i18n, ports
from ocr_studio.bootstrap import EnvState, execute, plan
from ocr_studio.torch_builds import NvidiaGpu, TorchFacts, diagnose

REPO = Path(__file__).resolve().parents[1]
LAPTOP = NvidiaGpu("NVIDIA GeForce RTX 5070 Ti Laptop GPU", (12, 0), "581.42", (13, 0))
FIX = "-m pip install --force-reinstall torch torchvision --index-url https://download.pytorch.org/whl/cu130"
NO_LOCALE = ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE", "OCR_STUDIO_LANGUAGE")


def launcher_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The test's environment without any locale setting and with no config file, plus ``extra``."""
    environment = {k: v for k, v in os.environ.items() if k not in NO_LOCALE}
    environment["OCR_STUDIO_CONFIG"] = str(tmp_path / "absent.toml")
    return environment | extra


def launch(args: list[str], environment: dict[str, str], script: Path = REPO / "launch.py") -> str:
    done = subprocess.run(
        [sys.executable, str(script), *args], env=environment, capture_output=True, text=True, timeout=60
    )
    return done.stdout + done.stderr


def test_launch_py_speaks_russian_with_a_russian_locale_and_english_by_default(tmp_path):
    """What ``launch.py --help`` says (it runs the launcher up to its arguments: nothing starts)."""
    russian = launch(["--help"], launcher_environment(tmp_path, LANG="ru_RU.UTF-8"))
    assert "Запустить OCR Studio и открыть её в браузере" in russian
    assert "лёгкая установка: PyTorch только для CPU" in russian and "--cpu" in russian
    english = launch(["--help"], launcher_environment(tmp_path))
    assert "Start OCR Studio and open it in your browser" in english and "Запустить" not in english
    c_locale = launch(["--help"], launcher_environment(tmp_path, LANG="C.UTF-8"))
    assert "Start OCR Studio and open it in your browser" in c_locale


def test_the_language_setting_and_variable_outrank_the_locale(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[ui]\nlanguage = "ru"\n', encoding="utf-8")
    from_config = launch(["--help"], launcher_environment(tmp_path, LANG="en_US.UTF-8", OCR_STUDIO_CONFIG=str(config)))
    assert "Запустить OCR Studio" in from_config
    fixed = launch(["--help"], launcher_environment(tmp_path, LANG="ru_RU.UTF-8", OCR_STUDIO_LANGUAGE="en"))
    assert "Start OCR Studio" in fixed


def test_a_misplaced_launch_py_says_so_in_russian_without_the_package(tmp_path):
    """Copied away from the project it cannot read the catalog: its own two-language words."""
    copy = tmp_path / "launch.py"
    copy.write_text((REPO / "launch.py").read_text(encoding="utf-8"), encoding="utf-8")
    said = launch(["--no-browser"], launcher_environment(tmp_path, LANG="ru_RU.UTF-8"), script=copy)
    assert "launch.py должен лежать в папке OCR Studio" in said and "python3 launch.py" in said
    said = launch(["--no-browser"], launcher_environment(tmp_path), script=copy)
    assert "must stay in the OCR Studio folder" in said


def test_the_launcher_language_follows_variable_config_file_then_locale(tmp_path):
    absent = str(tmp_path / "absent.toml")
    assert bootstrap.language({"OCR_STUDIO_CONFIG": absent}) == "en"
    assert bootstrap.language({"OCR_STUDIO_CONFIG": absent, "LANG": "ru_RU.UTF-8"}) == "ru"
    assert bootstrap.language({"OCR_STUDIO_CONFIG": absent, "LANG": "ru_RU.UTF-8", "LC_ALL": "C"}) == "en"
    config = tmp_path / "config.toml"
    config.write_text('language = "ru"\n', encoding="utf-8")
    assert bootstrap.language({"OCR_STUDIO_CONFIG": str(config), "LANG": "en_US.UTF-8"}) == "ru"
    config.write_text('language = ""\n', encoding="utf-8")  # "" = follow the browser / the locale
    assert bootstrap.language({"OCR_STUDIO_CONFIG": str(config), "LANG": "ru_RU.UTF-8"}) == "ru"
    config.write_text("language = [broken", encoding="utf-8")  # the studio reports a broken file; we just go on
    assert bootstrap.language({"OCR_STUDIO_CONFIG": str(config), "LANG": "ru_RU.UTF-8"}) == "ru"
    env = {"OCR_STUDIO_CONFIG": absent, "LANG": "ru_RU.UTF-8", "OCR_STUDIO_LANGUAGE": "en"}
    assert bootstrap.language(env) == "en"


def test_the_launcher_finds_the_config_file_where_the_studio_does(monkeypatch, tmp_path):
    """Without platformdirs (not installed yet) it must still find the file settings.py reads."""
    import platform

    from ocr_studio.settings import default_config_path

    monkeypatch.delenv("OCR_STUDIO_CONFIG", raising=False)
    assert bootstrap.config_path(dict(os.environ), platform.system()) == default_config_path()
    windows = bootstrap.config_path({"LOCALAPPDATA": r"C:\Users\a\AppData\Local"}, "Windows")
    assert windows == Path(r"C:\Users\a\AppData\Local") / "ocr-studio" / "config.toml"


def test_the_first_run_reports_its_steps_in_russian(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'ocr-studio'\n")
    monkeypatch.delenv(bootstrap.TORCH_ENVIRONMENT, raising=False)
    monkeypatch.delenv(bootstrap.INDEX_ENVIRONMENT, raising=False)
    python = str(tmp_path / ".venv" / "bin" / "python")
    fresh = dict(system="Linux", current_python="/usr/bin/python3", venv_python_path=python)
    chosen = plan(**fresh, current=EnvState(), venv=EnvState(exists=False), gpu=LAPTOP)
    lines: list[str] = []
    ran: list[list[str]] = []

    def runner(words, say, *, piped, cwd):
        ran.append(words)
        return 0

    with i18n.use_language("ru"):
        execute(tmp_path, chosen, lines.append, runner=runner, base_python="/usr/bin/python3")
    said = "\n".join(lines)
    assert "[1/3] Создаю собственное окружение Python для студии" in said
    assert "[2/3] Ставлю PyTorch — NVIDIA GeForce RTX 5070 Ti Laptop GPU, sm_120, драйвер 581.42" in said
    assert "сборка для CUDA 13.0 (около 2–3 ГБ); это самый долгий шаг" in said
    assert "OCR Studio установлена" in said
    assert ran[1][-2:] == ["--index-url", "https://download.pytorch.org/whl/cu130"]  # the commands do not change
    assert i18n.t("launcher.bootstrap.using", "ru", reason=chosen.reason).startswith("OCR Studio: первый запуск")


def test_the_gpu_warning_is_russian_with_a_russian_locale_and_the_command_unchanged(monkeypatch, capsys, tmp_path):
    problem = diagnose(TorchFacts("2.14.1+cpu", None, False), LAPTOP, "Windows", r"C:\OCR Studio\.venv\python.exe")
    assert problem is not None
    monkeypatch.setattr(hardware, "gpu_problem", lambda: problem)
    monkeypatch.setenv("OCR_STUDIO_CONFIG", str(tmp_path / "absent.toml"))
    for name in NO_LOCALE:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "ru_RU.UTF-8")
    gpu_check.main()
    said = capsys.readouterr().out
    assert said.startswith(
        "ПРЕДУПРЕЖДЕНИЕ О GPU: Есть видеокарта NVIDIA (NVIDIA GeForce RTX 5070 Ti Laptop GPU (sm_120))"
    )
    assert "собран только для CPU" in said and "Остановите OCR Studio и исправьте так:" in said
    assert f'    "C:\\OCR Studio\\.venv\\python.exe" {FIX}\n' in said
    monkeypatch.delenv("LANG")
    gpu_check.main()
    assert capsys.readouterr().out.startswith("GPU WARNING: An NVIDIA GPU is present")


def test_doctor_rows_and_a_busy_port_in_russian(monkeypatch):
    problem = diagnose(TorchFacts("2.14.1+cpu", None, False), LAPTOP, "Linux", "python")
    cpu_torch = type("Torch", (), {"__version__": "2.14.1+cpu"})
    monkeypatch.setattr(hardware, "gpu_problem", lambda *args, **kwargs: problem)
    monkeypatch.setattr(hardware, "probe", lambda: hardware._no_cuda(cpu_torch))
    with i18n.use_language("ru"):
        rows = dict(doctor.doctor_report(hardware.Settings()))
        busy = ports.busy_message(7860, 7861)
    assert rows["Проблема с GPU"].startswith("Есть видеокарта NVIDIA") and rows["Как исправить"] == f"python {FIX}"
    assert rows["CUDA доступна"].startswith("нет — Есть видеокарта NVIDIA")
    assert rows["Профиль выполнения"] == "CPU" and rows["Устройство"] == "cpu (авто)"
    assert busy == "Порт 7860 занят другой программой (или другой копией OCR Studio); беру порт 7861."
    english = dict(doctor.doctor_report(hardware.Settings()))
    assert english["GPU problem"].startswith("An NVIDIA GPU is present") and english["Device"] == "cpu (auto)"


def test_what_the_sidebar_keeps_reads_in_either_language(monkeypatch):
    """The GPU's reason and the profile's notes are kept once per process (i18n.Text): English as
    text, and rendered in each reader's language by the sidebar."""
    cpu_torch = type("Torch", (), {"__version__": "2.14.1+cpu"})
    monkeypatch.setattr(
        hardware,
        "gpu_problem",
        lambda *args, **kwargs: diagnose(TorchFacts("2.14.1+cpu", None, False), LAPTOP, "Linux", "python"),
    )
    info = hardware._no_cuda(cpu_torch)
    assert "CPU-only build" in info.reason and "Until then" in info.reason  # the English text, for old code
    assert i18n.render(info.reason, "ru").startswith("Есть видеокарта NVIDIA")
    assert "пока это не исправлено" in i18n.render(info.reason, "ru").lower()
    assert i18n.render(info.fix, "ru") == f"python {FIX}"
    notes = hardware.choose_profile(info, hardware.Settings(device="cuda", compile="on")).notes
    assert any("device is set to cuda" in note for note in notes)
    russian = [i18n.render(note, "ru") for note in notes]
    assert any(note.startswith("Задано device = cuda") and "собран только для CPU" in note for note in russian)
    assert "Компилируемое декодирование используется только на GPU; на CPU выключено." in russian


RUSSIAN_WINDOW = r"""
import json, sys, threading
sys.path.insert(0, sys.argv[1])
from ocr_studio import i18n
from ocr_studio.launcher_window import LauncherWindow

i18n.set_language("ru")  # what launch.py does with a Russian locale, before the window opens
seen = {}

def work(report, stopped, on_ready):
    on_ready("http://127.0.0.1:7860/?token=abc")
    stopped.wait(30)
    return 0

window = LauncherWindow(work)

def look():
    seen["status"] = window.status.cget("text")
    seen["open"] = window.open_button.cget("text")
    seen["stop"] = window.stop_button.cget("text")
    window.stop_button.invoke()

window.root.after(1500, look)
window.run()
print(json.dumps(seen, ensure_ascii=True))
"""


def test_the_pyw_window_speaks_russian(tmp_path):
    """``ocr-studio.pyw``'s window: its status and buttons in the launcher's language."""
    import json
    import shutil

    pytest.importorskip("tkinter")
    if shutil.which("xvfb-run") is None or shutil.which("xauth") is None:
        pytest.skip("xvfb-run or xauth is not installed (apt-get install xvfb xauth): no display for the window")
    script = tmp_path / "window.py"
    script.write_text(RUSSIAN_WINDOW, encoding="utf-8")
    done = subprocess.run(
        ["xvfb-run", "-a", sys.executable, str(script), str(REPO)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["status"] == "OCR Studio работает. Не закрывайте это окно, пока работаете со студией."
    assert seen["open"] == "Открыть в браузере" and seen["stop"] == "Остановить OCR Studio"
