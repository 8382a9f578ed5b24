"""A scanned page read the way a person would: turned upright first (Tesseract's OSD), in the
languages its script calls for (unless the user chose them), its words cleaned of look-alike letters
of the other alphabet, and a warning where what came out still does not look like text."""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import i18n
from . import scripts, tesseract
from .tesseract import OcrWord

if TYPE_CHECKING:
    from PIL import Image

# Languages written in Cyrillic (Tesseract's codes); the others read here are Latin.
CYRILLIC_LANGUAGES = frozenset({"rus", "ukr", "bel", "bul", "mkd", "srp", "kaz", "kir", "mon", "tat", "tgk"})
# OSD names the script with at least this confidence before the languages follow it (Cyrillic
# asks more: OSD calls a few lines of English Cyrillic with a confidence of 2).
_SCRIPT_CONFIDENCE = {"Latin": 1.0, "Cyrillic": 3.0}
# A turn OSD is less sure of than this is checked: the page read as it came wins if it reads better.
_SURE_TURN = 14.0
# A reading in fewer languages is doubted when more than this share of its words is unsure...
_DOUBTFUL_SHARE = 0.25
_UNSURE = 60.0
# ...and a page is nonsense when its mean word confidence is below this, or fewer than this
# share of its words look like words.
_NONSENSE_CONFIDENCE = 45.0
_WORDLIKE_SHARE = 0.5
_MIN_WORDS = 8
_WORDLIKE = re.compile(
    r"^[\"'“‘«(\[]*(?:[A-Za-z][a-z]+|[A-Z]+|[a-z]+|[А-ЯЁа-яё][а-яё]+|[А-ЯЁ]+|[а-яё]+)"
    r"(?:[-’'][A-Za-zА-Яа-яЁё]+)*[\"'”’»)\].,:;!?]*$"
)
_VOWELS = frozenset("aeiouyAEIOUYаеёиоуыэюяАЕЁИОУЫЭЮЯ")


@dataclass
class ScanReading:
    """What was read on one page: the words (boxes in ``image``'s pixels), the page turned upright,
    how far it was turned (clockwise degrees), the languages read and what the reader should know."""

    words: list[OcrWord]
    image: Image.Image
    rotation: int = 0
    languages: str = ""
    warnings: list[str] = field(default_factory=list)


def page_languages(languages: str, orientation: tesseract.Orientation | None) -> str:
    """The languages for this page out of ``languages`` ("eng+rus"): those of its script when OSD
    names one surely, the script's own languages first; else all of them."""
    codes = [c for c in languages.split("+") if c]
    if orientation is None or orientation.script_confidence < _SCRIPT_CONFIDENCE.get(orientation.script, 99.0):
        return languages
    cyrillic = [c for c in codes if c in CYRILLIC_LANGUAGES]
    latin = [c for c in codes if c not in CYRILLIC_LANGUAGES]
    if orientation.script == "Latin" and latin:
        return "+".join(latin)
    if orientation.script == "Cyrillic" and cyrillic:
        return "+".join(cyrillic + latin)
    return languages


def read_scan(image: Image.Image, languages: str, *, explicit: bool, dpi: int | None) -> ScanReading:
    """Read ``image`` upright in ``languages`` (``explicit``: as the user chose them, else narrowed to
    the page's script, widened again where that reads worse)."""
    orientation = tesseract.detect_orientation(image, dpi=dpi)
    turn = orientation.turn if orientation is not None else 0
    upright = image.rotate(-turn, expand=True) if turn else image
    chosen = languages if explicit else page_languages(languages, orientation)
    words = tesseract.recognize_image(upright, chosen, dpi=dpi)
    if set(chosen.split("+")) != set(languages.split("+")) and _doubtful(words):  # narrowed, and it shows
        wider = tesseract.recognize_image(upright, languages, dpi=dpi)
        if _mean_confidence(wider) > _mean_confidence(words):
            words, chosen = wider, languages
    if turn and orientation is not None and orientation.confidence < _SURE_TURN and not _reads_well(words):
        unturned = tesseract.recognize_image(image, chosen, dpi=dpi)
        if _reads_well(unturned):
            words, upright, turn = unturned, image, 0  # OSD was wrong: the page was upright
    words = _cleaned(words)
    reading = ScanReading(words, upright, rotation=turn, languages=chosen)
    if looks_like_nonsense(words):
        reading.warnings.append(i18n.text("scans.nonsense", confidence=round(_mean_confidence(words))))
    return reading


def _cleaned(words: list[OcrWord]) -> list[OcrWord]:
    texts = scripts.clean_words([w.text for w in words])
    return [
        w if text == w.text else OcrWord(w.bbox, text, w.line, w.confidence, w.letter_box)
        for w, text in zip(words, texts, strict=True)
    ]


def _scored(words: list[OcrWord]) -> list[float]:
    return [w.confidence for w in words if w.confidence >= 0]


def _mean_confidence(words: list[OcrWord]) -> float:
    scored = _scored(words)
    return statistics.fmean(scored) if scored else 100.0


def _reads_well(words: list[OcrWord]) -> bool:
    """Whether a reading is of upright text: its longer words lie flat (Tesseract also reads a page
    turned by 90°, word by standing word) and it is no nonsense (a page upside down)."""
    long = [w for w in words if len(w.text) >= 3]
    flat = sum(1 for w in long if w.bbox[2] - w.bbox[0] > w.bbox[3] - w.bbox[1])
    return flat >= 0.5 * len(long) and not looks_like_nonsense(words)


def _doubtful(words: list[OcrWord]) -> bool:
    scored = _scored(words)
    return bool(scored) and sum(1 for c in scored if c < _UNSURE) > _DOUBTFUL_SHARE * len(scored)


def wordlike(text: str) -> bool:
    """Whether ``text`` is shaped like a word of prose: letters of one alphabet in one of the usual
    cases (lower, Capitalised, CAPITALS), a vowel among them, punctuation only around it."""
    if not _WORDLIKE.match(text):
        return False
    letters = [ch for ch in text if ch.isalpha()]
    latin, cyrillic = scripts.counts(text)
    return (len(letters) <= 3 or any(ch in _VOWELS for ch in letters)) and not (latin and cyrillic)


def looks_like_nonsense(words: list[OcrWord]) -> bool:
    """Whether a page's words are more likely noise than text: low mean confidence, or few words
    shaped like words. Pages of few words (a stamp, a figure) are never judged."""
    texts = [w.text for w in words if any(ch.isalpha() for ch in w.text)]
    if len(texts) < _MIN_WORDS:
        return False
    share = sum(1 for t in texts if wordlike(t)) / len(texts)
    return _mean_confidence(words) < _NONSENSE_CONFIDENCE or share < _WORDLIKE_SHARE
