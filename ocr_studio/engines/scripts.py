"""Which alphabet a word, and a page, is written in; and the look-alike letters that put a Cyrillic
letter inside an English word (or a Latin one inside a Russian word) when Tesseract reads with both.

Such a word looks right and is found by no search: "Mo" with a Cyrillic "М", "9000х9000" with a
Cyrillic "х". A word mostly in one alphabet gets its few look-alikes of the other alphabet turned
into that one; a word wholly in look-alikes of the page's minority alphabet follows the page when
the page is nearly all in one alphabet. A page truly in two languages keeps both."""

from __future__ import annotations

from collections.abc import Iterable

# Cyrillic letters that print like a Latin one, and back.
_CYRILLIC_TO_LATIN = dict(zip("АВЕЁКМНОРСТХУаеёокрсухіјѕԁԛԝІЈЅ", "ABEËKMHOPCTXYaeëokpcyxijsdqwIJS", strict=True))
_LATIN_TO_CYRILLIC = {latin: cyrillic for cyrillic, latin in _CYRILLIC_TO_LATIN.items() if cyrillic not in "ЁёУ"}
_LATIN_TO_CYRILLIC.update({"Y": "У", "y": "у", "ë": "ё", "Ë": "Ё"})
# A page is "one alphabet" when the other one has fewer than this share of its words.
ONE_SCRIPT_SHARE = 0.05


def script_of(ch: str) -> str | None:
    """ "latin", "cyrillic", or None for a digit, a mark or another alphabet."""
    if "a" <= ch.lower() <= "z" or "\u00c0" <= ch <= "\u024f":
        return "latin"
    if "\u0400" <= ch <= "\u04ff":
        return "cyrillic"
    return None


def counts(word: str) -> tuple[int, int]:
    """(Latin letters, Cyrillic letters) in ``word``."""
    found = [script_of(ch) for ch in word]
    return found.count("latin"), found.count("cyrillic")


def page_script(words: Iterable[str]) -> str | None:
    """The alphabet of the page when it is nearly all one ("latin" or "cyrillic"), else None."""
    latin = cyrillic = 0
    for word in words:
        lat, cyr = counts(word)
        if lat > cyr:
            latin += 1
        elif cyr > lat:
            cyrillic += 1
    total = latin + cyrillic
    if not total:
        return None
    if cyrillic < ONE_SCRIPT_SHARE * total:
        return "latin"
    if latin < ONE_SCRIPT_SHARE * total:
        return "cyrillic"
    return None


def _convert(word: str, table: dict[str, str], source: str) -> str | None:
    """``word`` with every letter of the ``source`` alphabet turned by ``table``; None when one has
    no look-alike (then the word really is in that alphabet, or mixed beyond repair)."""
    out = []
    for ch in word:
        if script_of(ch) == source:
            if ch not in table:
                return None
            out.append(table[ch])
        else:
            out.append(ch)
    return "".join(out)


def clean_word(word: str, page: str | None) -> str:
    """``word`` in one alphabet where look-alikes mixed it: the word's majority alphabet wins; with
    no majority (a tie, or only look-alikes of the minority alphabet), the page's (``page_script``)."""
    latin, cyrillic = counts(word)
    if not latin and not cyrillic:
        return word
    if latin and cyrillic:
        target = "latin" if latin > cyrillic else "cyrillic" if cyrillic > latin else page
    elif page is not None and page != ("latin" if latin else "cyrillic"):
        target = page  # a whole word in the other alphabet on a page of one: only if all are look-alikes
    else:
        return word
    if target == "latin":
        return _convert(word, _CYRILLIC_TO_LATIN, "cyrillic") or word
    if target == "cyrillic":
        return _convert(word, _LATIN_TO_CYRILLIC, "latin") or word
    return word


def clean_words(words: list[str]) -> list[str]:
    """Every word of a page cleaned of look-alikes against the page's alphabet."""
    page = page_script(words)
    return [clean_word(word, page) for word in words]
