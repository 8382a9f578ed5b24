"""Search across all jobs in a real browser (Debian Chromium through Playwright): the studio's
search box lists matches (document, page, snippet) in either language, a document's text shows
as text in them, and a match opens its page with its box and its text marked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ocr_studio.engines import get_engine
from ocr_studio.engines.base import Task
from ocr_studio.jobs import JobSpec, JobStore, run_job
from tests.test_browser import chromium, open_studio, screenshot
from tests.test_jobs import make_settings
from tests.test_library_search import text_pdf
from tests.test_ui_client import start_server

pytestmark = pytest.mark.browser

PAGES = [
    "The annual report of the cooperative. Its pages are numbered.",
    "Вступление. Цели кооператива на следующий год.",
    'Итоги года. <img src=x onerror="window.pwned=1"> Все страницы отчёта подписаны председателем.',
]


def test_a_search_lists_matches_and_a_match_opens_its_page_with_its_box_marked(tmp_path: Path) -> None:
    from playwright.sync_api import expect

    workspace = tmp_path / "workspace"
    settings = make_settings(workspace)
    engine = get_engine("text-layer", settings)
    store = JobStore(workspace)
    job = store.create(
        JobSpec([text_pdf(tmp_path / "report-2025.pdf", PAGES)], "text-layer", Task.TEXT), engine, settings
    )
    run_job(job, engine, settings)  # converted before this studio started: the search index catches up
    server, url = start_server(workspace, token=True)
    try:
        with chromium() as browser:
            context, page = open_studio(browser, url)
            page.locator("#search").get_by_text("Search all documents").click()
            box = page.locator("#search-box textarea, #search-box input").first
            box.fill("страница")
            box.press("Enter")
            results = page.locator("#search-results")
            expect(results).to_contain_text("1 match")
            hit = results.locator(".sh-hit")
            expect(hit).to_have_count(1)
            expect(hit).to_contain_text("report-2025.pdf · page 3")
            expect(hit.locator("mark")).to_have_text("страницы")
            expect(hit).to_contain_text('<img src=x onerror="window.pwned=1">')  # a document's text, as text
            assert results.locator("img").count() == 0 and not page.evaluate("window.pwned")

            hit.click()
            view = page.locator("#page-view .pv")
            expect(view).to_have_attribute("data-page", "3")
            found = page.locator("#page-view rect.found")
            expect(found).to_have_count(1)
            block = int(found.get_attribute("data-b"))
            assert "страницы" in job.documents[0].pages[2].blocks[block].text
            expect(page.locator(f"#text-view .blk.b-{block}")).to_have_class(re.compile(r"\bfound\b"))
            expect(page.locator("#text-view .blk.found")).to_contain_text("Все страницы отчёта")
            expect(page.locator("#status")).to_contain_text("Done")
            screenshot(page, "search-hit")

            box.fill("pages numbered")  # English word forms; another page of the same job
            page.locator("#search-button").click()
            expect(results.locator(".sh-hit")).to_have_count(1)
            expect(results).to_contain_text("page 1")
            results.locator(".sh-hit").click()
            expect(view).to_have_attribute("data-page", "1")
            expect(page.locator("#text-view .blk.found")).to_contain_text("Its pages are numbered")

            box.fill("бухгалтерия")
            box.press("Enter")
            expect(results).to_contain_text("Nothing found for “бухгалтерия”.")
            context.close()
    finally:
        server.close()
