"""The command line, run in-process through ``main`` and once as ``python -m ocr_studio``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

from ocr_studio.cli import main
from tests.test_jobs import make_pdf, page_words

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_user_settings(monkeypatch, tmp_path):
    """No OCR_STUDIO_* variable and no config file of the machine running the tests."""
    for name in list(os.environ):
        if name.startswith("OCR_STUDIO_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OCR_STUDIO_CONFIG", str(tmp_path / "absent-config.toml"))


def convert(tmp_path: Path, *args: str) -> int:
    return main(["convert", *args, "-q", "--workspace", str(tmp_path / "workspace"), "--dpi", "72"])


def test_a_folder_with_a_bad_file_converts_the_good_one_and_reports_both(tmp_path, capsys):
    folder = tmp_path / "in"
    make_pdf(folder / "good.pdf", 2)
    (folder / "nested").mkdir()
    (folder / "nested" / "broken.pdf").write_bytes(b"this is not a pdf at all" * 20)
    (folder / "notes.docx").write_bytes(b"ignored: not a supported suffix")
    out = tmp_path / "out"

    code = convert(tmp_path, str(folder), "-o", str(out))

    assert code == 1
    summary = capsys.readouterr().out
    assert "1 of 2 file(s) converted" in summary
    assert "OK" in summary and "good.pdf" in summary
    assert "FAILED" in summary and "broken.pdf" in summary and "not a PDF" in summary
    assert "SKIPPED" in summary and "notes.docx: neither a PDF nor an image" in summary  # listed, not failed
    markdown = (out / "good.md").read_text(encoding="utf-8")
    assert page_words(1) in markdown and page_words(2) in markdown
    assert sorted(p.name for p in out.iterdir()) == ["good.md"]


def test_all_good_exits_zero_and_honours_pages_and_formats(tmp_path, capsys):
    source = make_pdf(tmp_path / "report.pdf", 4)
    out = tmp_path / "out"

    code = convert(tmp_path, str(source), "-o", str(out), "--pages", "2-3", "--format", "txt,json")

    assert code == 0, capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.txt"]
    text = (out / "report.txt").read_text(encoding="utf-8")
    assert page_words(2) in text and page_words(3) in text
    assert page_words(1) not in text and page_words(4) not in text
    assert [p["page_number"] for p in json.loads((out / "report.json").read_text())["pages"]] == [2, 3]


def test_inputs_sharing_a_name_do_not_overwrite_each_other_and_zip_holds_both(tmp_path, capsys):
    make_pdf(tmp_path / "a" / "scan.pdf", 1)
    second = tmp_path / "b" / "scan.pdf"
    make_pdf(second, 2)
    out = tmp_path / "out"

    code = convert(tmp_path, str(tmp_path / "a"), str(second), "-o", str(out), "--format", "md,zip")

    assert code == 0, capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["ocr-studio.zip", "scan-2.md", "scan.md"]
    assert page_words(2) not in (out / "scan.md").read_text() and page_words(2) in (out / "scan-2.md").read_text()
    with zipfile.ZipFile(out / "ocr-studio.zip") as archive:
        names = archive.namelist()
        assert "scan/scan.md" in names and "scan-2/scan-2.md" in names
        assert page_words(2) in archive.read("scan-2/scan-2.md").decode()


def test_a_second_run_uses_the_cached_result(tmp_path, capsys):
    source = make_pdf(tmp_path / "doc.pdf", 1)
    assert convert(tmp_path, str(source), "-o", str(tmp_path / "one")) == 0
    capsys.readouterr()
    assert convert(tmp_path, str(source), "-o", str(tmp_path / "two")) == 0
    assert "cached result" in capsys.readouterr().out
    assert page_words(1) in (tmp_path / "two" / "doc.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "odt"], "Unknown output format"),
        (["--engine", "no-such-engine"], "invalid choice"),
        (["--task", "layout"], "cannot do 'layout'"),
    ],
)
def test_usage_errors_exit_2_with_a_clean_message(tmp_path, capsys, args, message):
    source = make_pdf(tmp_path / "doc.pdf", 1)
    code = convert(tmp_path, str(source), "-o", str(tmp_path / "out"), *args)
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_broken_config_file_is_one_clean_line(tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text("dpy = 300\n", encoding="utf-8")
    code = main(["convert", str(tmp_path), "-o", str(tmp_path / "out"), "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Unknown setting(s)" in err and "dpy" in err and "Traceback" not in err


def test_doctor_runs_without_a_gpu(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out.lower()
    assert "CUDA available" in out
    assert "text-layer" in out and "available" in out


def test_serve_is_the_default_and_binds_localhost(monkeypatch, tmp_path):
    calls = []
    fake_app = types.ModuleType("ocr_studio.ui.server")
    fake_app.serve = lambda settings, **options: calls.append((settings, options))  # type: ignore[attr-defined]
    fake_app.build_app = fake_app.launch_options = lambda *a, **k: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ocr_studio.ui.server", fake_app)

    assert main([]) == 0
    assert main(["serve", "--port", "8123", "--no-browser", "--workspace", str(tmp_path)]) == 0

    (_, default), (settings, chosen) = calls
    assert default == {"host": "127.0.0.1", "port": 7860, "open_browser": True}
    assert chosen == {"host": "127.0.0.1", "port": 8123, "open_browser": False}
    assert settings.workspace == tmp_path


def test_config_path_follows_the_environment(tmp_path, capsys):
    assert main(["config-path"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "absent-config.toml")


def test_the_module_entry_point_converts(tmp_path):
    source = make_pdf(tmp_path / "doc.pdf", 2)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCR_STUDIO_")}
    env["OCR_STUDIO_CONFIG"] = str(tmp_path / "absent-config.toml")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ocr_studio",
            "convert",
            str(source),
            str(tmp_path / "missing.pdf"),
            "-o",
            str(out),
            "--workspace",
            str(tmp_path / "workspace"),
            "--dpi",
            "72",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "1 of 2 file(s) converted" in result.stdout
    assert "missing.pdf: does not exist" in result.stdout
    assert "doc.pdf" in result.stderr  # the progress bar
    assert "Traceback" not in result.stderr
    assert page_words(2) in (out / "doc.md").read_text()
