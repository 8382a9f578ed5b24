"""What a newcomer found running ``convert`` on real folders: output names and folders follow
this run's inputs, encrypted PDFs name --password, OCR languages are checked up front, and a
damaged PDF says so in the summary and the JSON."""

from __future__ import annotations

import json
import shutil

import pymupdf

from tests import generated_pages
from tests.test_cli import convert, no_user_settings  # noqa: F401  (the autouse fixture)
from tests.test_jobs import make_pdf, page_words


def test_a_cached_result_is_written_under_this_runs_file_name(tmp_path, capsys):
    first = make_pdf(tmp_path / "a" / "quarterly-report.pdf", 1)
    second = tmp_path / "b" / "report.pdf"
    second.parent.mkdir()
    shutil.copy(first, second)  # the same bytes under another name
    assert convert(tmp_path, str(first), "-o", str(tmp_path / "out1")) == 0
    assert convert(tmp_path, str(second), "-o", str(tmp_path / "out2")) == 0
    assert "cached result" in capsys.readouterr().out
    assert [p.name for p in (tmp_path / "out2").iterdir()] == ["report.md"]


def test_sub_folders_keep_their_structure_under_the_output(tmp_path, capsys):
    source = tmp_path / "in"
    make_pdf(source / "summary.pdf", 1)
    make_pdf(source / "2024" / "summary.pdf", 1)
    make_pdf(source / "2024" / "q1" / "notes.pdf", 1)
    out = tmp_path / "out"
    assert convert(tmp_path, str(source), "-o", str(out)) == 0
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["2024/q1/notes.md", "2024/summary.md", "summary.md"]
    assert page_words(1) in (out / "2024" / "q1" / "notes.md").read_text(encoding="utf-8")
    assert "2024/q1/notes.md" in capsys.readouterr().out


def test_an_encrypted_pdf_names_the_password_flag(tmp_path, capsys):
    plain = make_pdf(tmp_path / "plain.pdf", 1)
    with pymupdf.open(plain) as doc:
        doc.save(tmp_path / "locked.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="secret", owner_pw="o")
    assert convert(tmp_path, str(tmp_path / "locked.pdf"), "-o", str(tmp_path / "out")) == 1
    assert "--password" in capsys.readouterr().out
    assert convert(tmp_path, str(tmp_path / "locked.pdf"), "-o", str(tmp_path / "out"), "--password", "secret") == 0


def test_ocr_languages_are_checked_before_anything_runs(tmp_path, capsys):
    source = make_pdf(tmp_path / "doc.pdf", 1)
    assert convert(tmp_path, str(source), "-o", str(tmp_path / "out"), "--lang", "eng+xyz") == 2
    err = capsys.readouterr().err
    assert "tesseract-ocr-xyz" in err and "brew install tesseract-lang" in err and "UB-Mannheim" in err
    assert convert(tmp_path, str(source), "-o", str(tmp_path / "out"), "--lang", "english!") == 2
    assert "eng+rus" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert convert(tmp_path, str(source), "-o", str(tmp_path / "out"), "--lang", "eng") == 0


def test_a_repaired_pdf_is_warned_in_the_summary_and_the_json(tmp_path, capsys):
    damaged = generated_pages.truncated_pdf(tmp_path / "download.pdf", pages=10)
    out = tmp_path / "out"
    code = convert(tmp_path, str(damaged), "-o", str(out), "--format", "json")
    summary = capsys.readouterr().out
    assert code == 0  # what could be read was converted...
    assert "WARNING" in summary and "OK " not in summary  # ...but it is not reported as fine
    assert "download.pdf" in summary and "This PDF is damaged: MuPDF had to repair it" in summary
    assert "pages 5-10 came out blank after the repair" in summary
    pages = json.loads((out / "download.json").read_text(encoding="utf-8"))["pages"]
    assert len(pages) == 10
    assert all(any("MuPDF had to repair it" in w for w in page["warnings"]) for page in pages)
    assert [p["page_number"] for p in pages if any("came out blank" in w for w in p["warnings"])] == list(range(5, 11))
    assert "Page 1." in pages[0]["blocks"][0]["text"]
