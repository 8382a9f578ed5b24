"""The studio's HTTP side attacked as issue 24's review did it: a second server on 127.0.0.1 that
collects what Chromium sends it, a program that takes the launcher's port first, Gradio's file
aliases and Range answers, the browser's history database, junk in job ids, a restart after
kill -9. Each test fails if its defence is taken away (see SECURITY.md)."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.test_jobs import make_pdf
from tests.test_ui_client import free_port, start_server

REPO = Path(__file__).resolve().parents[1]
EVIL = "evil.example"


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The studio with its token on (the default) and one converted PDF with its exports."""
    server, _url = start_server(tmp_path_factory.mktemp("workspace"), token=True)
    pdf = make_pdf(tmp_path_factory.mktemp("in") / "secret.pdf", 1)
    server.blocks.studio.convert([str(pdf)], "text-layer", "text", "", "")
    try:
        yield server
    finally:
        server.close()


def exports(studio, suffix: str) -> Path:
    workspace = Path(studio.blocks.studio.settings.workspace)
    return next((workspace / "exports").rglob(f"*{suffix}"))


def session_cookie(studio) -> str:
    """The ``name=value`` the browser keeps after opening a one-time link."""
    opened = httpx.get(studio.link(), follow_redirects=False, timeout=30)
    assert opened.status_code == 303, opened.status_code
    return opened.headers["set-cookie"].split(";")[0]


class Collector:
    """Another program's HTTP server on 127.0.0.1 (a dev server, a container's published port):
    it answers every request with a page and keeps every request's headers."""

    def __init__(self) -> None:
        seen: list[dict[str, str]] = []
        self.seen = seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (the standard library's name)
                seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
                body = b"<!doctype html><title>another program</title><p>hello</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def chromium_browser():
    from tests.test_browser import chromium

    with chromium(f"--host-resolver-rules=MAP {EVIL} 127.0.0.1") as instance:
        yield instance


# --- 1. the session cookie never reaches another server on 127.0.0.1 ---------------------------


@pytest.mark.browser
def test_the_session_cookie_never_reaches_another_local_server(studio, chromium_browser) -> None:
    """Chromium opens the studio, then another local server's page (typed, and through a link on
    another site): what that server receives cannot open the studio's API."""
    listener, outside = Collector(), Collector()
    link_page = f'<a id="go" href="http://127.0.0.1:{listener.port}/from-a-link">go</a>'
    try:
        context = chromium_browser.new_context()
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(studio.link())
        page.locator("#run-button").wait_for()
        assert context.cookies(), "the studio set no session cookie"
        page.goto(f"http://127.0.0.1:{listener.port}/typed")  # the same browser, another port
        page.goto(f"http://localhost:{listener.port}/by-name")
        other = context.new_page()
        site = f"http://{EVIL}:{outside.port}/"
        other.route(site, lambda route: route.fulfill(body=link_page, content_type="text/html"))
        other.goto(site)
        other.click("#go")
        other.wait_for_url("**/from-a-link")
        other.wait_for_timeout(500)  # the favicon request
        context.close()
    finally:
        listener.close()
        outside.close()
    paths = [request["path"] for request in listener.seen]
    assert {"/typed", "/by-name", "/from-a-link"} <= set(paths), paths
    received = [request.get("cookie", "") for request in listener.seen]
    assert not any(studio.token in cookie for cookie in received), received
    # the attacker's next step: replay whatever came, every way the studio takes credentials
    for cookie in {c for c in received if c}:
        for name_value in cookie.split("; "):
            value = name_value.partition("=")[2]
            for path in ("/config", studio.prefix + "/config"):
                for headers in ({"Authorization": f"Bearer {value}"}, {"Cookie": cookie}):
                    answer = httpx.get(studio.base_url.rstrip("/") + path, headers=headers, timeout=30)
                    assert answer.status_code == 401, (path, headers, answer.status_code)


# --- 2. a program that takes the launcher's port first gets no token -------------------------


def test_a_program_that_takes_the_port_first_gets_no_token(tmp_path: Path) -> None:
    """A squatter watches the process list for the studio's ``--port P`` and binds P before the
    server does (the server takes seconds to start). The launcher never sends the token to P,
    announces the port the server really holds, and that address opens the real studio."""
    import psutil

    wanted = free_port()
    received: list[bytes] = []
    bound = threading.Event()
    finished = threading.Event()

    def squat() -> None:
        while not finished.is_set():
            if any(
                "serve" in (p.info["cmdline"] or []) and str(wanted) in (p.info["cmdline"] or [])
                for p in psutil.process_iter(["cmdline"])
            ):
                break
            time.sleep(0.01)
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", wanted))
            squatter.listen()
            squatter.settimeout(0.2)
            bound.set()
            while not finished.is_set():
                try:
                    connection, _ = squatter.accept()
                except TimeoutError:
                    continue
                with connection:
                    connection.settimeout(2)
                    try:
                        received.append(connection.recv(65536))
                        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    except OSError:
                        pass

    thread = threading.Thread(target=squat, daemon=True)
    thread.start()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OCR_STUDIO_")}
    environment.update(OCR_STUDIO_CONFIG=str(tmp_path / "absent.toml"), OCR_STUDIO_WORKSPACE=str(tmp_path / "ws"))
    process = subprocess.Popen(
        [sys.executable, str(REPO / "launch.py"), "--no-browser", "--port", str(wanted), "--timeout", "120"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    said: list[str] = []
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            line = process.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            said.append(line)
            if "Access token" in line:
                break
        text = "".join(said)
        assert bound.is_set(), "the squatter never got the port first: the test proved nothing"
        token = text.split("Access token", 1)[1].rsplit(": ", 1)[1].strip()
        link = next(word for word in text.split() if "?code=" in word)
        assert f":{wanted}/" not in link, f"the launcher announced the squatter's port: {text}"
        assert f"Port {wanted} is in use" in text
        opened = httpx.get(link, timeout=30, follow_redirects=True)
        assert opened.status_code == 200 and "gradio" in opened.text.lower()  # the real studio
        assert httpx.get(link.split("?")[0] + "config", headers={"Authorization": f"Bearer {token}"}).is_success
    finally:
        finished.set()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        thread.join(timeout=5)
    assert not any(token.encode() in data for data in received), received
    assert not any(received), f"the launcher talked to the squatter: {received}"  # (the server's probe sends nothing)


# --- 6, 7. files are downloads through every alias; a Range answer echoes no request header ----


ALIASES = ("/gradio_api/file={}", "/gradio_api/file/{}")  # Gradio's file route and its older spelling
NOT_ROUTES = ("/file={}", "/file/{}")  # the spellings of Gradio 4: not served now (any day they are, as above)


def test_an_html_export_is_a_download_through_every_file_route_alias(studio) -> None:
    exported = exports(studio, ".html")
    cookie = session_cookie(studio)
    for alias in ALIASES + NOT_ROUTES:
        for base, headers in (("", studio.headers), (studio.prefix, {"Cookie": cookie})):
            for extra in ({}, {"Range": "bytes=0-99"}):
                url = studio.base_url.rstrip("/") + base + alias.format(exported)
                answer = httpx.get(url, headers={**headers, **extra}, timeout=30)
                if alias in NOT_ROUTES and answer.status_code == 404:
                    continue
                assert answer.status_code in (200, 206), (alias, base, extra, answer.status_code)
                assert answer.headers["content-type"] == "application/octet-stream", (alias, base, extra)
                assert answer.headers["content-disposition"].startswith("attachment"), (alias, base, extra)
                assert answer.headers["x-content-type-options"] == "nosniff"


def test_a_range_request_echoes_no_request_header(studio) -> None:
    """Gradio answers a Range request with a copy of the request's headers: the cookie and the
    Authorization header would come back readable to the page's script."""
    exported = exports(studio, ".md")
    cookie = session_cookie(studio)
    marker = "echo-marker-1f3a"
    for base, credentials in (
        ("", {"Authorization": f"Bearer {studio.token}"}),
        (studio.prefix, {"Cookie": f"{cookie}; other={marker}"}),
    ):
        for alias in ALIASES:
            url = studio.base_url.rstrip("/") + base + alias.format(exported)
            answer = httpx.get(url, headers={**credentials, "Range": "bytes=0-9", "X-Probe": marker}, timeout=30)
            assert answer.status_code == 206, (alias, answer.status_code)
            assert len(answer.content) == 10
            for name, value in answer.headers.multi_items():
                assert name.lower() not in ("cookie", "authorization", "x-probe"), (alias, name)
                assert studio.token not in value and marker not in value, (alias, name, value)


# --- 8. the token never stays in the browser's history ------------------------------------------


@pytest.mark.browser
def test_the_token_never_stays_in_the_browsers_history(studio, tmp_path: Path) -> None:
    """Chromium with a real profile opens the link the launcher opens, later the login page with
    the token pasted; its History database then holds no address that opens the studio."""
    from playwright.sync_api import sync_playwright

    from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing")
    profile = tmp_path / "profile"
    link = studio.link()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(link)
            page.locator("#run-button").wait_for()
            context.clear_cookies()
            page.goto(studio.base_url)  # the login page: paste the token printed at start
            page.fill("input[name=token]", studio.token)
            page.click("button[type=submit]")
            page.locator("#run-button").wait_for()
            page.goto("about:blank")
            page.wait_for_timeout(1500)  # history is written in the background
        finally:
            context.close()
    with sqlite3.connect(profile / "Default" / "History") as history:
        urls = [row[0] for row in history.execute("SELECT url FROM urls")]
    assert any(studio.prefix in url for url in urls), urls  # the visits were recorded
    assert not [url for url in urls if studio.token in url], urls
    for url in urls:
        if url.startswith(studio.base_url):
            assert "set-cookie" not in httpx.get(url, follow_redirects=False, timeout=30).headers, url


def test_a_one_time_link_opens_once_and_a_wrong_one_never(studio) -> None:
    link = studio.link()
    assert httpx.get(link, follow_redirects=False, timeout=30).status_code == 303
    again = httpx.get(link, follow_redirects=False, timeout=30)
    assert again.status_code == 401 and "set-cookie" not in again.headers and "used already" in again.text
    forged = link[:-4] + ("AAAA" if not link.endswith("AAAA") else "BBBB")
    assert httpx.get(forged, follow_redirects=False, timeout=30).status_code == 401
    posted = httpx.post(studio.base_url, data={"token": studio.token}, follow_redirects=False, timeout=30)
    assert posted.status_code == 303 and posted.headers["location"] == studio.prefix + "/"
    wrong = httpx.post(studio.base_url, data={"token": "nope"}, follow_redirects=False, timeout=30)
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    deep = httpx.get(f"{studio.base_url}%C3%BC//x?token={studio.token}&a=1", follow_redirects=False, timeout=30)
    assert deep.status_code == 303 and deep.headers["location"] == f"{studio.prefix}/%C3%BC//x?a=1"  # same host


# --- 11. junk in a job id is a clean 4xx ----------------------------------------------------------


def test_junk_in_a_job_id_or_a_path_is_a_clean_4xx(studio) -> None:
    job = studio.blocks.studio.store.history()[0]
    for path in (
        f"/studio/page/{job.id}%00/0/1",
        f"/studio/thumb/{job.id}%00/0/1",
        f"/studio/download/{job.id}%00/job/zip",
        "/studio/page/..%2F..%2F..%2Fetc/0/1",
        f"/studio/page/{job.id}%0Aevil/0/1",
        "/studio/page/%00/0/1",
        "/gradio_api/file=%00",
        f"/studio/page/{'f' * 5000}/0/1",
    ):
        for base, headers in (("", studio.headers), (studio.prefix, {"Cookie": session_cookie(studio)})):
            answer = httpx.get(studio.base_url.rstrip("/") + base + path, headers=headers, timeout=30)
            assert 400 <= answer.status_code < 500, (base, path, answer.status_code, answer.text[:200])
    fine = httpx.get(f"{studio.base_url}studio/page/{job.id}/0/1", headers=studio.headers, timeout=30)
    assert fine.status_code == 200 and fine.headers["content-type"] == "image/webp"


# --- 14. after kill -9 the studio comes back on its port -----------------------------------------


def serve_process(tmp_path: Path, port: int, name: str) -> tuple[subprocess.Popen, Path]:
    ready = tmp_path / f"{name}.port"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OCR_STUDIO_")}
    environment.update(
        OCR_STUDIO_CONFIG=str(tmp_path / "absent.toml"),
        OCR_STUDIO_WORKSPACE=str(tmp_path / "ws"),
        OCR_STUDIO_LAUNCH_TOKEN="t" * 43,
        OCR_STUDIO_LAUNCH_READY=str(ready),
        GRADIO_ANALYTICS_ENABLED="False",
    )
    command = [sys.executable, "-m", "ocr_studio", "serve", "--port", str(port), "--no-browser"]
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert process.poll() is None and time.monotonic() < deadline, "the studio did not start"
        time.sleep(0.1)
    return process, ready


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TIME_WAIT is checked through /proc")
def test_after_kill_9_the_studio_comes_back_on_its_port(tmp_path: Path) -> None:
    import psutil

    port = free_port()
    first, ready = serve_process(tmp_path, port, "first")
    assert int(ready.read_text()) == port
    headers = {"Authorization": "Bearer " + "t" * 43}
    with httpx.Client(timeout=30) as browser:  # a tab's keep-alive connection, open when the studio dies
        assert browser.get(f"http://127.0.0.1:{port}/config", headers=headers).status_code == 200
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        time.sleep(0.5)
    waiting = [
        c for c in psutil.net_connections(kind="tcp") if c.laddr and c.laddr.port == port and c.status == "TIME_WAIT"
    ]
    assert waiting, "no TIME_WAIT connection was left on the port: the test proved nothing"
    second, ready = serve_process(tmp_path, port, "second")
    try:
        assert int(ready.read_text()) == port
        assert httpx.get(f"http://127.0.0.1:{port}/config", headers=headers, timeout=30).status_code == 200
    finally:
        second.kill()
        second.wait(timeout=30)


def test_the_port_the_server_holds_cannot_be_taken_by_another_listener() -> None:
    from ocr_studio import ports

    with ports.listen("127.0.0.1", free_port()) as held:
        port = held.getsockname()[1]
        for reuse in (False, True):
            with socket.socket() as squatter:
                if reuse:
                    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                with pytest.raises(OSError):
                    squatter.bind(("127.0.0.1", port))
                    squatter.listen()
        with ports.listen("127.0.0.1", port) as next_one:  # asked for a held port: the next free one
            assert next_one.getsockname()[1] != port
