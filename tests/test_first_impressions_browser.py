"""A new user's first look at the studio in a real browser (Debian Chromium), in English and in
Russian, on a 1366×768 laptop and a 390×844 phone (issue 26): fonts whose Cyrillic is the regular
one, the page getting most of a laptop's width after Run, a wrong file refused as it is dropped and
a wrong page range as it is typed, Run and Cancel that follow the job, no Latin-only label in a
Russian tab, the language switch keeping the open page, the sidebar remembered on a laptop and
closing on a phone once a job is picked, zoom with Ctrl + wheel and a pinch inside the page, a download bar
that is not crushed on a phone. Screenshots go to test-artifacts/issue26/ to be looked at."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pymupdf
import pytest

from tests.test_browser import ARTIFACTS, DROP_FILES_JS, SCREENS, chromium, drop, open_studio
from tests.test_ui_client import start_server

pytestmark = pytest.mark.browser

SHOTS = ARTIFACTS / "issue26"
LOCALES = {"en": "en-US", "ru": "ru-RU"}

# Every font the page uses or loads: none may be Montserrat (Gradio's files are its Alternates cut).
FONTS_JS = """
() => ({
    container: getComputedStyle(document.querySelector('.gradio-container')).fontFamily,
    label: getComputedStyle(document.querySelector('#engine-select label, label') || document.body).fontFamily,
    button: getComputedStyle(document.querySelector('#run-button')).fontFamily,
    text: getComputedStyle(document.querySelector('#text-view')).fontFamily,
    faces: [...document.fonts].map((face) => `${face.family} ${face.status}`),
    sheets: [...document.styleSheets].flatMap((sheet) => {
        try { return [...sheet.cssRules].map((rule) => rule.cssText).filter((text) => /montserrat/i.test(text)); }
        catch { return []; }
    }),
})
"""

# Words a Russian tab may show in Latin letters: names of products, formats, units and codes.
LATIN_ALLOWED = {
    "OCR", "Studio", "PDF", "PNG", "JPEG", "TIFF", "WebP", "BMP", "GIF", "GPU", "CPU", "CUDA", "Tesseract",
    "Markdown", "JSON", "HTML", "Word", "ZIP", "EPUB", "FictionBook", "FB2", "MuPDF", "Pillow", "dots", "ocr",
    "mocr", "Qwen3", "VL", "eng", "rus", "API", "GiB", "MB", "DOCX", "TXT", "hOCR", "ALTO", "PyTorch", "sm",
    "English",  # the language switch names each language in itself
}  # fmt: skip
# The Latin-only texts of a tab: visible labels, buttons, tabs, headings, notes, placeholders and
# tooltips of the studio's own widgets (the document's text, file names and codes left out).
LATIN_ONLY_JS = r"""
(allowed) => {
    const skip = "#text-view, #markdown-raw, #json-view, #page-view .pv-stage, #dropzone table, #document-select,"
        + " #page-select, #history, #status code, #gpu-status, #runtime-profile, #loaded-models, #disk-models,"
        + " .pv-thumbs, footer, #search-results, #sidebar-footer code, [data-testid=status-tracker]";
    const latinOnly = (text) => {
        const words = (text.replace(/\bv\d[\d.]*/g, "").match(/[A-Za-z][A-Za-z0-9]*/g) || [])
            .filter((w) => !allowed.includes(w) && w.length > 1);  // a version (v0.1.0) is no word
        return words.length > 0 && !/[а-яё]/i.test(text);
    };
    const found = new Set();
    const walker = document.createTreeWalker(document.querySelector(".gradio-container"), NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const element = node.parentElement;
        const text = node.textContent.trim();
        if (!text || !element || element.closest(skip) || !element.getClientRects().length) continue;
        if (getComputedStyle(element).visibility === "hidden") continue;
        if (element.closest("#sidebar:not(.open), .sidebar:not(.open)")) continue;
        if (/^[\w.-]+\.(pdf|png|txt|docx)$/i.test(text)) continue;  // a file's name
        if (latinOnly(text)) found.add(text.slice(0, 80));
    }
    for (const element of document.querySelectorAll("[placeholder], button[title], button[aria-label]")) {
        if (element.closest(skip) || !element.getClientRects().length) continue;
        for (const name of ["placeholder", "title", "aria-label"]) {
            const text = element.getAttribute(name);
            if (text && latinOnly(text)) found.add(`${name}: ${text.slice(0, 80)}`);
        }
    }
    return [...found];
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


def report_pdf(path: Path, language: str) -> Path:
    """A two-page PDF with a text layer, in ``language`` (DejaVu has both alphabets)."""
    lines = {
        "en": ["Quarterly rainfall report", "Rainfall in Lisbon rose by 12 percent."],
        "ru": ["Квартальный отчёт об осадках", "Осадки в Лиссабоне выросли на 12 процентов."],
    }[language]
    font = next((p for p in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",) if Path(p).is_file()), None)
    document = pymupdf.open()
    for number in (1, 2):
        page = document.new_page(width=595, height=842)
        if font:
            page.insert_font(fontname="dejavu", fontfile=font)
        for index, line in enumerate([*lines, f"{number}"]):
            page.insert_text((72, 90 + 28 * index), line, fontsize=14, fontname="dejavu" if font else "helv")
    document.save(path)
    return path


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def sidebar_open(page) -> bool:
    return page.evaluate("() => document.querySelector('#sidebar, .sidebar')?.classList.contains('open')")


def pinch(context, page) -> None:
    """Spread two fingers on the page (Chromium's touch input): the page zooms, not the tab."""
    frame = page.locator("#page-view .pv-scroll").bounding_box()
    stage = page.locator("#page-view .pv-stage")
    before = stage.bounding_box()["width"]
    x, y = frame["x"] + frame["width"] / 2, frame["y"] + frame["height"] / 2
    cdp = context.new_cdp_session(page)
    for kind, spread in [("touchStart", 30), *[("touchMove", d) for d in range(40, 100, 10)], ("touchEnd", 0)]:
        points = [] if kind == "touchEnd" else [{"x": x - spread, "y": y, "id": 1}, {"x": x + spread, "y": y, "id": 2}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})
    page.wait_for_timeout(300)
    assert stage.bounding_box()["width"] > before * 1.5, "pinching did not zoom the page"
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"] + 1  # not the tab


def assert_regular_fonts(page) -> None:
    fonts = page.evaluate(FONTS_JS)
    for where in ("container", "label", "button", "text"):
        assert not re.search("montserrat|alternates", fonts[where], re.I), (where, fonts[where])
    assert not [face for face in fonts["faces"] if re.search("montserrat|alternates", face, re.I)], fonts["faces"]
    assert not fonts["sheets"], fonts["sheets"]  # not even declared: nothing downloads it
    assert "Noto Sans" in fonts["text"] or "DejaVu Sans" in fonts["text"], fonts["text"]


def drop_wrong_file(page, lang: str, tmp_path: Path) -> None:
    """A .txt dropped on the drop zone is taken out at once, and the status says why."""
    from playwright.sync_api import expect

    notes = tmp_path / "notes.txt"
    notes.write_text("these are notes, not a document", encoding="utf-8")
    payload = [[notes.name, "text/plain", base64.b64encode(notes.read_bytes()).decode("ascii")]]
    page.locator("#dropzone .upload-container").wait_for()
    page.evaluate(DROP_FILES_JS, ["#dropzone .upload-container", payload])
    status = page.locator("#status")
    expect(status).to_contain_text({"en": "file not added", "ru": "Не добавлен"}[lang])
    expect(status).to_contain_text("notes.txt")
    expect(page.locator("#dropzone").get_by_role("row", name=re.compile("notes"))).to_have_count(0)


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_a_laptop_gives_the_page_most_of_the_screen_in_readable_letters(browser, studio, tmp_path, lang) -> None:
    from playwright.sync_api import expect

    _, url = studio
    context, page = open_studio(
        browser, url, "laptop", locale=LOCALES[lang], extra_http_headers={"Accept-Language": LOCALES[lang]}
    )
    width = SCREENS["laptop"][0]
    page.wait_for_timeout(1500)  # the sidebar's start (reader.js)
    assert not sidebar_open(page), "the sidebar covers a laptop's page at the start"
    expect(page.locator("#cancel-button")).to_be_hidden()  # nothing runs: no Cancel
    assert_regular_fonts(page)
    drop_wrong_file(page, lang, tmp_path)

    pdf = report_pdf(tmp_path / f"report-{lang}.pdf", lang)
    drop(page, pdf)
    pages = page.locator("#page-range input, #page-range textarea").first

    def type_pages(text: str) -> None:  # typed as a user types (Gradio hears keys, not fill())
        pages.click()
        page.keyboard.press("Control+A")
        page.keyboard.press("Backspace")
        page.keyboard.type(text)

    type_pages("abc")  # refused as typed, before Run
    expect(page.locator("#status")).to_contain_text({"en": "⚠ Pages", "ru": "⚠ Страницы"}[lang])
    expect(page.locator("#run-button")).to_be_disabled()
    type_pages("5-9")
    expect(page.locator("#status")).to_contain_text("1-2")
    expect(page.locator("#run-button")).to_be_disabled()
    type_pages("")
    expect(page.locator("#run-button")).to_be_enabled()
    page.locator("#run-button").click()
    expect(page.locator("#cancel-button")).to_be_visible()  # a job runs: Cancel, and no second Run
    expect(page.locator("#run-button")).to_be_disabled()
    expect(page.locator("#status")).to_contain_text("✓", timeout=120_000)
    expect(page.locator("#cancel-button")).to_be_hidden()
    expect(page.locator("#run-button")).to_be_enabled()
    page.wait_for_timeout(500)  # the scroll to the result
    area = page.locator("#page-view .pv-scroll").bounding_box()
    assert area and area["width"] >= 0.6 * width, f"the page gets {area} of a {width} px window"
    shot(page, f"{lang}-laptop")

    if lang == "ru":
        problems = page.evaluate(LATIN_ONLY_JS, sorted(LATIN_ALLOWED))
        page.locator(".toggle-button").first.click()  # the sidebar's words too
        page.wait_for_timeout(400)
        problems += page.evaluate(LATIN_ONLY_JS, sorted(LATIN_ALLOWED))
        assert not problems, f"Latin-only words in a Russian tab: {problems}"
        page.locator(".toggle-button").first.click()

    # Ctrl + wheel zooms the page inside its frame; the window does not scroll with it
    stage = page.locator("#page-view .pv-stage")
    before = stage.bounding_box()["width"]
    page.locator("#page-view .pv-scroll").hover()
    page.keyboard.down("Control")
    page.mouse.wheel(0, -300)
    page.keyboard.up("Control")
    page.wait_for_timeout(300)
    assert stage.bounding_box()["width"] > before * 1.2, "Ctrl + wheel did not zoom the page"
    assert page.evaluate("getComputedStyle(document.querySelector('#page-view .pv-scroll')).overscrollBehaviorY") in (
        "contain",
        "none",
    )
    page.locator("#page-view [data-zoom=width]").click()

    # the language switch keeps the open job and page
    page.locator("#next-page").click()
    expect(page.locator("#page-view .pv")).to_have_attribute("data-page", "2")
    job = page.locator("#page-view .pv").get_attribute("data-job")
    other = "en" if lang == "ru" else "ru"
    page.locator(".toggle-button").first.click()  # the user opens the sidebar: remembered on a laptop
    page.wait_for_timeout(300)
    assert sidebar_open(page)
    with page.expect_navigation():
        page.locator("#language-switch").get_by_text({"en": "English", "ru": "Русский"}[other]).click()
    expect(page.locator("#run-button")).to_have_text({"en": "Run", "ru": "Запустить"}[other])
    view = page.locator("#page-view .pv")
    expect(view).to_have_attribute("data-job", job, timeout=30_000)
    expect(view).to_have_attribute("data-page", "2")
    expect(page.locator("#text-view")).to_contain_text({"en": "Lisbon", "ru": "Лиссабоне"}[lang])

    page.wait_for_timeout(1000)
    assert sidebar_open(page), "the sidebar the user opened closed again after the reload"
    shot(page, f"{lang}-laptop-switched")
    page.evaluate("localStorage.clear()")
    context.close()


@pytest.mark.parametrize("lang", ["en", "ru"])
def test_a_phone_shows_the_downloads_whole_and_closes_the_sidebar_after_a_job_is_picked(
    browser, studio, tmp_path, lang
) -> None:
    from playwright.sync_api import expect

    _, url = studio
    context, page = open_studio(
        browser,
        url,
        "phone",
        locale=LOCALES[lang],
        extra_http_headers={"Accept-Language": LOCALES[lang]},
        has_touch=True,
    )
    page.wait_for_timeout(1000)
    assert not sidebar_open(page)
    assert_regular_fonts(page)
    drop_wrong_file(page, lang, tmp_path)
    drop(page, report_pdf(tmp_path / f"phone-{lang}.pdf", lang))
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("✓", timeout=120_000)
    page.wait_for_timeout(500)
    shot(page, f"{lang}-phone")
    pinch(context, page)  # two fingers spread on the page: it grows inside its frame
    page.locator("#page-view [data-zoom=width]").click()
    downloads = page.locator("#downloads").bounding_box()
    assert downloads and downloads["width"] >= 0.8 * SCREENS["phone"][0], f"the download bar is {downloads}"
    page.locator("#download-bar").scroll_into_view_if_needed()
    shot(page, f"{lang}-phone-downloads")

    page.locator(".toggle-button").first.click()  # the full-screen sidebar: pick a job there
    page.wait_for_timeout(400)
    assert sidebar_open(page)
    if lang == "ru":
        problems = page.evaluate(LATIN_ONLY_JS, sorted(LATIN_ALLOWED))
        assert not problems, f"Latin-only words in a Russian tab: {problems}"
    page.locator("#history input").click()
    page.get_by_role("option").filter(has_text=f"phone-{lang}").first.click()
    expect(page.locator("#page-view .pv")).to_be_visible()
    page.wait_for_timeout(600)
    assert not sidebar_open(page), "the sidebar still covers the phone after a job was picked"
    shot(page, f"{lang}-phone-picked")
    context.close()
