"""Exports a user opens: Markdown keeps formulas and tables, clean drops page furniture,
JSON is lossless, HTML is safe, a job zip holds every document with its picture crops."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from ocr_studio.exporters import FORMATS, ExportError, export_document, export_job_zip, safe_stem
from ocr_studio.results import Block, DocumentResult, PageResult

FORMULA = r"\frac{\partial u}{\partial t} = \alpha \nabla^{2} u + \sum_{i=1}^{n} \beta_i"
TABLE = '<table><thead><tr><th>Name</th><th colspan="2">Score</th></tr></thead><tbody><tr><td>A &amp; B</td><td>1</td><td>2</td></tr></tbody></table>'  # noqa: E501
PICTURE_BBOX = (40.0, 60.0, 140.0, 110.0)  # 100 × 50 pixels
PICTURE_COLOUR = (200, 30, 30)


def sample_document(name: str = "report.pdf") -> DocumentResult:
    page1 = PageResult(
        page_number=1,
        width=400,
        height=300,
        engine="test",
        task="layout_text",
        blocks=[
            Block((0, 0, 400, 20), "Page-header", "ACME Quarterly — confidential"),
            Block((20, 30, 380, 50), "Title", "Results"),
            Block((20, 55, 380, 58), "Text", "Plain paragraph with <script>alert('x')</script> inside."),
            Block(PICTURE_BBOX, "Picture", ""),
            Block((20, 120, 380, 160), "Formula", FORMULA),
            Block((20, 170, 380, 250), "Table", TABLE),
            Block((0, 280, 400, 300), "Page-footer", "Page 1 of 2"),
        ],
        raw_text="raw model output",
        warnings=["something odd"],
        seconds=1.25,
    )
    page2 = PageResult(
        page_number=2,
        width=400,
        height=300,
        engine="test",
        task="layout_text",
        blocks=[Block(None, "Text", "Zweite Seite: Übergrößenträger ✓")],
        truncated=True,
    )
    return DocumentResult(name=name, pages=[page1, page2], page_count=2)


def page_image_with_picture(document_index: int, page_number: int) -> Image.Image:
    image = Image.new("RGB", (400, 300), "white")
    x1, y1, x2, y2 = (int(v) for v in PICTURE_BBOX)
    image.paste(PICTURE_COLOUR, (x1, y1, x2, y2))
    return image


def test_markdown_keeps_latex_formula_and_html_table_unchanged(tmp_path: Path) -> None:
    [md] = export_document(sample_document(), tmp_path, ["md"])
    text = md.read_text(encoding="utf-8")
    assert md.name == "report.md"
    assert f"$$\n{FORMULA}\n$$" in text
    assert TABLE in text
    assert "# Results" in text
    assert "Übergrößenträger ✓" in text


def test_furniture_is_kept_by_default_and_dropped_in_clean_export(tmp_path: Path) -> None:
    text_formats = ["md", "txt", "json", "html"]
    full = {
        p.suffix: p.read_text(encoding="utf-8")
        for p in export_document(sample_document(), tmp_path / "full", text_formats)
        if p.suffix != ".png"
    }
    clean = {
        p.suffix: p.read_text(encoding="utf-8")
        for p in export_document(sample_document(), tmp_path / "clean", text_formats, clean=True)
        if p.suffix != ".png"
    }
    for suffix in (".md", ".txt", ".html"):
        assert "ACME Quarterly" in full[suffix] and "Page 1 of 2" in full[suffix], suffix
        assert "ACME Quarterly" not in clean[suffix] and "Page 1 of 2" not in clean[suffix], suffix
        assert "Results" in clean[suffix], suffix
    assert "ACME Quarterly" in clean[".json"]  # the JSON export is lossless either way


def test_json_export_round_trips_to_an_equal_document(tmp_path: Path) -> None:
    doc = sample_document()
    [path] = export_document(doc, tmp_path, ["json"])
    loaded = DocumentResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    assert loaded == doc
    assert loaded.pages[0].blocks[4].text == FORMULA


def test_html_escapes_text_and_sanitises_table_html(tmp_path: Path) -> None:
    doc = sample_document()
    evil_table = '<table onclick="steal()"><tr><td onmouseover="x()">ok<script>alert(1)</script></td></tr></table><style>body{display:none}</style>'  # noqa: E501
    doc.pages[1].blocks.append(Block((0, 0, 10, 10), "Table", evil_table))
    [path] = export_document(doc, tmp_path, ["html"])
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<script" not in page.lower()
    assert "onclick" not in page and "onmouseover" not in page and "display:none" not in page
    assert "<td>ok</td>" in page
    # a well-formed table survives with its structure and spans
    assert '<th colspan="2">Score</th>' in page and "<td>A &amp; B</td>" in page
    assert f"$$\n{FORMULA}\n$$" in page
    assert "<h1>Results</h1>" in page


def test_job_zip_has_a_folder_per_document_with_files_and_picture_crops(tmp_path: Path) -> None:
    docs = [sample_document("report.pdf"), sample_document("scan.png"), sample_document("report.pdf")]
    calls: list[tuple[int, int]] = []

    def page_image(document_index: int, page_number: int) -> Image.Image:
        calls.append((document_index, page_number))
        return page_image_with_picture(document_index, page_number)

    zip_path = export_job_zip(docs, tmp_path / "job.zip", page_image=page_image)
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
        folders = {name.split("/")[0] for name in names}
        assert folders == {"report", "scan", "report-2"}
        for folder in folders:
            for fmt in FORMATS:
                assert f"{folder}/{folder}.{fmt}" in names
        crop_name = "report/images/page-0001-003.png"
        assert crop_name in names
        crop = Image.open(io.BytesIO(archive.read(crop_name)))
        assert crop.format == "PNG" and crop.size == (100, 50)
        assert crop.convert("RGB").getpixel((50, 25)) == PICTURE_COLOUR
        markdown = archive.read("report/report.md").decode()
        html_page = archive.read("report/report.html").decode()
    assert "![Picture](images/page-0001-003.png)" in markdown
    assert '<img src="images/page-0001-003.png"' in html_page
    assert {index for index, _ in calls} == {0, 1, 2}  # each document asks for its own pages
    assert not [p for p in tmp_path.iterdir() if p.name != "job.zip"]  # no temp files left


def test_pictures_without_a_page_image_are_left_out_not_linked_broken(tmp_path: Path) -> None:
    def gone(document_index: int, page_number: int) -> Image.Image:
        raise FileNotFoundError("page image deleted")

    for source in (None, gone, lambda d, p: None):
        out = tmp_path / str(id(source))
        written = export_document(sample_document(), out, ["md", "html"], page_image=source)
        assert {p.name for p in written} == {"report.md", "report.html"}
        assert "Picture" not in written[0].read_text(encoding="utf-8")
        assert "<img" not in written[1].read_text(encoding="utf-8")


def test_export_document_writes_picture_crops_beside_the_files(tmp_path: Path) -> None:
    written = export_document(sample_document(), tmp_path, ["md"], page_image=page_image_with_picture)
    crop = tmp_path / "report_images" / "page-0001-003.png"
    assert crop in written
    assert Image.open(crop).size == (100, 50)
    assert "![Picture](report_images/page-0001-003.png)" in (tmp_path / "report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["../../evil.pdf", "..\\..\\evil.pdf", "/etc/passwd", "..", ".hidden", "con.pdf"])
def test_malicious_document_names_stay_inside_the_output_folder(tmp_path: Path, name: str) -> None:
    out = tmp_path / "out"
    written = export_document(sample_document(name), out, page_image=page_image_with_picture)
    assert written
    for path in written:
        assert path.resolve().is_relative_to(out.resolve()), path
    with zipfile.ZipFile(export_job_zip([sample_document(name)], tmp_path / "job.zip")) as archive:
        for member in archive.namelist():
            assert not member.startswith("/") and ".." not in member.split("/"), member


def test_safe_stem_keeps_ordinary_names_readable() -> None:
    assert safe_stem("Annual report 2024.pdf") == "Annual report 2024"
    assert safe_stem("../../evil") == "evil"
    assert safe_stem("C:\\Users\\me\\scan.tiff") == "scan"
    assert safe_stem("..") == "document"
    assert safe_stem("CON.pdf") == "CON_"


def test_unknown_format_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="odt"):
        export_document(sample_document(), tmp_path, ["md", "odt"])
    assert not list(tmp_path.iterdir())  # nothing half-written
