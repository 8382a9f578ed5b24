"""The engines: what to ask a model (or the file) and how to read the answer. Which engines exist
is the registry table (``registry.py``, one row each); engines are imported lazily so that the
text-layer engine (and the CLI's help) never pays for importing torch. Where the pages run (this
machine or a server) is the runtime's business (``ocr_studio.runtime``)."""

from __future__ import annotations

import importlib

from ..i18n import as_text, message
from ..recognition import Engine, EngineError, EngineInfo, RecognizeRequest, Task
from ..settings import Settings
from .registry import ENGINES, EngineKind, EngineRow

# name -> "module:factory" (the registry's rows; kept for callers that list names)
REGISTRY: dict[str, str] = {name: row.factory for name, row in ENGINES.items()}


def engine_names() -> list[str]:
    return list(ENGINES)


def get_engine(name: str, settings: Settings) -> Engine:
    """The engine called ``name``, in the runtime the settings choose; raises EngineError naming
    the valid choices."""
    try:
        row = ENGINES[name]
    except KeyError:
        raise EngineError(message("core.engine.unknown", name=repr(name), choices=", ".join(ENGINES))) from None
    module_name, _, factory = row.factory.partition(":")
    module = importlib.import_module(module_name)
    engine = getattr(module, factory)(settings)
    if settings.runtime == "remote" and row.needs_gpu:
        if not row.runs_a_model:
            raise EngineError(message("core.engine.no_remote", name=name))
        from ..runtime.remote import RemoteEngine

        return RemoteEngine(engine, settings)
    if settings.runtime not in ("local", "remote"):
        raise EngineError(message("core.engine.unknown_runtime", runtime=repr(settings.runtime)))
    return engine


def engine_infos(settings: Settings) -> list[EngineInfo]:
    """Every engine with whether it can run here (GPU, model files, server checked) and, if not, why."""
    from ..runtime.availability import checked

    infos = []
    for name in ENGINES:
        try:
            engine = get_engine(name, settings)
            infos.append(checked(engine, settings))
        except Exception as exc:  # an engine whose import fails is listed as unavailable
            infos.append(
                EngineInfo(name=name, label=name, tasks=(), needs_gpu=False, available=False, reason=as_text(exc))
            )
    return infos


def local_models(settings: Settings) -> list[Engine]:
    """The model engines that run on this machine (dots.ocr's and Qwen3-VL's default rows), for the
    VRAM plan shown before a run (``runtime.capacity``)."""
    engines = []
    for name in ("dots-ocr", "qwen3-vl"):
        engine = get_engine(name, settings)
        if engine.info().runs == "local":
            engines.append(engine)
    return engines


__all__ = [
    "ENGINES",
    "Engine",
    "EngineError",
    "EngineInfo",
    "EngineKind",
    "EngineRow",
    "RecognizeRequest",
    "Task",
    "engine_infos",
    "engine_names",
    "get_engine",
    "local_models",
]
