"""The remote runtime: a vision engine's prompts and parsers, the model on a server.

Wraps a model engine (a registry row of kind "vision-model"), whose work splits into ``prepare``
(page → resized image + prompt: the same one the local runtime uses) and ``parse`` (model text →
PageResult), so the remote path uses exactly the prompts and parsers of the local one.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from ..i18n import text
from ..models.repetition import TEXT_GUARD
from ..recognition import Engine, EngineError, EngineInfo, PreparedPage, RecognizeRequest, Task
from ..results import PageResult
from .client import RemoteClient, RemoteError, remote_config
from .local import loop_retry_warning

if TYPE_CHECKING:
    from ..documents import Page
    from ..models.repetition import LoopPenalty
    from ..settings import Settings


class ServerFailed(RemoteError, EngineError):
    """The server failed a page: an engine error to the job (which stops with the server's reason),
    still a ``RemoteError`` to callers that ask for one."""


class PromptedEngine(Protocol):
    def info(self) -> EngineInfo: ...

    def prepare(self, page: Page, request: RecognizeRequest) -> PreparedPage: ...

    def parse(
        self, prepared: PreparedPage, text: str, *, stop_reason: str, request: RecognizeRequest, warnings: Sequence[str]
    ) -> PageResult: ...

    @property
    def max_new_tokens(self) -> int: ...

    @property
    def loop_penalty(self) -> LoopPenalty | None: ...

    def settings_key(self) -> dict[str, object]: ...


class RemoteEngine(Engine):
    """Sends pages to the server, up to ``concurrency`` at once, results in page order."""

    def __init__(self, local: PromptedEngine, settings: Settings, client: RemoteClient | None = None):
        self.local = local
        self.settings = settings
        self._client = client

    @property
    def client(self) -> RemoteClient:
        """Made on first use: listing engines (engine_infos) opens no connections."""
        if self._client is None:
            self._client = RemoteClient(remote_config(self.settings))
        return self._client

    def info(self) -> EngineInfo:
        base = self.local.info()
        where = self.settings.remote_url
        return replace(
            base,
            name=base.name,
            label=text("core.remote.label", engine=base.label, url=where),
            needs_gpu=False,
            runs="server",
            available=bool(where),
            reason=(
                (
                    text("core.remote.runs_on_as", url=where, model=self.settings.remote_model)
                    if self.settings.remote_model
                    else text("core.remote.runs_on", url=where)
                )
                if where
                else text("core.remote.no_url_selected")
            ),
        )

    def batch_size(self, task: Task) -> int:
        return max(1, self.settings.remote_concurrency)

    def settings_key(self) -> dict[str, object]:
        # Same model on a server gives the same pages: the key names the model, not the URL.
        key = dict(self.local.settings_key())
        key["remote_model"] = self.settings.remote_model
        return key

    def _one(self, page: Page, request: RecognizeRequest, stream: bool) -> PageResult:
        started = time.perf_counter()
        try:
            prepared = self.local.prepare(page, request)
        except EngineError:
            raise  # the engine cannot do this at all (e.g. a task it does not support)
        except Exception as exc:  # this page alone cannot be sent (e.g. an impossible aspect ratio)
            width, height = page.size
            return PageResult(
                page_number=page.number,
                width=width,
                height=height,
                engine=self.local.info().name,
                task=request.task.value,
                warnings=[f"This page cannot be sent to the model: {exc}"],
            )
        on_text = request.on_text if stream else None
        text, reason = self._read(prepared, on_text)
        warnings: list[str] = []
        penalty = self.local.loop_penalty
        if reason == "repetition" and penalty is not None and penalty.repetition_penalty != 1.0:
            # the loop retry, as the local engines do it; a server offers the repetition penalty only
            again, again_reason = self._read(prepared, on_text, penalty.repetition_penalty)
            if len(again) >= len(text):
                text, reason = again, again_reason
                outcome = "retry_looped" if again_reason == "repetition" else "recovered"
            else:
                outcome = "first_kept"
            warnings.append(loop_retry_warning(outcome, f"{penalty.repetition_penalty:g}"))
        result = self.local.parse(prepared, text, stop_reason=reason, request=request, warnings=warnings)
        result.seconds = time.perf_counter() - started
        return result

    def _read(
        self, prepared: PreparedPage, on_text: Callable[[str], None] | None, repetition_penalty: float | None = None
    ) -> tuple[str, str]:
        """The server's answer and why it ended, as the local generator says it ("eos",
        "max_tokens", "repetition"); a looping answer is cut after the first copy of its loop."""
        try:
            completion = self.client.complete(
                prepared.image,
                prepared.server_prefix + prepared.prompt,
                max_tokens=self.local.max_new_tokens,
                on_text=on_text,
                repetition_penalty=repetition_penalty,
            )
        except RemoteError as exc:
            raise ServerFailed(exc.message) from exc
        cut = TEXT_GUARD.cut(completion.text)
        if cut is not None:
            return cut, "repetition"
        return completion.text, "max_tokens" if completion.finish_reason == "length" else "eos"

    def recognize(self, pages: Sequence[Page], request: RecognizeRequest) -> list[PageResult]:
        return list(self.recognize_stream(pages, request))

    def recognize_stream(self, pages: Iterable[Page], request: RecognizeRequest) -> Iterator[PageResult]:
        """A sliding window of ``concurrency`` pages in flight; each result is yielded as
        soon as it and every page before it are done."""
        window = max(1, self.settings.remote_concurrency)
        pending: deque[Future[PageResult]] = deque()
        pool = ThreadPoolExecutor(max_workers=window, thread_name_prefix="remote-page")
        try:
            iterator = iter(pages)
            first = True
            while True:
                while len(pending) < window:
                    page = next(iterator, None)
                    if page is None:
                        break
                    pending.append(pool.submit(self._one, page, request, first and request.on_text is not None))
                    first = False
                if not pending:
                    return
                yield pending.popleft().result()
        except RemoteError:
            raise
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
