"""The message catalogs and the language choice (issue 16): every message in both languages with
the same placeholders, Russian plurals, stored messages that read in either language."""

from __future__ import annotations

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
    msg = i18n.message("cli.error.prefix", message=i18n.message("core.pages.count", count=5))
    assert str(msg) == "error: 5 pages"
    assert msg.render("ru") == "ошибка: 5 страниц"


def test_a_stored_message_round_trips_through_json():
    import json

    msg = i18n.message("cli.error.prefix", message=i18n.message("core.pages.count", count=2))
    stored = json.loads(json.dumps(msg.to_json()))
    assert Message.from_json(stored) == msg
    assert i18n.render(stored, "ru") == "ошибка: 2 страницы"
    assert i18n.render(stored, "en") == "error: 2 pages"


def test_an_old_plain_string_still_reads():
    assert i18n.render("Page 3 failed: timeout", "ru") == "Page 3 failed: timeout"
    assert Message.from_json("Page 3 failed").render("ru") == "Page 3 failed"
    assert i18n.render(None, "en") == ""


def test_a_missing_id_never_crashes():
    assert i18n.t("core.no.such.message", "ru") == "core.no.such.message"
    assert i18n.t("cli.error.prefix", "ru") == "ошибка: {message}"  # a missing argument stays visible


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
    assert i18n.ocr_languages_default("ru") == "rus+eng"
    assert i18n.ocr_languages_default("en") == "eng+rus"
    assert i18n.ocr_languages_default("ru", "deu") == "deu"  # a configured choice wins
    monkeypatch.setattr(tesseract, "installed_languages", lambda: ["eng"])
    assert i18n.ocr_languages_default("ru") == "eng"
