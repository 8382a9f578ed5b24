"""The studio's language without a browser: which language a request gets (the switch's cookie,
the config, the browser, English), the page that tells Gradio, the access page, and the words a
handler renders — a job's status and its stored reasons read in either language."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import httpx
import pytest

from ocr_studio import i18n
from ocr_studio.settings import Settings
from ocr_studio.ui import build_app, language, sidebar, viewer
from ocr_studio.ui.app import ocr_languages
from tests.test_ui_client import KNOWN_TEXT, make_pdf, start_server

CYRILLIC = re.compile("[а-яё]{3}", re.IGNORECASE)


def request(accept: str | None = None, cookie: str | None = None) -> gr.Request:
    headers = {"accept-language": accept} if accept else {}
    return gr.Request(headers=headers, cookies={language.COOKIE: cookie} if cookie else {})


def test_the_switch_beats_the_config_which_beats_the_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(i18n.ENV_VARIABLE, raising=False)
    follow = SimpleNamespace(language="")
    assert language.choose(follow) == "en"
    assert language.choose(follow, {}, "ru-RU,ru;q=0.9,en;q=0.8") == "ru"
    assert language.choose(follow, {}, "de-DE,en;q=0.5") == "en"
    assert language.choose(SimpleNamespace(language="ru"), {}, "en-US") == "ru"  # the config fixes it
    assert language.choose(SimpleNamespace(language="ru"), {language.COOKIE: "en"}, "ru") == "en"  # the switch
    assert language.choose(follow, {language.COOKIE: "xx"}, "ru") == "ru"  # a bad cookie is ignored
    monkeypatch.setenv(i18n.ENV_VARIABLE, "ru")
    assert language.choose(SimpleNamespace(language="en"), {}, "en-US") == "ru"  # the environment wins


def test_the_page_tells_gradio_the_chosen_language_before_its_script(tmp_path: Path) -> None:
    server, url = start_server(tmp_path / "ws")
    try:
        for headers, expected in (
            ({"Accept-Language": "ru-RU,ru;q=0.9"}, "ru"),
            ({"Accept-Language": "en-US"}, "en"),
            ({"Accept-Language": "ru-RU", "Cookie": f"{language.COOKIE}=en"}, "en"),
            ({"Accept-Language": "en-US", "Cookie": f"{language.COOKIE}=ru"}, "ru"),
        ):
            page = httpx.get(url, headers=headers, timeout=30).text
            script = language.language_script(expected).decode()
            assert script in page, headers
            assert page.index(script) < page.index('<script type="module"'), "Gradio's script would pick first"
            assert "Запустить" in page and "Run" in page  # the labels' translations, both languages
    finally:
        server.close()


def test_the_access_page_speaks_the_browsers_language(tmp_path: Path) -> None:
    server, _ = start_server(tmp_path / "ws", token=True)
    try:
        russian = httpx.get(server.base_url, headers={"Accept-Language": "ru-RU,ru"}, timeout=30)
        assert russian.status_code == 200 and 'lang="ru"' in russian.text
        assert "Студия открывается только по ссылке" in russian.text and "Открыть" in russian.text
        english = httpx.get(server.base_url, timeout=30)
        assert "access link" in english.text and "Открыть" not in english.text
        wrong = httpx.get(server.base_url + "?token=nope", headers={"Accept-Language": "ru"}, timeout=30)
        assert wrong.status_code == 401 and "Это не токен этой студии" in wrong.text
    finally:
        server.close()


def test_a_job_and_its_stored_reasons_read_in_either_language(tmp_path: Path) -> None:
    """Run in English, read in Russian (and back): the status and the reason stored in the job."""
    studio = build_app(Settings(workspace=tmp_path / "ws")).studio  # type: ignore[attr-defined]
    broken = tmp_path / "ledger.pdf"
    broken.write_bytes(b"%PDF-1.7\nnot really a pdf")
    good = make_pdf(tmp_path / "memo.pdf", [KNOWN_TEXT])
    status, _, _ = studio.convert([str(broken), str(good)], "text-layer", "text", "", "")
    assert status.startswith("Partly done: 1 page from 2 documents."), status
    job_id = studio.store.history(limit=1)[0].id

    russian = studio.open_job(job_id, request=request("ru-RU,ru;q=0.9"))[studio.status]
    assert russian.startswith("**⚠ Готово частично:** 1 страница из 2 документов."), russian
    reason = russian.split("ledger.pdf: ", 1)[1]
    assert CYRILLIC.search(reason) and "damaged" not in reason, reason
    english = studio.open_job(job_id, request=request("en-US"))[studio.status]
    assert english.startswith("**⚠ Partly done:** 1 page from 2 documents."), english
    assert "ledger.pdf: " in english and "damaged" in english

    view = studio.show_page  # the viewer of a reopened job, in the tab's language
    with i18n.use_language("ru"):
        shown = view(studio.job(job_id), 0, None)
        assert "Не удалось обработать ledger.pdf" in shown[studio.page_view]
        assert "Этот документ" not in shown[studio.downloads]  # the failed document has no files
        assert "Всё задание" in shown[studio.downloads]
        choices = viewer.document_choices(studio.job(job_id))
        assert choices == [("ledger.pdf (ошибка)", 0), ("memo.pdf (1 стр.)", 1)]
        label = studio.history_choices()[0][0]  # the engine and the task as the menus name them, no ids
        assert label.endswith(" · ledger +1 · Текстовый слой / Tesseract (без GPU) · Простой текст · частично"), label
        assert "text-layer" not in sidebar.job_label(studio.job(job_id), {"text-layer": "Текстовый слой"})


def test_handlers_answer_in_their_requests_language(tmp_path: Path) -> None:
    studio = build_app(Settings(workspace=tmp_path / "ws")).studio  # type: ignore[attr-defined]
    note = studio.engine_changed("text-layer", request=request("ru"))[studio.engine_info]
    assert note.startswith("Работает на CPU, модель не нужна.")
    assert studio.engine_changed("text-layer")[studio.engine_info].startswith("Runs on the CPU")
    assert studio.cancel("", request=request("en", cookie="ru")) == "Ничего не выполняется."
    loaded = studio.on_load(request=request("ru"))
    assert "Профиль выполнения" not in loaded[studio.runtime] and CYRILLIC.search(loaded[studio.runtime])
    status = studio.run([], "text-layer", "text", "", "", "", "local", request=request("ru"))[studio.status]
    assert status.startswith("⚠ Сначала добавьте хотя бы один PDF"), status


def test_a_russian_tab_reads_russian_and_english_scans_by_default(tmp_path: Path) -> None:
    from tests.test_text_layer import needs_language

    needs_language("rus")
    settings = Settings(workspace=tmp_path / "ws")
    assert ocr_languages(settings, "ru").split("+")[0] == "rus"
    assert ocr_languages(settings, "en").split("+")[0] != "rus"
    assert ocr_languages(Settings(workspace=tmp_path / "ws", ocr_languages="eng"), "ru") == "eng"  # the setting
    studio = build_app(settings).studio  # type: ignore[attr-defined]
    assert studio.on_load(request=request("ru"))[studio.languages]["value"][0] == "rus"


def test_the_sidebar_in_russian() -> None:
    with i18n.use_language("ru"):
        text = sidebar.gpu_status_markdown({"available": False, "reason": "torch was built without CUDA"})
        assert text.startswith("**Нет GPU с CUDA.** torch was built without CUDA.")
        text = sidebar.gpu_status_markdown(
            {"available": True, "name": "RTX", "memory_used_bytes": 4 * 1024**3, "memory_total_bytes": 16 * 1024**3}
        )
        assert "Видеопамять: 4,0 ГиБ / 16,0 ГиБ" in text
        assert sidebar.loaded_models_markdown([], None).startswith("Модели не загружены")


def test_a_missing_page_image_is_explained_in_the_tabs_language(tmp_path: Path) -> None:
    server, url = start_server(tmp_path / "ws")
    try:
        answer = httpx.get(f"{url}studio/page/nojob/0/1", headers={"Accept-Language": "ru"}, timeout=30)
        assert answer.status_code == 404 and answer.json()["detail"] == "Такого задания нет."
        answer = httpx.get(f"{url}studio/page/nojob/0/1", timeout=30)
        assert answer.json()["detail"] == "No such job."
    finally:
        server.close()
