"""The attacks of issue 10 in a real browser (Debian Chromium): a page on evil.example that
resolves to this machine (DNS rebinding), a site that frames the studio, and the token flow
the launcher relies on. Chromium's host resolver maps evil.example to 127.0.0.1."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_browser import chromium
from tests.test_jobs import make_pdf
from tests.test_ui_client import free_port, start_server

pytestmark = pytest.mark.browser
EVIL = "evil.example"


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    server, _url = start_server(tmp_path_factory.mktemp("workspace"), token=True)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def browser():
    with chromium(f"--host-resolver-rules=MAP {EVIL} 127.0.0.1") as instance:
        yield instance


@pytest.fixture(scope="module")
def attacker(studio) -> Iterator[str]:
    """An outside site (http://evil.example:PORT/) whose page frames the studio, with its token."""
    page = (
        f'<!doctype html><title>evil</title><iframe id="victim" src="{studio.url}" width="800" height="600"></iframe>'
    ).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802  (the standard library's name)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{EVIL}:{port}/"
    finally:
        server.shutdown()


def test_the_launchers_link_opens_the_studio_and_a_cookie_keeps_it_open(studio, browser) -> None:
    from playwright.sync_api import expect

    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(studio.url)
    expect(page.locator("#dropzone")).to_be_visible()
    assert "token=" not in page.url  # dropped from the address bar: not bookmarked, not shared
    page.reload()
    expect(page.locator("#dropzone")).to_be_visible()  # the session cookie
    context.close()

    stranger = browser.new_page()  # no link, no cookie
    stranger.goto(studio.base_url)
    expect(stranger.locator("body")).to_contain_text("access link")
    assert stranger.locator("#dropzone").count() == 0
    stranger.close()


def test_a_page_on_a_rebound_name_reads_nothing(studio, browser, tmp_path: Path) -> None:
    """The rebinding attacker's own position: a page of origin http://evil.example:PORT (the
    studio's port), fetching the studio's routes as same-origin requests, token in hand."""
    workspace = Path(studio.blocks.studio.settings.workspace)
    secret = make_pdf(tmp_path / "secret.pdf", 1)
    studio.blocks.studio.convert([str(secret)], "text-layer", "text", "", "")
    job_file = next((workspace / "jobs").rglob("job.json"))

    page = browser.new_page()
    rebound = f"http://{EVIL}:{studio.port}"
    answer = page.goto(f"{rebound}/?token={studio.token}")
    assert answer is not None and answer.status == 403
    assert page.locator("#dropzone").count() == 0
    statuses = page.evaluate(
        """async ([paths, token]) => {
            const out = {};
            for (const path of paths) {
                const r = await fetch(path, {headers: {Authorization: `Bearer ${token}`}});
                out[path] = [r.status, (await r.text()).slice(0, 200)];
            }
            return out;
        }""",
        [["/config", "/gradio_api/info", f"/gradio_api/file={job_file}"], studio.token],
    )
    for path, (status, text) in statuses.items():
        assert status == 403 and "secret" not in text, (path, status, text)
    page.close()


def test_another_site_cannot_frame_the_studio(studio, browser, attacker) -> None:
    page = browser.new_page()
    page.goto(attacker)
    page.wait_for_timeout(3000)
    [frame] = [f for f in page.frames if f != page.main_frame]
    assert frame.url.startswith("chrome-error://"), f"the studio loaded inside {attacker}: {frame.url}"
    reachable = page.evaluate(
        """async (url) => {
            try { const r = await fetch(url, {credentials: "include"}); return r.status; }
            catch (e) { return "blocked"; }
        }""",
        studio.base_url + "config",
    )
    assert reachable == "blocked"  # no CORS answer for another origin: the response is unreadable
    page.close()
