"""The Tesseract path on a real page nobody here made (tests/data/linn.png, a 1985 two-column
datasheet; see tests/data/README.md): read upright when scanned sideways, in reading order across
its columns, free of look-alike letters of the other alphabet; a page of nonsense says so; and a
page that could not be read is read again once it can be, never served from the job cache."""

from __future__ import annotations

import json
from pathlib import Path

import pymupdf
import pytest
from PIL import Image, ImageChops

from ocr_studio.documents import Page, open_document
from ocr_studio.engines import scan_page, scripts, tesseract, text_layer
from ocr_studio.engines.base import RecognizeRequest, Task
from ocr_studio.engines.text_layer import TextLayerEngine
from ocr_studio.jobs import JobSpec, JobStore, run_job
from ocr_studio.results import DocumentResult, PageResult
from ocr_studio.searchable_pdf import searchable_pdf
from ocr_studio.settings import Settings, load_settings

DATA = Path(__file__).parent / "data"

needs_osd = pytest.mark.skipif(
    tesseract.find_program() is None or not tesseract.osd_installed() or "eng" not in tesseract.installed_languages(),
    reason="Tesseract with eng and osd data is not installed here (apt install tesseract-ocr-eng tesseract-ocr-osd)",
)


def linn(box: tuple[int, int, int, int]) -> Image.Image:
    """A part of the real page (at its 300 DPI), as a scanner would give it: greyscale."""
    return Image.open(DATA / "linn.png").convert("L").crop(box).convert("RGB")


# the title and the bullet list: full-width lines of one column
TOP = (300, 100, 2250, 1250)
# one line: "• Optional remote control."
LAST_BULLET = (300, 1188, 2250, 1250)
# the two-column middle of the page, the full-width heading under it and the first item of its list
MIDDLE = (300, 1250, 2250, 2415)


def read(image: Image.Image, settings: Settings | None = None) -> tuple[Page, PageResult]:
    page = Page.from_image(image, dpi=300, document_name="linn.png")
    [result] = TextLayerEngine(settings or Settings()).recognize([page], RecognizeRequest(Task.TEXT))
    return page, result


def word_box(result: PageResult, text: str) -> tuple[float, ...]:
    return next(w[0] for block in result.blocks for w in block.words if w[1] == text)


@pytest.fixture(scope="module")
def upright() -> PageResult:
    return read(linn(TOP))[1]


@needs_osd
@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_a_page_scanned_sideways_is_read_upright_and_shown_upright(
    upright: PageResult, degrees: int, tmp_path: Path
) -> None:
    turned = linn(TOP).rotate(degrees, expand=True)  # counter-clockwise: turned back by ``degrees`` clockwise
    scan = tmp_path / "sideways.png"
    turned.save(scan, dpi=(300, 300))
    with open_document(scan) as document:
        page = document.page(1)
        [result] = TextLayerEngine(Settings()).recognize([page], RecognizeRequest(Task.TEXT))

    assert result.rotation == degrees
    assert "One or all tracks may be TRANSPOSED at the touch of a key." in result.text()
    assert result.text() == upright.text()
    # the page the reader shows (and the job saves) is the upright one, and the boxes are in its pixels
    assert page.image.size == (result.width, result.height) == (TOP[2] - TOP[0], TOP[3] - TOP[1])
    for word in ("LinnSequencer", "TRANSPOSED", "synchronization."):
        assert word_box(result, word) == pytest.approx(word_box(upright, word), abs=3)
    # the JSON of the page says how it was turned
    saved = json.loads(json.dumps(result.to_dict(messages=True)))
    assert saved["rotation"] == degrees and PageResult.from_dict(saved).rotation == degrees
    assert upright.rotation == 0 and not upright.warnings

    # the searchable PDF keeps the original scan, shown upright, its text layer on the words
    pdf = pymupdf.open(
        stream=searchable_pdf(DocumentResult("sideways.png", [result]), source_path=scan), filetype="pdf"
    )
    shown = pdf[0]
    assert shown.rotation == degrees % 360
    assert shown.rect.width / shown.rect.height == pytest.approx(result.width / result.height, rel=0.01)
    [found] = shown.search_for("TRANSPOSED")
    found = found * shown.rotation_matrix  # search_for answers on the unrotated page
    scale = shown.rect.width / result.width
    x0, y0, x1, y1 = word_box(result, "TRANSPOSED")
    assert (found.x0, found.y0, found.x1, found.y1) == pytest.approx(
        (x0 * scale, y0 * scale, x1 * scale, y1 * scale), abs=4
    )


@needs_osd
def test_the_columns_of_a_real_datasheet_are_read_one_after_the_other() -> None:
    _, result = read(linn(MIDDLE))
    text = " ".join(result.text().split())
    in_order = [
        "Recording a Sequence",
        "click track.",
        "sustain pedal, and program changes!",
        "Editing",
        "within a sequence,",
        "simply use LOCATE",
        "unwanted sections",
        "Creating a Song",
        "Composition Without Compromise",
        "demonstration!",
        "Additional Features",
        "Simple, easy to learn operation",
    ]
    positions = [text.find(phrase) for phrase in in_order]
    assert -1 not in positions and positions == sorted(positions), list(zip(in_order, positions, strict=True))
    # paragraphs stay inside their column: no block runs across the gutter
    width = MIDDLE[2] - MIDDLE[0]
    columns = [b for b in result.blocks if "Additional" not in b.text and "Simple" not in b.text]
    assert all(b.bbox[2] - b.bbox[0] < 0.55 * width for b in columns)
    # English words only, with the default languages (English and Russian installed)
    assert not any(scripts.counts(w[1])[1] for b in result.blocks for w in b.words)


def test_look_alike_letters_of_the_other_alphabet_are_cleaned() -> None:
    english = ["One", "or", "all", "tracks", "may", "be", "TRАNSPOSED", "Мо", "vote", "9000х9000", "at"]
    english += ["the", "touch", "of", "a", "key", "with", "many", "more", "words", "on", "this", "page"] * 3
    cleaned = scripts.clean_words(english)
    assert cleaned[6] == "TRANSPOSED" and cleaned[7] == "Mo" and cleaned[9] == "9000x9000"
    assert all(not scripts.counts(w)[1] for w in cleaned)
    russian = ["Каждая", "дорожка", "вмещает", "дo", "шестнадцати", "каналов", "нaжмите", "кнопку"] * 5
    cleaned = scripts.clean_words(russian)
    assert cleaned[3] == "до" and cleaned[6] == "нажмите" and all(not scripts.counts(w)[0] for w in cleaned)
    # a page in both languages keeps both: a Russian word of look-alikes stays Russian
    bilingual = ["The", "juice", "is", "called", "СОК", "in", "Russian", "Сок", "это", "juice", "по-английски"] * 3
    assert scripts.clean_words(bilingual) == bilingual


def test_a_page_of_nonsense_is_flagged_and_a_page_of_text_is_not(upright: PageResult) -> None:
    noise = "ee Sa | iM ,. rn' Tae ‘i ae fa eT Sa ed Pe oe TT wi Ri me oe ee".split()
    words = [tesseract.OcrWord((0, 0, 10, 10), w, (1, 1, 1), 30.0) for w in noise]
    assert scan_page.looks_like_nonsense(words)
    prose = "One or all tracks may be TRANSPOSED at the touch of a key, simply press RECORD".split()
    assert not scan_page.looks_like_nonsense([tesseract.OcrWord((0, 0, 10, 10), w, (1, 1, 1), 91.0) for w in prose])
    assert not upright.warnings


@needs_osd
def test_a_page_upside_down_without_orientation_data_is_marked_not_done_silently(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tesseract, "detect_orientation", lambda image, dpi: None)  # as without the osd data
    _, result = read(linn(TOP).rotate(180))
    assert [w.message.id for w in result.warnings] == ["scans.nonsense"]
    assert "does not look like text" in result.warnings[0]
    assert "не похоже на текст" in result.warnings[0].render("ru")


class ReadHere(TextLayerEngine):
    """The engine, run in this process (not the page worker) so that a monkeypatch reaches it."""


def test_a_page_read_without_tesseract_is_read_again_once_it_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "eng" not in tesseract.installed_languages():
        pytest.skip("Tesseract with eng data is not installed here")
    source = tmp_path / "scan.png"
    linn(LAST_BULLET).save(source, dpi=(300, 300))  # one line: "• Optional remote control."
    settings = load_settings(
        config_path=tmp_path / "none.toml", environ={}, overrides={"workspace": str(tmp_path), "ocr_languages": "eng"}
    )
    store = JobStore(settings.workspace)
    spec = JobSpec([source], "text-layer", Task.TEXT)

    monkeypatch.setattr(tesseract, "find_tessdata", lambda: None)
    engine = ReadHere(settings)
    first = run_job(store.create(spec, engine, settings), engine, settings)
    [page] = first.documents[0].pages
    assert page.unread and page.text() == "" and tesseract.NO_TESSERACT in page.warnings
    monkeypatch.undo()  # Tesseract is installed now

    engine = ReadHere(settings)
    again = store.create(spec, engine, settings)
    assert again.id == first.id and again.status != "done"  # the same job, not a cached result
    done = run_job(again, engine, settings)
    [page] = done.documents[0].pages
    assert done.status == "done" and not page.unread and "Optional remote control" in page.text()
    assert store.load(done.id).status == "done"


@needs_osd
def test_an_image_file_is_read_at_its_own_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int | None] = []
    real = tesseract.recognize_image

    def spy(image: Image.Image, languages: str, *, dpi: int | None, **kw: object) -> list[tesseract.OcrWord]:
        seen.append(dpi)
        return real(image, languages, dpi=dpi)

    monkeypatch.setattr(tesseract, "recognize_image", spy)
    stated, unstated = tmp_path / "stated.png", tmp_path / "unstated.png"
    linn(LAST_BULLET).convert("RGBA").save(stated, dpi=(300, 300))  # with alpha: made RGB over white, dpi kept
    linn(LAST_BULLET).save(unstated)
    for path in (stated, unstated):
        with open_document(path) as document:
            TextLayerEngine(Settings()).recognize([document.page(1)], RecognizeRequest(Task.TEXT))
    assert seen == [300, None]  # never the studio's rendering DPI for an image that does not say it


@needs_osd
def test_a_job_saves_and_shows_the_page_upright(upright: PageResult, tmp_path: Path) -> None:
    """Through a job (the page worker reads it): the page image the reader shows is the upright one,
    the page's JSON says how it was turned, and its boxes fall on the words of that image."""
    source = tmp_path / "sideways.png"
    linn(TOP).rotate(270, expand=True).save(source, dpi=(300, 300))
    settings = load_settings(config_path=tmp_path / "none.toml", environ={}, overrides={"workspace": str(tmp_path)})
    engine = TextLayerEngine(settings)
    job = run_job(
        JobStore(settings.workspace).create(JobSpec([source], "text-layer", Task.TEXT), engine, settings),
        engine,
        settings,
    )
    [page] = job.documents[0].pages
    saved = json.loads((job.dir / job.inputs[0].folder / "page-0001.json").read_text(encoding="utf-8"))
    assert saved["rotation"] == 270 and page.rotation == 270
    image = job.page_image(0, 1)
    assert image.size == (page.width, page.height) == (TOP[2] - TOP[0], TOP[3] - TOP[1])
    assert ImageChops.difference(image.convert("L"), linn(TOP).convert("L")).getbbox() is None  # the upright page
    assert word_box(page, "TRANSPOSED") == pytest.approx(word_box(upright, "TRANSPOSED"), abs=3)


def test_each_page_is_read_in_the_languages_of_its_script_unless_the_user_narrowed_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    latin = tesseract.Orientation(rotate=0, confidence=30.0, script="Latin", script_confidence=2.9)
    cyrillic = tesseract.Orientation(rotate=0, confidence=30.0, script="Cyrillic", script_confidence=7.0)
    few_lines = tesseract.Orientation(rotate=0, confidence=5.0, script="Cyrillic", script_confidence=2.2)
    unsure = tesseract.Orientation(rotate=0, confidence=30.0, script="Latin", script_confidence=0.3)
    assert scan_page.page_languages("eng+rus", latin) == "eng"
    assert scan_page.page_languages("eng+rus", cyrillic) == "rus+eng"  # the page's script first
    assert scan_page.page_languages("eng+rus", unsure) == scan_page.page_languages("eng+rus", None) == "eng+rus"
    assert scan_page.page_languages("eng+rus", few_lines) == "eng+rus"  # OSD's "Cyrillic" for an English address
    monkeypatch.setattr(tesseract, "installed_languages", lambda: ["eng", "rus"])
    # "auto", or every language auto reads (the studio's picker as it starts): each page its own
    for choice in ("", "auto", "eng+rus", "rus+eng"):
        assert not TextLayerEngine(Settings(ocr_languages=choice))._explicit()
    assert TextLayerEngine(Settings(ocr_languages="eng"))._explicit()  # the user's narrower choice wins


def test_a_stated_resolution_no_paper_could_have_is_not_believed() -> None:
    def stated(size: tuple[int, int], dpi: int | None) -> int | None:
        image = Image.new("L", size, 255)
        if dpi:
            image.info["dpi"] = (dpi, dpi)
        return text_layer._real_dpi(image)

    assert stated((2550, 3300), 300) == 300  # a letter page at 300 DPI, as the file says
    assert stated((2550, 3300), None) is None  # not said: Tesseract estimates it, as `tesseract IMAGE` does
    assert stated((1998, 2536), 96) == 231  # "96 DPI" would make it a 26-inch page: a letter page's instead
    assert stated((4000, 1000), 72) is None  # not page-shaped: left to Tesseract


@needs_osd
def test_a_turn_osd_is_unsure_of_is_undone_when_the_page_reads_better_as_it_came(
    upright: PageResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = tesseract.Orientation(rotate=90, confidence=5.0, script="Latin", script_confidence=2.0)
    monkeypatch.setattr(tesseract, "detect_orientation", lambda image, dpi: wrong)  # OSD misled by a sparse page
    page, result = read(linn(TOP))
    assert result.rotation == 0 and page.image.size == (TOP[2] - TOP[0], TOP[3] - TOP[1])
    assert result.text() == upright.text() and not result.warnings
