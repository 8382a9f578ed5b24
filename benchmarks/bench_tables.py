"""Table cells recovered as table cells on born-digital government PDFs (the ICDAR 2013 table
competition set: 67 excerpts of EU and US government documents, 156 tables, every cell's text in
``*-str.xml``).

A ground-truth cell counts as recovered when a Table block on the same page has a cell with the
same text (whitespace ignored). Cells are compared by text, not position, so a table found with a
different box still counts; a cell merged with its neighbour or split in two does not. Besides the
no-GPU engine (``text-layer``: what the studio shows and exports), the same count for
``pymupdf4llm.to_markdown`` (its Markdown tables, the reference the issue names) on the same pages.

The data set is not shipped (its licence is the competition's, not ours). It is in the tabula-java
repository's test resources; with the folder holding ``competition-dataset-eu`` and
``competition-dataset-us``:

    python benchmarks/bench_tables.py PATH/TO/icdar2013-dataset [--reference] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _key(text: str) -> str:
    return re.sub(r"\s+", "", text).lower()


def truth(structure: Path) -> dict[int, list[str]]:
    """The non-empty cells of every table in a ``*-str.xml``, by page (1-based)."""
    cells: dict[int, list[str]] = defaultdict(list)
    for region in ET.parse(structure).getroot().iter("region"):
        page = int(region.get("page", "1"))
        for cell in region.iter("cell"):
            content = cell.findtext("content") or ""
            if _key(content):
                cells[page].append(_key(content))
    return cells


def recovered(expected: list[str], found: list[str]) -> int:
    """How many expected cells a found cell matches, each found cell used once."""
    pool: dict[str, int] = defaultdict(int)
    for text in found:
        pool[text] += 1
    hits = 0
    for text in expected:
        if pool[text] > 0:
            pool[text] -= 1
            hits += 1
    return hits


def engine_cells(pdf: Path, pages: list[int]) -> tuple[dict[int, list[str]], float]:
    """The text-layer engine's table cells on ``pages``, and its seconds per page."""
    from ocr_studio.documents import Limits, open_document
    from ocr_studio.engines.base import RecognizeRequest, Task
    from ocr_studio.engines.text_layer import TextLayerEngine
    from ocr_studio.html_table import parse_table
    from ocr_studio.settings import Settings

    engine = TextLayerEngine(Settings())
    cells: dict[int, list[str]] = {}
    started = time.perf_counter()
    with open_document(pdf, limits=Limits(dpi=72)) as document:
        chosen = [page for page in document.pages() if page.number in pages]
        for result in engine.recognize(chosen, RecognizeRequest(task=Task.TEXT)):
            found = []
            for block in result.blocks:
                if block.category == "Table" and "<table" in block.text.lower():
                    found += [_key(cell.text) for cell in parse_table(block.text).cells if _key(cell.text)]
            cells[result.page_number] = found
    return cells, (time.perf_counter() - started) / max(len(pages), 1)


def reference_cells(pdf: Path, pages: list[int]) -> tuple[dict[int, list[str]], float]:
    """pymupdf4llm's Markdown table cells on ``pages``, and its seconds per page."""
    import pymupdf4llm

    cells: dict[int, list[str]] = {}
    started = time.perf_counter()
    for number in pages:
        markdown = pymupdf4llm.to_markdown(str(pdf), pages=[number - 1], show_progress=False, use_ocr=False)
        found = []
        for line in markdown.splitlines():
            line = line.strip()
            if line.startswith("|") and not re.fullmatch(r"\|[\s:|-]*\|", line):
                parts = [re.sub(r"<br>", " ", part) for part in line.strip("|").split("|")]
                found += [_key(part) for part in parts if _key(part)]
        cells[number] = found
    return cells, (time.perf_counter() - started) / max(len(pages), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path, help="the folder with competition-dataset-eu and competition-dataset-us")
    parser.add_argument("--reference", action="store_true", help="also count pymupdf4llm's table cells")
    parser.add_argument("--only", default="", help="a regular expression the document names must match")
    parser.add_argument("--json", type=Path, help="write the per-document figures here")
    args = parser.parse_args(argv)
    structures = sorted(args.dataset.glob("competition-dataset-*/*-str.xml"))
    rows = []
    print("| document | cells | text-layer | s/page |" + (" pymupdf4llm | s/page |" if args.reference else ""))
    print("|---|---:|---:|---:|" + ("---:|---:|" if args.reference else ""))
    for structure in structures:
        name = structure.name.removesuffix("-str.xml")
        pdf = structure.with_name(f"{name}.pdf")
        if not pdf.exists() or not re.search(args.only, name):
            continue
        expected = truth(structure)
        pages = sorted(expected)
        total = sum(len(cells) for cells in expected.values())
        found, seconds = engine_cells(pdf, pages)
        row = {"document": name, "cells": total, "engine": 0, "engine_s": seconds}
        row["engine"] = sum(recovered(expected[p], found.get(p, [])) for p in pages)
        line = f"| {name} | {total} | {row['engine']} | {seconds:.2f} |"
        if args.reference:
            reference, reference_s = reference_cells(pdf, pages)
            row["reference"] = sum(recovered(expected[p], reference.get(p, [])) for p in pages)
            row["reference_s"] = reference_s
            line += f" {row['reference']} | {reference_s:.2f} |"
        print(line, flush=True)
        rows.append(row)
    cells = sum(r["cells"] for r in rows)
    summary = f"| **all {len(rows)}** | {cells} | {sum(r['engine'] for r in rows)} ({_share(rows, 'engine')}) | |"
    if args.reference:
        summary += f" {sum(r['reference'] for r in rows)} ({_share(rows, 'reference')}) | |"
    print(summary)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return 0


def _share(rows: list[dict], key: str) -> str:
    cells = sum(r["cells"] for r in rows)
    return f"{100 * sum(r[key] for r in rows) / cells:.0f} %" if cells else "-"


if __name__ == "__main__":
    raise SystemExit(main())
