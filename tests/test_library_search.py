"""The document library's search: every recognised block of every job in one SQLite FTS5 index,
found by its words in English and Russian (any form of a word), kept as pages finish, rebuilt
when damaged, and forgetting a job that is deleted. Jobs are real text-layer runs on PDFs made
here with PyMuPDF."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from ocr_studio.engines import get_engine
from ocr_studio.engines.base import Task
from ocr_studio.i18n import render
from ocr_studio.jobs import JobError, JobSpec, JobStore, Progress, run_job
from ocr_studio.library.search_index import SearchIndex, keep_index, search
from ocr_studio.settings import Settings
from tests.generated_pages import FONT
from tests.test_jobs import make_pdf, make_settings

CONTRACT = [
    "The pages of this contract are numbered. Payment is due within thirty days.",
    "Все страницы договора пронумерованы. Оплата производится в течение тридцати дней.",
    "Приложение: таблица цен и график поставок оборудования.",
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "workspace")


def text_pdf(path: Path, pages: list[str]) -> Path:
    """A PDF whose page N carries ``pages[N-1]`` in a font with Cyrillic letters."""
    import pymupdf

    pdf = pymupdf.open()
    for text in pages:
        page = pdf.new_page()
        page.insert_textbox(pymupdf.Rect(72, 72, 520, 400), text, fontsize=12, fontname="dejavu", fontfile=str(FONT))
    pdf.save(path)
    pdf.close()
    return path


def convert(settings: Settings, source: Path, progress=None):
    engine = get_engine("text-layer", settings)
    store = JobStore(settings.workspace)
    job = store.create(JobSpec([source], "text-layer", Task.TEXT), engine, settings)
    return run_job(job, engine, settings, progress=progress)


@pytest.fixture(autouse=True)
def indexing() -> None:
    keep_index()  # as the studio and `convert` do: pages are indexed as they are written


def found(hits) -> list[tuple[str, int, str]]:
    return [(hit.document, hit.page, hit.snippet_text()) for hit in hits]


# --- indexing and searching ----------------------------------------------------------------------


def test_every_form_of_a_word_is_found_in_russian_and_english(tmp_path, settings):
    job = convert(settings, text_pdf(tmp_path / "contract.pdf", CONTRACT))
    index = SearchIndex(settings.workspace)  # as the pages left it: no catching up from the files

    for query in ("страница", "страницы", "СТРАНИЦАМИ", "договор"):
        hits = index.search(query)
        assert [(h.document, h.page) for h in hits] == [("contract.pdf", 2)], query
        assert "[страницы]" in hits[0].snippet_text() or "[договора]" in hits[0].snippet_text()
    for query in ("page", "pages", "paging", "contracts", "numbering"):
        assert [(h.document, h.page) for h in index.search(query)] == [("contract.pdf", 1)], query
    hit = index.search("оборудованием")[0]
    assert (hit.job_id, hit.document_index, hit.page) == (job.id, 0, 3)
    block = job.documents[0].pages[2].blocks[hit.block]
    assert "оборудования" in block.text and hit.bbox == pytest.approx(block.bbox)
    assert index.search("таблица поставок") and not index.search("таблица договор")  # every word, same block
    assert not index.search("invoice") and not index.search("") and not index.search('"*-()')
    assert "[в] [течение]" in index.search('"в течение"')[0].snippet_text()  # a phrase: these words in this order
    assert not index.search('"течение в"')


def test_forms_of_a_word_share_one_stem_and_other_scripts_are_kept_as_written():
    from ocr_studio.library.search_index import Query, plain_text, stem

    assert len({stem(w) for w in ("страница", "страницы", "странице", "страницами", "СТРАНИЦ")}) == 1
    assert stem("отчёта") == stem("Отчет") and stem("pages") == stem("Page") == stem("paging")
    assert stem("2025") == "2025" and stem("Ωμέγα") == "ωμέγα" and stem("東京") == "東京"
    query = Query.parse('счёт* "в течение" NEAR(x) -y')
    assert query is not None and query.fts == '"счет" * "в течен" "near" "x" "y"'
    assert plain_text("<table><tr><td>Цена &amp; срок</td></tr></table>", markup=True) == "Цена & срок"
    assert plain_text("a <b> c\n\n d") == "a <b> c d"  # literal text keeps its signs


def test_pages_are_searchable_as_soon_as_they_are_written(tmp_path, settings):
    seen: dict[int, list] = {}

    def progress(event: Progress) -> None:
        if event.page is not None and event.partial_text is None and event.error is None:
            index = SearchIndex(settings.workspace)
            seen[event.page] = [h.page for h in index.search("страницы")] + [h.page for h in index.search("цен")]

    convert(settings, text_pdf(tmp_path / "contract.pdf", CONTRACT), progress)

    assert seen == {1: [], 2: [2], 3: [2, 3]}


def test_a_missing_or_damaged_index_is_built_again_from_the_job_files(tmp_path, settings):
    convert(settings, text_pdf(tmp_path / "contract.pdf", CONTRACT))
    convert(settings, make_pdf(tmp_path / "report.pdf", 2))
    expected = found(search(settings.workspace, "pages"))
    assert sorted(page for _, page, _ in expected) == [1, 1, 2]  # "Page 1 says…", "Page 2 says…", the contract
    path = SearchIndex(settings.workspace).path

    path.unlink()
    assert found(search(settings.workspace, "pages")) == expected

    path.write_bytes(b"this is not a database" * 100)
    assert found(search(settings.workspace, "pages")) == expected
    assert found(search(settings.workspace, "страница")) == [("contract.pdf", 2, found_snippet(settings))]

    data = bytearray(path.read_bytes())  # pages of the file overwritten in the middle
    data[4096 : 4096 * 3] = b"\xff" * (4096 * 2)
    path.write_bytes(bytes(data))
    assert found(search(settings.workspace, "pages")) == expected


def test_an_index_damaged_after_catching_up_is_built_again_before_the_answer(tmp_path, settings, monkeypatch):
    from ocr_studio.library import search_index

    convert(settings, text_pdf(tmp_path / "contract.pdf", CONTRACT))
    expected = found(search(settings.workspace, "договор"))
    real_sync, calls = search_index.sync, []

    def sync_then_damage(workspace):
        index = real_sync(workspace)
        calls.append(workspace)
        if len(calls) == 1:  # damaged between the catching-up and the query
            index.path.write_bytes(b"\0garbage" * 512)
        return index

    monkeypatch.setattr(search_index, "sync", sync_then_damage)
    assert found(search_index.search(settings.workspace, "договор")) == expected
    assert len(calls) == 2


def found_snippet(settings: Settings) -> str:
    return SearchIndex(settings.workspace).search("страница")[0].snippet_text()


def test_a_job_whose_files_changed_or_went_is_read_again(tmp_path, settings):
    job = convert(settings, text_pdf(tmp_path / "contract.pdf", CONTRACT))
    other = convert(settings, make_pdf(tmp_path / "report.pdf", 1))
    assert search(settings.workspace, "договор") and search(settings.workspace, "hello")

    import shutil

    shutil.rmtree(other.dir)  # gone behind the studio's back
    page = job.dir / job.inputs[0].folder / "page-0002.json"
    page.write_text(page.read_text(encoding="utf-8").replace("договора", "соглашения"), encoding="utf-8")
    state = job.dir / "job.json"
    state.write_text(state.read_text(encoding="utf-8") + " ", encoding="utf-8")  # the job file changed too

    assert not search(settings.workspace, "hello")
    assert not search(settings.workspace, "договор")
    assert [h.page for h in search(settings.workspace, "соглашение")] == [2]


# --- deleting a job ------------------------------------------------------------------------------


def test_a_deleted_job_is_gone_from_disk_history_and_downloads(tmp_path, settings):
    keep = convert(settings, make_pdf(tmp_path / "keep.pdf", 1))
    gone = convert(settings, make_pdf(tmp_path / "gone.pdf", 2))
    exports = Path(settings.workspace) / "exports" / gone.id / "full"
    exports.mkdir(parents=True)
    (exports / "gone.md").write_text("Page 1 says hello", encoding="utf-8")
    store = JobStore(settings.workspace)

    assert search(settings.workspace, "hello")
    index = SearchIndex(settings.workspace)
    assert {h.job_id for h in index.search("page")} == {keep.id, gone.id}

    store.delete(gone.id)

    assert {h.job_id for h in index.search("page")} == {keep.id}  # at once, not at the next catching up
    assert {h.job_id for h in search(settings.workspace, "page")} == {keep.id}
    assert not gone.dir.exists() and not exports.parent.exists()
    assert [job.id for job in store.history()] == [keep.id]
    assert not [p for p in store.root.iterdir() if p.name != keep.id]  # nothing left behind, renamed or not
    with pytest.raises(JobError, match="No job"):
        store.load(gone.id)
    assert store.load(keep.id).status == "done"


def test_deleting_refuses_a_running_job_a_bad_id_and_a_missing_job(tmp_path, settings):
    job = convert(settings, make_pdf(tmp_path / "report.pdf", 1))
    store = JobStore(settings.workspace)
    state = json.loads((job.dir / "job.json").read_text(encoding="utf-8"))
    state.update(status="running", pid=os.getppid())  # another process that is alive runs it
    (job.dir / "job.json").write_text(json.dumps(state), encoding="utf-8")

    with pytest.raises(JobError) as refused:
        store.delete(job.id)
    assert "cancel it" in str(refused.value) and "отмените" in render(refused.value.message, "ru")
    assert (job.dir / "job.json").is_file()

    for bad in ("../../etc", "", "ABC", job.id + "/.."):
        with pytest.raises(JobError, match="not a job id"):
            store.delete(bad)
    with pytest.raises(JobError, match="No job"):
        store.delete("0" * 20)
    assert (job.dir / "job.json").is_file()


def test_deleting_refuses_a_job_running_in_this_process(tmp_path, settings):
    from ocr_studio import jobs

    job = convert(settings, make_pdf(tmp_path / "report.pdf", 1))
    entered, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with jobs._running(job.id):  # what run_job holds while the job runs
            entered.set()
            leave.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert entered.wait(10)
        with pytest.raises(JobError, match="is running"):
            JobStore(settings.workspace).delete(job.id)
    finally:
        leave.set()
        thread.join()
    assert job.dir.is_dir()
    JobStore(settings.workspace).delete(job.id)  # once it stopped
    assert not job.dir.exists()


# --- ocr-studio search ---------------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch, tmp_path):
    """No OCR_STUDIO_* variable and no config file of the machine; the language put back after."""
    from ocr_studio import i18n

    for name in list(os.environ):
        if name.startswith("OCR_STUDIO_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OCR_STUDIO_CONFIG", str(tmp_path / "absent-config.toml"))
    monkeypatch.setenv("LANG", "C.UTF-8")
    yield monkeypatch
    i18n.set_language("en")


def test_ocr_studio_search_lists_document_page_and_snippet_in_either_language(tmp_path, cli_env, capsys):
    from ocr_studio.cli import main

    workspace = str(tmp_path / "workspace")
    source = text_pdf(tmp_path / "contract.pdf", CONTRACT)
    assert main(["convert", str(source), "-o", str(tmp_path / "out"), "-q", "--workspace", workspace]) == 0
    capsys.readouterr()

    assert main(["search", "страница", "--workspace", workspace]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("contract.pdf, page 2: Все [страницы] договора пронумерованы.")
    assert main(["search", "Pages", "numbered", "--workspace", workspace]) == 0
    assert capsys.readouterr().out.startswith("contract.pdf, page 1: The [pages] of this contract are [numbered].")

    assert main(["search", "invoice", "--workspace", workspace]) == 1
    assert capsys.readouterr().err.strip() == "Nothing found for “invoice”."
    assert main(["search", "*", "--workspace", workspace]) == 2
    assert "Nothing to search for" in capsys.readouterr().err

    cli_env.setenv("OCR_STUDIO_LANGUAGE", "ru")
    assert main(["search", "цены", "--workspace", workspace]) == 0
    assert capsys.readouterr().out.startswith("contract.pdf, страница 3: Приложение: таблица [цен]")
    assert main(["search", "счёт", "--workspace", workspace]) == 1
    assert capsys.readouterr().err.strip() == "По запросу «счёт» ничего не найдено."


def test_ocr_studio_search_stops_at_the_limit_and_says_so(tmp_path, cli_env, capsys):
    from ocr_studio.cli import main

    workspace = str(tmp_path / "workspace")
    source = make_pdf(tmp_path / "report.pdf", 3)
    assert main(["convert", str(source), "-o", str(tmp_path / "out"), "-q", "--workspace", workspace]) == 0
    capsys.readouterr()

    assert main(["search", "hello", "--limit", "2", "--workspace", workspace]) == 0
    captured = capsys.readouterr()
    pages = [line.split(":")[0] for line in captured.out.splitlines()]
    assert len(set(pages)) == 2 and set(pages) < {f"report.pdf, page {n}" for n in (1, 2, 3)}
    assert "The first 2 are shown" in captured.err
    assert main(["search", "hello", "--limit", "0", "--workspace", workspace]) == 2


# --- the studio's list of matches ----------------------------------------------------------------


def test_the_studios_matches_escape_document_text_and_names(tmp_path, settings):
    from ocr_studio.ui.search import hits_html, parse_target

    hostile = ['<script>alert(1)</script> Все страницы <img src=x onerror=alert(2)> & "кавычки"']
    name = '<b onmouseover="x()">evil</b>.pdf'
    convert(settings, text_pdf(tmp_path / "report.pdf", hostile))
    job = JobStore(settings.workspace).history()[0]
    state = json.loads((job.dir / "job.json").read_text(encoding="utf-8"))
    state["inputs"][0]["name"] = name  # a file name the uploader chose
    (job.dir / "job.json").write_text(json.dumps(state), encoding="utf-8")

    hits = search(settings.workspace, "страница")
    markup = hits_html(hits, "страница")

    assert "<script>" not in markup and "<img" not in markup and "<b " not in markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markup and "&lt;img src=x onerror=alert(2)&gt;" in markup
    assert "&lt;b onmouseover=&quot;x()&quot;&gt;evil&lt;/b&gt;.pdf · page 1" in markup
    assert "<mark>страницы</mark>" in markup
    assert f'data-hit="{job.id}:0:1:{hits[0].block}"' in markup
    assert parse_target(f"{job.id}:0:1:{hits[0].block}:1733612345678") == (job.id, 0, 1, hits[0].block)
    for bad in ("", "../../etc:0:1:0", f"{job.id}:0:1", f"{job.id}:-1:1:0", f"{job.id}:0:1:0;rm", None):
        assert parse_target(bad) is None
    assert "Nothing found for “x &lt;y&gt;”." in hits_html([], "x <y>")
