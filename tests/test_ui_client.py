"""The studio's server driven through gradio_client, the way a script (or the browser) uses it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pymupdf
import pytest
from gradio_client import Client, handle_file

from ocr_studio.recognition import Task
from ocr_studio.settings import Settings
from ocr_studio.ui import build_app, launch_options
from ocr_studio.ui.sidebar import gpu_status_markdown

KNOWN_TEXT = "Quarterly rainfall in Lisbon rose by 12 percent"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_pdf(path: Path, lines: list[str]) -> Path:
    """A one-page PDF with a real text layer holding ``lines``."""
    document = pymupdf.open()
    page = document.new_page(width=595, height=842)
    for index, line in enumerate(lines):
        page.insert_text((72, 90 + 28 * index), line, fontsize=14)
    document.save(path)
    document.close()
    return path


def start_server(workspace: Path, *, token: bool = False, **overrides: object):
    """Start the studio the way ``ocr-studio serve`` does (guarded FastAPI app, uvicorn) on a free
    local port; returns (server, url). ``token``: require the per-launch token (the url then
    carries it, as the launcher's does; ``server.headers`` lets a script in). Off by default
    here: these tests script the API, the mode ``require_token = false`` is documented for."""
    from ocr_studio.ui.server import start

    settings = Settings(workspace=workspace, require_token=token, **overrides)  # type: ignore[arg-type]
    server = start(settings, port=free_port())
    return server, server.url


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    app, url = start_server(tmp_path_factory.mktemp("workspace"))
    try:
        yield app, url
    finally:
        app.close()


@pytest.fixture(scope="module")
def client(server: tuple[object, str], tmp_path_factory: pytest.TempPathFactory) -> Client:
    return Client(server[1], verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))


def test_convert_returns_the_pdf_text_as_markdown(client: Client, tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "rainfall.pdf", ["Rainfall report", KNOWN_TEXT])
    status, markdown, files = client.predict([handle_file(str(pdf))], "text-layer", "text", "", "", api_name="/convert")
    assert "Done" in status, status
    assert KNOWN_TEXT in markdown
    assert "Rainfall report" in markdown
    names = {Path(f).name for f in files}
    assert {"rainfall.md", "rainfall.txt", "rainfall.json", "rainfall.html"} <= names
    assert any(name.endswith(".zip") for name in names)
    exported = next(Path(f) for f in files if Path(f).name == "rainfall.md")
    assert KNOWN_TEXT in exported.read_text(encoding="utf-8")


def test_a_bad_file_among_good_ones_is_reported_and_the_good_one_converted(client: Client, tmp_path: Path) -> None:
    good = make_pdf(tmp_path / "good.pdf", [KNOWN_TEXT])
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.7\nthis is not really a PDF at all\n")
    status, markdown, _files = client.predict(
        [handle_file(str(bad)), handle_file(str(good))], "text-layer", "text", "", "", api_name="/convert"
    )
    assert status.startswith("Partly done: 1 page from 2 documents"), status
    assert "broken.pdf: " in status and "damaged" in status, status  # the failure and its reason
    assert KNOWN_TEXT in markdown


def test_no_files_gives_a_clear_message(client: Client) -> None:
    status, markdown, files = client.predict([], "text-layer", "text", "", "", api_name="/convert")
    assert "Add at least one PDF or image" in status
    assert markdown == "" and not files


def test_an_unavailable_engine_is_listed_with_its_reason_but_not_runnable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ocr_studio import engines
    from ocr_studio.engines.registry import EngineKind, EngineRow

    missing = EngineRow(
        "missing-engine",
        "missing-engine",
        EngineKind.VISION_MODEL,
        (Task.TEXT,),
        needs_gpu=False,
        factory="ocr_studio.engines.not_installed_here:Engine",
    )
    monkeypatch.setattr(engines, "ENGINES", {**engines.ENGINES, missing.name: missing})  # a row whose module is gone
    studio = build_app(Settings(workspace=tmp_path / "ws")).studio  # type: ignore[attr-defined]
    assert ("missing-engine (unavailable)", "missing-engine") in studio.engine_choices()
    changed = studio.engine_changed("missing-engine")
    assert "unavailable" in changed[studio.engine_info] and "not_installed_here" in changed[studio.engine_info]
    assert changed[studio.run_button]["interactive"] is False
    assert studio.engine_changed("text-layer")[studio.run_button]["interactive"] is True

    pdf = make_pdf(tmp_path / "x.pdf", [KNOWN_TEXT])
    status, markdown, files = studio.convert([str(pdf)], "missing-engine", "text", "", "")
    assert status.startswith("Failed") and "unavailable" in status and "not_installed_here" in status
    assert markdown == "" and files == []


def test_a_bad_page_range_is_explained(client: Client, tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "short.pdf", [KNOWN_TEXT])
    status, markdown, _ = client.predict([handle_file(str(pdf))], "text-layer", "text", "5-9", "", api_name="/convert")
    assert status.startswith("Failed:"), status  # never "Done: 0 pages"
    assert "out of range" in status and "pages 1-1" in status, status  # checked before any job is made
    assert KNOWN_TEXT not in markdown


def test_server_listens_on_loopback_only(server: tuple[object, str]) -> None:
    app, url = server
    assert url.startswith("http://127.0.0.1:")
    assert app.server_name == "127.0.0.1"  # type: ignore[attr-defined]
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert "OCR Studio" in response.read().decode("utf-8", "replace")
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    outward = _non_loopback_address()
    if outward is None:
        pytest.skip("this machine has no non-loopback IPv4 address to probe")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        assert sock.connect_ex((outward, port)) != 0, f"the studio answers on {outward}:{port}"


def test_launch_options_are_private_and_limited(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws", max_upload_mb=7)
    options = launch_options(settings)
    assert options["server_name"] == "127.0.0.1"
    assert "share" not in options  # mounted on our own server: there is no share tunnel to open
    assert options["max_file_size"] == "7mb"
    workspace = (tmp_path / "ws").resolve()
    assert options["allowed_paths"] == [str(workspace / "exports")]  # never the jobs (inputs, pages, JSON)
    assert options["blocked_paths"] == [str(workspace / "jobs")]
    assert Settings().require_token is True  # the token is on unless a script turns it off


def test_sidebar_says_plainly_when_there_is_no_gpu() -> None:
    text = gpu_status_markdown({"available": False, "reason": "torch was built without CUDA"})
    assert "No CUDA GPU" in text and "torch was built without CUDA" in text
    text = gpu_status_markdown(
        {
            "available": True,
            "name": "NVIDIA GeForce RTX 5070 Ti Laptop GPU",
            "capability": "12.0",
            "sm": "sm_120",
            "memory_used_bytes": 4 * 1024**3,
            "memory_total_bytes": 16 * 1024**3,
            "utilization_percent": 37,
            "temperature_c": 61,
        }
    )
    for expected in ("RTX 5070 Ti", "12.0 (sm_120)", "4.0 GiB / 16.0 GiB", "37 %", "61 °C"):
        assert expected in text


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.254.254.254", 1))  # no packet is sent; this only picks a route
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_launcher_starts_the_server_on_a_free_port_and_stops_it(tmp_path: Path) -> None:
    """What a double-click runs (here with a Python that has the studio: used as it is, no .venv):
    launch.py says plainly that the port is taken, uses the next free one, waits until the page
    answers, says once where it runs (a one-time link made from the per-launch token), and takes the
    server down with it."""
    repo = Path(__file__).resolve().parents[1]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        environment = dict(os.environ, OCR_STUDIO_WORKSPACE=str(tmp_path / "ws"), HF_HUB_OFFLINE="1")
        environment["OCR_STUDIO_CONFIG"] = str(tmp_path / "absent.toml")
        process = subprocess.Popen(
            [sys.executable, str(repo / "launch.py"), "--no-browser", "--port", str(taken), "--timeout", "120"],
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: list[str] = []
        try:
            url = None
            deadline = time.monotonic() + 150
            while url is None and time.monotonic() < deadline:
                line = process.stdout.readline()  # type: ignore[union-attr]
                if not line:
                    break
                lines.append(line)
                if "OCR Studio is running at http://127.0.0.1:" in line:
                    url = line.split(" at ", 1)[1].split()[0]
            assert url, "the launcher never said where the studio runs:\n" + "".join(lines)
            port = urllib.parse.urlsplit(url).port
            assert port != taken and "?code=" in url
            assert f"Port {taken} is in use by another program" in "".join(lines)
            assert f"using port {port} instead" in "".join(lines)
            assert "first run" not in "".join(lines) and "Installing" not in "".join(lines)  # used as it is
            browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())  # keeps the session cookie
            with browser.open(url, timeout=10) as response:
                assert response.status == 200 and b"gradio" in response.read().lower()
            time.sleep(1)  # anything the server would print after it answers
        finally:
            process.send_signal(signal.SIGTERM)
            rest, _ = process.communicate(timeout=30)
    said = "".join(lines) + rest
    assert said.count("is running at") == 1, said
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the server outlived its launcher"


def test_launcher_says_it_must_stay_in_the_project_folder(tmp_path: Path) -> None:
    """A launch.py copied away from the project cannot install the studio: it says where it belongs."""
    repo = Path(__file__).resolve().parents[1]
    copy = tmp_path / "launch.py"  # a launcher with no package beside it, run by an isolated Python
    copy.write_text((repo / "launch.py").read_text(encoding="utf-8"), encoding="utf-8")
    result = subprocess.run([sys.executable, "-I", "-S", str(copy), "--no-browser"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "must stay in the OCR Studio folder" in result.stdout and "python3 launch.py" in result.stdout


def test_a_typed_region_reads_only_the_text_inside_it(client: Client, tmp_path: Path) -> None:
    """Task "Text in a region": the box is typed in page pixels (200 DPI here)."""
    pdf = make_pdf(tmp_path / "two-lines.pdf", ["Heading line above", KNOWN_TEXT])
    scale = 200 / 72  # page pixels per PDF point
    box = f"{60 * scale:.0f}, {100 * scale:.0f}, {560 * scale:.0f}, {125 * scale:.0f}"  # around the second line
    status, markdown, _ = client.predict(
        [handle_file(str(pdf))], "text-layer", "region", "", "", box, api_name="/convert"
    )
    assert "Done" in status, status
    assert KNOWN_TEXT in markdown and "Heading line above" not in markdown

    status, markdown, _ = client.predict(
        [handle_file(str(pdf))], "text-layer", "region", "", "", "100, 200", api_name="/convert"
    )
    assert "four numbers" in status and markdown == ""


def test_cancel_keeps_the_finished_pages(tmp_path: Path) -> None:
    """Cancel during a run stops after the current page; what is done stays on disk and on screen."""
    import time

    from ocr_studio.jobs import JobStore

    studio = build_app(Settings(workspace=tmp_path / "ws")).studio  # type: ignore[attr-defined]
    pdf = tmp_path / "long.pdf"
    document = pymupdf.open()
    for number in range(1, 41):
        document.new_page().insert_text((72, 90), f"Page number {number} of the report", fontsize=14)
    document.save(pdf)
    document.close()

    started = studio.run([str(pdf)], "text-layer", "text", "", "", "", "local")
    job_id = started[studio.job_id]
    run = studio.background.get(job_id)
    deadline = time.monotonic() + 120
    while run.pages_done < 1 and run.running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert studio.cancel(job_id).startswith("■ Cancelling")
    studio.background.wait(job_id, timeout=120)
    final = studio.poll(job_id, None, None, -1)
    job = JobStore(tmp_path / "ws").load(job_id)
    assert job.status == "cancelled"
    done = [p.page_number for d in job.documents for p in d.pages]
    assert done and done == list(range(1, len(done) + 1)) and len(done) < 40
    assert final[studio.status].startswith("**■ Cancelled:**"), final[studio.status]
    assert "Page number 1" in final[studio.text_view]


def test_downloads_can_leave_page_headers_and_footers_out(tmp_path: Path) -> None:
    """The view keeps headers/footers; the "leave them out" choice changes the downloads."""
    import json

    studio = build_app(Settings(workspace=tmp_path / "ws")).studio  # type: ignore[attr-defined]
    pdf = make_pdf(tmp_path / "annual.pdf", [KNOWN_TEXT])
    status, markdown, _ = studio.convert([str(pdf)], "text-layer", "text", "", "")
    assert "Done" in status
    job = studio.store.history(limit=1)[0]
    # Add a running header, as a layout engine (dots.ocr) finds one.
    page_json = next(job.dir.rglob("page-0001.json"))
    data = json.loads(page_json.read_text(encoding="utf-8"))
    header = {"bbox": [72, 20, 400, 40], "category": "Page-header", "text": "ACME Corp — Annual report"}
    data["blocks"].insert(0, header)
    page_json.write_text(json.dumps(data), encoding="utf-8")
    job = studio.store.load(job.id)
    job.updated += 1  # what a finished run does: the downloads are written again

    def downloaded_markdown(clean: bool) -> str:
        links = studio.set_clean(clean, job.id, 0)
        assert f"clean={int(clean)}" in links and "This document" in links and "Whole job" in links
        return studio.exports(job, clean=clean)[0]["md"].read_text(encoding="utf-8")

    assert "ACME Corp" in downloaded_markdown(False)
    clean = downloaded_markdown(True)
    assert "ACME Corp" not in clean and KNOWN_TEXT in clean
    assert "ACME Corp" in studio.show_page(job, 0, 1)[studio.text_view]  # the view keeps it
    assert "ACME Corp" in downloaded_markdown(False)
