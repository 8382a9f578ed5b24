"""Opening PDFs and images into pages: formats, colours, text layer, limits and every bad input."""

from __future__ import annotations

import threading
import time

import pymupdf
import pytest
from PIL import Image

from ocr_studio.documents import (
    SUPPORTED_SUFFIXES,
    DocumentError,
    Limits,
    Page,
    check_page_budget,
    open_document,
    parse_page_range,
)
from tests import badfiles


def close_to(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 3) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


# --- images -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt, suffix", [("PNG", ".png"), ("WEBP", ".webp"), ("BMP", ".bmp"), ("JPEG", ".jpg")])
def test_plain_image_formats_open_as_one_rgb_page(tmp_path, fmt, suffix):
    path = tmp_path / f"picture{suffix}"
    badfiles.solid_image(path, fmt, (200, 30, 60), size=(50, 30))
    with open_document(path) as doc:
        assert (doc.kind, doc.page_count, doc.name) == ("image", 1, path.name)
        page = doc.page(1)
        assert page.size == (50, 30)
        assert page.image.mode == "RGB"
        assert page.image.size == (50, 30)
        assert close_to(page.image.getpixel((25, 15)), (200, 30, 60), tolerance=4 if fmt == "JPEG" else 0)
        assert page.text_spans() == []


def test_jpeg_exif_orientation_turns_the_page(tmp_path):
    path = tmp_path / "phone.jpg"
    badfiles.exif_rotated_jpeg(path, size=(80, 40), orientation=6)  # stored landscape, shown portrait
    with open_document(path) as doc:
        page = doc.page(1)
        assert page.size == (40, 80)  # known from the header, before decoding
        image = page.image
        assert image.size == (40, 80)
        # Orientation 6 turns the image clockwise: the stored left (black) half ends up on top.
        assert image.getpixel((20, 10))[0] < 60
        assert image.getpixel((20, 70))[0] > 200


def test_every_tiff_frame_is_a_page_decoded_on_demand(tmp_path):
    path = tmp_path / "scan.tiff"
    colours = badfiles.multi_frame_tiff(path, 4, size=(64, 48))
    with open_document(path) as doc:
        assert doc.page_count == 4
        pages = list(doc.pages())
        assert [p.number for p in pages] == [1, 2, 3, 4]
        assert [p.size for p in pages] == [(65, 48), (66, 48), (67, 48), (68, 48)]
        assert all(p._image is None for p in pages)  # nothing decoded yet
        assert pages[2].image.getpixel((5, 5)) == colours[2]
        assert pages[0]._image is None
        assert pages[0].image.getpixel((5, 5)) == colours[0]


def test_tiff_frames_keep_their_own_orientation(tmp_path):
    path = tmp_path / "turned.tiff"
    badfiles.tiff_with_turned_second_frame(path, size=(80, 40))
    with open_document(path) as doc:
        upright, turned = doc.pages()
        assert (upright.size, turned.size) == ((80, 40), (40, 80))
        assert (upright.image.size, turned.image.size) == ((80, 40), (40, 80))
        assert upright.image.getpixel((10, 20)) == (0, 0, 0)  # stored left half still on the left
        assert turned.image.getpixel((20, 10)) == (0, 0, 0)  # turned: the left half is now on top
        assert turned.image.getpixel((20, 70)) == (255, 255, 255)


def test_animated_gif_is_its_first_frame_only(tmp_path):
    path = tmp_path / "anim.gif"
    colours = badfiles.animated_gif(path, 3)
    with open_document(path) as doc:
        assert doc.page_count == 1
        assert close_to(doc.page(1).image.getpixel((10, 10)), colours[0])


def test_cmyk_jpeg_keeps_its_colour(tmp_path):
    path = tmp_path / "print.jpg"
    badfiles.cmyk_jpeg(path, (0, 255, 255, 0))  # magenta + yellow ink = red
    with open_document(path) as doc:
        red, green, blue = doc.page(1).image.getpixel((16, 16))
    assert red > 200 and green < 60 and blue < 60


def test_palette_png_transparency_becomes_white(tmp_path):
    path = tmp_path / "palette.png"
    badfiles.palette_png_with_transparency(path)
    with open_document(path) as doc:
        image = doc.page(1).image
    assert image.mode == "RGB"
    assert image.getpixel((5, 10)) == (255, 255, 255)  # transparent, not black
    assert image.getpixel((30, 10)) == (0, 0, 255)


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "grey16.png"
    badfiles.gray16_png(path, 32896)  # mid grey in 16 bits; clipping would make it white
    with open_document(path) as doc:
        image = doc.page(1).image
    assert image.mode == "RGB"
    assert close_to(image.getpixel((3, 3)), (128, 128, 128), tolerance=1)


def test_alpha_is_composited_over_white(tmp_path):
    path = tmp_path / "rgba.png"
    badfiles.rgba_png(path, (0, 0, 0, 0))
    half = tmp_path / "half.png"
    badfiles.rgba_png(half, (0, 0, 0, 128))
    with open_document(path) as doc, open_document(half) as doc_half:
        assert doc.page(1).image.getpixel((1, 1)) == (255, 255, 255)
        assert close_to(doc_half.page(1).image.getpixel((1, 1)), (127, 127, 127), tolerance=2)


def test_image_wrapped_as_pdf_renders_back_to_its_size(tmp_path):
    path = tmp_path / "scan.png"
    badfiles.text_png(path, ["Hello"], dpi=120)
    with open_document(path) as doc:
        page = doc.page(1)
        width, height = page.size
        pdf_page = page.pdf_page()
        pixmap = pdf_page.get_pixmap(dpi=page.dpi)
        assert (pixmap.width, pixmap.height) == (width, height)
        assert pdf_page.get_text().strip() == ""  # a picture of text has no text layer


def test_page_from_image_in_memory():
    page = Page.from_image(Image.new("LA", (10, 8), (0, 0)), number=3)
    assert page.number == 3 and page.size == (10, 8)
    assert page.image.getpixel((0, 0)) == (255, 255, 255)


def test_detection_ignores_the_extension(tmp_path):
    png_named_pdf = tmp_path / "really-a-png.pdf"
    badfiles.solid_image(png_named_pdf, "PNG", (1, 2, 3))
    pdf_named_png = tmp_path / "really-a-pdf.png"
    badfiles.pages_pdf(pdf_named_png, 2)
    with open_document(png_named_pdf) as image_doc, open_document(pdf_named_png) as pdf_doc:
        assert image_doc.kind == "image"
        assert (pdf_doc.kind, pdf_doc.page_count) == ("pdf", 2)


def test_supported_suffixes_cover_the_formats():
    assert {".pdf", ".png", ".jpg", ".tiff", ".webp", ".bmp", ".gif"} <= set(SUPPORTED_SUFFIXES)


# --- PDFs ---------------------------------------------------------------------------------------------------------


def test_pdf_text_layer_positions_are_in_page_pixels(tmp_path):
    path = tmp_path / "text.pdf"
    written = badfiles.text_pdf(path, ["First line of text", "Second line here"], origin=(72, 100), line_gap=40)
    with open_document(path, limits=Limits(dpi=144)) as doc:
        page = doc.page(1)
        assert page.size == (1190, 1684)  # A4 at 144 DPI: points × 2
        spans = page.text_spans()
    assert [s.text for s in spans] == ["First line of text", "Second line here"]
    for span, (_, (x, baseline)) in zip(spans, written, strict=True):
        x0, y0, x1, y1 = span.bbox
        assert abs(x0 - x * 2) < 4  # starts where it was written, in pixels
        assert y0 < baseline * 2 < y1 + 2
        assert 20 < y1 - y0 < 40  # a 12 pt line is about 24 pixels tall at 144 DPI
        assert x1 > x0 + 100


def test_text_layer_follows_page_rotation(tmp_path):
    path = tmp_path / "rotated.pdf"
    badfiles.text_pdf(path, ["Turned"], page_size=(400, 200), origin=(50, 60))
    pdf = pymupdf.open(path)
    pdf[0].set_rotation(90)
    rotated = tmp_path / "rotated2.pdf"
    pdf.save(rotated)
    pdf.close()
    with open_document(rotated, limits=Limits(dpi=72)) as doc:
        page = doc.page(1)
        assert page.size == (200, 400)
        (span,) = page.text_spans()
        x0, y0, x1, y1 = span.bbox
        assert 0 <= x0 < x1 <= 200 and 0 <= y0 < y1 <= 400
        assert y1 - y0 > x1 - x0  # the line now runs down the page
        # the rendered image has ink inside the span's box
        crop = page.image.crop((int(x0), int(y0), int(x1) + 1, int(y1) + 1)).convert("L")
        assert crop.getextrema()[0] < 100


def test_pdf_pages_render_lazily_and_once(tmp_path):
    path = tmp_path / "pages.pdf"
    badfiles.pages_pdf(path, 3, page_size=(300, 200))
    with open_document(path) as doc:
        assert (doc.kind, doc.page_count) == ("pdf", 3)
        page = doc.page(2)
        assert page.size == (834, 556)  # 300×200 pt at the default 200 DPI, without rendering
        assert page._image is None
        image = page.image
        assert image.mode == "RGB" and image.size == page.size
        assert page.image is image
        assert "Page 2" in page.pdf_page().get_text()


def test_dpi_sets_the_pixel_size(tmp_path):
    path = tmp_path / "pages.pdf"
    badfiles.pages_pdf(path, 1, page_size=(72, 144))
    with open_document(path, limits=Limits(dpi=100)) as doc:
        assert doc.page(1).image.size == (100, 200)
        assert doc.page(1, dpi=300).size == (300, 600)
        assert doc.page(1, dpi=300).image.size == (300, 600)


def test_encrypted_pdf_asks_for_its_password(tmp_path):
    path = tmp_path / "locked.pdf"
    badfiles.encrypted_pdf(path, "s3cret", text="Hidden words")
    with pytest.raises(DocumentError, match="password") as missing:
        open_document(path)
    assert missing.value.needs_password
    with pytest.raises(DocumentError, match="wrong") as wrong:
        open_document(path, password="guess")
    assert wrong.value.needs_password
    with open_document(path, password="s3cret") as doc:
        page = doc.page(1)
        assert [s.text for s in page.text_spans()] == ["Hidden words"]
        assert page.image.convert("L").getextrema()[0] < 100  # really rendered, not blank


def test_truncated_pdf_is_refused_clearly(tmp_path):
    path = tmp_path / "cut.pdf"
    badfiles.truncated_pdf(path, keep=0.4)
    with pytest.raises(DocumentError, match="damaged or truncated") as error:
        open_document(path)
    assert error.value.path == str(path)


def test_pdf_missing_its_trailer_is_repaired(tmp_path):
    path = tmp_path / "no-trailer.pdf"
    badfiles.repairable_pdf(path, "Still readable")
    with open_document(path) as doc:
        assert doc.page_count == 1
        assert [s.text for s in doc.page(1).text_spans()] == ["Still readable"]


def test_zero_page_pdf(tmp_path):
    path = tmp_path / "empty.pdf"
    badfiles.zero_page_pdf(path)
    with pytest.raises(DocumentError, match="no pages"):
        open_document(path)


def test_damaged_page_renders_with_a_warning(tmp_path):
    path = tmp_path / "damaged.pdf"
    badfiles.damaged_page_pdf(path)
    with open_document(path) as doc:
        good, bad = doc.page(1), doc.page(2)
        assert good.image.size == bad.image.size
        assert good.warnings == []
        assert bad.warnings and all(w.startswith("page 2 ") for w in bad.warnings)


def test_render_failure_names_the_page_and_spares_the_others(tmp_path, monkeypatch):
    path = tmp_path / "pages.pdf"
    badfiles.pages_pdf(path, 3)
    real = pymupdf.Page.get_pixmap

    def broken_on_page_2(self, *args, **kwargs):
        if self.number == 1:
            raise RuntimeError("cannot draw this content")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pymupdf.Page, "get_pixmap", broken_on_page_2)
    with open_document(path) as doc:
        with pytest.raises(DocumentError, match="page 2 could not be rendered.*cannot draw"):
            _ = doc.page(2).image
        assert doc.page(3).image.size == doc.page(3).size


def test_page_too_large_to_render_is_refused_before_rendering(tmp_path):
    path = tmp_path / "poster.pdf"
    badfiles.big_page_pdf(path, 7200, 7200)  # 100×100 inches
    with open_document(path, limits=Limits(max_image_pixels=50_000_000)) as doc:
        page = doc.page(1)
        assert page.size == (20000, 20000)
        started = time.monotonic()
        with pytest.raises(DocumentError, match="too large to render at 200 DPI.*lower the DPI"):
            _ = page.image
        assert time.monotonic() - started < 1
    with open_document(path, limits=Limits(max_image_pixels=50_000_000, dpi=50)) as doc:
        assert doc.page(1).image.size == (5000, 5000)


# --- bad inputs ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["noise.pdf", "noise.png", "noise"])
def test_random_bytes_are_not_a_document_whatever_the_name(tmp_path, name):
    path = tmp_path / name
    badfiles.random_bytes(path)
    with pytest.raises(DocumentError, match="not a PDF or an image"):
        open_document(path)


def test_png_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    badfiles.png_bomb(path, 100_000, 100_000)
    started = time.monotonic()
    with pytest.raises(DocumentError, match="too large.*megapixels") as error:
        open_document(path)
    assert time.monotonic() - started < 1
    assert "10000.0 megapixels" in str(error.value)


def test_image_over_our_own_pixel_limit_is_refused_from_its_header(tmp_path):
    path = tmp_path / "big.png"
    badfiles.png_bomb(path, 3000, 2000)  # 6 MP claimed, pixel data absent: only a header read can refuse it
    with pytest.raises(DocumentError, match=r"3000×2000 pixels \(6.0 megapixels\).*limit of 1.0 megapixels"):
        open_document(path, limits=Limits(max_image_pixels=1_000_000))


def test_small_limits_refuse_small_images_but_never_lower_pils_own_limit(tmp_path):
    path = tmp_path / "small.png"
    badfiles.solid_image(path, "PNG", (0, 0, 0), size=(50, 30))
    with pytest.raises(DocumentError, match=r"50×30 pixels \(1500 pixels\), more than the limit of 10 pixels"):
        open_document(path, limits=Limits(max_image_pixels=10))
    assert Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS >= Limits().max_image_pixels


def test_truncated_image_fails_on_its_page(tmp_path):
    path = tmp_path / "cut.png"
    badfiles.truncated_png(path)
    with open_document(path) as doc:
        with pytest.raises(DocumentError, match="page 1 is damaged or truncated"):
            _ = doc.page(1).image


def test_empty_file(tmp_path):
    path = tmp_path / "empty.pdf"
    badfiles.empty_file(path)
    with pytest.raises(DocumentError, match="empty"):
        open_document(path)


def test_file_over_the_size_limit_is_refused_unread(tmp_path):
    path = tmp_path / "pages.pdf"
    badfiles.pages_pdf(path, 2)
    with pytest.raises(DocumentError, match="more than the limit of 100 bytes per file.*max_file_mb"):
        open_document(path, limits=Limits(max_file_bytes=100))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DocumentError, match="does not exist"):
        open_document(tmp_path / "nope.pdf")
    with pytest.raises(DocumentError, match="folder"):
        open_document(tmp_path)


def test_unsupported_image_format(tmp_path):
    path = tmp_path / "icon.png"
    Image.new("RGB", (16, 16)).save(path, format="ICO")
    with pytest.raises(DocumentError, match="ICO image.*convert it"):
        open_document(path)


def test_closed_document_says_so(tmp_path):
    path = tmp_path / "pages.pdf"
    badfiles.pages_pdf(path, 1)
    doc = open_document(path)
    page = doc.page(1)
    doc.close()
    with pytest.raises(DocumentError, match="closed"):
        _ = page.image
    with pytest.raises(DocumentError, match="closed"):
        doc.page(1)


# --- page ranges and the page budget ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("1-3,7", [1, 2, 3, 7]),
        (" 2 , 4-5 ", [2, 4, 5]),
        ("5-", [5, 6, 7, 8, 9, 10]),
        ("-3", [1, 2, 3]),
        ("3,1,2-3", [1, 2, 3]),
        ("8 - 10,", [8, 9, 10]),
        ("4–6", [4, 5, 6]),
        ("", list(range(1, 11))),
        (None, list(range(1, 11))),
    ],
)
def test_page_ranges(spec, expected):
    assert parse_page_range(spec, 10) == expected


@pytest.mark.parametrize(
    "spec, message",
    [
        ("abc", r'"abc" .*is not a page or a range.*pages 1-10'),
        ("1-2-3", "is not a page or a range"),
        ("-", "is not a page or a range"),
        ("0", r"page 0 .*out of range; this document has pages 1-10"),
        ("11", "page 11 .*out of range"),
        ("9-12", "page 12 .*out of range"),
        ("11-", "page 11 .*out of range"),
        ("5-3", "starts after it ends; write it as 3-5"),
        (",", "names no pages"),
    ],
)
def test_bad_page_ranges(spec, message):
    with pytest.raises(DocumentError, match=message):
        parse_page_range(spec, 10)


def test_pages_per_job_limit(tmp_path):
    path = tmp_path / "pages.pdf"
    badfiles.pages_pdf(path, 6)
    limits = Limits(max_pages=4)
    with open_document(path, limits=limits) as doc:  # opening is fine; a job may pick a range
        with pytest.raises(DocumentError, match=r"6 pages are selected.*limit of 4.*1-4.*max_pages"):
            doc.pages()
        chosen = list(doc.pages(parse_page_range("2-5", doc.page_count)))
        assert [p.number for p in chosen] == [2, 3, 4, 5]
        with pytest.raises(DocumentError, match="no page 9; its pages are 1-6"):
            doc.pages([1, 9])
    check_page_budget([1, 2, 3, 4], limits)


def test_pages_can_be_rendered_from_threads(tmp_path):
    path = tmp_path / "pages.pdf"
    badfiles.pages_pdf(path, 6)
    with open_document(path, limits=Limits(dpi=72)) as doc:
        pages = list(doc.pages())
        errors: list[BaseException] = []

        def render(page: Page) -> None:
            try:
                assert page.image.size == (300, 200)
                assert page.text_spans()[0].text == f"Page {page.number}"
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=render, args=(page,)) for page in pages]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
