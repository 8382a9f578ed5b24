"""The message catalogs and the language choice (issue 16): every message in both languages with
the same placeholders, Russian plurals, stored messages that read in either language."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocr_studio import i18n
from ocr_studio.i18n import Message


def _texts(value: str | dict[str, str]) -> list[str]:
    return list(value.values()) if isinstance(value, dict) else [value]


def test_catalogs_are_found_and_not_empty():
    for lang in i18n.LANGUAGES:
        assert i18n.catalog(lang), f"no messages for {lang} in {i18n.LOCALES_DIR}"


@pytest.mark.parametrize("lang", [lang for lang in i18n.LANGUAGES if lang != i18n.DEFAULT_LANGUAGE])
def test_every_message_exists_in_both_languages(lang):
    english, other = set(i18n.catalog("en")), set(i18n.catalog(lang))
    assert sorted(english - other) == [], f"missing in {lang}"
    assert sorted(other - english) == [], f"only in {lang} (a typo, or English is missing it)"


@pytest.mark.parametrize("lang", [lang for lang in i18n.LANGUAGES if lang != i18n.DEFAULT_LANGUAGE])
def test_every_message_has_the_same_placeholders_in_both_languages(lang):
    english, other = i18n.catalog("en"), i18n.catalog(lang)
    wrong = {}
    for msg_id in english.keys() & other.keys():
        names_en = set().union(*(i18n.placeholders(text) for text in _texts(english[msg_id])))
        for text in _texts(other[msg_id]):
            if i18n.placeholders(text) != names_en:
                wrong[msg_id] = (sorted(names_en), text)
    assert wrong == {}


def test_plural_tables_have_the_categories_each_language_needs():
    for lang in i18n.LANGUAGES:
        for msg_id, value in i18n.catalog(lang).items():
            if isinstance(value, dict):
                assert i18n.REQUIRED_CATEGORIES[lang] <= set(value), f"{lang} {msg_id}"


def test_russian_texts_are_russian():
    """A Russian message that is English text means someone copied the English file and forgot one."""
    untranslated = [
        msg_id
        for msg_id, value in i18n.catalog("ru").items()
        if any(
            text.strip() and not any("а" <= ch.lower() <= "я" or ch in "ёЁ" for ch in text) for text in _texts(value)
        )
        and value != i18n.catalog("en")[msg_id]
    ]
    assert untranslated == []


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, "1 страница"),
        (2, "2 страницы"),
        (4, "4 страницы"),
        (5, "5 страниц"),
        (11, "11 страниц"),
        (12, "12 страниц"),
        (21, "21 страница"),
        (22, "22 страницы"),
        (111, "111 страниц"),
        (0, "0 страниц"),
    ],
)
def test_russian_plural(count, expected):
    assert i18n.t("core.pages.count", "ru", count=count) == expected


def test_english_plural():
    assert i18n.t("core.pages.count", "en", count=1) == "1 page"
    assert i18n.t("core.pages.count", "en", count=2) == "2 pages"


def test_a_message_renders_in_either_language_and_str_is_english():
    msg = i18n.message(
        "core.runner.page_error", document="a.pdf", page=2, reason=i18n.message("core.pages.count", count=5)
    )
    assert str(msg) == "a.pdf, page 2: 5 pages"
    assert msg.render("ru") == "a.pdf, страница 2: 5 страниц"


def test_a_stored_message_round_trips_through_json():
    import json

    msg = i18n.message(
        "core.runner.page_error", document="a.pdf", page=2, reason=i18n.message("core.pages.count", count=2)
    )
    stored = json.loads(json.dumps(msg.to_json()))
    assert Message.from_json(stored) == msg
    assert i18n.render(stored, "ru") == "a.pdf, страница 2: 2 страницы"
    assert i18n.render(stored, "en") == "a.pdf, page 2: 2 pages"


def test_an_old_plain_string_still_reads():
    assert i18n.render("Page 3 failed: timeout", "ru") == "Page 3 failed: timeout"
    assert Message.from_json("Page 3 failed").render("ru") == "Page 3 failed"
    assert i18n.render(None, "en") == ""


def test_a_missing_id_never_crashes():
    assert i18n.t("core.no.such.message", "ru") == "core.no.such.message"
    assert i18n.t("core.jobs.opened", "ru") == "Открыт «{name}»"  # a missing argument stays visible


def test_an_unknown_language_renders_english():
    assert i18n.t("core.pages.count", "de", count=2) == "2 pages"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("ru-RU", "ru"),
        ("ru", "ru"),
        ("en_US.UTF-8", "en"),
        ("RU_ru.utf8", "ru"),
        ("Russian_Russia.1251", "ru"),
        ("de-DE", None),
        ("C", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize(code, expected):
    assert i18n.normalize(code) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", "ru"),
        ("en-US,en;q=0.9,ru;q=0.8", "en"),
        ("de-DE,de;q=0.9,ru;q=0.5,en;q=0.4", "ru"),  # German is not offered: the next one the user takes
        ("en;q=0.3, ru;q=0.7", "ru"),  # q-values, not the order, rank them
        ("ru;q=0, en;q=0.1", "en"),  # q=0 means "not this one"
        ("de, fr", None),
        ("", None),
        (None, None),
    ],
)
def test_accept_language(header, expected):
    assert i18n.from_accept_language(header) == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LANG": "ru_RU.UTF-8"}, "ru"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({}, "en"),
        ({"LANG": "ru_RU.UTF-8", "LC_MESSAGES": "en_GB.UTF-8"}, "en"),
        ({"LANG": "en_US.UTF-8", "LC_MESSAGES": "ru_RU.UTF-8"}, "ru"),
        ({"LC_ALL": "ru_RU.UTF-8", "LC_MESSAGES": "en_US.UTF-8"}, "ru"),
        ({"LC_ALL": "C", "LANG": "ru_RU.UTF-8"}, "en"),  # LC_ALL decides, and "C" is English
        ({"LANG": "de_DE.UTF-8"}, "en"),
    ],
)
def test_from_environment(env, expected):
    assert i18n.from_environment(env) == expected


def test_configured_language_env_wins_over_the_setting():
    class Fake:
        language = "ru"

    assert i18n.configured_language(Fake(), env={}) == "ru"
    assert i18n.configured_language(Fake(), env={"OCR_STUDIO_LANGUAGE": "en"}) == "en"
    Fake.language = ""
    assert i18n.configured_language(Fake(), env={}) is None


def test_use_language_sets_the_default_of_t_for_the_block_only():
    assert i18n.current_language() == "en"
    with i18n.use_language("ru-RU"):
        assert i18n.t("core.pages.count", count=5) == "5 страниц"
    assert i18n.t("core.pages.count", count=5) == "5 pages"


def test_localized_error_is_english_as_str_and_russian_when_asked():
    error = i18n.LocalizedError(i18n.message("core.pages.count", count=2))
    assert str(error) == "2 pages"
    assert i18n.error_text(error, "ru") == "2 страницы"
    assert i18n.error_text(ValueError("plain"), "ru") == "plain"
    assert i18n.error_message(ValueError("plain")).render("ru") == "plain"


def test_russian_ui_reads_russian_first_when_the_pack_is_installed(monkeypatch):
    from ocr_studio.engines import tesseract

    monkeypatch.setattr(tesseract, "installed_languages", lambda: ["eng", "rus"])
    assert tesseract.starting_languages("ru") == "rus+eng"
    assert tesseract.starting_languages("en") == "eng+rus"
    assert tesseract.starting_languages("ru", "deu") == "deu"  # a configured choice wins
    monkeypatch.setattr(tesseract, "installed_languages", lambda: ["eng"])
    assert tesseract.starting_languages("ru") == "eng"


def test_text_is_english_str_that_keeps_its_message():
    import pickle

    value = i18n.text("core.pages.count", count=2)
    assert value == "2 pages" and "pages" in value and value.startswith("2")
    assert i18n.render(value, "ru") == "2 страницы"
    again = pickle.loads(pickle.dumps(value))
    assert i18n.render(again, "ru") == "2 страницы"
    assert i18n.loaded(i18n.stored(value)).render("ru") == "2 страницы"
    assert i18n.stored("plain") == "plain" and i18n.loaded("plain") == "plain"


def test_a_localized_error_keeps_its_message_through_pickle():
    import pickle

    error = pickle.loads(pickle.dumps(i18n.LocalizedError(i18n.message("core.pages.count", count=5))))
    assert i18n.error_text(error, "ru") == "5 страниц" and str(error) == "5 pages"
    assert i18n.render(i18n.as_text(error), "ru") == "5 страниц"


# --- messages stored by a real job read in both languages -------------------------------------

CYRILLIC = set("абвгдеёжзийклмнопрстуфхцчшщъыьэюя")


def _russian(text: str) -> bool:
    """Mostly Cyrillic letters: Russian text, not English with a Russian file name in it."""
    letters = [ch for ch in text.lower() if ch.isalpha()]
    return sum(ch in CYRILLIC for ch in letters) > len(letters) / 2


@pytest.fixture
def job_settings(tmp_path):
    from tests.test_jobs import make_settings

    return make_settings(tmp_path / "workspace")


def _run(paths, settings, **spec):
    from ocr_studio.engines import get_engine
    from ocr_studio.engines.base import Task
    from ocr_studio.jobs import JobSpec, JobStore, run_job

    engine = get_engine("text-layer", settings)
    store = JobStore(settings.workspace)
    job = run_job(
        store.create(JobSpec(list(paths), "text-layer", Task.TEXT, **spec), engine, settings), engine, settings
    )
    return store, job


def test_a_jobs_stored_failure_reads_in_both_languages(tmp_path, job_settings):
    import pymupdf

    from tests.test_jobs import make_pdf

    locked = make_pdf(tmp_path / "locked.pdf", 1, encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="x", owner_pw="y")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"this is not a pdf at all" * 20)
    store, job = _run([locked, broken], job_settings)

    stored = json.loads((job.dir / "job.json").read_text(encoding="utf-8"))
    assert stored["documents"][0]["error"]["id"] == "core.document.password_required"  # an id, not English

    reopened = store.load(job.id)  # read back from disk, as the studio does after a restart
    password, refused = (doc.error for doc in reopened.documents)
    assert i18n.render(password, "en") == "locked.pdf is protected by a password; enter the password to open it."
    assert i18n.render(password, "ru") == "«locked.pdf» защищён паролем; введите пароль, чтобы открыть его."
    assert "not a PDF or an image" in i18n.render(refused, "en")
    assert _russian(i18n.render(refused, "ru")) and "broken.pdf" in i18n.render(refused, "ru")


def test_a_jobs_stored_page_warnings_read_in_both_languages(tmp_path, job_settings):
    from tests import generated_pages

    damaged = generated_pages.truncated_pdf(tmp_path / "download.pdf")
    store, job = _run([damaged], job_settings)
    page = store.load(job.id).documents[0].pages[-1]
    english = [i18n.render(w, "en") for w in page.warnings]
    russian = [i18n.render(w, "ru") for w in page.warnings]
    assert any("MuPDF had to repair it" in w for w in english)
    assert any("MuPDF пришлось его восстанавливать" in w for w in russian)
    assert all(ru != en for ru, en in zip(russian, english, strict=True)), russian  # each one translated
    assert any(w.startswith("страница 10 после восстановления оказалась пустой") for w in russian)
    assert [str(w) for w in page.warnings] == english  # code that reads them as text gets English


def test_a_failed_pages_reason_reads_in_both_languages(tmp_path, job_settings):
    """A page over its time budget in the page worker: the reason is stored as an id with arguments."""
    import dataclasses

    from tests.test_jobs import make_pdf

    source = make_pdf(tmp_path / "big.pdf", 1, big_pages=(1,))
    settings = dataclasses.replace(job_settings, max_image_megapixels=1)
    store, job = _run([source], settings)
    [reason] = store.load(job.id).page_errors[0].values()
    assert "too large to render" in i18n.render(reason, "en")
    assert "слишком велика для отрисовки" in i18n.render(reason, "ru")


def test_an_old_job_file_with_plain_strings_still_reads(tmp_path, job_settings):
    from tests.test_jobs import make_pdf

    source = make_pdf(tmp_path / "doc.pdf", 1)
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"junk" * 100)
    store, job = _run([source, broken], job_settings)
    path = job.dir / "job.json"
    state = json.loads(path.read_text(encoding="utf-8"))
    state["documents"][1]["error"] = "broken.pdf is not a PDF (written by an older version)"
    state["status"], state["message"] = "failed", "The GPU ran out of memory."
    state["documents"][0]["failed_pages"] = {"1": "page 1 took longer than 2 s to render"}
    path.write_text(json.dumps(state), encoding="utf-8")
    page_file = next(job.dir.rglob("page-0001.json"))
    page = json.loads(page_file.read_text(encoding="utf-8"))
    page["warnings"] = ["Tesseract found no text on this page."]
    page_file.write_text(json.dumps(page), encoding="utf-8")

    old = store.load(job.id)
    assert i18n.render(old.documents[1].error, "ru") == "broken.pdf is not a PDF (written by an older version)"
    assert i18n.render(old.message, "ru") == "The GPU ran out of memory."
    assert i18n.render(old.page_errors[0][1], "ru") == "page 1 took longer than 2 s to render"
    assert [i18n.render(w, "ru") for w in old.documents[0].pages[0].warnings] == [
        "Tesseract found no text on this page."
    ]


# --- the command line follows the locale ------------------------------------------------------


def _cli(tmp_path, *extra, **env_vars):
    import os
    import subprocess
    import sys

    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"this is not a pdf at all" * 20)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OCR_STUDIO_", "LC_", "LANG"))}
    env.update(OCR_STUDIO_CONFIG=str(tmp_path / "absent-config.toml"), **env_vars)
    args = ["convert", str(broken), "-o", str(tmp_path / "out"), "-q", "--workspace", str(tmp_path / "ws"), *extra]
    return subprocess.run(
        [sys.executable, "-m", "ocr_studio", *args],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_speaks_english_by_default(tmp_path):
    result = _cli(tmp_path)
    assert result.returncode == 1, result.stderr
    assert "0 of 1 file(s) converted" in result.stdout
    assert "FAILED" in result.stdout and "is not a PDF or an image that OCR Studio can read" in result.stdout


def test_the_cli_speaks_russian_with_a_russian_locale(tmp_path):
    result = _cli(tmp_path, LANG="ru_RU.UTF-8")
    assert result.returncode == 1, result.stderr
    assert "Преобразовано файлов: 0 из 1" in result.stdout
    assert "ОШИБКА" in result.stdout and "не PDF и не изображение" in result.stdout
    assert "FAILED" not in result.stdout and "not a PDF" not in result.stdout


def test_the_cli_language_setting_wins_over_the_locale(tmp_path):
    result = _cli(tmp_path, LANG="ru_RU.UTF-8", OCR_STUDIO_LANGUAGE="en")
    assert "FAILED" in result.stdout and "ОШИБКА" not in result.stdout
    usage = _cli(tmp_path, "--format", "odt", LC_ALL="ru_RU.UTF-8")  # errors of the command line itself too
    assert usage.returncode == 2
    assert "Неизвестные форматы вывода: odt" in usage.stderr


def test_the_language_setting_comes_from_the_config_file_or_the_environment(tmp_path):
    from ocr_studio.settings import load_settings

    config = tmp_path / "config.toml"
    config.write_text('language = "ru"\n', encoding="utf-8")
    from_file = load_settings(config_path=config, environ={})
    assert from_file.language == "ru" and i18n.configured_language(from_file, env={}) == "ru"
    default = load_settings(config_path=tmp_path / "absent.toml", environ={})
    assert default.language == "" and i18n.configured_language(default, env={}) is None
    from_env = load_settings(config_path=config, environ={"OCR_STUDIO_LANGUAGE": "en"})
    assert from_env.language == "en"


# --- no core message left outside the catalogs --------------------------------------------------

_LOCALIZED_ERRORS = {
    "DocumentError",
    "EngineError",
    "JobError",
    "WorkspaceError",
    "PageFailed",
    "LanguageError",
    "ExportError",
    "RemoteError",
    "ModelError",
    "SettingsError",
    "UsageError",
    "UnsupportedTaskError",
}


def _literal_text(node) -> bool:
    import ast

    return isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def test_core_errors_and_warnings_come_from_the_catalogs():
    """An error a user reads, or a warning stored on a page, written as English text in the code
    would never read in Russian: each must be a message id (i18n.message / i18n.text)."""
    import ast

    package = Path(i18n.__file__).parent
    modules = [p for p in package.rglob("*.py") if "ui" not in p.relative_to(package).parts]
    found = []
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in _LOCALIZED_ERRORS and _literal_text(node.args[0]):
                found.append(f"{path.relative_to(package)}:{node.lineno} {name}")
            receiver = func.value if isinstance(func, ast.Attribute) else None
            if (
                name == "append"
                and isinstance(receiver, ast.Attribute | ast.Name)
                and getattr(receiver, "attr", getattr(receiver, "id", "")) == "warnings"
                and _literal_text(node.args[0])
            ):
                found.append(f"{path.relative_to(package)}:{node.lineno} warnings.append")
    assert found == []
