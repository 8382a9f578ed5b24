"""The studio's hot-folder switch in a real browser (Debian Chromium), in Russian: the panel opens,
a folder is watched, a file dropped into it is converted, the status says so, and nothing on the
panel is clipped at the laptop size."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_browser import chromium, screenshot
from tests.test_i18n_browser import assert_fits, russian
from tests.test_jobs import make_pdf, page_words
from tests.test_ui_client import start_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    server, url = start_server(tmp_path_factory.mktemp("workspace"), token=True, dpi=72)
    try:
        yield server, url
    finally:
        server.close()


@pytest.fixture(scope="module")
def browser():
    with chromium() as instance:
        yield instance


def test_the_hot_folder_switch_watches_a_folder_from_the_studio(browser, studio, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    _, url = studio
    context, page = russian(browser, url)
    panel = page.locator("#hot-folder")
    panel.get_by_text("Горячая папка").click()
    expect(page.locator("#hot-folder-start")).to_have_text("Начать слежение")
    expect(page.locator("#hot-folder-status")).to_contain_text("Горячая папка выключена")
    expect(page.locator("#hot-folder-formats")).to_contain_text("Электронная книга EPUB")

    inbox, done = tmp_path / "Входящие", tmp_path / "Готово"
    page.locator("#hot-folder-in textarea, #hot-folder-in input").first.fill(str(inbox))
    page.locator("#hot-folder-out textarea, #hot-folder-out input").first.fill(str(done))
    page.locator("#hot-folder-start").click()
    status = page.locator("#hot-folder-status")
    expect(status).to_contain_text("Отслеживаемой папки")  # not there yet: waited for, said so
    make_pdf(inbox / "письма" / "memo.pdf", 2)
    expect(status).to_contain_text(re.compile(r"распознано 1, с ошибкой 0"), timeout=180_000)
    expect(status).to_contain_text("распознан письма/memo.pdf")
    assert page_words(2) in (done / "письма" / "memo.md").read_text(encoding="utf-8")
    screenshot(page, "hot-folder-ru")
    assert_fits(page, "the hot-folder panel in Russian")
    start = page.locator("#hot-folder-start").bounding_box()
    assert start is not None and start["height"] < 60, start  # "Начать слежение" on one line

    page.locator("#hot-folder-stop").click()
    expect(status).to_contain_text("Слежение за")
    context.close()
