"""The language of a browser tab: which one, and how Gradio's page is told.

**Which.** Per request: the sidebar switch's cookie ``ocr_studio_lang`` (remembered), else the
language the config file or ``OCR_STUDIO_LANGUAGE`` fixes, else the browser's
``Accept-Language``, else English (``choose``). Event handlers run inside
``i18n.use_language`` of their request's language (``localized``), so everything they render
with ``t()`` / ``i18n.render()`` — status, viewer, downloads, sidebar, a core message stored in
a job file — is in the tab's language, and a job done in one language reads in the other.

**How the page is told, and why this way.** Gradio 6 translates component labels, buttons,
placeholders and Markdown/HTML values in the browser (``gr.I18n``: svelte-i18n), and it picks
its locale once, from ``navigator.language``, before it draws anything; its own strings (the
upload box, "Use via API"...) follow the same locale from its own Russian catalog. So the
static texts of the Blocks are ``I18nData`` keys (``StaticText``) whose translations come from
our TOML catalogs, and ``LanguagePage`` adds to the page's HTML, before Gradio's script, a line
that makes ``navigator.language`` the language chosen on the server. Then both the browser's
language and the remembered switch decide Gradio's strings and ours alike, on the first paint:
no flicker, and no rebuilding of labels per session (which would draw English first, then
swap every label after a round trip). The switch sets the cookie and reloads the tab; its own
value is a translated key too ("en" in English, "ru" in Russian), so it shows the tab's
language from the first paint; the page on screen opens again after the reload (reader.js). Texts
made while a tab is open (status, pages, downloads) come
from the handlers, in the request's language, as before.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from gradio.i18n import I18n, I18nData

from .. import i18n
from ..i18n import LANGUAGES, Message

COOKIE = "ocr_studio_lang"
COOKIE_MAX_AGE = 400 * 24 * 3600  # the longest a browser keeps a cookie
F = TypeVar("F", bound=Callable[..., Any])
_in_handler: contextvars.ContextVar[bool] = contextvars.ContextVar("ocr_studio_ui_handler", default=False)


def choose(settings: Any, cookies: Mapping[str, str] | None = None, accept_language: str | None = None) -> str:
    """The tab's language: the switch's cookie, the configured language, the browser's, English."""
    return (
        i18n.normalize((cookies or {}).get(COOKIE))
        or i18n.configured_language(settings)
        or i18n.from_accept_language(accept_language)
        or i18n.DEFAULT_LANGUAGE
    )


def cookies_of(header: str | None) -> dict[str, str]:
    """A ``Cookie`` header as a dict (the first value of a repeated name wins)."""
    found: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            found.setdefault(name, value)
    return found


def of_request(request: Any, settings: Any) -> str:
    """The language of a Gradio event's request (``gr.Request``); None (a direct call from Python,
    a test) gets the configured language or English."""
    if request is None:
        return choose(settings)
    headers = getattr(request, "headers", None) or {}
    try:
        cookies = dict(getattr(request, "cookies", None) or {})
    except Exception:  # a request without cookies (gradio_client's)
        cookies = {}
    if not cookies:
        cookies = cookies_of(headers.get("cookie"))
    return choose(settings, cookies, headers.get("accept-language"))


def localized(method: F) -> F:
    """Run a ``Studio`` event handler in its request's language. The handler declares a
    ``request: gr.Request | None = None`` parameter (Gradio fills it in); called from Python
    without one, it renders in the configured language or English."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        request = kwargs.get("request")
        if request is None:
            request = next((arg for arg in args if _is_request(arg)), None)
        if request is None and _in_handler.get():  # called by another handler: its language
            return method(self, *args, **kwargs)
        entered = _in_handler.set(True)
        try:
            with i18n.use_language(of_request(request, self.settings)):
                return method(self, *args, **kwargs)
        finally:
            _in_handler.reset(entered)

    return wrapper  # type: ignore[return-value]


def _is_request(value: Any) -> bool:
    from gradio import Request

    return isinstance(value, Request)


# --- texts fixed when the page is built ------------------------------------------------------


def _icu(text: str) -> str:
    """Text as an ICU message (svelte-i18n formats a label's translation): braces quoted, so a
    file path or a code sample in a message shows as written. An apostrophe becomes the
    typographic one: Gradio shows a Markdown's translation unformatted, where a quoted ''
    would show doubled ("The PDF''s own text"), and a lone ’ reads the same either way."""
    return text.replace("'", "’").replace("{", "'{'").replace("}", "'}'")


class StaticText:
    """The texts of the Blocks, as ``I18nData`` keys the browser shows in the tab's language.

    ``static("ui.actions.run")`` is a catalog message; ``static.of(message)`` any ``Message`` with
    its arguments (an engine's label, a note about it), rendered now in every language under a
    key of its own. ``gradio()`` is the ``gr.I18n`` that carries them all to the page."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}

    def __call__(self, msg_id: str, /, **args: Any) -> I18nData:
        return self.of(Message(msg_id, args))

    def of(self, value: Message | str) -> I18nData:
        """Any message (or a Text, or plain text shown as it is) as a translated key."""
        stored = i18n.stored(value) if not isinstance(value, Message) else value.to_json()
        if isinstance(stored, str):
            message = Message.literal(stored)
        else:
            message = Message.from_json(stored)
        key = message.id
        if message.args or not key:
            digest = hashlib.sha1(json.dumps(message.to_json(), sort_keys=True).encode()).hexdigest()[:12]
            key = f"{message.id or 'text'}#{digest}"
        for lang in LANGUAGES:
            self.entries[lang][key] = _icu(message.render(lang))
        return I18nData(key)

    def made(self, key: str, make: Callable[[], str]) -> I18nData:
        """A text ``make()`` renders in the current language (an engine's note), made in each one."""
        for lang in LANGUAGES:
            with i18n.use_language(lang):
                self.entries[lang][key] = _icu(make())
        return I18nData(key)

    def widget(self, key: str, msg_id: str) -> None:
        """Our words for one of Gradio's own strings, by its key ("upload_text.drop_file": the drop
        zone's "Drop File Here", which says one file where many are welcome)."""
        for lang in LANGUAGES:
            self.entries[lang][key] = _icu(i18n.t(msg_id, lang))

    def choices(self, pairs: Iterable[tuple[Message | str, Any]]) -> list[tuple[I18nData, Any]]:
        """(label, value) choices with translated labels."""
        return [(self.of(label), value) for label, value in pairs]

    def gradio(self) -> I18n:
        return I18n(**{lang: dict(entries) for lang, entries in self.entries.items()})


# --- telling Gradio's page ------------------------------------------------------------------

LANGUAGE_SCRIPT = (
    "<script>(() => {{ const lang = {lang};"
    " for (const [name, value] of [['language', lang], ['languages', [lang]]])"
    " Object.defineProperty(navigator, name, {{ get: () => value, configurable: true }});"
    " document.documentElement.lang = lang; }})();</script>"
)


def language_script(lang: str) -> bytes:
    """The line that makes the page's ``navigator.language`` the chosen language (Gradio reads it
    once, to pick the locale of its own strings and of ``gr.I18n``)."""
    return LANGUAGE_SCRIPT.format(lang=json.dumps(lang)).encode("utf-8")


class LanguagePage:
    """ASGI middleware: every HTTP request is answered in its language (``choose``; the media
    routes' errors, say), and the studio's page (``GET /``) gets ``language_script`` at the top
    of its ``<head>``."""

    def __init__(self, app: Callable[..., Any], settings: Any):
        self.app = app
        self.settings = settings

    async def __call__(self, scope: dict, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        lang = choose(self.settings, cookies_of(headers.get("cookie")), headers.get("accept-language"))
        with i18n.use_language(lang):
            # the page, also under the guard's per-launch prefix (the path keeps its root_path)
            path, root = str(scope.get("path", "")), str(scope.get("root_path", ""))
            if scope.get("method") == "GET" and path[len(root) :] in ("/", "") and path.startswith(root):
                await self._page(scope, receive, send, lang)
            else:
                await self.app(scope, receive, send)

    async def _page(self, scope: dict, receive: Callable[..., Any], send: Callable[..., Any], lang: str) -> None:
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def inject(message: dict) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body" or not start:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            response_headers = list(start.get("headers", []))
            kinds = {name.lower(): value for name, value in response_headers}
            if kinds.get(b"content-type", b"").startswith(b"text/html") and b"content-encoding" not in kinds:
                body = body.replace(b"<head>", b"<head>" + language_script(lang), 1)
                response_headers = [(n, v) for n, v in response_headers if n.lower() != b"content-length"]
                response_headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": response_headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, inject)


REOPEN_KEY = "ocr-studio-reopen"  # reader.js opens this "job:document:page" again after the reload


def switch_script() -> str:
    """The sidebar switch's browser side: remember the choice in the cookie, note the page on
    screen (reader.js opens it again: the reload keeps the job and the page), reload in it."""
    return (
        "(lang) => { document.cookie = "
        f"`{COOKIE}=${{lang}}; Path=/; Max-Age={COOKIE_MAX_AGE}; SameSite=Strict`;"
        " const view = document.querySelector('#page-view .pv');"
        " const job = view?.dataset.job || document.querySelector('#job-id textarea, #job-id input')?.value;"
        f" if (job) sessionStorage.setItem('{REOPEN_KEY}',"
        " `${job}:${view?.dataset.doc ?? ''}:${view?.dataset.page ?? ''}`);"
        " location.reload(); return lang; }"
    )


def names() -> list[tuple[str, str]]:
    """The switch's choices: each language named in itself."""
    return [(i18n.LANGUAGE_NAMES[lang], lang) for lang in LANGUAGES]


def number(value: float, digits: int = 1) -> str:
    """A decimal number as the tab's language writes it: 0.4 in English, 0,4 in Russian."""
    text = f"{float(value):.{digits}f}"
    return text.replace(".", ",") if i18n.current_language() == "ru" else text
