"""A job's name, as the history and the downloads show it: the user's own (renamed in the
sidebar), else its first document's name ("report", "report +2").

The name is a small file of its own in the job's folder, not a field of job.json: a running job
rewrites job.json, so a rename never races a run, and deleting the job deletes its name."""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..jobs import Job

NAME_FILE = "name.txt"
MAX_LENGTH = 120
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')  # what Windows, macOS or Linux refuse in a file name


def clean(name: str | None) -> str:
    """A name as typed, on one line, without control characters, at most MAX_LENGTH characters."""
    text = unicodedata.normalize("NFC", str(name or ""))
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" and c != " " else c for c in text)
    return " ".join(text.split())[:MAX_LENGTH]


def default_name(job: Job) -> str:
    """The first document's name without its extension, and how many more there are."""
    names = [Path(str(path)).stem for path in job.spec.files] or [item.name for item in job.inputs]
    if not names:
        return job.id[:12]
    return names[0] if len(names) == 1 else f"{names[0]} +{len(names) - 1}"


def name_of(job: Job) -> str:
    """The user's name for the job, else ``default_name``."""
    try:
        own = clean((job.dir / NAME_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        own = ""
    return own or default_name(job)


def rename(job: Job, name: str | None) -> str:
    """Give the job a name (an empty one goes back to the default); returns the name now shown."""
    wanted = clean(name)
    path = job.dir / NAME_FILE
    if not wanted or wanted == default_name(job):
        path.unlink(missing_ok=True)
        return default_name(job)
    fd, tmp = tempfile.mkstemp(dir=job.dir, prefix=f".{NAME_FILE}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(wanted)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return wanted


def file_name(name: str, fallback: str = "ocr-studio") -> str:
    """``name`` as a download's file name on any system: no separators or reserved characters,
    no leading dots (a hidden file) or trailing dots and spaces (Windows drops them)."""
    text = _UNSAFE.sub("_", clean(name)).strip(" .")
    return text or fallback
