"""The engine registry. Engines are imported lazily so that the text-layer
engine (and the CLI's help) never pays for importing torch."""

from __future__ import annotations

import importlib

from ..i18n import as_text, message
from ..settings import Settings
from .base import Engine, EngineError, EngineInfo, RecognizeRequest, Task

# name -> "module:factory"; a factory takes Settings and returns an Engine.
REGISTRY: dict[str, str] = {
    "text-layer": "ocr_studio.engines.text_layer:TextLayerEngine",
    "qwen3-vl": "ocr_studio.engines.qwen3_vl:Qwen3VLEngine",  # settings.qwen_model (2B by default)
    "qwen3-vl-4b": "ocr_studio.engines.qwen3_vl:Qwen3VL4BEngine",
    "qwen3-vl-8b": "ocr_studio.engines.qwen3_vl:Qwen3VL8BEngine",
    "dots-ocr": "ocr_studio.engines.dots_ocr:DotsOcrEngine",  # settings.dots_model
    "dots-mocr": "ocr_studio.engines.dots_ocr:DotsMocrEngine",  # settings.dots_mocr_model (engines/dots_families.py)
}


def engine_names() -> list[str]:
    return list(REGISTRY)


def get_engine(name: str, settings: Settings) -> Engine:
    """The engine called ``name``; raises EngineError naming the valid choices."""
    try:
        target = REGISTRY[name]
    except KeyError:
        raise EngineError(message("core.engine.unknown", name=repr(name), choices=", ".join(REGISTRY))) from None
    module_name, _, factory = target.partition(":")
    module = importlib.import_module(module_name)
    engine = getattr(module, factory)(settings)
    if settings.runtime == "remote" and engine.info().needs_gpu:
        if not (hasattr(engine, "prepare") and hasattr(engine, "parse")):
            raise EngineError(message("core.engine.no_remote", name=name))
        from .remote import RemoteEngine

        return RemoteEngine(engine, settings)
    if settings.runtime not in ("local", "remote"):
        raise EngineError(message("core.engine.unknown_runtime", runtime=repr(settings.runtime)))
    return engine


def engine_infos(settings: Settings) -> list[EngineInfo]:
    """Every engine with whether it can run here (GPU, model files, server checked) and, if not, why."""
    from .availability import checked

    infos = []
    for name in REGISTRY:
        try:
            engine = get_engine(name, settings)
            infos.append(checked(engine, settings))
        except Exception as exc:  # an engine whose import fails is listed as unavailable
            infos.append(
                EngineInfo(name=name, label=name, tasks=(), needs_gpu=False, available=False, reason=as_text(exc))
            )
    return infos


__all__ = [
    "Engine",
    "EngineError",
    "EngineInfo",
    "RecognizeRequest",
    "Task",
    "engine_infos",
    "engine_names",
    "get_engine",
]
