"""One-time access codes: what the launcher opens instead of the per-launch token.

A browser keeps every address it opened in its history database, redirects included, so an
address that carries the token would keep the token there for as long as the history lasts.
The launcher knows the token (it hands it to the server) and makes a fresh code for every
address it opens: a random nonce and its HMAC under the token. The server checks the HMAC and
takes each nonce once; what stays in the history is a code that no longer opens anything.

Standard library only: ``launch.py`` uses it before anything is installed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PARAMETER = "code"
NONCE_BYTES = 16


def _mac(token: str, nonce: str) -> str:
    digest = hmac.new(token.encode("utf-8"), b"ocr-studio-access:" + nonce.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_code(token: str) -> str:
    """A fresh code for one opening of the studio (``<nonce>.<mac>``, URL-safe)."""
    nonce = secrets.token_urlsafe(NONCE_BYTES)
    return f"{nonce}.{_mac(token, nonce)}"


def nonce_of(token: str, code: str) -> str | None:
    """The code's nonce when the code was made with ``token``, else None (the caller keeps the
    nonces it took, so each opens once)."""
    nonce, _, mac = code.partition(".")
    if not nonce or not mac or len(code) > 200:
        return None
    try:
        expected = _mac(token, nonce)
    except UnicodeEncodeError:
        return None
    return nonce if hmac.compare_digest(mac.encode("ascii", "replace"), expected.encode("ascii")) else None
