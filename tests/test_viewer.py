"""The reader's words and data without a browser: what a status says when things fail, what the
JSON tab shows, which engines are offered, and that a job keeps running when its tab is gone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ocr_studio.engines import engine_infos
from ocr_studio.results import Block, PageResult
from ocr_studio.runtime import availability
from ocr_studio.settings import Settings
from ocr_studio.ui import build_app, viewer
from tests.test_ui_client import KNOWN_TEXT, make_pdf


def test_json_tab_is_compact_with_coordinates_to_a_tenth_of_a_pixel() -> None:
    page = PageResult(
        page_number=1,
        width=1700,
        height=2200,
        blocks=[Block((196.99993896484375, 10.04, 300.5, 40.0), "Title", "Report"), Block(None, "Text", "x")],
    )
    text = viewer.compact_json(page.to_dict())
    assert "196.99993896484375" not in text and "[197.0, 10.0, 300.5, 40.0]" in text
    lines = text.splitlines()
    assert sum('"category"' in line for line in lines) == 2 and len(lines) < 20  # one line per block
    assert json.loads(text)["blocks"][0]["bbox"] == [197.0, 10.0, 300.5, 40.0]


def test_a_failed_run_says_failed_and_why_never_done_with_no_pages(tmp_path: Path) -> None:
    studio = build_app(Settings(workspace=tmp_path / "ws")).studio  # type: ignore[attr-defined]
    broken = tmp_path / "ledger.pdf"
    broken.write_bytes(b"%PDF-1.7\nnot really a pdf")
    status, _, _ = studio.convert([str(broken)], "text-layer", "text", "", "")
    assert status.startswith("Failed: 0 pages from 1 document"), status
    assert "ledger.pdf" in status and "damaged" in status

    job = studio.store.history(limit=1)[0]
    assert viewer.outcome(studio.store.load(job.id)) == "failed"
    assert "failed" in studio.history_choices()[0][0]  # the history list marks it
    reopened = studio.open_job(job.id)
    assert "Failed" in reopened[studio.status] and "damaged" in reopened[studio.status]


def test_a_page_that_failed_is_named_with_its_reason(tmp_path: Path) -> None:
    studio = build_app(Settings(workspace=tmp_path / "ws")).studio  # type: ignore[attr-defined]
    pdf = make_pdf(tmp_path / "two.pdf", [KNOWN_TEXT])
    studio.convert([str(pdf)], "text-layer", "text", "", "")
    job = studio.store.history(limit=1)[0]
    job = studio.store.load(job.id)
    reason = "page 2 took longer than 120 s to render"  # what a failed page leaves: a result holding its reason
    job.documents[0].pages.append(PageResult(page_number=2, width=0, height=0, warnings=[reason]))
    job.page_errors[0][2] = reason
    summary = viewer.job_summary(job)
    assert summary.startswith("**⚠ Partly done:** 1 page from 1 document"), summary  # the failed page is not counted
    assert "two.pdf, page 2: page 2 took longer" in summary

    job.page_errors[0][2] = reason = r"page 2 could not be written to C:\Users\ana\OCR\jobs (disk full)"
    plain = viewer.job_summary(job, plain=True)  # the API's answer: no Markdown, the reason verbatim
    assert plain.startswith("Partly done: 1 page from 1 document.") and "**" not in plain and "⚠" not in plain
    assert f"- two.pdf, page 2: {reason}" in plain


def test_text_pane_escapes_document_text_and_links_each_block_to_its_box() -> None:
    page = PageResult(
        page_number=1,
        width=100,
        height=100,
        blocks=[
            Block((0, 0, 50, 10), "Text", '<img src="http://evil.example/x.png"> [link](http://evil.example)'),
            Block((0, 20, 50, 40), "Table", '<table><tr><td onclick="x()"><a href="http://e">A</a></td></tr></table>'),
        ],
    )
    html = viewer.text_html(page)
    assert "<img" not in html and "&lt;img" in html
    assert "onclick" not in html and "<a" not in html and "<td>A</td>" in html
    assert 'class="blk b-0"' in html and 'class="blk b-1"' in html


def test_vision_engines_without_cuda_are_unavailable_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    infos = {info.name: info for info in engine_infos(Settings())}
    assert infos["text-layer"].available
    for name in ("dots-ocr", "qwen3-vl"):
        assert not infos[name].available and "no CUDA GPU" in infos[name].reason
        assert 'device = "cpu"' in infos[name].reason and "remote" in infos[name].reason
    on_cpu = {i.name: i for i in engine_infos(Settings(device="cpu"))}  # asked for the CPU: slow, but allowed
    assert all("no CUDA GPU" not in on_cpu[name].reason for name in ("dots-ocr", "qwen3-vl"))


def test_a_model_neither_cached_nor_downloadable_is_unavailable(monkeypatch, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    availability.forget()
    infos = {info.name: info for info in engine_infos(Settings(dots_model="rednote-hilab/dots.ocr"))}
    reason = infos["dots-ocr"].reason
    assert not infos["dots-ocr"].available
    assert "not downloaded" in reason and "HF_HUB_OFFLINE" in reason and "dots_model" in reason

    folder = tmp_path / "my-dots"
    folder.mkdir()
    infos = {info.name: info for info in engine_infos(Settings(dots_model=str(folder)))}
    assert not infos["dots-ocr"].available and "no config.json" in infos["dots-ocr"].reason
    (folder / "config.json").write_text("{}")
    assert {info.name: info for info in engine_infos(Settings(dots_model=str(folder)))}["dots-ocr"].available
    availability.forget()


def test_a_remote_server_that_is_down_makes_its_engines_unavailable(tmp_path: Path) -> None:
    availability.forget()
    settings = Settings(workspace=tmp_path, runtime="remote", remote_url="http://127.0.0.1:9/v1", remote_model="m")
    infos = {info.name: info for info in engine_infos(settings)}
    assert infos["text-layer"].available
    assert not infos["qwen3-vl"].available and "127.0.0.1:9" in infos["qwen3-vl"].reason
    studio = build_app(Settings(workspace=tmp_path / "ws", remote_url="http://127.0.0.1:9/v1")).studio  # type: ignore[attr-defined]
    pdf = make_pdf(tmp_path / "a.pdf", [KNOWN_TEXT])
    status, _, _ = studio.convert([str(pdf)], "qwen3-vl", "text", "", "", "", "remote")
    assert status.startswith("Failed") and "unavailable" in status and "127.0.0.1:9" in status
    availability.forget()


def test_a_job_keeps_running_after_its_tab_stops_asking(tmp_path: Path) -> None:
    """Nothing ties a run to a tab: no tick is needed for it to finish, and a new tab attaches."""
    studio = build_app(Settings(workspace=tmp_path / "ws")).studio  # type: ignore[attr-defined]
    pdf = make_pdf(tmp_path / "memo.pdf", [KNOWN_TEXT])
    started = studio.run([str(pdf)], "text-layer", "text", "", "", "", "local")
    job_id = started[studio.job_id]
    assert studio.attach()[studio.job_id] == job_id or not studio.background.get(job_id).running
    run = studio.background.wait(job_id, timeout=120)
    assert run is not None and not run.running and run.error is None
    assert studio.store.load(job_id).status == "done"
    assert studio.attach() == {}  # nothing running: a new tab starts fresh
    final = studio.poll(job_id, None, None, -1)
    assert "Done:** 1 page" in final[studio.status] and KNOWN_TEXT in final[studio.text_view]


def test_the_ocr_languages_chosen_for_a_run_are_the_ones_read_with(tmp_path: Path) -> None:
    """The picker's choice reaches the worker that runs Tesseract: English alone garbles a Russian
    scan, Russian reads it, and the two runs are two jobs (the language keys the cache)."""
    from tests import generated_pages
    from tests.test_text_layer import needs_language

    needs_language("rus")
    studio = build_app(Settings(workspace=tmp_path / "ws")).studio  # type: ignore[attr-defined]
    info = studio.engine_changed("text-layer")
    assert info[studio.languages]["visible"] is True
    assert studio.engine_changed("dots-ocr")[studio.languages]["visible"] is False  # vision models need none
    page = generated_pages.column_scan(tmp_path / "ru.png", generated_pages.RU_PARAGRAPHS[:1], columns=1, height=150)
    english, english_text, _ = studio.convert([str(page.path)], "text-layer", "text", "", "", "", "", ["eng"])
    russian, russian_text, _ = studio.convert([str(page.path)], "text-layer", "text", "", "", "", "", ["rus"])
    assert "Done" in english and "Done" in russian
    assert "последовательность" in russian_text and "последовательность" not in english_text
    assert len({job.id for job in studio.store.history()}) == 2
