"""How the no-GPU engine reads REAL pages (scans nobody here made), against plain Tesseract on the
same images in the same run (CPU only).

Sets (see benchmarks/real_pages/README.md for where each comes from and its licence):

- ``linn``: a 1985 two-column datasheet (OCRmyPDF's test page, CC-BY-SA-3.0, in tests/data/), with
  hand-checked ground truth; ``linn-90``/``-180``/``-270``: the same page turned, as a scanner
  that fed it sideways would give it (ground truth unchanged: it must read upright);
- ``generated-en-2col``/``generated-ru-2col``: the generated two-column scans of tests/generated_pages.py
  (English, Russian), kept as a regression check beside the real pages;
- ``scribe``: pages of scribeocr/ocr-benchmark (multi-column magazines and papers, a book page, a
  filing), ground truth from its corrected hOCR. That repository states no licence, so its files
  are not shipped here: pass a checkout with ``--scribe DIR``.

For each page: CER (character error rate, whitespace normalised) of the engine's plain text and of
``tesseract IMAGE stdout -l LANG`` (the page's language), order (share of neighbouring ground-truth
lines found in the same order in the output), and seconds per page (wall clock, and CPU: this process and
Tesseract's, comparable on a busy machine).

    python benchmarks/bench_real_pages.py [--scribe DIR] [--pages multicol_01,...] [--json out.json]

To measure another checkout's engine (e.g. the code before a change), put it first on the path:
``PYTHONPATH=/tmp/before python benchmarks/bench_real_pages.py``. ``pip install rapidfuzz`` makes
the edit distances fast (a pure-Python one is used without it).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))  # appended: a checkout on PYTHONPATH comes first

from PIL import Image  # noqa: E402

from ocr_studio.documents import open_document  # noqa: E402
from ocr_studio.engines.base import RecognizeRequest, Task  # noqa: E402
from ocr_studio.engines.text_layer import TextLayerEngine  # noqa: E402
from ocr_studio.settings import Settings  # noqa: E402

DATA = REPO / "tests" / "data"
SCRIBE_PAGES = ["multicol_01", "multicol_02", "multicol_04", "multicol_06", "singlecol_01", "filing_01"]


def edit_distance(a: str, b: str) -> int:
    try:
        from rapidfuzz.distance import Levenshtein
    except ImportError:
        from tests.generated_pages import levenshtein

        return levenshtein(a, b)
    return Levenshtein.distance(a, b)


def normalized(text: str) -> str:
    """Whitespace as one space, and a word hyphenated at a line's end joined (line breaks are layout:
    the engine joins them, plain Tesseract and the line-by-line ground truth do not)."""
    return re.sub(r"(\w)- (\w)", r"\1\2", " ".join(text.split()))


def cer(found: str, expected: str) -> float:
    found, expected = normalized(found), normalized(expected)
    return edit_distance(found, expected) / max(1, len(expected))


def order_agreement(found: str, lines: list[str]) -> float:
    """Of the neighbouring ground-truth lines (of 3 words or more) both found once in ``found``,
    the share found in the same order: 1.0 reads the page in its order."""
    flat = normalized(found)
    positions = []
    for line in lines:
        key = normalized(line)
        if len(key.split()) >= 3 and flat.count(key) == 1:
            positions.append(flat.index(key))
        else:
            positions.append(None)
    known = [p for p in positions if p is not None]
    pairs = list(zip(known, known[1:], strict=False))
    return sum(1 for a, b in pairs if a < b) / len(pairs) if pairs else float("nan")


def hocr_lines(path: Path) -> list[str]:
    """The ground truth's lines, in its order, from an hOCR file (words of each ocr_line)."""
    text = path.read_text(encoding="utf-8")
    lines = []
    for chunk in re.split(r"<span[^>]*class=['\"]ocr_(?:line|caption|header|textfloat)['\"]", text)[1:]:
        words = re.findall(r"class=['\"]ocrx_word['\"][^>]*>(.*?)</span>", chunk, flags=re.S)
        words = [html.unescape(re.sub(r"<[^>]+>", "", w)).strip() for w in words]
        if any(words):
            lines.append(" ".join(w for w in words if w))
    return lines


@dataclass
class Row:
    page: str
    language: str
    chars: int
    cer_engine: float
    cer_tesseract: float
    order_engine: float
    order_tesseract: float
    seconds_engine: float
    seconds_tesseract: float
    cpu_engine: float = 0.0
    cpu_tesseract: float = 0.0
    rotation: int = 0


def cpu_seconds() -> float:
    """CPU time of this process and of the programs it ran (Tesseract): comparable on a busy machine."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def plain_tesseract(image: Path, language: str) -> tuple[str, float, float]:
    start, cpu = time.perf_counter(), cpu_seconds()
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    done = subprocess.run(["tesseract", str(image), "stdout", "-l", language], capture_output=True, env=env, check=True)
    return done.stdout.decode("utf-8", "replace"), time.perf_counter() - start, cpu_seconds() - cpu


def engine_text(image: Path) -> tuple[str, float, float, int]:
    """The engine's plain text with its default settings (languages "auto"): text, seconds, CPU
    seconds, rotation."""
    engine = TextLayerEngine(Settings())
    start, cpu = time.perf_counter(), cpu_seconds()
    with open_document(image) as document:
        [result] = engine.recognize([document.page(1)], RecognizeRequest(Task.TEXT))
    return result.text(), time.perf_counter() - start, cpu_seconds() - cpu, int(getattr(result, "rotation", 0))


def pages(scribe: Path | None, wanted: list[str]) -> list[tuple[str, Path, list[str], str]]:
    """(name, image, ground-truth lines, language) of every page measured."""
    found = []
    linn_lines = (DATA / "linn.gt.txt").read_text(encoding="utf-8").splitlines()
    found.append(("linn", DATA / "linn.png", linn_lines, "eng"))
    folder = Path(tempfile.mkdtemp(prefix="real-pages-"))
    for degrees in (90, 180, 270):
        turned = folder / f"linn-{degrees}.png"
        Image.open(DATA / "linn.png").convert("L").rotate(-degrees, expand=True).save(turned)
        found.append((f"linn-{degrees}", turned, linn_lines, "eng"))
    from tests import generated_pages  # the generated scans stay measured beside the real ones

    for code, paragraphs in (("en", generated_pages.EN_PARAGRAPHS), ("ru", generated_pages.RU_PARAGRAPHS)):
        made = generated_pages.column_scan(folder / f"generated-{code}.png", paragraphs[:4], title="", height=300)
        language = "eng" if code == "en" else "rus"
        found.append((f"generated-{code}-2col", made.path, list(paragraphs[:4]), language))
    if scribe is not None:
        for name in wanted:
            images = sorted((scribe / "img").glob(f"{name}.*"))
            truth = next(iter(sorted((scribe / "ground_truth").glob(f"{name}*.hocr"))), None)
            if images and truth is not None:
                found.append((name, images[0], hocr_lines(truth), "eng"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scribe", type=Path, help="a checkout of scribeocr/ocr-benchmark")
    parser.add_argument("--pages", default=",".join(SCRIBE_PAGES), help="its pages to measure")
    parser.add_argument("--only", default="", help="measure only these page names (comma separated)")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()
    only = {p for p in args.only.split(",") if p}
    rows = []
    print(
        "| page | chars | CER engine | CER tesseract | order engine | order tesseract | s engine | s tesseract "
        "| CPU s engine | CPU s tesseract |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, image, lines, language in pages(args.scribe, [p for p in args.pages.split(",") if p]):
        if only and name not in only:
            continue
        truth = "\n".join(lines)
        ours, ours_s, ours_cpu, rotation = engine_text(image)
        plain, plain_s, plain_cpu = plain_tesseract(image, language)
        row = Row(
            name,
            language,
            len(" ".join(truth.split())),
            cer(ours, truth),
            cer(plain, truth),
            order_agreement(ours, lines),
            order_agreement(plain, lines),
            ours_s,
            plain_s,
            ours_cpu,
            plain_cpu,
            rotation,
        )
        rows.append(row)
        print(
            f"| {row.page} | {row.chars} | {row.cer_engine:.2%} | {row.cer_tesseract:.2%} | {row.order_engine:.2f} "
            f"| {row.order_tesseract:.2f} | {row.seconds_engine:.1f} | {row.seconds_tesseract:.1f} "
            f"| {row.cpu_engine:.1f} | {row.cpu_tesseract:.1f} |",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2))


if __name__ == "__main__":
    main()
