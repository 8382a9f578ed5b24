"""EPUB and FictionBook exports: headings as the table of contents, pictures included, the
document's language set; EPUB checked by epubcheck (Debian's package), FB2 by its own XML Schema."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from lxml import etree
from PIL import Image

from ocr_studio import cli, exporters
from ocr_studio.ebooks import book_file
from ocr_studio.exporters import FORMATS, export_document, export_job_zip
from ocr_studio.results import Block, DocumentResult, PageResult

FB2_SCHEMA = Path(__file__).parent / "data" / "fictionbook" / "FictionBook.xsd"
FB2 = "{http://www.gribuser.ru/xml/fictionbook/2.0}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
XHTML = "{http://www.w3.org/1999/xhtml}"
PICTURE_COLOUR = (200, 30, 60)
HOSTILE_TABLE = '<table onclick="x()"><tr><td>ok<script>alert(1)</script></td><p>stray</p></tr></table>'


def page_image(document_index: int, page_number: int) -> Image.Image:
    image = Image.new("RGB", (1000, 1400), "white")
    image.paste(PICTURE_COLOUR, (100, 600, 400, 800))
    return image


def russian_report(name: str = "Годовой отчёт.pdf") -> DocumentResult:
    page_one = [
        Block((0, 0, 900, 40), "Page-header", "ООО «Ромашка» — колонтитул"),
        Block((0, 50, 900, 100), "Text", "Вступление перед заголовком."),
        Block((0, 110, 900, 160), "Title", "Годовой отчёт"),
        Block((0, 170, 900, 300), "Text", "Первый **важный** абзац.\nВторая строка с `кодом` \x0c и мусором."),
        Block((0, 310, 900, 350), "Section-header", "## Итоги года"),
        Block((0, 360, 900, 380), "List-item", "1. выручка"),
        Block((0, 390, 900, 410), "List-item", "2. расходы"),
        Block(
            (0, 420, 900, 500),
            "Table",
            '<table><tr><th colspan="2">Счёт</th></tr><tr><td>A &amp; B</td><td>3<br>4</td></tr></table>',
        ),  # noqa: E501
        Block((0, 510, 900, 560), "Formula", "E = mc^2"),
        Block((100, 600, 400, 800), "Picture", ""),
        Block((100, 810, 400, 840), "Caption", "Рис. 1. Красный квадрат"),
        Block((0, 850, 900, 900), "Section-header", "### Подробности"),
        Block((0, 910, 900, 960), "Table", HOSTILE_TABLE),
    ]
    page_two = [
        Block((0, 50, 900, 100), "Title", "Глава 2"),
        Block((0, 110, 900, 160), "Text", "Текст второй главы со ссылкой <a href='javascript:x'>тут</a>."),
        Block((0, 1300, 900, 1350), "Page-footer", "стр. 2"),
    ]
    return DocumentResult(name, [PageResult(1, 1000, 1400, page_one), PageResult(2, 1000, 1400, page_two)], 2)


def english_notes() -> DocumentResult:
    return DocumentResult("notes.png", [PageResult(1, 1000, 1400, [Block((0, 0, 10, 10), "Text", "Plain notes.")])], 1)


def epubcheck(path: Path) -> str:
    """epubcheck's report; the test fails on any error (epubcheck's exit status is 1 then)."""
    found = shutil.which("epubcheck")
    if found is None:
        pytest.fail("epubcheck is not installed (Debian package epubcheck; .ci/run installs it)")
    jar = os.path.realpath(found)
    command = ["java", "-jar", jar] if jar.endswith(".jar") else [found]
    run = subprocess.run([*command, str(path)], capture_output=True, text=True, timeout=600)
    report = run.stdout + run.stderr
    assert run.returncode == 0 and "0 fatals / 0 errors" in report, report
    return report


def epub_members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist()[0] == "mimetype" and archive.read("mimetype") == b"application/epub+zip"
        return {name: archive.read(name) for name in archive.namelist()}


def test_epub_of_a_document_validates_and_has_its_headings_pictures_and_language(tmp_path: Path) -> None:
    written = export_document(russian_report(), tmp_path, ["epub"], page_image=page_image)
    assert [p.name for p in written] == ["Годовой отчёт.epub"]
    epubcheck(written[0])
    files = epub_members(written[0])

    nav = etree.fromstring(files["OEBPS/nav.xhtml"])
    toc = nav.find(f".//{XHTML}nav[@id='toc']")
    top = [li.find(f"{XHTML}a").text for li in toc.findall(f"{XHTML}ol/{XHTML}li")]
    assert top == ["Годовой отчёт", "Глава 2"]
    nested = [a.text for a in toc.findall(f"{XHTML}ol/{XHTML}li/{XHTML}ol/{XHTML}li/{XHTML}a")]
    assert nested == ["Итоги года"]
    deeper = toc.findall(f"{XHTML}ol/{XHTML}li/{XHTML}ol/{XHTML}li/{XHTML}ol/{XHTML}li/{XHTML}a")
    assert [a.text for a in deeper] == ["Подробности"]
    assert nav.find(f".//{XHTML}h1").text == "Содержание"  # the book's own words in its language
    pages = [a.text for a in nav.findall(f".//{XHTML}nav[@id='pages']//{XHTML}a")]
    assert pages == ["1", "2"]  # printed pages, so a reader can cite them

    opf = files["OEBPS/content.opf"].decode()
    assert "<dc:language>ru</dc:language>" in opf and "<dc:title>Годовой отчёт</dc:title>" in opf
    [picture] = [name for name in files if name.startswith("OEBPS/images/")]
    crop = Image.open(io.BytesIO(files[picture]))
    assert crop.size == (300, 200) and crop.convert("RGB").getpixel((150, 100)) == PICTURE_COLOUR
    chapters = b"".join(data for name, data in sorted(files.items()) if "chapter-" in name).decode()
    assert f'src="images/{Path(picture).name}"' in chapters and 'alt="Рисунок на странице 1"' in chapters
    assert 'lang="ru"' in chapters
    assert "<strong>важный</strong>" in chapters and "<code>кодом</code>" in chapters
    assert '<th colspan="2">Счёт</th>' in chapters and "<td>A &amp; B</td>" in chapters
    assert "<ol><li>выручка</li><li>расходы</li></ol>" in chapters  # one list, not two
    assert "колонтитул" in chapters  # page furniture stays unless the export is clean
    assert "<script" not in chapters and "onclick" not in chapters and "<a " not in chapters
    assert "&lt;a href='javascript:x'&gt;" in chapters  # model output is text, never markup


def test_epub_of_a_clean_export_leaves_page_furniture_out(tmp_path: Path) -> None:
    [path] = export_document(russian_report(), tmp_path, ["epub"], clean=True)
    chapters = b"".join(v for k, v in epub_members(path).items() if "chapter-" in k).decode()
    assert "колонтитул" not in chapters and "стр. 2" not in chapters
    assert "Вступление" in chapters and "<img" not in chapters  # no page images: no picture, no broken link


def test_epub_of_a_whole_job_puts_each_document_under_its_name_and_validates(tmp_path: Path) -> None:
    docs = [russian_report(), english_notes(), DocumentResult("empty.pdf", [PageResult(1, 10, 10)], 1)]
    data = book_file("epub", docs, [lambda p, i: None] * 3, names=["report", "notes", "empty"], title="Job")
    path = tmp_path / "job.epub"
    path.write_bytes(data)
    epubcheck(path)
    nav = etree.fromstring(epub_members(path)["OEBPS/nav.xhtml"])
    top = [li.find(f"{XHTML}a").text for li in nav.findall(f".//{XHTML}nav[@id='toc']/{XHTML}ol/{XHTML}li")]
    assert top == ["report", "notes", "empty"]


def test_a_document_without_headings_or_text_still_makes_a_valid_book(tmp_path: Path) -> None:
    path = tmp_path / "blank.epub"
    path.write_bytes(book_file("epub", [DocumentResult("blank.png", [PageResult(1, 10, 10)], 1)], [None]))
    epubcheck(path)
    fb2 = etree.fromstring(book_file("fb2", [DocumentResult("blank.png", [PageResult(1, 10, 10)], 1)], [None]))
    assert etree.XMLSchema(etree.parse(str(FB2_SCHEMA))).validate(fb2)


def test_fb2_of_a_document_is_valid_fictionbook_with_sections_pictures_and_language(tmp_path: Path) -> None:
    [path] = export_document(russian_report(), tmp_path, ["fb2"], page_image=page_image)
    assert path.name == "Годовой отчёт.fb2"
    tree = etree.parse(str(path))
    schema = etree.XMLSchema(etree.parse(str(FB2_SCHEMA)))
    assert schema.validate(tree), schema.error_log

    root = tree.getroot()
    assert root.findtext(f"{FB2}description/{FB2}title-info/{FB2}lang") == "ru"
    assert root.findtext(f"{FB2}description/{FB2}title-info/{FB2}book-title") == "Годовой отчёт"
    body = root.find(f"{FB2}body")
    titles = [
        "".join(s.find(f"{FB2}title").itertext())
        for s in body.findall(f"{FB2}section")
        if s.find(f"{FB2}title") is not None
    ]
    assert titles == ["Годовой отчёт", "Глава 2"]
    inner = ["".join(title.itertext()) for title in body.findall(f"{FB2}section/{FB2}section/{FB2}title")]
    assert inner == ["Итоги года"]
    [image] = body.iter(f"{FB2}image")
    [binary] = root.findall(f"{FB2}binary")
    assert image.get(XLINK_HREF) == "#" + binary.get("id") and binary.get("content-type") == "image/png"
    crop = Image.open(io.BytesIO(base64.b64decode(binary.text)))
    assert crop.size == (300, 200) and crop.convert("RGB").getpixel((150, 100)) == PICTURE_COLOUR
    text = path.read_text(encoding="utf-8")
    assert "<strong>важный</strong>" in text and '<th colspan="2">Счёт</th>' in text
    assert "<script" not in text and "javascript:x'&gt;" in text


def test_the_language_follows_the_text() -> None:
    english = etree.fromstring(book_file("fb2", [english_notes()], [None]))
    assert english.findtext(f"{FB2}description/{FB2}title-info/{FB2}lang") == "en"
    with zipfile.ZipFile(io.BytesIO(book_file("epub", [english_notes()], [None]))) as archive:
        assert "<dc:language>en</dc:language>" in archive.read("OEBPS/content.opf").decode()
        assert "<h1>Contents</h1>" in archive.read("OEBPS/nav.xhtml").decode()


def test_the_format_table_is_one_list_everywhere() -> None:
    assert {"epub", "fb2"} <= set(FORMATS)
    assert cli.EXPORT_FORMATS == (*FORMATS, "zip")
    assert set(exporters.FORMAT_LABELS) == set(FORMATS)
    assert exporters.DOCUMENT_FORMATS == FORMATS  # the studio's downloads offer them too


def test_the_job_zip_and_the_cli_write_the_books(tmp_path: Path, monkeypatch, capsys) -> None:
    zip_path = export_job_zip([russian_report(), english_notes()], tmp_path / "job.zip", page_image=page_image)
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
    assert {"Годовой отчёт/Годовой отчёт.epub", "notes/notes.fb2"} <= names

    from tests.test_jobs import make_pdf, page_words

    for name in list(os.environ):
        if name.startswith("OCR_STUDIO_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OCR_STUDIO_CONFIG", str(tmp_path / "absent-config.toml"))
    source = make_pdf(tmp_path / "in" / "memo.pdf", 2)
    out = tmp_path / "out"
    args = ["convert", str(source), "-o", str(out), "--format", "epub,fb2", "-q", "--workspace", str(tmp_path / "w")]
    assert cli.main([*args, "--dpi", "72"]) == 0, capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["memo.epub", "memo.fb2"]
    assert page_words(2) in (out / "memo.fb2").read_text(encoding="utf-8")
    with zipfile.ZipFile(out / "memo.epub") as archive:
        chapters = "".join(archive.read(n).decode() for n in archive.namelist() if re.search(r"chapter-\d+", n))
    assert page_words(1) in chapters and page_words(2) in chapters


def test_the_studio_offers_a_job_of_several_files_as_one_book(tmp_path: Path, monkeypatch) -> None:
    from ocr_studio.engines import get_engine
    from ocr_studio.jobs import JobSpec, run_job
    from ocr_studio.settings import Settings
    from ocr_studio.ui import media
    from ocr_studio.ui.app import build_app
    from tests.test_jobs import make_pdf, page_words

    settings = Settings(workspace=tmp_path / "ws", dpi=72)
    studio = build_app(settings).studio  # type: ignore[attr-defined]
    engine = get_engine("text-layer", settings)
    task = engine.info().default_task
    files = [make_pdf(tmp_path / "letters" / "first.pdf", 1), make_pdf(tmp_path / "letters" / "second.pdf", 2)]
    job = run_job(studio.store.create(JobSpec(files, "text-layer", task), engine, settings), engine, settings)

    books = studio.exports(job)["books"]
    assert set(books) == {"epub", "fb2"}
    epubcheck(books["epub"])
    nav = etree.fromstring(epub_members(books["epub"])["OEBPS/nav.xhtml"])
    top = [li.find(f"{XHTML}a").text for li in nav.findall(f".//{XHTML}nav[@id='toc']/{XHTML}ol/{XHTML}li")]
    assert top == ["first", "second"]
    fb2 = etree.parse(str(books["fb2"]))
    assert etree.XMLSchema(etree.parse(str(FB2_SCHEMA))).validate(fb2)
    assert page_words(2) in books["fb2"].read_text(encoding="utf-8")

    bar = studio.downloads_html(job, 0, False)
    assert f"/download/{job.id}/job/epub?clean=0" in bar and f"/download/{job.id}/job/fb2?clean=0" in bar
    assert media.download_name(job, "job", books["epub"]).endswith(".epub")

    single = run_job(studio.store.create(JobSpec(files[:1], "text-layer", task), engine, settings), engine, settings)
    assert "books" not in studio.exports(single)  # one file: its own book is the job's book
    assert "/job/epub" not in studio.downloads_html(single, 0, False)


def test_a_long_document_without_headings_is_split_into_files_of_pages(tmp_path: Path) -> None:
    pages = [PageResult(n, 100, 100, [Block((0, 0, 9, 9), "Text", f"Page {n} text.")]) for n in range(1, 46)]
    with zipfile.ZipFile(io.BytesIO(book_file("epub", [DocumentResult("long.pdf", pages, 45)], [None]))) as archive:
        chapters = sorted(n for n in archive.namelist() if "chapter-" in n)
        opf = archive.read("OEBPS/content.opf").decode()
        nav = etree.fromstring(archive.read("OEBPS/nav.xhtml"))
        first = archive.read(chapters[0]).decode()
    assert len(chapters) == 3  # 20 pages a file
    assert re.findall(r'<itemref idref="(c\d+)"', opf) == ["c001", "c002", "c003"]
    assert [a.text for a in nav.findall(f".//{XHTML}nav[@id='pages']//{XHTML}a")] == [str(n) for n in range(1, 46)]
    assert "Page 20 text." in first and "Page 21 text." not in first


def test_a_russian_document_full_of_tables_and_formulas_is_still_russian() -> None:
    cells = "".join(f"<tr><td>{n}</td><td>строка</td></tr>" for n in range(40))
    blocks = [Block(None, "Table", f"<table>{cells}</table>"), Block(None, "Formula", r"\frac{a}{b} + \sum_i x_i")]
    blocks.append(Block(None, "Text", "Итоги квартала."))
    fb2 = etree.fromstring(book_file("fb2", [DocumentResult("t.pdf", [PageResult(1, 10, 10, blocks)], 1)], [None]))
    assert fb2.findtext(f"{FB2}description/{FB2}title-info/{FB2}lang") == "ru"


def test_a_job_book_that_cannot_be_made_costs_only_the_books(tmp_path: Path, monkeypatch) -> None:
    from ocr_studio import job_books

    docs = [russian_report(), english_notes()]
    assert set(job_books.job_books_or_none(docs, tmp_path, "job")) == {"epub", "fb2"}

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the book code")

    monkeypatch.setattr(job_books, "book_file", broken)
    assert job_books.job_books_or_none(docs, tmp_path / "again", "job") == {}
    assert not (tmp_path / "again").exists()
