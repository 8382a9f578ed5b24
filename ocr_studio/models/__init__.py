"""Models: the cached model manager, fast generation and the native dots.ocr model,
each in its own module. Importing this package imports none of them (the GPU
benchmarks import ``generation`` on machines without the manager's dependencies)."""

from __future__ import annotations

import importlib
from typing import Any

_MANAGER_NAMES = (
    "LoadedInfo",
    "ModelError",
    "ModelKey",
    "ModelManager",
    "Progress",
    "cached_models",
    "estimate_weights_bytes",
    "free_cuda_memory",
    "hub_cache_dir",
    "model_bytes",
    "model_manager",
    "resolve_model",
)


def __getattr__(name: str) -> Any:
    if name in _MANAGER_NAMES:
        return getattr(importlib.import_module(".manager", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_MANAGER_NAMES)
