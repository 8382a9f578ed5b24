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
from typing import TYPE_CHECKING, Any

import httpx
from PIL import Image

from ..i18n import LocalizedError, message, text

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
HEALTH_TIMEOUT = 5.0  # seconds for /v1/models
PROBE_TIMEOUT = 30.0  # seconds for the one-token test request

if TYPE_CHECKING:
    from ..settings import Settings


class RemoteError(LocalizedError):
    """The server cannot be used (down, wrong model, refused the request). The client knows nothing of
    engines; the remote engine turns this into an engine error for the job (``runtime.remote.ServerFailed``)."""


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
            raise RemoteError(message("core.remote.no_url"))
        self.config = config
        self._slots = threading.BoundedSemaphore(max(1, config.concurrency))
        self._sleep = sleep
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._http = httpx.Client(timeout=httpx.Timeout(config.timeout, connect=10.0), headers=headers)
        self._model: str | None = config.model or None  # None: not looked up yet
        self._penalty_field = "repetition_penalty"  # until the server refuses it (see penalty_fields)
        self._model_lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    # -- health -----------------------------------------------------------------
    def health(self) -> RemoteHealth:
        """Is the server up, and does it serve the configured model? Never raises.

        ``/v1/models`` answers for vLLM and SGLang; servers that list something else
        (``transformers serve`` lists its download cache, not the model it was started
        with) are asked once more with a one-token text request naming the model."""
        url = self.config.api_root + "/models"
        try:
            response = self._http.get(url, timeout=HEALTH_TIMEOUT)
        except httpx.HTTPError as exc:
            return RemoteHealth(False, message=self._down(exc))
        if response.status_code in (401, 403):
            return RemoteHealth(False, message=text("core.remote.key_refused", status=response.status_code))
        models: tuple[str, ...] = ()
        if response.status_code == 200:
            try:
                models = tuple(str(m.get("id", "")) for m in response.json().get("data", []))
            except (ValueError, AttributeError):
                return RemoteHealth(False, message=text("core.remote.not_openai", url=url))
        elif response.status_code == 404:
            return RemoteHealth(False, message=text("core.remote.no_such_url", url=url, base=self.config.base_url))
        wanted = self.config.model
        if wanted and wanted in models:
            return RemoteHealth(True, models, text("core.remote.up", model=wanted))
        if not wanted and len(models) == 1:
            return RemoteHealth(True, models, text("core.remote.up", model=models[0]))
        return self._probe(models)

    def _probe(self, listed: tuple[str, ...]) -> RemoteHealth:
        """A one-token request: the server says which model answers, or why it refuses ours."""
        body: dict[str, Any] = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1, "stream": False}
        if self.config.model:
            body["model"] = self.config.model
        url = self.config.api_root + "/chat/completions"
        try:
            try:
                response = self._http.post(url, json=body, timeout=PROBE_TIMEOUT)
            except (httpx.ReadError, httpx.RemoteProtocolError):
                # a server that failed the /models request may have dropped the pooled connection
                response = self._http.post(url, json=body, timeout=PROBE_TIMEOUT)
        except httpx.TimeoutException:
            return RemoteHealth(
                False,
                listed,
                f"The server at {self.config.base_url} accepted a test request but did not answer within "
                f"{PROBE_TIMEOUT:.0f} s (still loading the model, or busy).",
            )
        except httpx.HTTPError as exc:
            return RemoteHealth(False, listed, self._down(exc))
        if response.status_code in (401, 403):
            return RemoteHealth(False, listed, f"The server refused the API key (HTTP {response.status_code}).")
        if response.status_code != 200:
            detail = _detail(response)
            if self.config.model and response.status_code in (400, 404):
                served = f" It lists {', '.join(listed)}." if listed else ""
                return RemoteHealth(
                    False,
                    listed,
                    f"The server does not serve {self.config.model} ({detail}).{served} "
                    "Set remote_model to the model the server runs, or start the server with the model you want.",
                )
            return RemoteHealth(
                False, listed, text("core.remote.test_failed", status=response.status_code, detail=detail)
            )
        try:
            served_by = str(response.json().get("model") or "")
        except (ValueError, AttributeError):
            served_by = ""
        name = self.config.model or served_by or message("core.remote.unnamed_model")
        return RemoteHealth(True, listed or ((served_by,) if served_by else ()), text("core.remote.up", model=name))

    def _down(self, exc: Exception) -> str:
        return text("core.remote.down", url=self.config.base_url, detail=_reason(exc))

    # -- completions ------------------------------------------------------------
    def model_name(self) -> str:
        """remote_model, or else the one model the server lists (vLLM wants a name in
        every request); empty when neither is known."""
        with self._model_lock:
            if self._model is None:
                try:
                    response = self._http.get(self.config.api_root + "/models", timeout=HEALTH_TIMEOUT)
                    listed = [str(m.get("id", "")) for m in response.json().get("data", [])]
                except (httpx.HTTPError, ValueError, AttributeError):
                    return ""  # not now; the request itself will say what is wrong, and the next one asks again
                self._model = listed[0] if response.status_code == 200 and len(listed) == 1 else ""
            return self._model

    def penalty_fields(self, repetition_penalty: float) -> dict[str, float]:
        """The request fields that ask this server for a repetition penalty (transformers'
        meaning: a seen token's logit divided by it). vLLM and SGLang take ``repetition_penalty``;
        a server that refuses that field (``transformers serve``) is asked through
        ``frequency_penalty``, which it maps to ``repetition_penalty = 1 + frequency_penalty``."""
        if self._penalty_field == "frequency_penalty":
            return {"frequency_penalty": round(repetition_penalty - 1.0, 6)}
        return {"repetition_penalty": repetition_penalty}

    def complete(
        self,
        image: Image.Image,
        prompt: str,
        *,
        max_tokens: int,
        on_text: Callable[[str], None] | None = None,
        repetition_penalty: float | None = None,
    ) -> Completion:
        """One page: send image + prompt, return the model's text. Retries connection
        errors and 5xx with exponential backoff; raises RemoteError when out of tries.
        ``repetition_penalty`` (a loop retry) is sent in the fields this server accepts."""
        if repetition_penalty is None or repetition_penalty == 1.0:
            return self._complete(image, prompt, max_tokens=max_tokens, on_text=on_text, extra={})
        try:
            extra = self.penalty_fields(repetition_penalty)
            return self._complete(image, prompt, max_tokens=max_tokens, on_text=on_text, extra=extra)
        except RemoteError as exc:
            if self._penalty_field != "repetition_penalty" or "repetition_penalty" not in str(exc):
                raise
            log.info("The server refused repetition_penalty; asking through frequency_penalty instead.")
            self._penalty_field = "frequency_penalty"
            extra = self.penalty_fields(repetition_penalty)
            return self._complete(image, prompt, max_tokens=max_tokens, on_text=on_text, extra=extra)

    def _complete(
        self,
        image: Image.Image,
        prompt: str,
        *,
        max_tokens: int,
        on_text: Callable[[str], None] | None,
        extra: dict[str, Any],
    ) -> Completion:
        body: dict[str, Any] = {
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
            **extra,
        }
        model = self.model_name()
        if model:  # without one, the server uses the model it was started with
            body["model"] = model
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
            message("core.remote.failed_repeatedly", url=self.config.base_url, attempts=attempts, last=last_problem)
        )

    def _once(self, url: str, body: dict) -> tuple[str, str]:
        try:
            response = self._http.post(url, json=body)
        except httpx.HTTPError as exc:
            raise _Retryable(_reason(exc)) from exc
        _check(response, self.config.model)
        try:
            choice = response.json()["choices"][0]
            return str(choice["message"].get("content") or ""), str(choice.get("finish_reason") or "stop")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise RemoteError(message("core.remote.not_a_completion", body=repr(response.text[:200]))) from exc

    def _stream(self, url: str, body: dict, on_text: Callable[[str], None]) -> tuple[str, str]:
        parts: list[str] = []
        finish = "stop"
        try:
            with self._http.stream("POST", url, json=body) as response:
                if response.status_code != 200:
                    response.read()
                    _check(response, self.config.model)
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
                    try:
                        event = json.loads(payload)
                    except ValueError:
                        continue
                    if isinstance(event, dict) and event.get("error"):
                        raise RemoteError(message("core.remote.failed_generating", detail=_error_text(event["error"])))
                    try:
                        choice = event["choices"][0]
                    except (KeyError, IndexError, TypeError):
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


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)[:300]
    return str(error)[:300]


def _detail(response: httpx.Response) -> str:
    """The server's own words for an error: vLLM's ``error.message``, FastAPI's ``detail``, or the body."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:300] or f"HTTP {response.status_code}"
    if isinstance(data, dict):
        if data.get("error"):
            return _error_text(data["error"])
        if data.get("detail"):
            return str(data["detail"])[:300]
    return response.text[:300]


def _check(response: httpx.Response, model: str) -> None:
    if response.status_code == 200:
        return
    detail = _detail(response)
    if response.status_code in RETRY_STATUSES:
        raise _Retryable(f"HTTP {response.status_code}: {detail}")
    if response.status_code in (401, 403):
        raise RemoteError(message("core.remote.key_refused_check", status=response.status_code))
    names_model = "model" in detail.lower() or bool(model and model in detail)
    if response.status_code == 404 or (response.status_code == 400 and names_model):
        raise RemoteError(message("core.remote.no_model", status=response.status_code, detail=detail))
    raise RemoteError(message("core.remote.refused", status=response.status_code, detail=detail))


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def remote_config(settings: Settings) -> RemoteConfig:
    """The client's view of the remote_* settings."""
    return RemoteConfig(
        base_url=settings.remote_url,
        model=settings.remote_model,
        api_key=settings.remote_api_key,
        timeout=settings.remote_timeout,
        retries=settings.remote_retries,
        concurrency=settings.remote_concurrency,
    )


def remote_status(settings: Settings) -> str:
    """One Markdown line for the sidebar: is the remote server up, and does it serve our model?
    Empty when the local runtime is selected. Never raises."""
    if settings.runtime != "remote":
        return ""
    if not settings.remote_url:
        return text("core.remote.status_not_set")
    try:
        client = RemoteClient(remote_config(settings))
    except RemoteError as exc:
        return text("core.remote.status_error", detail=exc.message)
    try:
        health = client.health()
    finally:
        client.close()
    mark = "✅" if health.ok else "❌"
    return text("core.remote.status_line", url=settings.remote_url, mark=mark, detail=health.message)
