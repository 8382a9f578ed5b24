"""The hot folder: files dropped into a folder (or a sub-folder) are converted once they are
complete, and their results written into an output folder that mirrors the sub-folders.

Polling, not OS change notifications: a scan every few seconds works the same on Windows, Linux
and macOS, and on network shares and removable drives, where notifications are missing, late or
lost when the drive goes away. A file counts as complete when its size and modification time
stay the same across two scans at least ``settle_seconds`` apart (a copy in progress keeps
changing them) and it can be opened for reading (Windows keeps a file being copied locked).

What was done is kept in a small state file in the output folder (``STATE_FILE``), keyed by the
file's path under the watched folder, its size and its modification time: after a restart done
files are skipped, and a file replaced by a new version is converted again. A file that fails
gets ``<name>.error.txt`` beside where its results would be, saying why; it is tried again when
it changes or the watcher restarts. A watched folder that disappears (a drive unplugged, a share
gone) is waited for; nothing is forgotten meanwhile.

The conversion itself is not done here: ``HotFolder`` is given a ``Convert`` callable
(``library.job_converter.JobConverter`` runs the same job code as ``ocr-studio convert``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..documents import SUPPORTED_SUFFIXES
from ..exporters import safe_stem, write_atomic
from ..i18n import LocalizedError, Message, error_message, message

log = logging.getLogger(__name__)

STATE_FILE = ".ocr-studio-watch.json"
STATE_FORMAT = 1
ERROR_SUFFIX = ".error.txt"
SETTLE_SECONDS = 2.0  # how long a file must stay unchanged before it is taken
POLL_SECONDS = 2.0
OUTPUT_RETRY_SECONDS = 30.0  # an output folder that cannot be written is tried again after this
_SKIPPED_FOLDERS = frozenset({"$recycle.bin", "system volume information", "__macosx"})


class HotFolderError(LocalizedError):
    """A file could not be converted, or the folders cannot be watched; the message says why."""


@dataclass
class Converted:
    """What a conversion wrote, and what went wrong on the way without stopping it (failed pages)."""

    written: list[Path] = field(default_factory=list)
    problems: list[Message | str] = field(default_factory=list)


class Convert(Protocol):
    def __call__(self, path: Path, out_folder: Path, stem: str) -> Converted:
        """Convert ``path`` and write its results into ``out_folder`` as ``<stem>.<format>``;
        raises (``HotFolderError`` ideally) when the file cannot be converted."""


@dataclass(frozen=True)
class WatchEvent:
    """News for whoever shows the watcher (the CLI prints it, the studio shows the last ones)."""

    kind: str  # converted | partial | failed | folder_missing | folder_back | output_unavailable
    path: Path | None = None  # the input file, relative to the watched folder
    written: tuple[Path, ...] = ()
    reason: Message | str | None = None

    def message(self) -> Message:
        """The event as one catalog message (``watch.event.<kind>``)."""
        reason = self.reason if isinstance(self.reason, Message) else str(self.reason or "")  # rendered with it
        files = ", ".join(p.name for p in self.written)
        return message(f"watch.event.{self.kind}", path=str(self.path or ""), files=files, reason=reason)


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float  # clock time this signature was first seen


class HotFolder:
    """Watches ``in_dir`` and converts what is dropped there into ``out_dir``.

    ``poll()`` does one scan (and converts whatever is ready); ``run(stop)`` polls until ``stop``
    is set. ``clock`` is injectable so tests need not sleep."""

    def __init__(
        self,
        in_dir: Path,
        out_dir: Path,
        convert: Convert,
        *,
        settle_seconds: float = SETTLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        on_event: Callable[[WatchEvent], None] | None = None,
    ):
        self.in_dir = Path(in_dir).expanduser().absolute()
        self.out_dir = Path(out_dir).expanduser().absolute()
        check_folders(self.in_dir, self.out_dir)
        self.convert = convert
        self.settle_seconds = settle_seconds
        self.clock = clock
        self.on_event = on_event
        self.files: dict[str, dict[str, Any]] = self._load_state()  # relative path -> its record
        self.seen: dict[str, _Seen] = {}
        self.missing = False
        self.scans = 0
        self.converted = 0
        self.failed = 0
        self._unsaved = False
        self._output_blocked_until = 0.0
        self._stop: threading.Event | None = None

    # ----- scanning ---------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Files found but not converted yet (still being copied, or waiting to settle)."""
        return len(self.seen)

    def poll(self) -> list[WatchEvent]:
        """One scan: notice new and changed files, convert those that are complete."""
        events: list[WatchEvent] = []
        now = self.clock()
        self.scans += 1
        found = self._scan()
        if found is None:
            if not self.missing:
                self.missing = True
                events.append(self._event(WatchEvent("folder_missing", reason=str(self.in_dir))))
            self.seen.clear()  # whatever was being copied starts over when the folder is back
            return events
        if self.missing:
            self.missing = False
            events.append(self._event(WatchEvent("folder_back", reason=str(self.in_dir))))
        if self._unsaved:
            self._save_state()
        for relative in list(self.seen):
            if relative not in found:  # deleted or renamed before it was taken
                del self.seen[relative]
        for relative, (size, mtime_ns) in sorted(found.items()):
            record = self.files.get(relative)
            if record is not None and (record["size"], record["mtime_ns"]) == (size, mtime_ns):
                if record.get("status") != "failed" or record.get("tried_here"):
                    self.seen.pop(relative, None)
                    continue  # done (or failed) in this version
            seen = self.seen.get(relative)
            if seen is None or (seen.size, seen.mtime_ns) != (size, mtime_ns):
                self.seen[relative] = _Seen(size, mtime_ns, now)
                continue
            if now - seen.since < self.settle_seconds or not _readable(self.in_dir / relative):
                continue
            if now < self._output_blocked_until:
                continue
            if self._stop is not None and self._stop.is_set():
                break  # stopped: the files still waiting are taken the next time it runs
            event = self._take(relative, size, mtime_ns)
            if event is not None:
                events.append(self._event(event))
        return events

    def run(self, stop: threading.Event, interval: float = POLL_SECONDS) -> None:
        """Poll until ``stop`` is set. A scan that fails unexpectedly is logged and the next one
        tries again: a watcher that runs for days must not end over one bad moment."""
        self._stop = stop
        while not stop.is_set():
            try:
                self.poll()
            except Exception:
                log.exception("The hot folder scan of %s failed; trying again", self.in_dir)
            stop.wait(interval)

    def _scan(self) -> dict[str, tuple[int, int]] | None:
        """Candidate files by relative path (POSIX form) with their size and mtime; None when the
        watched folder is not there (or vanished during the scan)."""
        if not self.in_dir.is_dir():
            return None
        found: dict[str, tuple[int, int]] = {}
        out_dir = _resolved(self.out_dir)
        broken: list[OSError] = []
        for root, folders, files in os.walk(self.in_dir, onerror=broken.append):
            here = Path(root)
            folders[:] = sorted(
                name
                for name in folders
                if not name.startswith(".")
                and name.lower() not in _SKIPPED_FOLDERS
                and _resolved(here / name) != out_dir
            )
            for name in files:
                if name.startswith((".", "~$")) or Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
                    continue
                path = here / name
                try:
                    stat = path.stat()
                except OSError:  # gone between the listing and now
                    continue
                found[path.relative_to(self.in_dir).as_posix()] = (stat.st_size, stat.st_mtime_ns)
        if not self.in_dir.is_dir() or any(_same_path(e.filename, self.in_dir) for e in broken):
            return None
        return found

    # ----- converting -------------------------------------------------------------------------

    def _take(self, relative: str, size: int, mtime_ns: int) -> WatchEvent | None:
        source = self.in_dir / relative
        out_folder = self.out_dir / Path(relative).parent
        stem = self._stem(relative)
        error_file = out_folder / (Path(relative).name + ERROR_SUFFIX)
        try:
            result = self.convert(source, out_folder, stem)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one bad file never stops the watcher
            reason: Message | str = error_message(exc)
            if _about_the_output(exc, self.out_dir):
                return self._output_unavailable(relative, reason)
            if self._changed(relative, size, mtime_ns):
                return None  # taken too early after all: it is converted again once it settles
            try:
                write_atomic(error_file, (_render(reason) + "\n").encode("utf-8"))
            except OSError as write_error:
                return self._output_unavailable(relative, error_message(write_error))
            self._record(relative, size, mtime_ns, stem, "failed", [error_file])
            self.failed += 1
            return WatchEvent("failed", Path(relative), (error_file,), reason)
        if self._changed(relative, size, mtime_ns):
            return None
        written = list(result.written)
        try:
            if result.problems:
                lines = "\n".join(_render(p) for p in result.problems)
                written.append(write_atomic(error_file, (lines + "\n").encode("utf-8")))
            else:
                error_file.unlink(missing_ok=True)  # an earlier version failed; this one did not
        except OSError as exc:
            return self._output_unavailable(relative, error_message(exc))
        status = "partial" if result.problems else "done"
        self._record(relative, size, mtime_ns, stem, status, written)
        self.converted += 1
        reason = "; ".join(_render(p) for p in result.problems) if result.problems else None
        return WatchEvent("partial" if result.problems else "converted", Path(relative), tuple(written), reason)

    def _output_unavailable(self, relative: str, reason: Message | str) -> WatchEvent:
        """The output folder cannot be written (a drive gone, full, read-only): the file stays
        pending and is tried again later, never marked failed for it."""
        self._output_blocked_until = self.clock() + OUTPUT_RETRY_SECONDS
        self.seen.pop(relative, None)
        return WatchEvent("output_unavailable", Path(relative), (), reason)

    def _changed(self, relative: str, size: int, mtime_ns: int) -> bool:
        try:
            stat = (self.in_dir / relative).stat()
        except OSError:
            self.seen.pop(relative, None)
            return True
        if (stat.st_size, stat.st_mtime_ns) != (size, mtime_ns):
            self.seen[relative] = _Seen(stat.st_size, stat.st_mtime_ns, self.clock())
            return True
        return False

    def _stem(self, relative: str) -> str:
        """The results' file stem: the file's own, numbered when another file of the same folder
        already uses it (``report.pdf`` and ``report.png`` → ``report``, ``report-2``); kept in the
        state so a file keeps its stem across restarts."""
        record = self.files.get(relative)
        if record is not None and record.get("stem"):
            return str(record["stem"])
        parent = Path(relative).parent
        taken = {
            str(r.get("stem", "")).lower()
            for other, r in self.files.items()
            if other != relative and Path(other).parent == parent
        }
        base = safe_stem(Path(relative).name)
        stem, number = base, 1
        while stem.lower() in taken:
            number += 1
            stem = f"{base}-{number}"
        return stem

    def _record(self, relative: str, size: int, mtime_ns: int, stem: str, status: str, written: list[Path]) -> None:
        self.files[relative] = {
            "size": size,
            "mtime_ns": mtime_ns,
            "stem": stem,
            "status": status,
            "outputs": [_relative_to(p, self.out_dir) for p in written],
            "when": time.time(),
            "tried_here": True,  # in memory only: a failed file is tried again after a restart
        }
        self.seen.pop(relative, None)
        self._save_state()

    # ----- the state file ---------------------------------------------------------------------

    def _load_state(self) -> dict[str, dict[str, Any]]:
        path = self.out_dir / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:  # damaged or unreadable: start over (results stay)
            log.warning("Hot folder state %s unreadable (%s); files are converted again", path, exc)
            return {}
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, dict):
            return {}
        kept = {}
        for relative, record in files.items():
            if (
                isinstance(record, dict)
                and isinstance(record.get("size"), int)
                and isinstance(record.get("mtime_ns"), int)
            ):
                kept[str(relative)] = {key: value for key, value in record.items() if key != "tried_here"}
        return kept

    def _save_state(self) -> None:
        files = {r: {k: v for k, v in record.items() if k != "tried_here"} for r, record in self.files.items()}
        payload = {"format": STATE_FORMAT, "folder": str(self.in_dir), "files": files}
        try:
            write_atomic(self.out_dir / STATE_FILE, json.dumps(payload, ensure_ascii=False, indent=1).encode("utf-8"))
            self._unsaved = False
        except OSError as exc:  # the output drive is gone: kept in memory, written when it is back
            log.warning("Hot folder state not saved (%s); will try again", exc)
            self._unsaved = True

    def _event(self, event: WatchEvent) -> WatchEvent:
        if self.on_event is not None:
            self.on_event(event)
        return event


def check_folders(in_dir: Path, out_dir: Path) -> None:
    """The output folder may be anywhere but the watched folder itself (results would be taken
    as new input); a sub-folder of it is fine: it is left out of the scan."""
    if _resolved(in_dir) == _resolved(out_dir):
        raise HotFolderError(message("watch.error.same_folder", folder=str(in_dir)))


def _readable(path: Path) -> bool:
    """Whether the file can be opened now (Windows refuses while another program writes it)."""
    try:
        with open(path, "rb") as handle:
            handle.read(1)
        return True
    except OSError:
        return False


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path.absolute()


def _same_path(name: Any, folder: Path) -> bool:
    try:
        return name is not None and _resolved(Path(name)) == _resolved(folder)
    except (TypeError, ValueError):
        return False


def _about_the_output(exc: BaseException, out_dir: Path) -> bool:
    """An OSError naming a path inside the output folder: the output cannot be written."""
    if not isinstance(exc, OSError) or exc.filename is None:
        return False
    try:
        return Path(str(exc.filename)).absolute().is_relative_to(out_dir)
    except (TypeError, ValueError):
        return False


def _relative_to(path: Path, folder: Path) -> str:
    try:
        return Path(path).absolute().relative_to(folder).as_posix()
    except ValueError:
        return str(path)


def _render(value: Message | str) -> str:
    return value.render() if isinstance(value, Message) else str(value)
