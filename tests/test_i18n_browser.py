"""The studio in Russian and in English in a real browser (Debian Chromium): a Russian browser sees
Russian labels, Gradio's own strings and, after a run, a Russian status; an English one English;
the sidebar switch changes the language and is remembered. Russian is longer than English, so the
page is checked for text that overflows at the laptop and phone sizes, and screenshots are saved
in test-artifacts/ (i18n-*.png) to look at."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocr_studio.engines.tesseract import installed_languages
from tests.test_browser import SCREENS, chromium, drop, open_sidebar, open_studio, screenshot
from tests.test_ui_client import KNOWN_TEXT, make_pdf, start_server

pytestmark = pytest.mark.browser

# Elements whose text must fit: no clipped or hidden-overflow text, nothing wider than the screen.
OVERFLOW_JS = """
() => {
    const problems = [];
    if (document.documentElement.scrollWidth > window.innerWidth + 1)
        problems.push(`the page is ${document.documentElement.scrollWidth}px wide on a ${window.innerWidth}px screen`);
    const selectors = ["button", "label", "[role=tab]", ".legend-chip", ".dl-group", "#status", "#engine-note", "h1"];
    for (const element of document.querySelectorAll(selectors.join(","))) {
        const box = element.getBoundingClientRect();
        if (!box.width || getComputedStyle(element).visibility === "hidden") continue;
        if (element.closest("#sidebar:not(.open)") || element.closest("[hidden]")) continue;
        if (element.scrollWidth > element.clientWidth + 2 && getComputedStyle(element).overflowX !== "visible")
            problems.push(`clipped: ${element.tagName}#${element.id} “${element.innerText.slice(0, 60)}”`);
        if (box.right > window.innerWidth + 1 && !element.closest(".pv-thumbs, .pv-scroll, [role=tablist]"))
            problems.push(`off screen: ${element.tagName}#${element.id} “${element.innerText.slice(0, 60)}”`);
    }
    for (const button of document.querySelectorAll("button")) {  // words inside the padding, on one line
        const style = getComputedStyle(button);
        const room = button.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
        const words = document.createRange();
        words.selectNodeContents(button);
        const { width, height } = words.getBoundingClientRect();
        if (!button.getBoundingClientRect().width || button.children.length || !button.innerText.trim()) continue;
        if (button.closest("#sidebar:not(.open)")) continue;
        if (width > room + 1) problems.push(`${button.id || button.innerText}: its words are wider than the button`);
        const line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.5;
        if (["run-button", "cancel-button", "prev-page", "next-page"].includes(button.id) && height > line * 1.6)
            problems.push(`${button.id} wraps onto two lines`);
    }
    return problems;
}
"""


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    """A studio with the token on, as the launcher starts it; (server, url)."""
    server, url = start_server(tmp_path_factory.mktemp("workspace"), token=True)
    try:
        yield server, url
    finally:
        server.close()


@pytest.fixture(scope="module")
def browser():
    with chromium() as instance:
        yield instance


def russian(browser, url: str, screen: str = "laptop"):
    return open_studio(browser, url, screen, locale="ru-RU", extra_http_headers={"Accept-Language": "ru-RU,ru;q=0.9"})


def assert_fits(page, what: str) -> None:
    problems = page.evaluate(OVERFLOW_JS)
    assert not problems, f"{what}: {problems}"


def test_a_russian_browser_sees_a_russian_studio_and_a_russian_run(browser, studio, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    _, url = studio
    context, page = russian(browser, url)
    assert page.evaluate("document.documentElement.lang") == "ru"
    expect(page.locator("#run-button")).to_have_text("Запустить")
    expect(page.locator("#inputs")).to_contain_text("Новое задание: документы и движок")
    expect(page.locator("#help")).to_contain_text("Перетащите PDF или изображения")
    expect(page.locator("#engine-select")).to_contain_text("Движок")
    expect(page.locator("#engine-note")).to_contain_text("Работает на CPU")
    expect(page.locator("#status")).to_have_text("Готово к работе.")
    expect(page.locator("#page-view")).to_contain_text("Запустите задание")
    expect(page.locator("#downloads")).to_contain_text("Файлы для скачивания появятся здесь")
    expect(page.locator("#result-tabs").get_by_role("tab", name="Текст")).to_be_visible()
    expect(page.locator("#dropzone")).to_contain_text("Перетащите файлы сюда")  # ours over Gradio's "файл"
    expect(page.locator("#sidebar")).to_contain_text("Недавние задания")
    expect(page.locator("#language-switch input[value=ru]")).to_be_checked()
    if "rus" in installed_languages():  # a Russian tab reads Russian scans first
        chips = page.locator("#ocr-languages .token")
        expect(chips.first).to_contain_text("Русский (rus)")
        expect(chips).to_have_count(2 if "eng" in installed_languages() else 1)
    assert "Run" not in page.locator("#action-bar").inner_text()
    screenshot(page, "i18n-ru-start")
    assert_fits(page, "a Russian studio before a run")

    pdf = make_pdf(tmp_path / "rainfall-ru.pdf", ["Rainfall report", KNOWN_TEXT, "Porto stayed dry."])
    drop(page, pdf)
    page.locator("#run-button").click()
    expect(page.locator("#cancel-button")).to_have_text("Отменить")  # shown while the job runs
    status = page.locator("#status")
    expect(status).to_contain_text(re.compile(r"✓ Готово: 1 страница из 1 документа за \d+,\d\sс\."))
    expect(page.locator("#text-view")).to_contain_text(KNOWN_TEXT)
    downloads = page.locator("#downloads")
    expect(downloads).to_contain_text("Этот документ")
    expect(downloads).to_contain_text("Всё задание")
    expect(downloads).to_contain_text("(1 документ, все форматы, вырезки рисунков)")
    expect(downloads.get_by_role("link", name="Текст")).to_be_visible()
    expect(page.locator("#page-view .legend-chip").first).to_contain_text("Текст ×")
    expect(page.locator("#page-view [data-zoom=width]")).to_have_text("По ширине")
    expect(page.locator("#prev-page")).to_have_text("◀ Назад")
    expect(page.locator("#clean-exports")).to_contain_text("Без колонтитулов")
    page.wait_for_timeout(300)  # the scroll to the result
    screenshot(page, "i18n-ru-laptop")
    assert_fits(page, "a Russian studio after a run (1366×768)")
    context.close()

    context, page = russian(browser, url, "phone")
    expect(page.locator("#run-button")).to_have_text("Запустить")
    drop(page, make_pdf(tmp_path / "memo-ru.pdf", [KNOWN_TEXT]))
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Готово: 1 страница из 1 документа")
    page.wait_for_timeout(300)  # the scroll to the result
    expect(page.locator("#page-view .pv-stage img")).to_be_visible()
    screenshot(page, "i18n-ru-phone")
    assert_fits(page, f"a Russian studio on a phone ({SCREENS['phone'][0]}×{SCREENS['phone'][1]})")
    context.close()


def test_an_english_browser_sees_english(browser, studio, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    _, url = studio
    context, page = open_studio(browser, url, locale="en-US")
    assert page.evaluate("document.documentElement.lang") == "en"
    expect(page.locator("#run-button")).to_have_text("Run")
    expect(page.locator("#status")).to_have_text("Ready.")
    expect(page.locator("#dropzone")).to_contain_text("Drop files here")  # many files are welcome
    expect(page.locator("#language-switch input[value=en]")).to_be_checked()
    pdf = make_pdf(tmp_path / "rainfall-en.pdf", [KNOWN_TEXT])
    drop(page, pdf)
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text(re.compile(r"✓ Done: 1 page from 1 document in \d+\.\d\ss\."))
    expect(page.locator("#downloads")).to_contain_text("This document")
    context.close()


def test_the_sidebar_switch_changes_the_language_and_is_remembered(browser, studio, tmp_path: Path) -> None:
    """An English browser switches to Russian: the page reloads in Russian, stays Russian after a
    reload, and a job run in Russian reads in English once switched back."""
    from playwright.sync_api import expect

    _, url = studio
    context, page = open_studio(browser, url, locale="en-US")
    expect(page.locator("#run-button")).to_have_text("Run")
    open_sidebar(page)
    with page.expect_navigation():
        page.locator("#language-switch").get_by_text("Русский").click()
    expect(page.locator("#run-button")).to_have_text("Запустить")
    expect(page.locator("#dropzone")).to_contain_text("Перетащите файлы сюда")
    cookies = {cookie["name"]: cookie["value"] for cookie in context.cookies()}
    assert cookies.get("ocr_studio_lang") == "ru", cookies

    broken = tmp_path / "ledger-broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntruncated here")
    drop(page, broken)
    page.locator("#run-button").click()
    status = page.locator("#status")
    expect(status).to_contain_text("✗ Ошибка: 0 страниц из 1 документа")
    expect(status).to_contain_text("ledger-broken.pdf")
    russian_reason = status.inner_text()
    assert re.search("[а-яё]{4}", russian_reason.split("ledger-broken.pdf", 1)[1]), russian_reason

    page.reload()  # remembered
    page.locator("#run-button").wait_for()
    expect(page.locator("#run-button")).to_have_text("Запустить")
    expect(page.locator("#language-switch input[value=ru]")).to_be_checked()

    open_sidebar(page)
    with page.expect_navigation():
        page.locator("#language-switch").get_by_text("English").click()
    expect(page.locator("#run-button")).to_have_text("Run")
    open_sidebar(page)
    page.locator("#history input").click()
    option = page.get_by_role("option").filter(has_text="ledger-broken").first
    expect(option).to_contain_text("failed")
    option.click()
    expect(status).to_contain_text("✗ Failed: 0 pages from 1 document")
    expect(status).to_contain_text("damaged")  # the same stored reason, now in English
    context.close()
