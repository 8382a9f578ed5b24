"""Search across all jobs: one row per recognised block in an SQLite FTS5 index the studio owns.

Why this shape:
- SQLite (standard library, no server) with FTS5 finds words in 10,000 pages in milliseconds.
- FTS5 has no Russian stemmer, and Python cannot give SQLite a tokenizer of its own, so the
  stems are made here (Snowball: Russian for Cyrillic words, English for Latin ones) and the
  index holds them: "страница" finds "страницы", "pages" finds "page". The block's plain text
  is kept beside them, for the snippet.
- The job files are the truth; the index is a cache of them. Each job's row remembers the
  stamp (mtime and size) of the ``job.json`` it was read from: before a search every job whose
  file changed since is read again, a job that is gone is dropped, and an index that is missing,
  of another schema or damaged is built again from the job files. Pages are also added as they
  are written (``keep_index`` registers with the job store), so a running job is found at once,
  and a deleted job's blocks are dropped at once.
- Corrections (issue 25) are not there yet: ``page_blocks`` is the one place a page becomes
  indexed text, so a corrected block's text goes in there.

Every connection is short-lived (one per operation, WAL, a busy timeout), so the studio's
threads, a page writer and another process (the CLI) can share the file.
"""

from __future__ import annotations

import contextlib
import functools
import html
import logging
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..i18n import LocalizedError, message
from ..results import DocumentResult, PageResult

if TYPE_CHECKING:
    from ..jobs import Job

log = logging.getLogger(__name__)

INDEX_FOLDER = "library"
INDEX_FILE = "search.sqlite3"
SCHEMA = 1  # bump when the tables or the stems change meaning: the index is built again
DEFAULT_LIMIT = 50
# Ranking (BM25) costs a few microseconds per matching block; a word in more blocks than this
# lists the most recently indexed blocks instead, so a query stays well under 100 ms.
RANK_LIMIT = 5_000
SNIPPET_WORDS = 12  # words either side of the first match
BUSY_MS = 10_000

_WORD = re.compile(r"[^\W_]+")
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
_QUERY_PART = re.compile(r'"([^"]*)"?|(\S+)')

_TABLES = f"""
PRAGMA user_version = {SCHEMA};
CREATE TABLE IF NOT EXISTS jobs(job_id TEXT PRIMARY KEY, stamp TEXT);
CREATE TABLE IF NOT EXISTS blocks(
    id INTEGER PRIMARY KEY, job_id TEXT NOT NULL, doc_index INTEGER NOT NULL, document TEXT NOT NULL,
    page INTEGER NOT NULL, block INTEGER NOT NULL, category TEXT NOT NULL,
    x0 REAL, y0 REAL, x1 REAL, y1 REAL, text TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS blocks_by_page ON blocks(job_id, doc_index, page);
CREATE VIRTUAL TABLE IF NOT EXISTS words USING fts5(stems, tokenize = 'unicode61 remove_diacritics 0');
"""


class SearchIndexError(LocalizedError):
    """The index cannot be used even after building it again (the workspace is read-only, full)."""

    @classmethod
    def from_error(cls, error: sqlite3.Error | OSError, path: Path) -> SearchIndexError:
        return cls(message("library.search.unavailable", path=str(path), detail=str(error)))


@dataclass(frozen=True)
class Hit:
    """One block that matches: where it is (job, document, page, block and its box) and a snippet.

    ``snippet`` is plain text in parts, ``(text, matched)``, so each caller marks the matches in
    its own way (the CLI with brackets, the studio with escaped HTML)."""

    job_id: str
    document_index: int
    document: str
    page: int
    block: int
    category: str
    bbox: tuple[float, float, float, float] | None
    snippet: tuple[tuple[str, bool], ...]

    def snippet_text(self, mark: str = "[{}]") -> str:
        return "".join(mark.format(part) if matched else part for part, matched in self.snippet)


# --- words and stems ---------------------------------------------------------------------------

_STEMMERS_LOCK = threading.Lock()  # a Snowball stemmer object keeps state while it works


@functools.cache
def _stemmers() -> dict[str, object]:
    import snowballstemmer

    return {"ru": snowballstemmer.stemmer("russian"), "en": snowballstemmer.stemmer("english")}


@functools.lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """A word's stem: lower case, ё as е; Russian rules for a Cyrillic word, English for a Latin
    one, a word of another script (or a number) as it is."""
    word = word.lower().replace("ё", "е")
    first = word[:1]
    if "а" <= first <= "я":
        lang = "ru"
    elif "a" <= first <= "z":
        lang = "en"
    else:
        return word
    stemmer = _stemmers()[lang]
    with _STEMMERS_LOCK:
        return stemmer.stemWord(word)  # type: ignore[attr-defined]


def stems(text: str) -> str:
    """The stems of a text's words, space-separated: what the index matches against."""
    return " ".join(stem(word) for word in _WORD.findall(text))


def plain_text(text: str, *, markup: bool = False) -> str:
    """A block's text as words, spaces collapsed; ``markup`` (a table's HTML): tags dropped, entities
    decoded. Other text is kept as written, ``<`` and all (the studio escapes it where it shows it)."""
    if markup:
        text = html.unescape(_TAG.sub(" ", text))
    return _SPACE.sub(" ", text).strip()


def page_blocks(page: PageResult) -> Iterator[tuple[int, str, tuple[float, float, float, float] | None, str]]:
    """(block index, category, box, plain text) of every block of a page with words in it.
    The seam for corrections (issue 25): a corrected block's text is what goes here."""
    for index, block in enumerate(page.blocks):
        text = plain_text(block.text, markup=block.category == "Table" and "<" in block.text)
        if text and block.category != "Picture":
            yield index, block.category, block.bbox, text


@dataclass(frozen=True)
class Query:
    """What the user typed, as FTS5 query text and the stems a snippet marks. Words must all be
    found; "quoted words" as a phrase; a word ending in * as a prefix (its stem is not taken)."""

    fts: str
    stems: frozenset[str]
    prefixes: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Query | None:
        parts: list[str] = []
        found: set[str] = set()
        prefixes: list[str] = []
        for phrase, word in _QUERY_PART.findall(text or ""):
            if phrase:
                words = [stem(w) for w in _WORD.findall(phrase)]
                if words:
                    found.update(words)
                    parts.append('"' + " ".join(words) + '"')
                continue
            prefix = word.endswith("*")
            words = _WORD.findall(word)
            for position, raw in enumerate(words):
                if prefix and position == len(words) - 1:
                    lowered = raw.lower().replace("ё", "е")
                    prefixes.append(lowered)
                    parts.append(f'"{lowered}" *')
                else:
                    found.add(stem(raw))
                    parts.append(f'"{stem(raw)}"')
        if not parts:
            return None
        return cls(" ".join(parts), frozenset(found), tuple(prefixes))

    def matches(self, word: str) -> bool:
        if stem(word) in self.stems:
            return True
        return bool(self.prefixes) and word.lower().replace("ё", "е").startswith(self.prefixes)


def snippet(text: str, query: Query, around: int = SNIPPET_WORDS) -> tuple[tuple[str, bool], ...]:
    """A window of ``text`` around its first matching word, matches marked; "…" where it is cut.
    Words are looked at only up to one past that window, so a long block costs no more."""
    spans: list[tuple[int, int, bool]] = []
    first: int | None = None
    for found in _WORD.finditer(text):
        spans.append((found.start(), found.end(), query.matches(found.group())))
        if first is None and spans[-1][2]:
            first = len(spans) - 1
        if first is not None and len(spans) > first + around + 1:
            break
    if not spans:
        return ((text, False),)
    first = first or 0
    low, high = max(first - around, 0), min(first + around, len(spans) - 1)
    cut = high < len(spans) - 1  # a word after the window
    start = spans[low][0] if low > 0 else 0
    end = spans[high][1] if cut else len(text)
    parts: list[tuple[str, bool]] = [("…", False)] if low > 0 else []
    cursor = start
    for begin, finish, hit in spans[low : high + 1]:
        if hit:
            if begin > cursor:
                parts.append((text[cursor:begin], False))
            parts.append((text[begin:finish], True))
            cursor = finish
    if end > cursor:
        parts.append((text[cursor:end], False))
    if cut:
        parts.append(("…", False))
    return tuple(parts)


# --- the index ---------------------------------------------------------------------------------


class SearchIndex:
    """The search index of one workspace (``<workspace>/library/search.sqlite3``)."""

    def __init__(self, workspace: Path | str):
        self.workspace = Path(workspace)
        self.path = self.workspace / INDEX_FOLDER / INDEX_FILE
        self.discarded = False  # found damaged and removed by this object: what it held is gone

    # connections ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection to an index of this schema, created if missing; sqlite3.DatabaseError when
        the file is damaged or of another schema (the caller builds it again)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=BUSY_MS / 1000, isolation_level=None)
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                connection.execute("PRAGMA journal_mode = WAL")
                connection.executescript(_TABLES)
            elif version != SCHEMA:
                raise sqlite3.DatabaseError(f"search index of schema {version}, this version reads {SCHEMA}")
            connection.execute("PRAGMA synchronous = NORMAL")
            yield connection
        finally:
            connection.close()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def discard(self) -> None:
        """Remove the index file (and SQLite's files beside it): the next use builds it again."""
        self.discarded = True
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(OSError):  # gone already, or held open (Windows): the next try says so
                self.path.with_name(self.path.name + suffix).unlink()

    def _retrying(self, work, *args):  # type: ignore[no-untyped-def]
        """``work(*args)``; a damaged index is removed and ``work`` tried once more on a new one.
        SearchIndexError when the index cannot be used (the disk full or read-only, busy too long)."""
        try:
            return work(*args)
        except sqlite3.DatabaseError as exc:
            if not _damaged(exc):
                raise SearchIndexError.from_error(exc, self.path) from exc
            log.warning("search index %s is damaged (%s); building it again", self.path, exc)
            self.discard()
        except OSError as exc:
            raise SearchIndexError.from_error(exc, self.path) from exc
        try:
            return work(*args)
        except (sqlite3.Error, OSError) as exc:
            raise SearchIndexError.from_error(exc, self.path) from exc

    # writing -------------------------------------------------------------------------------

    @staticmethod
    def _insert(
        connection: sqlite3.Connection, job_id: str, document_index: int, document: str, page: PageResult
    ) -> None:
        ids = connection.execute(
            "SELECT id FROM blocks WHERE job_id = ? AND doc_index = ? AND page = ?",
            (job_id, document_index, page.page_number),
        ).fetchall()
        if ids:
            connection.executemany("DELETE FROM words WHERE rowid = ?", ids)
            connection.executemany("DELETE FROM blocks WHERE id = ?", ids)
        for index, category, bbox, text in page_blocks(page):
            x0, y0, x1, y1 = bbox if bbox is not None else (None, None, None, None)
            cursor = connection.execute(
                "INSERT INTO blocks(job_id, doc_index, document, page, block, category, x0, y0, x1, y1, text) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, document_index, document, page.page_number, index, category, x0, y0, x1, y1, text),
            )
            connection.execute("INSERT INTO words(rowid, stems) VALUES (?, ?)", (cursor.lastrowid, stems(text)))

    def add_page(self, job_id: str, document_index: int, document: str, page: PageResult) -> None:
        """Index (or index again) one page's blocks."""

        def work() -> None:
            with self._writing() as connection:
                connection.execute("INSERT OR IGNORE INTO jobs(job_id, stamp) VALUES (?, NULL)", (job_id,))
                self._insert(connection, job_id, document_index, document, page)

        self._retrying(work)

    def add_job(self, job_id: str, documents: Sequence[DocumentResult], stamp: str | None) -> None:
        """Index a whole job again from its documents (none: a job that cannot be read, remembered
        with its stamp so it is not read again until its file changes)."""

        def work() -> None:
            with self._writing() as connection:
                self._delete(connection, job_id)
                connection.execute("INSERT INTO jobs(job_id, stamp) VALUES (?, ?)", (job_id, stamp))
                for index, document in enumerate(documents):
                    for page in document.pages:
                        self._insert(connection, job_id, index, document.name, page)

        self._retrying(work)

    @staticmethod
    def _delete(connection: sqlite3.Connection, job_id: str) -> None:
        connection.execute("DELETE FROM words WHERE rowid IN (SELECT id FROM blocks WHERE job_id = ?)", (job_id,))
        connection.execute("DELETE FROM blocks WHERE job_id = ?", (job_id,))
        connection.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))

    def remove_job(self, job_id: str) -> None:
        """Forget every block of a job."""

        def work() -> None:
            with self._writing() as connection:
                self._delete(connection, job_id)

        self._retrying(work)

    def stamps(self) -> dict[str, str | None]:
        """Each indexed job's stamp (None: pages added as they were written, never read whole)."""

        def work() -> dict[str, str | None]:
            with self._connect() as connection:
                return dict(connection.execute("SELECT job_id, stamp FROM jobs").fetchall())

        return self._retrying(work)

    # searching ---------------------------------------------------------------------------------

    def search(self, text: str, *, limit: int = DEFAULT_LIMIT) -> list[Hit]:
        """The blocks that have every word of ``text`` (in any of its forms), best first (with more
        than ``RANK_LIMIT`` matches: the most recently indexed first)."""
        query = Query.parse(text)
        if query is None:
            return []

        def work() -> list[Hit]:
            with self._connect() as connection:
                count = connection.execute(  # stops counting past the limit: a common word costs no more
                    "SELECT count(*) FROM (SELECT rowid FROM words WHERE words MATCH ? LIMIT ?)",
                    (query.fts, RANK_LIMIT + 1),
                ).fetchone()[0]
                ranked = count <= RANK_LIMIT
                rows = connection.execute(
                    "SELECT b.job_id, b.doc_index, b.document, b.page, b.block, b.category, "
                    "b.x0, b.y0, b.x1, b.y1, b.text "
                    "FROM words JOIN blocks b ON b.id = words.rowid "
                    f"WHERE words MATCH ? ORDER BY {'words.rank' if ranked else 'words.rowid DESC'} LIMIT ?",
                    (query.fts, max(int(limit), 1)),
                ).fetchall()
            if not ranked:  # the most recently indexed blocks, listed by job, document, page and block
                jobs = {row[0]: position for position, row in reversed(list(enumerate(rows)))}
                rows.sort(key=lambda row: (jobs[row[0]], row[1], row[3], row[4]))
            return [
                Hit(
                    job_id=row[0],
                    document_index=int(row[1]),
                    document=row[2],
                    page=int(row[3]),
                    block=int(row[4]),
                    category=row[5],
                    bbox=None if row[6] is None else (row[6], row[7], row[8], row[9]),
                    snippet=snippet(row[10], query),
                )
                for row in rows
            ]

        return self._retrying(work)


def _damaged(error: sqlite3.DatabaseError) -> bool:
    """Whether an error means the file is not a usable index (not a database, corrupt, of another
    schema), as opposed to one that passes (busy, locked, the disk full or read-only)."""
    if not isinstance(error, sqlite3.OperationalError):
        return True  # SQLITE_NOTADB, SQLITE_CORRUPT, a schema of another version
    return getattr(error, "sqlite_errorcode", None) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) or (
        "no such table" in str(error) or "no such column" in str(error)
    )


# --- kept in step with the job store ---------------------------------------------------------


def _stamp(job_file: Path) -> str | None:
    try:
        info = job_file.stat()
    except OSError:
        return None
    return f"{info.st_mtime_ns}:{info.st_size}"


def sync(workspace: Path | str) -> SearchIndex:
    """The workspace's index, brought up to date with its job files: a job whose ``job.json``
    changed since it was indexed (or was never indexed) is read again, a job that is gone is
    dropped. A missing or damaged index is built again this way, from every job."""
    from ..jobs import JOB_FILE, JOB_ID, JobError, JobStore

    store = JobStore(Path(workspace))
    index = SearchIndex(workspace)
    known = index.stamps()
    on_disk: dict[str, str | None] = {}
    if store.root.is_dir():
        for folder in store.root.iterdir():
            if re.fullmatch(JOB_ID, folder.name) and folder.is_dir():
                on_disk[folder.name] = _stamp(folder / JOB_FILE)
    for job_id in known.keys() - on_disk.keys():
        index.remove_job(job_id)
    for job_id, stamp in on_disk.items():
        if job_id in known and known[job_id] == stamp:
            continue
        try:
            documents = store.load(job_id).documents
        except JobError:
            documents = []  # damaged: nothing to find in it until its file changes
        index.add_job(job_id, documents, stamp)
    return index


def search(workspace: Path | str, text: str, *, limit: int = DEFAULT_LIMIT) -> list[Hit]:
    """Every job of the workspace searched for ``text``, the index brought up to date first (and
    once more when the search itself found the index damaged: it is then built again)."""
    index = sync(workspace)
    hits = index.search(text, limit=limit)
    return sync(workspace).search(text, limit=limit) if index.discarded else hits


def _page_written(job: Job, document_index: int, page: PageResult) -> None:
    name = job.inputs[document_index].name if document_index < len(job.inputs) else ""
    try:
        SearchIndex(job.dir.parent.parent).add_page(job.id, document_index, name, page)
    except (SearchIndexError, OSError) as exc:  # the next search reads the job from its files
        log.warning("search index: page %s of job %s not indexed: %s", page.page_number, job.id, exc)


def _job_deleted(workspace: Path, job_id: str) -> None:
    try:
        SearchIndex(workspace).remove_job(job_id)
    except (SearchIndexError, OSError) as exc:  # the next search drops it, its folder being gone
        log.warning("search index: job %s not removed: %s", job_id, exc)


def keep_index() -> None:
    """Index pages as jobs write them and drop deleted jobs at once, in this process (the studio,
    ``convert``, the hot folder). Without it the index still catches up before each search."""
    from .. import jobs

    jobs.add_listeners(page=_page_written, deleted=_job_deleted)
