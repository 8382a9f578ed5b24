"""Messages in the user's language (English and Russian), from TOML catalogs.

Why not gettext or Babel: the messages the core makes (a document that cannot be read, an
engine's warning, a job's failure) are *stored* in job files and read later, maybe in the other
language, so they are kept as a message id with arguments (``Message``) and rendered when read.
The catalogs are small TOML files read with the standard library; the one plural rule Russian
needs is a few lines here.

Catalogs: ``ocr_studio/locales/<area>.<lang>.toml`` (area ``core``, ``cli``, ``ui``...; lang
``en``, ``ru``). A message id is the area followed by the dotted key inside its file, so ids are
unique across areas by construction: in ``core.en.toml``::

    [document]
    password_required = "“{name}” is protected by a password."

is the id ``core.document.password_required``. Placeholders are ``str.format`` names. A plural
message is a table of CLDR categories chosen by the integer argument ``count`` (English needs
``one`` and ``other``; Russian ``one``, ``few``, ``many`` and ``other`` — ``other`` is used for
fractions); a table is a plural exactly when all its keys are categories and it has ``other``::

    [pages]
    count = { one = "{count} page", other = "{count} pages" }

A missing Russian message falls back to English, and a missing id renders as the id itself:
the UI never crashes on a message, and ``tests/test_i18n.py`` makes sure neither happens.

How the core uses it: errors are ``LocalizedError``s carrying a ``Message`` (``str(error)`` is
English); fields that have always held text (a page's warnings, a job's message) hold a ``Text``,
a str whose value is the English text and which carries its ``Message``, so old code that
searches or compares them keeps working; job files keep ``stored(value)`` (the Message's JSON)
and read it back with ``loaded``. Whatever the reader holds, ``render(value, lang)`` shows it.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import locale
import os
import re
import string
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LANGUAGES = ("en", "ru")
DEFAULT_LANGUAGE = "en"
LANGUAGE_NAMES = {"en": "English", "ru": "Русский"}  # each in its own language, for a switch
ENV_VARIABLE = "OCR_STUDIO_LANGUAGE"
LOCALES_DIR = Path(__file__).with_name("locales")
PLURAL_CATEGORIES = frozenset({"zero", "one", "two", "few", "many", "other"})
# Categories each language's catalog must give for a plural message (the catalog test checks it).
REQUIRED_CATEGORIES = {"en": frozenset({"one", "other"}), "ru": frozenset({"one", "few", "many", "other"})}
_ALIASES = {"english": "en", "russian": "ru", "русский": "ru", "eng": "en", "rus": "ru"}

_context_language: contextvars.ContextVar[str | None] = contextvars.ContextVar("ocr_studio_language", default=None)
_process_language = DEFAULT_LANGUAGE


# --- catalogs -------------------------------------------------------------------------------


def _flatten(prefix: str, table: Mapping[str, Any], into: dict[str, str | dict[str, str]]) -> None:
    for key, value in table.items():
        msg_id = f"{prefix}.{key}"
        if isinstance(value, dict) and not is_plural(value):
            _flatten(msg_id, value, into)
        else:
            into[msg_id] = value


def is_plural(value: object) -> bool:
    """Whether a catalog value is a plural table (CLDR categories only, ``other`` among them)."""
    return isinstance(value, dict) and bool(value) and set(value) <= PLURAL_CATEGORIES and "other" in value


@functools.cache
def catalog(lang: str) -> dict[str, str | dict[str, str]]:
    """Every message of one language, by id: a string, or a plural table. Read once per process."""
    messages: dict[str, str | dict[str, str]] = {}
    for path in sorted(LOCALES_DIR.glob(f"*.{lang}.toml")):
        area = path.name.removesuffix(f".{lang}.toml")
        with path.open("rb") as file:
            _flatten(area, tomllib.load(file), messages)
    return messages


def plural_category(lang: str, count: float) -> str:
    """The CLDR plural category of ``count`` in ``lang``: 1 страница, 2 страницы, 5 страниц, 21 страница."""
    if lang == "ru":
        if count != int(count):
            return "other"
        n = abs(int(count))
        if n % 10 == 1 and n % 100 != 11:
            return "one"
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return "few"
        return "many"
    return "one" if count == 1 else "other"


def placeholders(text: str) -> set[str]:
    """The ``str.format`` names a message uses ("Page {page} of {pages}" → {"page", "pages"})."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(text) if name}


class _Args(dict):
    """Format arguments that leave a missing placeholder as written instead of raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _template(msg_id: str, lang: str, count: Any) -> str:
    for candidate in (lang, DEFAULT_LANGUAGE):
        value = catalog(candidate).get(msg_id) if candidate in LANGUAGES else None
        if value is None:
            continue
        if isinstance(value, dict):
            category = plural_category(candidate, count) if isinstance(count, int | float) else "other"
            return value.get(category) or value["other"]
        return str(value)
    return msg_id


def t(msg_id: str, lang: str | None = None, /, **args: Any) -> str:
    """The message ``msg_id`` in ``lang`` (None: ``current_language()``) with its arguments filled in.
    An argument that is a ``Message`` (or its JSON) is rendered in the same language."""
    lang = normalize(lang) or current_language()
    text = _template(msg_id, lang, args.get("count"))
    values = _Args({name: _render_arg(value, lang) for name, value in args.items()})
    try:
        return text.format_map(values)
    except (ValueError, IndexError, KeyError, AttributeError, TypeError):
        return text


def _render_arg(value: Any, lang: str) -> Any:
    if isinstance(value, Message | Text):
        return value.render(lang)
    if isinstance(value, dict) and "id" in value:
        return Message.from_json(value).render(lang)
    if isinstance(value, list | tuple):  # a list of items (messages or text), shown comma-separated
        return ", ".join(str(_render_arg(item, lang)) for item in value)
    return value


def _arg_json(value: Any) -> Any:
    if isinstance(value, Message | Text):
        return value.to_json()
    if isinstance(value, list | tuple):
        return [_arg_json(item) for item in value]
    return value


def _arg_from_json(value: Any) -> Any:
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return Message.from_json(value)
    if isinstance(value, list):
        return [_arg_from_json(item) for item in value]
    return value


# --- stored messages ------------------------------------------------------------------------

LITERAL = ""  # the id of text that is not from a catalog (an old job file's plain string)


@dataclass(frozen=True)
class Message:
    """A message id with its arguments: what the core stores (job files) and raises (errors),
    rendered in the reader's language when shown. ``str()`` is English, so code that prints an
    error without knowing the language keeps working. Arguments are JSON-safe: text, numbers,
    nested messages (rendered in the same language), or lists of those (shown comma-separated)."""

    id: str
    args: dict[str, Any] = field(default_factory=dict)

    def render(self, lang: str | None = None) -> str:
        if self.id == LITERAL:
            return str(self.args.get("text", ""))
        return t(self.id, lang, **self.args)

    def __str__(self) -> str:
        return self.render(DEFAULT_LANGUAGE)

    def __hash__(self) -> int:  # args is a dict: hash what it says, so a Message can be a key or in a set
        return hash(json.dumps(self.to_json(), sort_keys=True, default=str))

    def to_json(self) -> dict[str, Any]:
        """``{"id": ..., "args": {...}}`` with nested messages as JSON too."""
        return {
            "id": self.id,
            "args": {k: _arg_json(v) for k, v in self.args.items()},
        }

    @classmethod
    def from_json(cls, value: Message | Mapping[str, Any] | str | None) -> Message:
        """A stored message back; a plain string (an old job file) becomes a literal message."""
        if isinstance(value, Message):
            return value
        if isinstance(value, Text):
            return value.message
        if isinstance(value, Mapping) and isinstance(value.get("id"), str):
            args = value.get("args") or {}
            return cls(value["id"], {k: _arg_from_json(v) for k, v in args.items()})
        return cls.literal("" if value is None else str(value))

    def replaced(self, old: str, new: str) -> Message:
        """A copy with ``old`` replaced by ``new`` in every text argument (nested messages too): a
        message about a job's copy of a file (``inputs/01.pdf``) naming the file the user knows."""
        if not old:
            return self
        args = {}
        for key, value in self.args.items():
            if isinstance(value, Text):
                value = value.message
            if isinstance(value, Message):
                value = value.replaced(old, new)
            elif isinstance(value, str):
                value = value.replace(old, new)
            args[key] = value
        return Message(self.id, args)

    @classmethod
    def literal(cls, text: str) -> Message:
        """Text shown as is in every language (a library's own error text, an old plain string)."""
        return cls(LITERAL, {"text": text})


class Text(str):
    """A Message's English text that remembers the Message: for the fields that have always held
    text (a page's warnings, a job's message, a document's error), so code that searches, joins
    or compares them keeps working, while ``render(value, lang)`` and job files get the Message.
    Anything made from it (``+``, slices, ``format``) is plain English text."""

    message: Message

    def __new__(cls, message: Message) -> Text:
        text = super().__new__(cls, message.render(DEFAULT_LANGUAGE))
        text.message = message
        return text

    def render(self, lang: str | None = None) -> str:
        return self.message.render(lang)

    def to_json(self) -> dict[str, Any]:
        return self.message.to_json()

    def __reduce__(self) -> tuple[Any, ...]:  # pickled whole (the page worker's pipe), not as its English
        return (Text, (self.message,))


def text(msg_id: str, /, **args: Any) -> Text:
    """The message as a ``Text``: ``text("core.jobs.cancelled")`` where a str is expected."""
    return Text(Message(msg_id, args))


def stored(value: Message | str | None) -> dict[str, Any] | str | None:
    """What a job file keeps for a text field: a Message's JSON, or a plain string as it is."""
    if isinstance(value, Text | Message):
        message = value.message if isinstance(value, Text) else value
        return message.render(DEFAULT_LANGUAGE) if message.id == LITERAL else message.to_json()
    return value


def loaded(value: Any) -> Any:
    """A text field read back from a job file: a stored Message as ``Text``, anything else as it is
    (a plain string from an old job file stays a string)."""
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return Text(Message.from_json(value))
    return value


def message(msg_id: str, /, **args: Any) -> Message:
    """``Message(msg_id, args)`` written like ``t()``: ``message("core.document.empty", name=name)``."""
    return Message(msg_id, args)


def render(value: Message | Mapping[str, Any] | str | None, lang: str | None = None) -> str:
    """Anything a job file or an error holds — a Message, its JSON, or an old plain string — as text."""
    if value is None:
        return ""
    if isinstance(value, Text):
        return value.render(lang)
    if isinstance(value, str):
        return value
    if isinstance(value, BaseException):
        return error_text(value, lang)
    return Message.from_json(value).render(lang)


class LocalizedError(Exception):
    """An error whose text is a ``Message``: ``str(error)`` is English, ``error.message`` renders in any
    language. Subclasses keep their old ``Error("plain text")`` form working (a literal message)."""

    def __init__(self, message: Message | str, *args: Any):
        self.message = Message.from_json(message)
        super().__init__(str(self.message), *args)

    def __reduce__(self) -> tuple[Any, ...]:  # across a process pipe with its Message, not its English
        return (type(self), (self.message,), self.__dict__)


def error_text(error: BaseException, lang: str | None = None) -> str:
    """An exception's text in ``lang``: rendered when it carries a Message, else ``str(error)``."""
    carried = getattr(error, "message", None)
    if isinstance(carried, Message):
        return carried.render(lang)
    return str(error)


def as_text(value: BaseException | Message) -> str:
    """What a text field keeps for an exception or a Message: the Message as ``Text``, else
    (an exception without one, a literal) its plain text."""
    carried = value if isinstance(value, Message) else getattr(value, "message", None)
    if isinstance(carried, Message):
        return Text(carried) if carried.id != LITERAL else carried.render()
    return str(value)


def error_message(error: BaseException) -> Message:
    """What to store for an exception: its Message, or its text as a literal."""
    carried = getattr(error, "message", None)
    return carried if isinstance(carried, Message) else Message.literal(str(error))


# --- which language -------------------------------------------------------------------------


def normalize(code: str | None) -> str | None:
    """A supported language from a language tag or locale name: "ru-RU" → "ru",
    "en_US.UTF-8" → "en", "Russian_Russia.1251" → "ru"; anything else (or "C") → None."""
    if not code:
        return None
    head = re.split(r"[-_.@:;,\s]", code.strip().lower(), maxsplit=1)[0]
    head = _ALIASES.get(head, head)
    return head if head in LANGUAGES else None


def from_accept_language(header: str | None) -> str | None:
    """The supported language the browser prefers most, from its ``Accept-Language`` header
    ("ru-RU,ru;q=0.9,en;q=0.8" → "ru"), honouring q-values; None when it names none of ours."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        lang = normalize(tag)
        if lang and quality > 0:
            ranked.append((-quality, position, lang))
    return min(ranked)[2] if ranked else None


def from_environment(env: Mapping[str, str] | None = None) -> str:
    """The CLI's language from the locale variables, as C programs pick it: the first set of
    LC_ALL, LC_MESSAGES, LANG decides ("ru_RU.UTF-8" → "ru"); English when that is another language,
    "C", or nothing is set (on Windows, where these are rarely set, the system locale is asked)."""
    real = env is None
    env = os.environ if env is None else env
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if env.get(name):
            return normalize(env[name]) or DEFAULT_LANGUAGE
    if real and sys.platform == "win32":
        with contextlib.suppress(ValueError, TypeError):
            return normalize(locale.getlocale()[0]) or DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def configured_language(settings: Any = None, env: Mapping[str, str] | None = None) -> str | None:
    """The language the user fixed: ``OCR_STUDIO_LANGUAGE``, else the setting ``language``;
    None when neither names one ("" = follow the browser or the locale)."""
    env = os.environ if env is None else env
    return normalize(env.get(ENV_VARIABLE)) or normalize(getattr(settings, "language", None))


def current_language() -> str:
    """The language of this request (``use_language``) or else of this process (``set_language``)."""
    return _context_language.get() or _process_language


def set_language(lang: str | None) -> str:
    """Set the process's language (the CLI does, once); an unknown code sets English. Returns it."""
    global _process_language
    _process_language = normalize(lang) or DEFAULT_LANGUAGE
    return _process_language


@contextlib.contextmanager
def use_language(lang: str | None) -> Iterator[str]:
    """Render in ``lang`` within this block (this thread/task only): a UI request's language."""
    chosen = normalize(lang) or current_language()
    token = _context_language.set(chosen)
    try:
        yield chosen
    finally:
        _context_language.reset(token)
