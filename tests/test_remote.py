"""The remote runtime against a real OpenAI-compatible server: ``transformers serve``
running the tiny random Qwen3-VL checkpoint on the CPU, on 127.0.0.1.

A watching proxy between the studio and the server sees what the network sees
(requests in flight, the Authorization header). Random weights give arbitrary text,
so the tests compare paths with each other, never with expected words.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from ocr_studio.documents import Page
from ocr_studio.engines import get_engine
from ocr_studio.engines.base import RecognizeRequest, Task
from ocr_studio.engines.dots_prompts import prompt_for
from ocr_studio.engines.qwen3_vl import PROMPTS
from ocr_studio.jobs import JobSpec, JobStore, Progress, run_job
from ocr_studio.runtime.client import RemoteClient, RemoteConfig, remote_status
from ocr_studio.runtime.remote import RemoteEngine
from tests.openai_server import TransformersServer, WatchingProxy, free_port, serving_available
from tests.test_jobs import make_pdf, make_settings

API_KEY = "sk-test-7f3a9c1e5b-never-on-disk"
MAX_PIXELS = 70_000  # small pages: quick requests, still different from page to page
NEW_TOKENS = 8


@pytest.fixture(scope="module")
def server(tiny_qwen3_vl: Path, tmp_path_factory: pytest.TempPathFactory):
    missing = serving_available()
    if missing:  # a missing test dependency is a failure to fix, not a reason to skip
        pytest.fail(missing)
    folder = tmp_path_factory.mktemp("serve")
    server = TransformersServer(tiny_qwen3_vl, free_port(), folder / "serve.log", folder / "hf-home")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def proxy(server: TransformersServer):
    proxy = WatchingProxy(f"http://127.0.0.1:{server.port}")
    yield proxy
    proxy.close()


def remote_settings(workspace: Path, url: str, model: str, **overrides: object):
    values: dict[str, object] = {
        "engine": "qwen3-vl",
        "runtime": "remote",
        "remote_url": url,
        "remote_model": model,
        "remote_retries": 2,
        "remote_timeout": 60.0,
        "max_pixels": MAX_PIXELS,
        "max_new_tokens": NEW_TOKENS,
        **overrides,
    }
    return make_settings(workspace, **values)


def sent_image(part: dict) -> Image.Image:
    """The image of an ``image_url`` content part (a base64 data URL)."""
    assert part["type"] == "image_url"
    header, _, data = part["image_url"]["url"].partition(",")
    assert header == "data:image/png;base64"
    return Image.open(io.BytesIO(base64.b64decode(data)))


def same_text(streamed: str, whole: str) -> bool:
    """Equal, except that a server's streamer holds back a last, incomplete UTF-8 character
    (random tokens end in the middle of one), which the one-piece answer shows as U+FFFD."""
    return streamed.rstrip("\ufffd") == whole.rstrip("\ufffd")


def make_colour_pdf(path: Path, pages: int) -> Path:
    """A PDF whose pages are grids of coloured squares, different on every page: a random
    model barely reacts to a line of text, but answers differently for each of these."""
    import random

    import pymupdf

    pdf = pymupdf.open()
    for number in range(1, pages + 1):
        rng = random.Random(number)
        page = pdf.new_page(width=320, height=320)
        for row in range(8):
            for column in range(8):
                square = pymupdf.Rect(column * 40, row * 40, column * 40 + 40, row * 40 + 40)
                page.draw_rect(square, fill=(rng.random(), rng.random(), rng.random()), width=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.save(path)
    pdf.close()
    return path


def page_image(seed: int) -> Image.Image:
    image = Image.new("RGB", (300, 220), "white")
    draw = ImageDraw.Draw(image)
    for line in range(6):
        draw.rectangle((20, 20 + line * 30, 60 + (seed * 37 + line * 53) % 220, 34 + line * 30), fill="black")
    return image


def test_health_says_up_down_or_wrong_model(server: TransformersServer, tmp_path: Path) -> None:
    up = RemoteClient(RemoteConfig(server.url, model=server.model)).health()
    assert up.ok, up.message
    assert server.model in up.message

    unnamed = RemoteClient(RemoteConfig(server.url)).health()
    assert unnamed.ok and server.model in unnamed.message  # the server says which model answered

    wrong = RemoteClient(RemoteConfig(server.url, model="Qwen/Qwen3-VL-8B-Instruct")).health()
    assert not wrong.ok
    assert "does not serve Qwen/Qwen3-VL-8B-Instruct" in wrong.message
    assert server.model in wrong.message  # the server's own words name the model it runs

    down_url = f"http://127.0.0.1:{free_port()}/v1"
    down = RemoteClient(RemoteConfig(down_url, model=server.model)).health()
    assert not down.ok and "does not answer" in down.message

    assert remote_status(remote_settings(tmp_path, server.url, server.model)).count("✅") == 1
    line = remote_status(remote_settings(tmp_path, down_url, server.model))
    assert "❌" in line and down_url in line and "does not answer" in line
    assert "❌" in remote_status(remote_settings(tmp_path, server.url, "Qwen/Qwen3-VL-8B-Instruct"))
    assert "not set" in remote_status(remote_settings(tmp_path, "", ""))
    assert remote_status(make_settings(tmp_path)) == ""  # the local runtime shows no server line


def test_streaming_gives_the_text_of_a_plain_request(server: TransformersServer) -> None:
    client = RemoteClient(RemoteConfig(server.url, model=server.model))
    image, prompt = page_image(1), "Read all the text in the image."
    plain = client.complete(image, prompt, max_tokens=NEW_TOKENS)
    updates: list[str] = []
    streamed = client.complete(image, prompt, max_tokens=NEW_TOKENS, on_text=updates.append)
    assert plain.text and plain.finish_reason == "length"  # random weights never stop early in 8 tokens
    assert same_text(streamed.text, plain.text)
    assert streamed.finish_reason == plain.finish_reason
    assert len(updates) >= 2 and updates[-1] == streamed.text
    assert all(later.startswith(earlier) for earlier, later in zip(updates, updates[1:], strict=False))


def test_server_errors_are_retried_with_growing_pauses(server: TransformersServer, proxy: WatchingProxy) -> None:
    from ocr_studio.runtime.client import RemoteError

    pauses: list[float] = []
    client = RemoteClient(RemoteConfig(proxy.url, model=server.model, retries=3, backoff=0.5), sleep=pauses.append)
    proxy.fail_next = 2
    answer = client.complete(page_image(3), "Read all the text in the image.", max_tokens=2)
    assert answer.text and proxy.completions == 3
    assert pauses == [0.5, 1.0]

    pauses.clear()
    proxy.fail_next = 10
    with pytest.raises(RemoteError, match="failed 4 times in a row.*HTTP 503"):
        client.complete(page_image(3), "Read all the text in the image.", max_tokens=2)
    assert pauses == [0.5, 1.0, 2.0] and proxy.completions == 3 + 4
    proxy.fail_next = 0


def test_a_wrong_model_fails_the_request_with_the_servers_reason(server: TransformersServer) -> None:
    from ocr_studio.runtime.client import RemoteError

    client = RemoteClient(RemoteConfig(server.url, model="someone/else", retries=3, backoff=0.0))
    with pytest.raises(RemoteError, match="does not serve this model") as failure:
        client.complete(page_image(2), "Read all the text in the image.", max_tokens=2)
    assert server.model in str(failure.value)


def test_a_job_runs_through_the_server_in_order_within_the_concurrency_limit(
    server: TransformersServer, proxy: WatchingProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pdf = make_colour_pdf(tmp_path / "inputs" / "six.pdf", 6)
    settings = remote_settings(tmp_path / "ws", proxy.url, server.model, remote_concurrency=3, remote_api_key=API_KEY)
    engine = get_engine("qwen3-vl", settings)
    assert isinstance(engine, RemoteEngine)
    job = JobStore(settings.workspace).create(JobSpec([pdf], "qwen3-vl", Task.TEXT), engine, settings)
    events: list[Progress] = []
    job = run_job(job, engine, settings, progress=events.append)

    assert job.status == "done", job.message
    pages = job.documents[0].pages
    assert [p.page_number for p in pages] == [1, 2, 3, 4, 5, 6]
    finished = [e.page for e in events if e.page is not None and e.partial_text is None]
    assert finished == [1, 2, 3, 4, 5, 6]  # each page reported (and written) in page order
    assert all(p.raw_text and p.engine == "qwen3-vl" and p.truncated for p in pages)
    streamed = [e.partial_text for e in events if e.page == 1 and e.partial_text]
    assert streamed and streamed[-1] == pages[0].raw_text  # page 1 streamed into the progress, ending on its text

    assert proxy.completions == 6
    assert 1 < proxy.max_in_flight <= 3
    for body in proxy.bodies:  # the local engine's own prompt, and the page resized as it resizes pages
        image_part, text_part = body["messages"][0]["content"]
        assert text_part == {"type": "text", "text": PROMPTS[Task.TEXT]}
        width, height = sent_image(image_part).size
        assert width % 32 == 0 and height % 32 == 0 and width * height <= MAX_PIXELS

    # Order kept: each page holds the server's answer for that page's own image.
    direct = RemoteClient(RemoteConfig(server.url, model=server.model))
    request = RecognizeRequest(Task.TEXT)
    for result in pages:
        page = Page.from_image(job.page_image(0, result.page_number), number=result.page_number)
        prepared = engine.local.prepare(page, request)
        answer = direct.complete(prepared.image, prepared.prompt, max_tokens=NEW_TOKENS)
        assert same_text(result.raw_text, answer.text), f"page {result.page_number} holds another page's text"
    assert len({p.raw_text for p in pages}) >= 4  # different pages, different answers: the check above can fail

    # The API key reaches the server as a Bearer header, and nothing else.
    assert proxy.authorization and set(proxy.authorization) == {f"Bearer {API_KEY}"}
    leaked = [str(f) for f in settings.workspace.rglob("*") if f.is_file() and API_KEY.encode() in f.read_bytes()]
    assert leaked == []
    assert API_KEY not in caplog.text
    saved = json.loads((job.dir / "job.json").read_text(encoding="utf-8"))
    assert API_KEY not in json.dumps(saved)
    assert settings.public_dict()["remote_api_key"] == "set"


def test_dots_ocr_sends_its_official_prompt_and_reads_the_answer_with_its_parser(
    server: TransformersServer, proxy: WatchingProxy, tmp_path: Path
) -> None:
    settings = remote_settings(tmp_path / "ws", proxy.url, server.model, engine="dots-ocr", max_pixels=100_000)
    engine = get_engine("dots-ocr", settings)
    assert isinstance(engine, RemoteEngine)
    page = Page.from_image(page_image(4), number=3)
    [result] = engine.recognize([page], RecognizeRequest(Task.LAYOUT_TEXT))

    [body] = proxy.bodies
    image_part, text_part = body["messages"][0]["content"]
    assert text_part["text"] == "<|img|><|imgpad|><|endofimg|>" + prompt_for(Task.LAYOUT_TEXT)
    width, height = sent_image(image_part).size
    assert width % 28 == 0 and height % 28 == 0 and width * height <= 100_000
    assert body["max_tokens"] == NEW_TOKENS
    assert (result.page_number, result.width, result.height) == (3, *page.image.size)
    assert result.engine == "dots-ocr" and result.raw_text and result.truncated  # 8 tokens: cut at the limit


def test_cancel_stops_after_the_pages_in_flight(
    server: TransformersServer, proxy: WatchingProxy, tmp_path: Path
) -> None:
    pdf = make_colour_pdf(tmp_path / "inputs" / "eight.pdf", 8)
    settings = remote_settings(tmp_path / "ws", proxy.url, server.model, remote_concurrency=2)
    engine = get_engine("qwen3-vl", settings)
    job = JobStore(settings.workspace).create(JobSpec([pdf], "qwen3-vl", Task.TEXT), engine, settings)
    cancel = threading.Event()

    def cancel_after_page_one(event: Progress) -> None:
        if event.page == 1 and event.partial_text is None:
            cancel.set()

    job = run_job(job, engine, settings, progress=cancel_after_page_one, cancel=cancel)
    assert job.status == "cancelled"
    assert [p.page_number for p in job.documents[0].pages] == [1]
    assert proxy.completions <= 3  # page 1, the page in flight beside it, nothing sent after the cancel
    assert proxy.in_flight == 0  # and the run waited for what was in flight


def test_a_killed_server_fails_the_job_keeping_pages_and_resume_finishes_it(
    server: TransformersServer, proxy: WatchingProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ocr_studio.runtime.client")
    pdf = make_pdf(tmp_path / "inputs" / "eight.pdf", 8)
    settings = remote_settings(tmp_path / "ws", server.url, server.model, remote_concurrency=2)
    engine = get_engine("qwen3-vl", settings)
    store = JobStore(settings.workspace)
    job = store.create(JobSpec([pdf], "qwen3-vl", Task.TEXT), engine, settings)

    def kill_after_page_two(event: Progress) -> None:
        if event.page == 2 and event.partial_text is None:
            server.kill()

    try:
        job = run_job(job, engine, settings, progress=kill_after_page_two)
    finally:
        if server.process is None:
            server.start()  # the next steps (and tests) need it back

    assert job.status == "failed"
    assert "failed 3 times in a row" in job.message and "finished pages are kept" in job.message
    kept = [p.page_number for p in job.documents[0].pages]
    assert kept[:2] == [1, 2] and len(kept) < 8
    assert any("Retrying" in r.getMessage() for r in caplog.records)
    folder = job.dir / job.inputs[0].folder
    assert (folder / "page-0001.json").is_file() and (folder / "page-0002.json").is_file()

    # Resume against the restarted server (through the proxy, to count what is asked).
    settings_again = remote_settings(tmp_path / "ws", proxy.url, server.model, remote_concurrency=2)
    engine_again = get_engine("qwen3-vl", settings_again)
    again = store.create(JobSpec([pdf], "qwen3-vl", Task.TEXT), engine_again, settings_again)
    assert again.id == job.id  # the server's URL is not part of what makes a job
    again = run_job(again, engine_again, settings_again)
    assert again.status == "done", again.message
    assert [p.page_number for p in again.documents[0].pages] == list(range(1, 9))
    assert proxy.completions == 8 - len(kept)  # only the missing pages were asked for


def test_the_ui_shows_the_server_and_runs_pages_on_it(server: TransformersServer, tmp_path: Path) -> None:
    """Sidebar: the server's health and model; Runs on → Server sends the pages there."""
    from ocr_studio.ui import build_app

    settings = remote_settings(tmp_path / "ws", server.url, server.model, runtime="local")
    studio = build_app(settings).studio  # type: ignore[attr-defined]
    status = studio.server_status("remote")
    assert "✅" in status and server.url in status
    assert "Not in use" in studio.server_status("local")

    pdf = make_colour_pdf(tmp_path / "inputs" / "two.pdf", 2)
    status, markdown, files = studio.convert([str(pdf)], "qwen3-vl", "text", "", "", "", "remote")
    assert "Done" in status, status
    assert markdown.strip() and files
    job = studio.store.history(limit=1)[0]
    assert job.documents[0].pages[0].engine == "qwen3-vl"

    down = build_app(remote_settings(tmp_path / "ws2", "http://127.0.0.1:9", server.model)).studio  # type: ignore[attr-defined]
    assert "❌" in down.server_status("remote") and "does not answer" in down.server_status("remote")
