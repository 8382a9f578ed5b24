"""Who may talk to the studio, and what the browser may do with its answers.

One ASGI middleware in front of everything the server answers (Gradio's pages, its API and
files, the ``/studio`` media routes):

- **Host allow-list.** A request whose ``Host`` is not this machine's loopback name (or the
  configured host) is refused: a web page on ``evil.example`` that resolves to 127.0.0.1
  (DNS rebinding) reaches the port but never gets an answer.
- **Origin check.** A request that carries an ``Origin`` must come from the studio's own
  origin; a page elsewhere cannot read the API or post to it.
- **Per-launch token.** Unless turned off (``require_token = false``, for scripts), every
  request needs the token printed at launch: ``?token=`` in the URL once (the answer sets
  a session cookie, ``SameSite=Strict``), the cookie, or ``Authorization: Bearer``.
- **Response headers.** ``nosniff``, no framing (``X-Frame-Options`` and CSP
  ``frame-ancestors``), no remote content or outside form targets (CSP), no referrer, and
  ``Content-Disposition: attachment`` for any served file that is not a raster image, so an
  uploaded HTML/SVG never runs on the studio's origin.
"""

from __future__ import annotations

import hmac
import html
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

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
INLINE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif", "image/avif")
FILE_ROUTES = ("/gradio_api/file=", "/file=", "/studio/")
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
<form method="get" action="/"><input name="token" autocomplete="off" aria-label="{token}">
<button type="submit">{open}</button></form>
<p><small>{changes}</small></p>
</body></html>"""


def login_page(lang: str, wrong: bool) -> str:
    """The page a browser without the token gets, in ``lang``: what to open, or where to paste it."""
    message = t("ui.access.wrong_token" if wrong else "ui.access.needs_link", lang)
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


def cookie_name(port: int) -> str:
    """Cookies ignore ports: each studio on this machine gets its own cookie name."""
    return f"ocr_studio_{int(port)}"


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
        self, app: ASGIApp, *, hosts: set[str], port: int, token: str | None, language: Language | None = None
    ):
        self.app = app
        self.language = language or (lambda cookies, accept: DEFAULT_LANGUAGE)
        self.hosts = {name.lower() for name in hosts}
        self.port = int(port)
        self.token = token
        self.cookie = cookie_name(port)

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
        supplied, from_query = self._supplied_token(scope, headers)
        valid = self.token is not None and hmac.compare_digest(supplied.encode(), self.token.encode())
        if self.token is not None and not valid and not path.startswith(OPEN_ROUTES):
            await self._unauthorised(scope, send, bool(supplied), lang)
            return
        set_cookie = valid and from_query
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = self._response_headers(list(message.get("headers", [])), path, set_cookie)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _supplied_token(self, scope: Scope, headers: dict[str, str]) -> tuple[str, bool]:
        """The token the request carries, and whether it came in the URL (then a cookie is set)."""
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get(TOKEN_PARAMETER):
            return query[TOKEN_PARAMETER][0], True
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() in ("bearer", "token") and credentials.strip():
            return credentials.strip(), False
        value = cookies_of(headers.get("cookie", "")).get(self.cookie)
        return (value, False) if value else ("", False)

    def _response_headers(self, headers: list[tuple[bytes, bytes]], path: str, set_cookie: bool) -> list:
        names = {name.lower() for name, _ in SECURITY_HEADERS}
        kept = [(name, value) for name, value in headers if name.lower() not in names]
        if path.startswith(FILE_ROUTES):
            content_type = next((v for n, v in kept if n.lower() == b"content-type"), b"").decode("latin-1")
            if content_type.split(";")[0].strip().lower() not in INLINE_TYPES:
                disposition = next((v for n, v in kept if n.lower() == b"content-disposition"), b"")
                if not disposition.lower().startswith(b"attachment"):  # keep an attachment's file name
                    disposition = b"attachment"
                kept = [(n, v) for n, v in kept if n.lower() not in (b"content-type", b"content-disposition")]
                kept += [(b"content-type", b"application/octet-stream"), (b"content-disposition", disposition)]
        kept += SECURITY_HEADERS
        if set_cookie and self.token is not None:
            cookie = f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict"
            kept.append((b"set-cookie", cookie.encode("latin-1")))
        return kept

    async def _unauthorised(self, scope: Scope, send: Send, wrong: bool, lang: str) -> None:
        """The front page gets a small page that explains; everything else a bare 401."""
        wants_page = scope["type"] == "http" and scope.get("method") in ("GET", "HEAD") and scope.get("path") == "/"
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


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *SECURITY_HEADERS]
    headers.append((b"cache-control", b"no-store"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers, lower-case names; a repeated header keeps its first value."""
    found: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        found.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return found
