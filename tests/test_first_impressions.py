"""A new user's first hour with the studio (issue 26), below the browser: files refused as they are
dropped and page ranges as they are typed, downloads named after the document and the job, the
history's rename, filter and delete, engine and history names in the tab's language, a damaged
PDF explained in Russian without MuPDF's English, exports that say the document's language, and
a failed first install that names the settings that fix it. The browser side is in
tests/test_first_impressions_browser.py."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import gradio as gr
import pymupdf
import pytest

from ocr_studio import bootstrap, i18n
from ocr_studio.bootstrap import BootstrapError, EnvState, execute, plan
from ocr_studio.documents import DocumentError, open_document
from ocr_studio.results import Block, DocumentResult, PageResult, document_html, document_language
from ocr_studio.settings import Settings
from ocr_studio.ui import build_app, job_names, language, media
from ocr_studio.word import word_document
from tests.test_launcher import FRESH

CYRILLIC = re.compile("[а-яё]", re.I)
ENGLISH_WORD = re.compile(r"(?<![\w.])[a-z]{4,}(?![\w.])")  # a lowercase English word (not dots.ocr, GPU)


def request(lang: str) -> gr.Request:
    return gr.Request(headers={"accept-language": lang}, cookies={language.COOKIE: lang})


def two_page_pdf(path: Path) -> Path:
    document = pymupdf.open()
    for number in (1, 2):
        document.new_page(width=595, height=842).insert_text((72, 90), f"Quarterly report, page {number}", fontsize=14)
    document.save(path)
    return path


@pytest.fixture
def studio(tmp_path: Path):
    return build_app(Settings(workspace=tmp_path / "ws")).studio  # type: ignore[attr-defined]


def test_files_that_are_neither_pdf_nor_image_are_taken_out_when_dropped(studio, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("plain notes", encoding="utf-8")
    with zipfile.ZipFile(tmp_path / "letter.docx", "w") as docx:
        docx.writestr("word/document.xml", "<w:document/>")
    (tmp_path / "ls.1").write_text(".TH LS 1\n.SH NAME\nls \\- list directory contents\n", encoding="utf-8")
    pdf = two_page_pdf(tmp_path / "report.pdf")
    dropped = [str(tmp_path / name) for name in ("notes.txt", "letter.docx", "ls.1")] + [str(pdf)]

    answer = studio.check_files(dropped, request=request("ru"))
    assert answer[studio.files] == [str(pdf)]  # the PDF stays, the rest is out before Run
    status = answer[studio.status]
    for name in ("notes.txt", "letter.docx", "ls.1"):
        assert name in status.replace("\\", ""), status
    assert status.startswith("⚠ Не добавлены 3 файла"), status
    assert studio.check_files([str(pdf)], request=request("en"))[studio.status] == "Ready."


@pytest.mark.parametrize(("typed", "wrong"), [("5-9", True), ("abc", True), ("3", True), ("2", False), ("", False)])
def test_a_page_range_is_checked_as_it_is_typed(studio, tmp_path: Path, typed: str, wrong: bool) -> None:
    pdf = two_page_pdf(tmp_path / "report.pdf")
    answer = studio.pages_typed([str(pdf)], typed, "", "text-layer", request=request("en"))
    assert answer[studio.run_button]["interactive"] is (not wrong)
    if wrong:
        assert answer[studio.status].startswith("⚠ Pages:"), answer[studio.status]
        # and Run refuses it too, saying why, before any job is made
        started = studio.run([str(pdf)], "text-layer", "text", typed, "", "", "local", request=request("en"))
        assert started[studio.status].startswith("⚠") and "1-2" in started[studio.status], started[studio.status]
        assert studio.store.history() == []
    else:
        assert not answer[studio.status].startswith("⚠"), answer[studio.status]


def test_a_page_range_is_checked_without_mupdf_parsing_the_file_in_the_server(
    studio, tmp_path: Path, monkeypatch
) -> None:
    """Counting a dropped file's pages is reading it: a page worker does it, as for every input."""
    import pymupdf

    pdf = two_page_pdf(tmp_path / "report.pdf")

    def refuse(*args, **kwargs):
        raise AssertionError("MuPDF opened a dropped file in the server process")

    monkeypatch.setattr(pymupdf, "open", refuse)
    monkeypatch.setattr(pymupdf, "Document", refuse)
    assert studio.pages_typed([str(pdf)], "5-9", "", "text-layer", request=request("en"))[studio.status].startswith(
        "⚠ Pages:"
    )
    assert not studio.pages_typed([str(pdf)], "2", "", "text-layer", request=request("en"))[studio.status].startswith(
        "⚠"
    )


def test_downloads_are_named_after_the_document_and_the_job(studio, tmp_path: Path) -> None:
    pdf = two_page_pdf(tmp_path / "multipage.pdf")
    status, _, files = studio.convert([str(pdf)], "text-layer", "text", "")
    assert status.startswith("Done: 2 pages"), status
    [job] = studio.store.history()
    exports = studio.exports(studio.job(job.id))
    assert media.download_name(job, "0", exports[0]["pdf"]) == "multipage.ocr.pdf"  # never the original's name
    assert media.download_name(job, "0", exports[0]["docx"]) == "multipage.docx"
    assert media.download_name(job, "job", exports["zip"]) == "multipage.zip"
    job_names.rename(job, "Квартальный отчёт: итог/черновик")
    assert media.download_name(job, "job", exports["zip"]) == "Квартальный отчёт_ итог_черновик.zip"


def test_the_history_is_named_filtered_renamed_and_deleted(studio, tmp_path: Path) -> None:
    pdf = two_page_pdf(tmp_path / "minutes.pdf")
    studio.convert([str(pdf)], "text-layer", "text", "")
    [job] = studio.store.history()
    workspace = Path(studio.settings.workspace)
    assert (workspace / "jobs" / job.id).is_dir() and (workspace / "exports" / job.id).is_dir()

    with i18n.use_language("ru"):
        [(label, job_id)] = studio.history_choices()
    assert job_id == job.id
    assert " · minutes · Текстовый слой / Tesseract (без GPU) · Простой текст · готово" in label, label
    assert "text-layer" not in label and "/text" not in label

    renamed = studio.rename_job(job.id, "  Протокол\nсовета  ", "", request=request("ru"))
    assert renamed[studio.history_name] == "Протокол совета"
    assert "Протокол совета" in renamed[studio.history]["choices"][0][0]
    found = studio.filter_history("протокол", request=request("ru"))
    assert [value for _, value in found[studio.history]["choices"]] == [job.id]
    missing = studio.filter_history("бюджет", request=request("ru"))
    assert missing[studio.history]["choices"] == [] and "бюджет" in missing[studio.history_note]

    first = studio.delete_job(job.id, "", job.id, request=request("en"))  # asks once
    assert "again" in first[studio.history_note] and first[studio.pending_delete] == job.id
    assert (workspace / "jobs" / job.id).is_dir()
    second = studio.delete_job(job.id, job.id, job.id, request=request("en"))
    assert second[studio.history_note].startswith("Deleted “Протокол совета”"), second[studio.history_note]
    assert second[studio.job_id] == ""  # the page on screen was that job's: it is gone too
    assert not (workspace / "jobs" / job.id).exists() and not (workspace / "exports" / job.id).exists()
    assert studio.history_choices() == []


def test_engine_names_are_in_the_tabs_language(studio) -> None:
    with i18n.use_language("en"):
        english = dict((name, label) for label, name in studio.engine_choices())
    with i18n.use_language("ru"):
        russian = dict((name, label) for label, name in studio.engine_choices())
    for name, label in english.items():
        words = ENGLISH_WORD.findall(label.replace("unavailable", ""))
        if words:  # English words in the English label: the Russian one has none of them
            assert not ENGLISH_WORD.search(russian[name]), (name, russian[name])
            assert CYRILLIC.search(russian[name]), (name, russian[name])
    unavailable = [label for label in russian.values() if "недоступен" in label]
    assert all(not ENGLISH_WORD.search(label) for label in unavailable), unavailable


def test_a_damaged_pdf_is_explained_in_russian_without_mupdfs_english(tmp_path: Path) -> None:
    broken = tmp_path / "ledger.pdf"
    broken.write_bytes(b"%PDF-1.7\nxref\n0 1\ngarbage trailer")
    with pytest.raises(DocumentError) as caught:
        open_document(broken)
    russian = i18n.render(caught.value.message, "ru")
    assert "MuPDF" in russian and CYRILLIC.search(russian)
    leftover = russian.replace("ledger.pdf", "").replace("MuPDF", "").replace("PDF", "")
    assert not re.search("[A-Za-z]{3,}", leftover), russian  # no English sentence from the library
    assert caught.value.__cause__ is not None  # the library's own words stay on the chain for a bug report


def _document(lines: list[str]) -> DocumentResult:
    blocks = [
        Block(bbox=(10, 10 + 30 * i, 500, 35 + 30 * i), category="Text", text=line) for i, line in enumerate(lines)
    ]
    page = PageResult(page_number=1, width=595, height=842, blocks=blocks, truncated=True)
    return DocumentResult(name="отчёт.pdf", pages=[page], page_count=1)


@pytest.mark.parametrize(
    ("lines", "lang", "word_lang", "page_word"),
    [
        (["Квартальный отчёт", "Осадки в Лиссабоне выросли на 12 процентов"], "ru", "ru-RU", "Страница 1"),
        (["Quarterly report", "Rainfall in Lisbon rose by 12 percent"], "en", "en-US", "Page 1"),
    ],
)
def test_exports_say_the_documents_language(lines: list[str], lang: str, word_lang: str, page_word: str) -> None:
    document = _document(lines)
    assert document_language(document) == lang
    page = document_html(document)
    assert f'<html lang="{lang}">' in page
    assert page_word in page
    if lang == "ru":  # the export's own words follow the document, not the English default
        assert "The engine stopped early" not in page and "Движок остановился" in page
    with zipfile.ZipFile(io.BytesIO(word_document(document))) as docx:
        styles = docx.read("word/styles.xml").decode("utf-8")
        core = docx.read("docProps/core.xml").decode("utf-8")
    defaults = styles.split("<w:docDefaults>", 1)[1].split("</w:docDefaults>", 1)[0]
    assert f'w:val="{word_lang}"' in defaults, defaults
    assert f">{word_lang}</dc:language>" in core, core


def test_a_failed_pytorch_install_names_the_settings_that_fix_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(bootstrap.INDEX_ENVIRONMENT, raising=False)
    monkeypatch.delenv(bootstrap.TORCH_ENVIRONMENT, raising=False)
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / ".venv").mkdir()
    chosen = plan(**FRESH, current=EnvState(), venv=EnvState(), gpu=None)
    for lang in ("en", "ru"):
        with i18n.use_language(lang), pytest.raises(BootstrapError) as caught:
            execute(tmp_path, chosen, lambda line: None, runner=lambda *a, **k: 1)
        text = str(caught.value.args[0]) if caught.value.args else str(caught.value)
        assert "OCR_STUDIO_TORCH_INDEX" in text and re.search(r"OCR_STUDIO_TORCH\b", text), text
        assert chosen.torch is not None and (chosen.torch.index_url or "pypi") in text, text
