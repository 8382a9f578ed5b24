"""Search across all jobs: query time over 10,000 generated pages (CPU, no GPU; runs in CI time).

Builds the studio's own index (``ocr_studio.library.search_index``) in a temporary workspace from
generated pages: 100 jobs × 100 pages × 8 blocks of ~40 words, half English, half Russian, the
words drawn with a Zipf-like frequency from a vocabulary of real word stems with their endings
(so stemming has forms to join), then times each query the way the studio and the CLI run it:
open the index, match, rank, read the rows, make the snippets, close. Wall-clock and CPU time
are both printed, with the load average: on a shared machine the wall clock includes waiting.

    PYTHONPATH=.. python bench_search.py            # 10,000 pages; --pages N for another size
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from ocr_studio.library.search_index import SearchIndex
from ocr_studio.results import Block, DocumentResult, PageResult

EN_STEMS = (
    "contract page payment invoice report account delivery order service price table schedule engine "
    "model document letter court claim party term notice record figure section annex bank transfer "
    "customer supplier warehouse shipment license patent meeting budget quarter revenue cost tax audit"
).split()
EN_ENDINGS = ("", "s", "ed", "ing", "er", "ment")
RU_STEMS = (
    "договор страниц оплат счет отчет поставк заказ услуг цен таблиц график двигател модел документ "
    "письм суд иск сторон срок уведомлен запис рисунк раздел приложен банк перевод клиент поставщик "
    "склад груз лиценз патент совещан бюджет квартал выручк расход налог проверк"
).split()
RU_ENDINGS = ("а", "ы", "е", "у", "ой", "ами", "ах", "ов", "ом", "и")
FILLER_EN = "the of and to in is for on with as by at from that this be are".split()
FILLER_RU = "и в на не что по с к из за от для о как до это при".split()

QUERIES = {
    "rare word": ["patent", "лицензии", "warehouse", "совещание"],
    "common word": ["contract", "страница", "payment", "договор"],
    "two words": ["payment schedule", "оплата счёта", "bank transfer", "поставка груза"],
    "phrase": ['"the contract"', '"по договору"'],
    "prefix": ["ship*", "плат*"],
    "no match": ["zebra", "жираф"],
}


def words(rng: random.Random, count: int, russian: bool) -> str:
    stems, endings, filler = (RU_STEMS, RU_ENDINGS, FILLER_RU) if russian else (EN_STEMS, EN_ENDINGS, FILLER_EN)
    out = []
    for _ in range(count):
        if rng.random() < 0.4:
            out.append(rng.choice(filler))
        else:
            index = min(int(rng.paretovariate(1.1)) - 1, len(stems) - 1)  # a few words are very common
            out.append(stems[index] + rng.choice(endings))
    return " ".join(out).capitalize() + "."


def build(workspace: Path, pages: int, rng: random.Random) -> tuple[SearchIndex, float]:
    index = SearchIndex(workspace)
    per_job = 100
    started = time.perf_counter()
    for job_number in range((pages + per_job - 1) // per_job):
        count = min(per_job, pages - job_number * per_job)
        results = []
        for number in range(1, count + 1):
            russian = number % 2 == 0
            blocks = [
                Block((50.0, 60.0 + 100 * b, 1600.0, 150.0 + 100 * b), "Text", words(rng, 40, russian))
                for b in range(8)
            ]
            results.append(PageResult(page_number=number, width=1700, height=2200, blocks=blocks))
        document = DocumentResult(name=f"document-{job_number:03d}.pdf", pages=results, page_count=count)
        index.add_job(f"{job_number:020x}", [document], stamp=None)
    return index, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each query (after one warm-up)")
    args = parser.parse_args()
    rng = random.Random(27)
    with tempfile.TemporaryDirectory() as folder:
        index, seconds = build(Path(folder), args.pages, rng)
        size = index.path.stat().st_size / 2**20
        print(f"index: {args.pages} pages, {args.pages * 8} blocks, built in {seconds:.1f} s, {size:.0f} MiB")
        worst, cpu_worst = [], []
        print(f"{'kind':<12} {'query':<20} {'hits':>5} {'median ms':>10} {'max ms':>8} {'CPU ms':>7}")
        for kind, queries in QUERIES.items():
            for query in queries:
                index.search(query)  # warm-up: the file in the page cache, as after the studio's first search
                times, cpu = [], []
                for _ in range(args.repeat):
                    started, used = time.perf_counter(), time.process_time()
                    hits = index.search(query)
                    times.append((time.perf_counter() - started) * 1000)
                    cpu.append((time.process_time() - used) * 1000)
                worst.append(max(times))
                cpu_worst.append(statistics.median(cpu))
                print(
                    f"{kind:<12} {query:<20} {len(hits):>5} {statistics.median(times):>10.1f} {max(times):>8.1f} "
                    f"{statistics.median(cpu):>7.1f}"
                )
        print(f"slowest query: {max(worst):.1f} ms wall; median of the slowest runs: {statistics.median(worst):.1f} ms")
        print(f"most CPU a query took (median of its runs): {max(cpu_worst):.1f} ms")
        print(f"load average while timing: {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
