"""A real browser (Debian Chromium through Playwright) drops a PDF, runs it, reads and downloads the text."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def studio_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app, url = start_server(tmp_path_factory.mktemp("workspace"))
    try:
        yield url
    finally:
        app.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def test_drop_run_read_and_download(browser, studio_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    pdf = make_pdf(tmp_path / "rainfall-report.pdf", ["Rainfall report", KNOWN_TEXT, "Porto stayed dry."])
    page = browser.new_page(viewport={"width": 1500, "height": 1150}, accept_downloads=True)
    page.set_default_timeout(60_000)
    page.goto(studio_url)
    dropzone = page.locator("#dropzone")
    expect(dropzone).to_be_visible()

    payload = [[pdf.name, "application/pdf", base64.b64encode(pdf.read_bytes()).decode("ascii")]]
    page.evaluate(DROP_FILES_JS, ["#dropzone .upload-container", payload])
    # the file list shows the dropped file (name and extension sit in separate spans, so match its row)
    expect(dropzone.get_by_role("row", name=re.compile(re.escape(pdf.name)))).to_be_visible()

    page.locator("#run-button").click()
    markdown = page.locator("#markdown-view")
    expect(markdown).to_contain_text(KNOWN_TEXT)
    expect(page.locator("#status")).to_contain_text("Done")
    expect(page.locator("#page-image img").first).to_be_visible()
    expect(page.locator("#gpu-status")).not_to_contain_text("Checking")

    page.locator("#result-tabs").get_by_role("tab", name="Raw Markdown").click()
    expect(page.locator("#markdown-raw")).to_contain_text("Porto stayed dry.")
    page.locator("#result-tabs").get_by_role("tab", name="Markdown", exact=True).click()

    with page.expect_download() as download_info:
        page.locator("#download-md").click()
    download = download_info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.suffix == ".md"
    assert KNOWN_TEXT in saved.read_text(encoding="utf-8")

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "browser.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()
