"""How fast the reader turns pages and reopens jobs (CPU only, no model).

Builds a finished job whose pages carry 10, 100 and 300 layout blocks (a Letter page at
200 DPI with real text drawn on it), starts the studio on 127.0.0.1 and, through the same
HTTP API the page uses, times: opening the job from history, and turning to each page.
"Server" is the time the request took as the client saw it on this machine (server work
plus loopback transfer); "bytes" counts the answer plus every file it points the browser
to (page image, overlays, thumbnails), fetched once as a browser with an empty cache would.

    python benchmarks/bench_viewer.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PIL import Image, ImageDraw  # noqa: E402

from ocr_studio.engines import get_engine  # noqa: E402
from ocr_studio.engines.base import Task  # noqa: E402
from ocr_studio.jobs import JOB_FILE, JobSpec, JobStore, _write_json, _write_page  # noqa: E402
from ocr_studio.results import CATEGORIES, Block, PageResult  # noqa: E402
from ocr_studio.settings import Settings  # noqa: E402

BLOCK_COUNTS = (10, 100, 300)
WIDTH, HEIGHT = 1700, 2200  # US Letter at 200 DPI


def page_with_blocks(number: int, count: int) -> tuple[PageResult, Image.Image]:
    """A page image with ``count`` text boxes drawn on it in reading order, and its result."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    columns = 2 if count > 20 else 1
    rows = -(-count // columns)
    cell_w, cell_h = (WIDTH - 200) / columns, (HEIGHT - 200) / rows
    blocks = []
    for index in range(count):
        column, row = divmod(index, rows)
        x1, y1 = 100 + column * cell_w, 100 + row * cell_h
        box = (x1 + 4, y1 + 2, x1 + cell_w - 8, y1 + cell_h - 2)
        text = f"Block {index + 1} of page {number}: the quick brown fox jumps over the lazy dog."
        draw.rectangle(box, outline="#dddddd")
        draw.text((box[0] + 4, box[1] + 2), text, fill="black")
        category = CATEGORIES[index % len(CATEGORIES)] if index else "Title"
        blocks.append(Block(bbox=box, category="Text" if category in ("Picture", "Table") else category, text=text))
    return PageResult(page_number=number, width=WIDTH, height=HEIGHT, blocks=blocks, engine="bench"), image


def build_job(workspace: Path) -> str:
    """A finished text-layer job with one page per block count; returns its id."""
    import pymupdf

    source = workspace / "bench.pdf"
    pdf = pymupdf.open()
    for _ in BLOCK_COUNTS:
        pdf.new_page(width=612, height=792)
    pdf.save(source)
    settings = Settings(workspace=workspace)
    engine = get_engine("text-layer", settings)
    job = JobStore(workspace).create(JobSpec(files=[source], engine="text-layer", task=Task.TEXT), engine, settings)
    folder = job.dir / job.inputs[0].folder
    for number, count in enumerate(BLOCK_COUNTS, start=1):
        result, image = page_with_blocks(number, count)
        _write_page(folder, result, image)
    state = json.loads((job.dir / JOB_FILE).read_text())
    numbers = list(range(1, len(BLOCK_COUNTS) + 1))
    state["documents"][0].update(page_count=len(numbers), pages=numbers)
    state["status"] = "done"
    _write_json(job.dir / JOB_FILE, state)
    return job.id


def file_urls(value: object) -> list[str]:
    """Every file URL inside a Gradio answer, and every src= in HTML strings."""
    import re

    found: list[str] = []
    if isinstance(value, dict):
        if isinstance(value.get("url"), str):
            found.append(value["url"])
        for item in value.values():
            found.extend(file_urls(item))
    elif isinstance(value, list | tuple):
        for item in value:
            found.extend(file_urls(item))
    elif isinstance(value, str):
        found.extend(re.findall(r'src="([^"]+)"', value))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import httpx

    from tests.test_ui_client import start_server

    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        job_id = build_job(workspace)
        server, url = start_server(workspace)
        studio = server.blocks.studio
        client = httpx.Client(base_url=url.split("?")[0].rstrip("/") + "/", timeout=120)
        try:
            rows = [("reopen job, first time (10-block page)", *measure(client, "open_job", [job_id], 1))]
            studio._jobs.clear()
            rows.append(("reopen job again", *measure(client, "open_job", [job_id], args.repeat, studio._jobs.clear)))
            for number, count in enumerate(BLOCK_COUNTS, start=1):
                data = [job_id, 0, number, False]
                rows.append((f"turn to a {count}-block page", *measure(client, "show_page", data, args.repeat)))
        finally:
            server.close()
    print(f"{'what':40} {'median s':>9} {'min s':>7} {'answer KB':>10} {'files KB':>9} {'files s':>8}")
    for name, median, best, answer, files, files_seconds in rows:
        print(f"{name:40} {median:9.3f} {best:7.3f} {answer / 1024:10.1f} {files / 1024:9.1f} {files_seconds:8.3f}")


def measure(client, api: str, data: list, repeat: int, before=None) -> tuple[float, float, int, int, float]:
    """(median s, best s, answer bytes, bytes of the files it refers to, seconds to fetch them the
    first time, as a browser with an empty cache would)."""
    times, answer_bytes, files_bytes, files_seconds = [], 0, 0, 0.0
    for attempt in range(repeat):
        if before is not None:
            before()
        started = time.perf_counter()
        submitted = client.post(f"gradio_api/call/{api}", json={"data": data})
        submitted.raise_for_status()
        event_id = submitted.json()["event_id"]
        stream = client.get(f"gradio_api/call/{api}/{event_id}")
        times.append(time.perf_counter() - started)
        body = stream.text
        if "event: error" in body:
            raise RuntimeError(body[:500])
        if attempt == 0:
            answer_bytes = len(stream.content)
            payload = json.loads(body.split("data:", 1)[1].strip().split("\n")[0])
            started = time.perf_counter()
            for link in dict.fromkeys(file_urls(payload)):
                files_bytes += len(client.get(link.replace("&amp;", "&")).content)
            files_seconds = time.perf_counter() - started
    return statistics.median(times), min(times), answer_bytes, files_bytes, files_seconds


if __name__ == "__main__":
    main()
