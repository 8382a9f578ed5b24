"""Who may talk to the studio, and what the browser may do with its answers.

One ASGI middleware in front of everything the server answers (Gradio's pages, its API and
files, the ``/studio`` media routes):

- **Host allow-list.** A request whose ``Host`` is not this machine's loopback name (or the
  configured host) is refused: a web page on ``evil.example`` that resolves to 127.0.0.1
  (DNS rebinding) reaches the port but never gets an answer.
- **Origin check.** A request that carries an ``Origin`` must come from the studio's own
  origin; a page elsewhere cannot read the API or post to it.
- **Per-launch token.** Unless turned off (``require_token = false``, for scripts), every
  request needs the token printed at launch: ``Authorization: Bearer`` (scripts), or the
  session cookie a browser gets for a one-time code the launcher opens (``?code=``, see
  ``access_codes``), the token pasted into the login form (a POST: in no address), or
  ``?token=``. That answer is a redirect to the studio's per-launch path (``/s-<random>/``)
  with nothing secret in the URL, and the cookie's
  ``Path`` is that path: cookies ignore ports, so a cookie for ``/`` would reach every other
  server on 127.0.0.1; this one goes only where the random path is asked for, which no other
  server is. The cookie counts only under that path.
- **Response headers.** Only the headers named in ``RESPONSE_HEADERS`` leave the server
  (a handler that echoes the request's ``Cookie`` or ``Authorization`` echoes nothing), and
  none carrying the token but our own cookie; ``nosniff``, no framing (``X-Frame-Options``
  and CSP ``frame-ancestors``), no remote content or outside form targets (CSP), no referrer.
  Every answer that is a file, and every answer of a type a browser would run (HTML, SVG,
  XML, scripts) from anywhere but the studio's own page and code, is a download
  (``application/octet-stream``, ``Content-Disposition: attachment``) unless it is a raster
  image: an uploaded or exported HTML/SVG never runs on the studio's origin, whatever route
  or alias served it.
"""

from __future__ import annotations

import hmac
import html
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from .. import access_codes
from ..i18n import DEFAULT_LANGUAGE, t
from .language import cookies_of

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
# (the request's cookies, its Accept-Language) → the language its answer is written in
Language = Callable[[dict[str, str], str | None], str]

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
TOKEN_PARAMETER = "token"
# Raster images are the only files the browser may show inline; everything else downloads.
INLINE_TYPES = (
    "image/png",
    "image/jpeg",
    "image/webp",
    "image/gif",
    "image/avif",
    "image/x-icon",
    "image/vnd.microsoft.icon",
)
# Routes that serve files (Gradio's aliases included); an answer with a Content-Disposition is a file too.
FILE_ROUTES = (
    "/gradio_api/file",
    "/file",
    "/studio/",
    "/gradio_api/stream/",
    "/stream/",
    "/gradio_api/proxy=",
    "/proxy=",
)
# The studio's own page and code: the only places HTML, scripts and styles are answered inline from.
PAGE_ROUTES = ("/assets/", "/static/", "/svelte/", "/theme.css", "/gradio_api/theme.css")
# Answers a browser never runs: the API's data.
DATA_TYPES = ("application/json", "text/event-stream", "text/plain")
# The only response headers that leave the server (plus SECURITY_HEADERS and our own cookie):
# whatever else a handler sets (Gradio's range answers copy every request header, Cookie and
# Authorization included) is dropped.
RESPONSE_HEADERS = frozenset(
    name.encode()
    for name in (
        "content-type",
        "content-length",
        "content-disposition",
        "content-encoding",
        "content-range",
        "content-language",
        "accept-ranges",
        "transfer-encoding",
        "cache-control",
        "etag",
        "last-modified",
        "expires",
        "vary",
        "location",
        "date",
        "x-accel-buffering",
    )
)
PREFIX_BYTES = 16  # the per-launch path: 128 random bits
LOGIN_BODY_LIMIT = 4096  # the login form holds one token
# With "no-referrer" a browser sends "Origin: null" with a form's POST, which the Origin check
# refuses; the login page says "same-origin" (still nothing to other sites).
LOGIN_REFERRER_POLICY = b"same-origin"
# Public and data-free; browsers fetch the manifest and its icons without cookies.
OPEN_ROUTES = ("/manifest.json", "/pwa_icon", "/favicon.ico", "/robots.txt")
# Gradio's front end needs inline scripts and styles; everything else stays on this origin:
# no remote images, scripts, fonts or connections, and forms post only here.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "media-src 'self' data: blob:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "frame-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]

LOGIN_PAGE = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font:16px system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}}
input{{font:inherit;width:24em;max-width:100%;box-sizing:border-box;padding:.3em}}
button{{font:inherit;padding:.3em 1em}}</style></head>
<body><h1>OCR Studio</h1>
<p>{message}</p>
<p>{how}</p>
<form method="post" action="/"><input name="token" autocomplete="off" aria-label="{token}">
<button type="submit">{open}</button></form>
<p><small>{changes}</small></p>
</body></html>"""


def login_page(lang: str, wrong: bool, *, used: bool = False) -> str:
    """The page a browser without the token gets, in ``lang``: what to open, or where to paste it
    (the form posts it: a token typed into the page never becomes part of an address)."""
    key = "ui.access.used_link" if used else "ui.access.wrong_token" if wrong else "ui.access.needs_link"
    message = t(key, lang)
    return LOGIN_PAGE.format(
        lang=lang,
        title=html.escape(t("ui.access.title", lang)),
        message=html.escape(message),
        how=t("ui.access.how", lang),  # holds <code>: our catalog's own markup
        token=html.escape(t("ui.access.token", lang)),
        open=html.escape(t("ui.access.open", lang)),
        changes=html.escape(t("ui.access.changes", lang)),
    )


def new_token() -> str:
    """A fresh per-launch token (URL-safe, 32 random bytes)."""
    return secrets.token_urlsafe(32)


def new_prefix() -> str:
    """A fresh per-launch path (``/s-<random>``) the session cookie is bound to."""
    return "/s-" + secrets.token_urlsafe(PREFIX_BYTES)


def cookie_name(port: int) -> str:
    """Cookies ignore ports: each studio on this machine gets its own cookie name."""
    return f"ocr_studio_{int(port)}"


def _under(path: str, prefixes: Iterable[str]) -> bool:
    return any(path.startswith(prefix) for prefix in prefixes)


def host_name(value: str) -> str:
    """The name part of a ``Host`` header (``[::1]:7860`` → ``::1``), lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else ""
    if value.count(":") > 1:  # a bare IPv6 address
        return value
    return value.rsplit(":", 1)[0] if ":" in value else value


def allowed_hosts(host: str, extra: Iterable[str] = ()) -> set[str]:
    """The names this studio answers to: loopback, the host it binds (unless a wildcard), and ``extra``."""
    names = {*LOOPBACK_NAMES}
    for name in (host, *extra):
        name = host_name(name) if name.count(":") <= 1 else name.strip("[] ").lower()
        if not name:
            continue
        try:
            if ipaddress.ip_address(name).is_unspecified:  # 0.0.0.0 / :: is no name a browser sends
                continue
        except ValueError:
            pass
        names.add(name)
    return names


class Guard:
    """The ASGI middleware described in the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        hosts: set[str],
        port: int,
        token: str | None,
        language: Language | None = None,
        prefix: str | None = None,
    ):
        self.app = app
        self.language = language or (lambda cookies, accept: DEFAULT_LANGUAGE)
        self.hosts = {name.lower() for name in hosts}
        self.port = int(port)
        self.token = token
        self.cookie = cookie_name(port)
        # where the browser's session lives; none without a token (nothing to keep from other servers)
        self.prefix = (prefix or new_prefix()).rstrip("/") if token is not None else ""
        self.used_codes: set[str] = set()  # nonces of one-time codes already taken

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        lang = self.language(cookies_of(headers.get("cookie", "")), headers.get("accept-language"))
        host = headers.get("host", "")
        if host_name(host) not in self.hosts:
            await self._refuse(scope, send, 403, t("ui.access.wrong_host", lang, host=host))
            return
        origin = headers.get("origin")
        if origin is not None and origin.lower() != f"http://{host.lower()}":
            await self._refuse(scope, send, 403, t("ui.access.other_origin", lang))
            return
        path = str(scope.get("path", ""))
        if any(ord(character) < 32 or ord(character) == 127 for character in path):  # a NUL, a newline: no route
            await self._refuse(scope, send, 400, t("ui.access.bad_path", lang))
            return
        inside = bool(self.prefix) and (path == self.prefix or path.startswith(self.prefix + "/"))
        route = (path[len(self.prefix) :] or "/") if inside else path
        if inside:  # the app sees its routes as usual and builds its links under the prefix
            scope = {**scope, "root_path": str(scope.get("root_path", "")) + self.prefix}
        elif self.token is not None and scope["type"] == "http" and path == "/":
            if scope.get("method") == "POST":  # the login form
                await self._login(scope, receive, send, lang)
                return
            code = _query_value(scope, access_codes.PARAMETER)
            if code is not None and _query_value(scope, TOKEN_PARAMETER) is None:
                await self._open_with_code(scope, send, code, lang)
                return
        supplied, from_query = self._supplied_token(scope, headers, inside)
        valid = self.token is not None and hmac.compare_digest(supplied.encode(), self.token.encode())
        if self.token is not None and not valid and not route.startswith(OPEN_ROUTES):
            await self._unauthorised(scope, send, bool(supplied), lang, route)
            return
        if scope["type"] == "http" and self.token is not None:
            if valid and from_query and scope.get("method") in ("GET", "HEAD"):
                await self._enter(scope, send, route)  # the token leaves the URL; the cookie takes over
                return
            if path == self.prefix:
                await self._redirect(scope, send, self.prefix + "/", _query_without_token(scope))
                return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = self._response_headers(list(message.get("headers", [])), route)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _supplied_token(self, scope: Scope, headers: dict[str, str], inside: bool) -> tuple[str, bool]:
        """The token the request carries, and whether it came in the URL (then the browser is
        sent on to the prefix with the cookie). The cookie counts only under the prefix."""
        for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
            if name == TOKEN_PARAMETER:
                return value, True
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() in ("bearer", "token") and credentials.strip():
            return credentials.strip(), False
        value = cookies_of(headers.get("cookie", "")).get(self.cookie) if inside else None
        return (value, False) if value else ("", False)

    async def _login(self, scope: Scope, receive: Receive, send: Send, lang: str) -> None:
        """The login form's POST: the right token enters the studio, anything else gets the form again."""
        body, more = b"", True
        while more and len(body) <= LOGIN_BODY_LIMIT:
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            more = bool(message.get("more_body"))
        fields = dict(parse_qsl(body[:LOGIN_BODY_LIMIT].decode("latin-1"), keep_blank_values=True))
        supplied = fields.get(TOKEN_PARAMETER, "").strip()
        if self.token is not None and hmac.compare_digest(supplied.encode("latin-1"), self.token.encode("latin-1")):
            await self._enter(scope, send, "/")
            return
        await _respond(send, 401, login_page(lang, True).encode("utf-8"), b"text/html; charset=utf-8")

    async def _open_with_code(self, scope: Scope, send: Send, code: str, lang: str) -> None:
        """A one-time code from the launcher: the first use enters, any later one gets the form."""
        nonce = access_codes.nonce_of(self.token or "", code)
        if nonce is not None and nonce not in self.used_codes:
            self.used_codes.add(nonce)
            await self._enter(scope, send, "/")
            return
        page = login_page(lang, nonce is None, used=nonce is not None)
        await _respond(send, 401, page.encode("utf-8"), b"text/html; charset=utf-8")

    def session_cookie(self) -> str:
        """The ``Set-Cookie`` value: the token, sent back only to the per-launch path."""
        return f"{self.cookie}={self.token}; Path={self.prefix}; HttpOnly; SameSite=Strict"

    async def _enter(self, scope: Scope, send: Send, route: str) -> None:
        """``?token=`` answered with a redirect to the same page under the prefix, without the
        token, and the session cookie: the token is in no address the browser keeps."""
        target = self.prefix + (route if route.startswith("/") else "/" + route)
        await self._redirect(scope, send, target, _query_without_token(scope), self.session_cookie())

    async def _redirect(self, scope: Scope, send: Send, target: str, query: str, cookie: str | None = None) -> None:
        location = quote(target, safe="/-._~!$&'()*+,;=:@%") + (f"?{query}" if query else "")
        headers = [
            (b"location", location.encode("latin-1")),
            (b"content-length", b"0"),
            (b"cache-control", b"no-store"),
            *SECURITY_HEADERS,
        ]
        if cookie:
            headers.append((b"set-cookie", cookie.encode("latin-1")))
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    def _response_headers(self, headers: list[tuple[bytes, bytes]], route: str) -> list:
        secret = self.token.encode("latin-1") if self.token else None
        kept = [
            (name, value)
            for name, value in headers
            if name.lower() in RESPONSE_HEADERS and not (secret and secret in value)
        ]
        if not _inline(route, kept):
            disposition = next((v for n, v in kept if n.lower() == b"content-disposition"), b"")
            if not disposition.lower().startswith(b"attachment"):  # keep an attachment's file name
                disposition = b"attachment"
            kept = [(n, v) for n, v in kept if n.lower() not in (b"content-type", b"content-disposition")]
            kept += [(b"content-type", b"application/octet-stream"), (b"content-disposition", disposition)]
        return kept + SECURITY_HEADERS

    async def _unauthorised(self, scope: Scope, send: Send, wrong: bool, lang: str, route: str) -> None:
        """The front page gets a small page that explains; everything else a bare 401."""
        wants_page = scope["type"] == "http" and scope.get("method") in ("GET", "HEAD") and route == "/"
        if not wants_page:
            await self._refuse(scope, send, 401, t("ui.access.token_needed", lang))
            return
        body = login_page(lang, wrong).encode("utf-8")
        await _respond(send, 401 if wrong else 200, body, b"text/html; charset=utf-8")

    async def _refuse(self, scope: Scope, send: Send, status: int, reason: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await _respond(send, status, reason.encode("utf-8"), b"text/plain; charset=utf-8")


def _inline(route: str, headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether an answer may be shown in the browser: a raster image; else not a file and either
    data (JSON, events, plain text) or the studio's own page and code."""
    found = {name.lower(): value for name, value in headers}
    kind = found.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
    if kind in INLINE_TYPES:
        return True
    if b"content-disposition" in found or _under(route, FILE_ROUTES):
        return False
    return kind in DATA_TYPES or route == "/" or _under(route, PAGE_ROUTES) or not kind


def _query_value(scope: Scope, name: str) -> str | None:
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return next((value for key, value in pairs if key == name), None)


def _query_without_token(scope: Scope) -> str:
    """The query without the credentials a browser might have come with."""
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    return urlencode([(key, value) for key, value in pairs if key not in (TOKEN_PARAMETER, access_codes.PARAMETER)])


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS]
    headers.append((b"cache-control", b"no-store"))
    if content_type.startswith(b"text/html"):  # the login page: its form's POST must carry our Origin
        headers = [(n, LOGIN_REFERRER_POLICY if n == b"referrer-policy" else v) for n, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers, lower-case names; a repeated header keeps its first value."""
    found: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        found.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return found
