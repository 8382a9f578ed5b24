"""Tesseract OCR: where its language data is, which languages to read, and the words it
finds on a page image, each with its box and its place in Tesseract's lines.

The ``tesseract`` program is run for its TSV output (blocks, paragraphs, lines and words with
boxes, at the image's own resolution). Where only the language data is installed and not the
program (PyMuPDF carries its own Tesseract), PyMuPDF's OCR is used instead; both give the
same ``OcrWord`` list, so the page layout that follows does not care which ran.
Nothing here is cached between processes except in ``functools`` caches keyed by nothing
that a fresh process could not recompute."""

from __future__ import annotations

import csv
import functools
import io
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..i18n import LocalizedError, Message, message, normalize, text

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

# Languages offered in the UI and read by default when their data is installed ("auto"),
# in the order they are passed to Tesseract (the first is its primary language).
SUPPORTED_LANGUAGES: dict[str, str] = {
    "eng": "English",
    "rus": "Russian",
    "ukr": "Ukrainian",
    "deu": "German",
    "fra": "French",
    "spa": "Spanish",
    "ita": "Italian",
    "por": "Portuguese",
    "pol": "Polish",
}
OCR_TIMEOUT_S = 300.0
# Words of punctuation only, read with less confidence than this, are specks of the scan.
_NOISE_CONFIDENCE = 50.0
NO_TESSERACT = text("core.tesseract.not_installed")
_LANGUAGE_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{1,30}$")
_WINDOWS_BINARIES = (
    r"C:\Program Files\Tesseract-OCR\tesseract.exe",
    r"C:\Program Files (x86)\Tesseract-OCR\tesseract.exe",
)


class LanguageError(LocalizedError, ValueError):
    """The OCR languages asked for are written wrong or not installed; the message says what to install."""


@dataclass(frozen=True)
class OcrWord:
    """One recognised word: its box in the image's pixels, and the Tesseract line it belongs to."""

    bbox: tuple[float, float, float, float]
    text: str
    line: tuple[int, ...]  # (block, paragraph, line) — words sharing it were read as one line
    confidence: float = -1.0
    letter_box: bool = True  # the box hugs the letters (Tesseract's); PyMuPDF's spans the font's full height


@functools.lru_cache(maxsize=1)
def find_program() -> str | None:
    """The ``tesseract`` executable: on PATH, else where the Windows installer puts it."""
    found = shutil.which("tesseract")
    if found:
        return found
    if sys.platform == "win32":
        return next((path for path in _WINDOWS_BINARIES if Path(path).is_file()), None)
    return None


@functools.lru_cache(maxsize=1)
def find_tessdata() -> Path | None:
    """Tesseract's language-data folder, or None when Tesseract is not installed.
    Looked up once per process: $TESSDATA_PREFIX, then PyMuPDF's search, then the program."""
    candidates: list[str] = []
    if os.environ.get("TESSDATA_PREFIX"):
        candidates.append(os.environ["TESSDATA_PREFIX"])
    try:
        import pymupdf

        candidates.append(pymupdf.get_tessdata())
    except Exception as exc:  # PyMuPDF raises RuntimeError when it finds nothing
        log.debug("pymupdf.get_tessdata(): %s", exc)
    program = find_program()
    if program:
        try:
            listed = subprocess.run(
                [program, "--list-langs"], capture_output=True, text=True, timeout=20, check=False
            ).stdout
            match = re.search(r'"(.+?)"', listed)
            if match:
                candidates.append(match.group(1))
        except (OSError, subprocess.SubprocessError):
            pass
    for candidate in candidates:
        folder = Path(candidate)
        if folder.is_dir() and any(folder.glob("*.traineddata")):
            return folder
    return None


def installed_languages() -> list[str]:
    """Every language pack installed (Tesseract's codes: "eng", "rus"...), "osd" left out: it is
    orientation data, not a language. Empty when Tesseract is not installed."""
    folder = find_tessdata()
    if folder is None:
        return []
    return sorted(p.name.removesuffix(".traineddata") for p in folder.glob("*.traineddata") if p.stem != "osd")


def language_choices(lang: str | None = None) -> list[tuple[str, str]]:
    """(label, code) for a language picker: the supported languages that are installed, then any
    other installed pack, e.g. [("English (eng)", "eng"), ("Russian (rus)", "rus")]; the names
    are in ``lang`` (None: ``i18n.current_language()``): [("Английский (eng)", "eng"), ...]."""
    installed = installed_languages()
    codes = [code for code in SUPPORTED_LANGUAGES if code in installed]
    codes += [code for code in installed if code not in SUPPORTED_LANGUAGES]
    return [(_named(code).render(lang), code) for code in codes]


def _named(code: str) -> Message:
    """ "Russian (rus)" as a message: the name in the reader's language, the code as it is."""
    name = message(f"core.ocr_language.{code}") if code in SUPPORTED_LANGUAGES else code
    return message("core.tesseract.language_named", name=name, code=code)


def _installed_list() -> Message | str:
    return ", ".join(installed_languages()) or message("core.tesseract.none")


def default_languages() -> str:
    """What "auto" reads: the installed packs among the supported ones (English first), else English."""
    installed = set(installed_languages())
    chosen = [code for code in SUPPORTED_LANGUAGES if code in installed]
    return "+".join(chosen) or "eng"


def starting_languages(ui_lang: str | None, configured: str = "") -> str:
    """The languages a picker starts with: the setting's when it names some; else "rus+eng" when the
    UI is Russian and the ``rus`` pack is installed (Russian documents are then the likely ones, and
    Tesseract reads its first language best); else the installed supported packs.
    Raises ``LanguageError`` on a setting that is not a language code."""
    if parse_languages(configured):
        return resolve_languages(configured)
    installed = installed_languages()
    if normalize(ui_lang) == "ru" and "rus" in installed:
        return "rus+eng" if "eng" in installed else "rus"
    return default_languages()


def parse_languages(value: str) -> list[str]:
    """ "eng+rus", "eng, rus" or "eng rus" → ["eng", "rus"]; "" or "auto" → []. Raises LanguageError
    on something that is not a Tesseract language code."""
    parts = [p for p in re.split(r"[+,\s]+", (value or "").strip()) if p]
    if parts in ([], ["auto"]):
        return []
    bad = [p for p in parts if not _LANGUAGE_CODE.match(p)]
    if bad:
        raise LanguageError(
            message("core.tesseract.bad_code", codes=", ".join(map(repr, bad)), installed=_installed_list())
        )
    return list(dict.fromkeys(parts))


def resolve_languages(value: str) -> str:
    """The languages to read as Tesseract's "eng+rus": the setting's, or the default for "" / "auto"."""
    return "+".join(parse_languages(value)) or default_languages()


def install_hint(codes: list[str]) -> Message:
    """How to install these language packs on Debian/Ubuntu, Windows and macOS."""
    packages = " ".join(f"tesseract-ocr-{code.lower().replace('_', '-')}" for code in codes)
    return message("core.tesseract.install_hint", packages=packages)


def missing_languages(languages: str) -> list[str]:
    installed = set(installed_languages())
    return [code for code in languages.split("+") if code and code not in installed]


def language_problem(languages: str) -> str | None:
    """Why Tesseract cannot read ``languages`` ("eng+rus") here (an ``i18n.Text``), or None when it can."""
    if find_tessdata() is None:
        return NO_TESSERACT
    missing = missing_languages(languages)
    if not missing:
        return None
    return text(
        "core.tesseract.no_language_data",
        names=[_named(code) for code in missing],
        installed=_installed_list(),
        hint=install_hint(missing),
    )


def recognize_image(
    image: Image.Image, languages: str, *, dpi: int | None, timeout: float = OCR_TIMEOUT_S
) -> list[OcrWord]:
    """The words Tesseract reads on ``image`` in its order, boxes in the image's pixels. ``dpi`` is
    the image's real resolution where known; None lets Tesseract estimate it from the letters, as
    ``tesseract IMAGE`` does (a wrong resolution costs more than none). Uses the ``tesseract``
    program where installed, else PyMuPDF's built-in Tesseract."""
    program = find_program()
    if program is not None:
        return _program_words(program, image, languages, dpi=dpi, timeout=timeout)
    return _pymupdf_words(image, languages, dpi=dpi or DEFAULT_DPI)


# What PyMuPDF's OCR is told when the image does not say its resolution.
DEFAULT_DPI = 300
# Rotations OSD is trusted for below this confidence are left alone: a page of few letters.
_OSD_MIN_CONFIDENCE = 2.0
# OSD looks at the page shrunk to this many pixels on its longer side.
_OSD_SIDE = 3600


@dataclass(frozen=True)
class Orientation:
    """What Tesseract's OSD says of a page: ``rotate`` degrees clockwise turn it upright, and the
    script most of its letters are in ("Latin", "Cyrillic"...), each with its confidence."""

    rotate: int
    confidence: float
    script: str
    script_confidence: float

    @property
    def turn(self) -> int:
        """The clockwise turn worth making: ``rotate`` when OSD is sure of it, else 0."""
        return self.rotate if self.confidence >= _OSD_MIN_CONFIDENCE else 0


def osd_installed() -> bool:
    folder = find_tessdata()
    return folder is not None and (folder / "osd.traineddata").is_file()


def detect_orientation(image: Image.Image, *, dpi: int | None, timeout: float = 60.0) -> Orientation | None:
    """Tesseract's orientation and script detection (``--psm 0``) on ``image``; None where the
    program or its ``osd`` data is missing, or the page has too few letters to tell."""
    program = find_program()
    if program is None or not osd_installed():
        return None
    scale = min(1.0, _OSD_SIDE / max(image.size))  # letters stay readable; OSD is then a second, not several
    if scale < 1.0:
        image = image.convert("L").resize((round(image.width * scale), round(image.height * scale)))
        dpi = round(dpi * scale) if dpi else None
    try:
        done = _run(program, image, ["--psm", "0", "-l", "osd"], dpi=dpi, timeout=timeout, output=[])
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("OSD: %s", exc)
        return None
    return parse_osd(done.stdout.decode("utf-8", "replace"))


def parse_osd(report: str) -> Orientation | None:
    """``--psm 0``'s report ("Rotate: 90", "Orientation confidence: 12.3", "Script: Latin"...)."""
    fields = dict(line.split(":", 1) for line in report.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    try:
        return Orientation(
            rotate=int(fields["Rotate"]) % 360,
            confidence=float(fields.get("Orientation confidence", 0)),
            script=fields.get("Script", ""),
            script_confidence=float(fields.get("Script confidence", 0)),
        )
    except (KeyError, ValueError):
        return None


def _run(
    program: str, image: Image.Image, options: list[str], *, dpi: int | None, timeout: float, output: list[str]
) -> subprocess.CompletedProcess[bytes]:
    """``tesseract`` on ``image`` as it is (colour kept: Tesseract's own binarisation reads it
    best), with its resolution where known."""
    if image.mode == "RGB" and _grey(image):
        image = image.convert("L")  # the same pixels in a third of the bytes
    png = io.BytesIO()
    image.save(png, format="PNG", compress_level=1, **({"dpi": (dpi, dpi)} if dpi else {}))
    command = [program, "stdin", "stdout", *options]
    if dpi:
        command += ["--dpi", str(max(70, min(int(dpi), 2400)))]
    tessdata = find_tessdata()
    if tessdata is not None:
        command[1:1] = ["--tessdata-dir", str(tessdata)]
    # One thread: pages are OCR'd one at a time and Tesseract's OpenMP threads mostly spin on small CPUs.
    env = {**os.environ, "OMP_THREAD_LIMIT": os.environ.get("OMP_THREAD_LIMIT", "1")}
    return subprocess.run(
        [*command, *output], input=png.getvalue(), capture_output=True, timeout=timeout, check=False, env=env
    )


def _grey(image: Image.Image) -> bool:
    """Whether an RGB image is grey throughout (a scan stored as colour)."""
    from PIL import ImageChops

    red, green, blue = image.split()
    return not ImageChops.difference(red, green).getbbox() and not ImageChops.difference(green, blue).getbbox()


def _program_words(
    program: str, image: Image.Image, languages: str, *, dpi: int | None, timeout: float
) -> list[OcrWord]:
    done = _run(program, image, ["-l", languages, "--psm", "3"], dpi=dpi, timeout=timeout, output=["tsv"])
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(f"Tesseract failed: {message[-1] if message else f'exit code {done.returncode}'}")
    return parse_tsv(done.stdout.decode("utf-8", "replace"))


def parse_tsv(tsv: str) -> list[OcrWord]:
    """Tesseract's TSV (level 5 rows are words) → words in its reading order."""
    words: list[OcrWord] = []
    reader = csv.DictReader(io.StringIO(tsv), delimiter="\t", quoting=csv.QUOTE_NONE)
    for row in reader:
        try:
            if row.get("level") != "5":
                continue
            text = (row.get("text") or "").strip()
            if not text:
                continue
            left, top, width, height = (float(row[k]) for k in ("left", "top", "width", "height"))
            line = (int(row["block_num"]), int(row["par_num"]), int(row["line_num"]))
            confidence = float(row.get("conf") or -1)
            if confidence < _NOISE_CONFIDENCE and not any(ch.isalnum() for ch in text):
                continue  # specks and rules read as "|", "—", "."
            words.append(OcrWord((left, top, left + width, top + height), text, line, confidence))
        except (KeyError, TypeError, ValueError):
            continue
    return words


def _pymupdf_words(image: Image.Image, languages: str, *, dpi: int) -> list[OcrWord]:
    """PyMuPDF's OCR of ``image`` (its own Tesseract, only the language data installed)."""
    import pymupdf

    from ..documents import MUPDF_LOCK

    width, height = image.size
    with MUPDF_LOCK:
        wrapper = pymupdf.open()
        try:
            page = wrapper.new_page(width=width * 72 / dpi, height=height * 72 / dpi)
            rgb = image.convert("RGB")
            page.insert_image(page.rect, pixmap=pymupdf.Pixmap(pymupdf.csRGB, width, height, rgb.tobytes(), 0))
            textpage = page.get_textpage_ocr(language=languages, dpi=dpi, full=True, tessdata=str(find_tessdata()))
            found = page.get_text("words", textpage=textpage)
        finally:
            wrapper.close()
    scale = dpi / 72
    return [
        OcrWord((x0 * scale, y0 * scale, x1 * scale, y1 * scale), text, (block, 0, line), letter_box=False)
        for x0, y0, x1, y1, text, block, line, _ in found
        if text.strip()
    ]
