"""How right the no-GPU engine (text layer / Tesseract) reads generated pages (CPU only).

Pages come from tests/generated_pages.py, so their content is known: scans in one and two
columns, English and Russian (200 DPI, mild noise), born-digital pages with a ruled and an
unruled table, a born-digital two-column page written row by row, and a three-page report
with a running header and footer. For each page it prints:

- CER: character error rate of the engine's text in reading order against the page's text
  (whitespace normalised; tables left out; page headers/footers left out, as a clean export does);
- cells: table cells recovered in the right row and column (Table blocks holding an HTML table);
- furniture: running headers/footers classified Page-header/Page-footer;
- seconds per page on this machine, wall clock and CPU (this process and Tesseract's).

    python benchmarks/bench_text_layer.py [--json results.json]

To measure another checkout's engine (e.g. git HEAD's, for a before/after figure), put it
first on the path: ``PYTHONPATH=/tmp/head python benchmarks/bench_text_layer.py``.
``--reader pymupdf4llm`` reads the same pages with PyMuPDF 2.0's pymupdf4llm + layout model.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))  # appended: a checkout on PYTHONPATH comes first

from ocr_studio.documents import Limits, open_document  # noqa: E402
from ocr_studio.engines import get_engine  # noqa: E402
from ocr_studio.engines.base import RecognizeRequest, Task  # noqa: E402
from ocr_studio.results import PAGE_FURNITURE, PageResult  # noqa: E402
from ocr_studio.settings import Settings  # noqa: E402


def _load_pages_module():
    """tests/generated_pages.py by its path, so a checkout on PYTHONPATH cannot shadow it."""
    spec = importlib.util.spec_from_file_location("generated_pages", REPO / "tests" / "generated_pages.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["generated_pages"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


pages = _load_pages_module()


class _Rows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None and self.rows:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def table_rows(markup: str) -> list[list[str]]:
    parser = _Rows()
    parser.feed(markup)
    return parser.rows


def cells_recovered(results: list[PageResult], expected: list[list[list[str]]]) -> tuple[int, int]:
    """(cells found in the right row and column, cells expected); each expected table is matched
    with the found Table block that recovers most of it."""
    found = [table_rows(b.text) for r in results for b in r.blocks if b.category == "Table"]
    total = sum(len(row) for table in expected for row in table)
    hits = 0
    for table in expected:
        best = 0
        for rows in found:
            score = sum(
                1
                for r, row in enumerate(table)
                for c, cell in enumerate(row)
                if r < len(rows) and c < len(rows[r]) and rows[r][c] == cell
            )
            best = max(best, score)
        hits += best
    return hits, total


def reading_text(results: list[PageResult]) -> str:
    return "\n\n".join(
        b.text for r in results for b in r.blocks if b.text and b.category not in (*PAGE_FURNITURE, "Table")
    )


def furniture_classified(results: list[PageResult], page: pages.GeneratedPage) -> tuple[int, int]:
    wanted = [(text, "Page-header") for text in page.headers] + [(text, "Page-footer") for text in page.footers]
    blocks = [(" ".join(b.text.split()), b.category) for r in results for b in r.blocks]
    return sum(1 for pair in wanted if pair in blocks), len(wanted)


def make_settings(languages: str | None) -> Settings:
    """Settings with these OCR languages, whichever name this checkout's setting has."""
    names = {f.name for f in dataclasses.fields(Settings)}
    if languages is None:
        return Settings()
    if "ocr_languages" in names:
        return Settings(ocr_languages=languages)  # type: ignore[call-arg]
    return Settings(tesseract_language=languages)  # type: ignore[call-arg]


@dataclass
class Case:
    name: str
    make: Callable[[Path], pages.GeneratedPage]
    languages: str | None = None  # None: the engine's default


CASES = [
    Case("scan, 1 column, EN", lambda d: pages.column_scan(d / "en1.png", pages.EN_PARAGRAPHS[:3], columns=1)),
    Case("scan, 2 columns, EN", lambda d: pages.column_scan(d / "en2.png", pages.EN_PARAGRAPHS, columns=2)),
    Case("scan, 2 columns, RU (default languages)", lambda d: pages.column_scan(d / "ru2.png", pages.RU_PARAGRAPHS)),
    Case("scan, 2 columns, RU (rus)", lambda d: pages.column_scan(d / "ru2.png", pages.RU_PARAGRAPHS), "rus"),
    Case(
        "scan, 3 columns, title, page number, 9 pt, narrow gutters, EN",
        lambda d: pages.column_scan(
            d / "en3.png",
            pages.EN_PARAGRAPHS,
            columns=3,
            size=9,
            width=612,
            height=480,
            gutter=16,
            title="Sequencer Basics",
            footer="12",
        ),
    ),
    Case(
        "scan, 2 columns, EN and RU on one page (default languages)",
        lambda d: pages.column_scan(d / "mixed.png", pages.EN_PARAGRAPHS[:2] + pages.RU_PARAGRAPHS[:2]),
    ),
    Case("PDF, 2 columns written row by row", lambda d: pages.two_column_pdf(d / "cols.pdf")),
    Case("PDF, ruled table", lambda d: pages.table_pdf(d / "ruled.pdf", ruled=True)),
    Case("PDF, unruled table", lambda d: pages.table_pdf(d / "unruled.pdf", ruled=False)),
    Case("PDF, 3-page report (header/footer)", lambda d: pages.report_pdf(d / "report.pdf")),
]


class Pymupdf4llmEngine:
    """For comparison only: PyMuPDF 2.0's own reader (``pymupdf4llm.to_json`` with its layout
    model, its OCR through Tesseract) turned into our Blocks, to weigh it against ours."""

    CATEGORIES = {"page-header": "Page-header", "page-footer": "Page-footer", "section-header": "Section-header"}

    def __init__(self, languages: str | None):
        self.languages = languages or "eng"

    def recognize(self, pages_: list, request: RecognizeRequest) -> list[PageResult]:
        import contextlib
        import html
        import io

        import pymupdf4llm

        from ocr_studio.results import Block

        results = []
        for page in pages_:
            pdf_page = page.pdf_page()
            with contextlib.redirect_stdout(io.StringIO()):  # it prints its progress and advice
                data = json.loads(
                    pymupdf4llm.to_json(pdf_page.parent, pages=[pdf_page.number], ocr_language=self.languages)
                )
            blocks = []
            for box in data["pages"][0]["boxes"]:
                category = self.CATEGORIES.get(box["boxclass"], box["boxclass"].capitalize())
                if box.get("table"):
                    rows = box["table"]["extract"]
                    cells = ("".join(f"<td>{html.escape(c or '')}</td>" for c in row) for row in rows)
                    text = "<table>" + "".join(f"<tr>{r}</tr>" for r in cells) + "</table>"
                    category = "Table"
                else:
                    lines = box.get("textlines") or []
                    text = "\n".join(" ".join(s["text"] for s in line["spans"]) for line in lines)
                blocks.append(Block((box["x0"], box["y0"], box["x1"], box["y1"]), category, text))
            results.append(PageResult(page.number, 1, 1, blocks))
        return results


def run_case(case: Case, folder: Path, *, reader: str = "text-layer") -> dict[str, object]:
    page = case.make(folder)
    if reader == "pymupdf4llm":
        engine = Pymupdf4llmEngine(case.languages)
    else:
        engine = get_engine("text-layer", make_settings(case.languages))
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    with open_document(page.path, limits=Limits(dpi=200)) as document:
        results = engine.recognize(list(document.pages()), RecognizeRequest(task=Task.LAYOUT_TEXT))
    seconds = (time.perf_counter() - start) / max(1, len(results))
    cpu = (_cpu_seconds() - cpu_start) / max(1, len(results))
    row: dict[str, object] = {
        "page": case.name,
        "cer": round(pages.character_error_rate(reading_text(results), page.text), 4),
    }
    if page.tables:
        row["cells"] = "{}/{}".format(*cells_recovered(results, page.tables))
    if page.headers or page.footers:
        row["furniture"] = "{}/{}".format(*furniture_classified(results, page))
    row["seconds_per_page"] = round(seconds, 2)
    row["cpu_seconds_per_page"] = round(cpu, 2)
    return row


def _cpu_seconds() -> float:
    """CPU time of this process and of the programs it ran (Tesseract): comparable between runs
    on a busy machine, where wall-clock time is not."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument("--only", help="run only the cases whose name contains this text")
    parser.add_argument(
        "--reader", choices=("text-layer", "pymupdf4llm"), default="text-layer", help="what reads the pages"
    )
    args = parser.parse_args()
    import ocr_studio

    print(f"engine code: {Path(ocr_studio.__file__).parent}", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in CASES:
            if args.only and args.only.lower() not in case.name.lower():
                continue
            row = run_case(case, Path(tmp), reader=args.reader)
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    print("\n| page | CER | table cells | header/footer | s/page | CPU s/page |\n|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['page']} | {float(row['cer']):.1%} | {row.get('cells', '')} | {row.get('furniture', '')} "
            f"| {row['seconds_per_page']} | {row['cpu_seconds_per_page']} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
