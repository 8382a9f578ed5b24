"""The recognition contract: what an engine is asked (task, request), what it says of itself
(EngineInfo), what it hands a runtime (PreparedPage) and what it answers (PageResult).

It sits below both ``engines/`` (what to ask a model and how to read its answer) and
``runtime/`` (where and how the model runs), so neither has to import the other's package
for the shared words."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .i18n import LocalizedError, t

if TYPE_CHECKING:
    from PIL import Image

    from .documents import Page
    from .results import PageResult


class Task(StrEnum):
    """What the user asks for. Engines declare the subset they support."""

    LAYOUT_TEXT = "layout_text"  # layout elements with their text (dots.ocr's default)
    LAYOUT = "layout"  # boxes and categories only
    TEXT = "text"  # plain reading-order text
    MARKDOWN = "markdown"  # the page as Markdown (tables HTML, formulas LaTeX)
    REGION = "region"  # text inside one box the user gives
    WEB = "web"  # a web page screenshot: layout elements with their text (dots.mocr)
    SCENE = "scene"  # text spotted in a photo, each line with its box (dots.mocr)

    @property
    def label(self) -> str:
        return TASK_LABELS[self]

    def label_in(self, lang: str | None = None) -> str:
        """The task's name in ``lang`` (``label`` is English)."""
        return t(f"core.task.{self.value}", lang)


TASK_LABELS = {
    Task.LAYOUT_TEXT: "Layout + text",
    Task.LAYOUT: "Layout only",
    Task.TEXT: "Plain text",
    Task.MARKDOWN: "Markdown",
    Task.REGION: "Text in a region",
    Task.WEB: "Web page (layout + text)",
    Task.SCENE: "Text in a photo",
}


class EngineError(LocalizedError):
    """An engine cannot run (model missing, out of memory after retries...).
    The message says what happened and what to do."""


@dataclass(frozen=True)
class EngineInfo:
    name: str  # stable id used in settings, CLI and job files ("text-layer", "qwen3-vl", "dots-ocr")
    label: str  # shown in the UI
    tasks: tuple[Task, ...]
    needs_gpu: bool
    available: bool = True
    reason: str = ""  # why it is unavailable, or a warning worth showing (i18n.Text: i18n.render it)
    default_task: Task = Task.TEXT
    runs: str = "here"  # where its pages are read: "here" (no model), "local" (a model on this machine), "server"
    model_id: str = ""  # the checkpoint (hub id or folder) a model engine loads; "" for none
    model_setting: str = ""  # the Settings field naming that checkpoint (for "not downloaded" advice)


@dataclass
class PreparedPage:
    """What the model sees for one page (from the engine's one ``prepare``), plus what its parser
    needs to map the answer back. The local runtime gives ``image`` and ``prompt`` to the model's
    processor; the remote runtime sends ``image`` and ``server_prefix + prompt`` to the server."""

    page_number: int
    page_size: tuple[int, int]  # (width, height) of the page image
    image: Image.Image  # resized as the model expects
    prompt: str
    context: Any = None  # engine-specific (scale factors, task...)
    server_prefix: str = ""  # text an OpenAI-style server needs before the prompt (dots: the image placeholder)


@dataclass
class RecognizeRequest:
    """One call's parameters. ``region`` is (x1, y1, x2, y2) in page pixels for Task.REGION.
    ``on_text`` receives the growing text of the first page while it is generated
    (streaming into the UI); engines that do not stream never call it. ``on_status``
    receives one-line news of slow preparation (downloading, loading, compiling a model)."""

    task: Task
    region: tuple[float, float, float, float] | None = None
    options: dict[str, object] = field(default_factory=dict)
    on_text: Callable[[str], None] | None = None
    on_status: Callable[[str], None] | None = None

    def status(self, message: str) -> None:
        if self.on_status is not None:
            self.on_status(message)


class Engine(ABC):
    """Engines are cheap to construct; heavy state (models) lives in the model manager."""

    @abstractmethod
    def info(self) -> EngineInfo: ...

    def batch_size(self, task: Task) -> int:
        """How many pages ``recognize`` wants at once (1 for engines that do not batch)."""
        return 1

    @abstractmethod
    def recognize(self, pages: Sequence[Page], request: RecognizeRequest) -> list[PageResult]:
        """Results for ``pages`` in order. Page-level problems (broken output, truncation)
        are reported in the PageResult (``warnings``, ``truncated``), never raised; only a
        failure of the engine itself raises EngineError."""

    def recognize_stream(self, pages: Iterable[Page], request: RecognizeRequest) -> Iterator[PageResult]:
        """Results in page order, each yielded as soon as it is ready, so a job can
        write it at once. The default groups pages into ``batch_size`` batches; the
        remote runtime overrides it to keep several pages in flight. Closing the
        iterator (cancel) stops after what is in flight."""
        batch: list[Page] = []
        size = max(1, self.batch_size(request.task))
        for page in pages:
            batch.append(page)
            if len(batch) >= size:
                yield from self.recognize(batch, request)
                batch = []
        if batch:
            yield from self.recognize(batch, request)

    def settings_key(self) -> dict[str, object]:
        """What, besides the task, makes this engine's output differ (model id, dtype...);
        part of the job cache key."""
        return {"engine": self.info().name}
