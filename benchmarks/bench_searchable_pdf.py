"""Searchable PDF size and fidelity on a 20-page, 200-DPI scan.

Builds a scan (A4 pages of text rendered at 200 DPI in grey with scanner noise and a
slight blur, no text layer) as a PDF of lossless images and as a PDF of JPEGs, runs the
text-layer engine (Tesseract) over it, writes the searchable PDF at several JPEG qualities
and reports: input and output sizes, seconds to write the PDF, and the character error rate
between the PDF's extracted text and the recognised text.

    python benchmarks/bench_searchable_pdf.py [--pages 20] [--out /tmp/bench-pdf]
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
import pymupdf
from PIL import Image, ImageFilter

from ocr_studio.engines import get_engine
from ocr_studio.invisible_text import plain_lines
from ocr_studio.jobs import JobSpec, JobStore, run_job
from ocr_studio.searchable_pdf import searchable_pdf
from ocr_studio.settings import Settings

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
WORDS = (
    "the record button starts a sequence and the counter shows the first bar while the display keeps the tempo "
    "of every song each track holds sixteen channels of notes and the mixer sets their volume before saving"
).split()


def scan_pages(count: int, dpi: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    pages = []
    for number in range(count):
        doc = pymupdf.open()
        page = doc.new_page()  # Letter
        text = "\n\n".join(
            " ".join(rng.choice(WORDS, size=50)).capitalize() + f". Page {number + 1}." for _ in range(7)
        )
        page.insert_textbox(pymupdf.Rect(72, 72, 540, 720), text, fontsize=11, fontname="dejavu", fontfile=FONT)
        pixmap = page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY)
        grey = np.frombuffer(pixmap.samples, np.uint8).reshape(pixmap.height, pixmap.width).astype(np.float32)
        grey = np.clip(grey * 0.94 + 10 + rng.normal(0, 6, grey.shape), 0, 255).astype(np.uint8)
        pages.append(Image.fromarray(grey, mode="L").filter(ImageFilter.GaussianBlur(0.5)))
        doc.close()
    return pages


def levenshtein(a: str, b: str) -> int:
    """Edit distance, one row at a time in numpy (pages of thousands of characters)."""
    target = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    positions = np.arange(len(target) + 1)
    previous = positions.copy()
    for i, ch in enumerate(a.encode("utf-32-le").decode("utf-32-le"), 1):
        cost = (target != ord(ch)).astype(np.int64)
        best = np.empty_like(previous)
        best[0] = i
        best[1:] = np.minimum(previous[1:] + 1, previous[:-1] + cost)
        previous = positions + np.minimum.accumulate(best - positions)  # insertions along the row
    return int(previous[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--dpi", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-searchable-pdf"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    images = scan_pages(args.pages, args.dpi)

    scan_pdf = args.out / "scan.pdf"  # a scanner's lossless PDF: one Flate image per page
    doc = pymupdf.open()
    for image in images:
        page = doc.new_page(width=image.width * 72 / args.dpi, height=image.height * 72 / args.dpi)
        png = args.out / "page.png"
        image.save(png)
        page.insert_image(page.rect, filename=str(png))
    doc.save(scan_pdf, deflate=True, garbage=3)
    doc.close()
    scan_jpeg = args.out / "scan-jpeg.pdf"  # a scanner's usual PDF: one JPEG (quality 85) per page
    doc = pymupdf.open()
    for image in images:
        page = doc.new_page(width=image.width * 72 / args.dpi, height=image.height * 72 / args.dpi)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        page.insert_image(page.rect, stream=buffer.getvalue())
    doc.save(scan_jpeg, garbage=3)
    doc.close()

    settings = Settings(workspace=args.out / "ws", dpi=args.dpi)
    engine = get_engine("text-layer", settings)
    for source in (scan_pdf, scan_jpeg):
        store = JobStore(settings.workspace)
        start = time.perf_counter()
        spec = JobSpec(files=[source], engine="text-layer", task=engine.info().default_task)
        job = run_job(store.create(spec, engine, settings), engine, settings)
        ocr_seconds = time.perf_counter() - start
        result = job.documents[0]
        size = source.stat().st_size
        print(f"\n{source.name}: {size / 1e6:.2f} MB, {len(result.pages)} pages, OCR {ocr_seconds:.0f} s")
        for quality in (75, 50, 0):
            start = time.perf_counter()
            data = searchable_pdf(result, source_path=job.input_path(0), jpeg_quality=quality)
            seconds = time.perf_counter() - start
            print(
                f"  jpeg_quality {quality:>3}: {len(data) / 1e6:6.2f} MB ({len(data) / size:5.1%} of the input), "
                f"written in {seconds:.1f} s"
            )
        errors = characters = 0
        with pymupdf.open(stream=data) as pdf:
            for page, page_result in zip(pdf, result.pages, strict=True):
                found = " ".join(page.get_text().split())
                expected = " ".join(" ".join(ln for b in page_result.blocks for ln in plain_lines(b)).split())
                errors += levenshtein(found, expected)
                characters += len(expected)
        print(f"  CER(PDF text, recognised text) = {errors / max(1, characters):.4%} over {characters} characters")


if __name__ == "__main__":
    main()
