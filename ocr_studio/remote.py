"""A client for an OpenAI-compatible inference server (vLLM, SGLang, transformers serve).

The studio sends each page image as base64 image content to
``/v1/chat/completions`` with exactly the prompt the local engine would use;
the engine's own parser turns the answer into blocks. The API key goes in the
Authorization header only: it is never logged, shown, or written to job files.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from PIL import Image

from .engines.base import EngineError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class RemoteError(EngineError):
    """The server cannot be used (down, wrong model, refused the request)."""


@dataclass(frozen=True)
class RemoteConfig:
    base_url: str
    model: str = ""
    api_key: str = field(default="", repr=False)
    timeout: float = 600.0
    retries: int = 3
    concurrency: int = 4
    backoff: float = 0.5  # seconds before the first retry; doubles each time

    @property
    def api_root(self) -> str:
        """The URL that ``/chat/completions`` hangs off, with or without a trailing /v1."""
        root = self.base_url.rstrip("/")
        return root if root.endswith("/v1") else root + "/v1"


@dataclass(frozen=True)
class RemoteHealth:
    ok: bool
    models: tuple[str, ...] = ()
    message: str = ""


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str  # "stop" | "length" | ...
    seconds: float


def image_data_url(image: Image.Image) -> str:
    """PNG keeps text edges crisp; the server decodes it with the model's own processor."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class RemoteClient:
    """One server. Thread-safe; at most ``concurrency`` requests are in flight at once."""

    def __init__(self, config: RemoteConfig, *, sleep: Callable[[float], None] = time.sleep):
        if not config.base_url:
            raise RemoteError("No server URL is set. Set remote_url (e.g. http://gpu-server:8000/v1).")
        self.config = config
        self._slots = threading.BoundedSemaphore(max(1, config.concurrency))
        self._sleep = sleep
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._http = httpx.Client(timeout=httpx.Timeout(config.timeout, connect=10.0), headers=headers)

    def close(self) -> None:
        self._http.close()

    # -- health -----------------------------------------------------------------
    def health(self) -> RemoteHealth:
        """Is the server up, and does it serve the configured model? Never raises."""
        url = self.config.api_root + "/models"
        try:
            response = self._http.get(url, timeout=5.0)
        except httpx.HTTPError as exc:
            return RemoteHealth(
                False, message=f"The server at {self.config.base_url} does not answer ({_reason(exc)})."
            )
        if response.status_code in (401, 403):
            return RemoteHealth(False, message=f"The server refused the API key (HTTP {response.status_code}).")
        if response.status_code != 200:
            return RemoteHealth(False, message=f"The server answered HTTP {response.status_code} to {url}.")
        try:
            models = tuple(str(m.get("id", "")) for m in response.json().get("data", []))
        except (ValueError, AttributeError):
            return RemoteHealth(False, message=f"{url} did not answer like an OpenAI-compatible server.")
        if self.config.model and models and self.config.model not in models:
            return RemoteHealth(
                False,
                models,
                f"The server serves {', '.join(models)}, not {self.config.model}. "
                "Set remote_model to one of those, or start the server with the model you want.",
            )
        return RemoteHealth(True, models, f"Up, serving {', '.join(models) or 'an unnamed model'}.")

    # -- completions ------------------------------------------------------------
    def complete(
        self,
        image: Image.Image,
        prompt: str,
        *,
        max_tokens: int,
        on_text: Callable[[str], None] | None = None,
    ) -> Completion:
        """One page: send image + prompt, return the model's text. Retries connection
        errors and 5xx with exponential backoff; raises RemoteError when out of tries."""
        body = {
            "model": self.config.model or "default",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": image_data_url(image)}},
                        {"type": "text", "text": prompt},
                    ],
                }
            ],
            "max_tokens": int(max_tokens),
            "temperature": 0.0,
            "stream": on_text is not None,
        }
        url = self.config.api_root + "/chat/completions"
        attempts = max(0, self.config.retries) + 1
        last_problem = ""
        with self._slots:
            for attempt in range(attempts):
                if attempt:
                    delay = self.config.backoff * (2 ** (attempt - 1))
                    log.warning("Retrying %s in %.1f s (%s)", url, delay, last_problem)
                    self._sleep(delay)
                started = time.perf_counter()
                try:
                    if on_text is not None:
                        text, finish = self._stream(url, body, on_text)
                    else:
                        text, finish = self._once(url, body)
                    return Completion(text, finish, time.perf_counter() - started)
                except _Retryable as exc:
                    last_problem = str(exc)
        raise RemoteError(
            f"The server at {self.config.base_url} failed {attempts} times in a row (last: {last_problem}). "
            "Check that it is running and reachable; finished pages are kept and the job resumes where it stopped."
        )

    def _once(self, url: str, body: dict) -> tuple[str, str]:
        try:
            response = self._http.post(url, json=body)
        except httpx.HTTPError as exc:
            raise _Retryable(_reason(exc)) from exc
        _check(response)
        try:
            choice = response.json()["choices"][0]
            return str(choice["message"].get("content") or ""), str(choice.get("finish_reason") or "stop")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise RemoteError(f"The server's answer is not a chat completion: {response.text[:200]!r}") from exc

    def _stream(self, url: str, body: dict, on_text: Callable[[str], None]) -> tuple[str, str]:
        parts: list[str] = []
        finish = "stop"
        try:
            with self._http.stream("POST", url, json=body) as response:
                if response.status_code != 200:
                    response.read()
                    _check(response)
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
                    try:
                        choice = json.loads(payload)["choices"][0]
                    except (ValueError, KeyError, IndexError):
                        continue
                    delta = (choice.get("delta") or {}).get("content") or ""
                    if delta:
                        parts.append(delta)
                        on_text("".join(parts))
                    finish = choice.get("finish_reason") or finish
        except httpx.HTTPError as exc:
            raise _Retryable(_reason(exc)) from exc
        return "".join(parts), str(finish)


class _Retryable(Exception):
    pass


def _check(response: httpx.Response) -> None:
    if response.status_code == 200:
        return
    detail = response.text[:300]
    if response.status_code in RETRY_STATUSES:
        raise _Retryable(f"HTTP {response.status_code}: {detail}")
    if response.status_code in (401, 403):
        raise RemoteError(f"The server refused the API key (HTTP {response.status_code}). Check remote_api_key.")
    if response.status_code == 404:
        raise RemoteError(f"The server has no such model or endpoint (HTTP 404: {detail}). Check remote_model.")
    raise RemoteError(f"The server refused the request (HTTP {response.status_code}: {detail}).")


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
