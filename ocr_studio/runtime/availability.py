"""Whether an engine can really run here, checked before Run rather than discovered after it.

An engine's own ``info()`` says what it needs; this module checks that against the machine:
a CUDA GPU for the vision models (unless the user asked for the CPU), the model's files
(cached, a local folder, or a hub that answers), the inference server for the remote
runtime. Each "no" carries the reason and the fix, for the UI and ``doctor``."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..i18n import as_text, text
from ..recognition import EngineInfo

if TYPE_CHECKING:
    from ..recognition import Engine
    from ..settings import Settings

HUB_PROBE_SECONDS = 2.0
REMEMBER_SECONDS = 60.0  # a hub or server answer is reused this long (the sidebar polls)
_answers: dict[str, tuple[float, str | None]] = {}
_lock = threading.Lock()


def checked(engine: Engine, settings: Settings) -> EngineInfo:
    """``engine.info()`` with ``available`` false, and the reason, where it cannot run here."""
    info = engine.info()
    if not info.available:
        return info
    if info.runs == "server":  # the server does the work
        problem = _remembered(f"remote:{settings.remote_url}", lambda: _server_problem(settings))
    elif info.needs_gpu:
        problem = _gpu_problem(settings) or _model_problem(info.model_id, info, info.model_setting)
    else:
        return info
    if problem is None:
        return info
    return dataclasses.replace(info, available=False, reason=problem)


def _gpu_problem(settings: Settings) -> str | None:
    if settings.device == "cpu":  # asked for explicitly: slow, but the user chose it
        return None
    try:
        import torch

        if torch.cuda.is_available():
            return None
    except Exception:  # torch missing or broken: the same advice
        pass
    return text("core.engine.no_cuda")


def _model_problem(model_id: str, info: EngineInfo, setting: str | None = None) -> str | None:
    """None when the model's files are here or can be downloaded (``setting``: the one that names
    the model's files, for the advice; the Qwen3-VL 4B and 8B rows have none of their own, and the
    advice names Qwen3-VL's, as it always did)."""
    if not model_id:
        return None
    path = Path(model_id).expanduser()
    if path.is_absolute() or model_id.startswith((".", "~")) or path.is_dir():
        if (path / "config.json").is_file():
            return None
        return text("core.engine.model_folder_no_config", folder=model_id)
    if _is_cached(model_id):
        return None
    problem = _remembered("hub", _hub_problem)
    if problem is None:
        return None
    setting = setting or "qwen_model"
    return text("core.engine.not_downloaded", model=model_id, problem=problem, setting=setting)


def _is_cached(model_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(model_id, "config.json"), str)
    except Exception:
        return False


def _hub_problem() -> str | None:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return text("core.engine.hub_off")
    try:
        import httpx
        from huggingface_hub import constants

        httpx.head(constants.ENDPOINT, timeout=HUB_PROBE_SECONDS, follow_redirects=False)
    except Exception:
        return text("core.engine.hub_unreachable")
    return None


def _server_problem(settings: Settings) -> str | None:
    if not settings.remote_url:
        return text("core.engine.no_server")
    from .client import RemoteClient, RemoteError, remote_config

    try:
        client = RemoteClient(remote_config(settings))
    except RemoteError as exc:
        return as_text(exc)
    try:
        health = client.health()
    finally:
        client.close()
    if health.ok:
        return None
    return text("core.engine.server_unusable", url=settings.remote_url, detail=health.message)


def _remembered(key: str, check) -> str | None:
    now = time.monotonic()
    with _lock:
        hit = _answers.get(key)
        if hit is not None and now - hit[0] < REMEMBER_SECONDS:
            return hit[1]
    answer = check()
    with _lock:
        _answers[key] = (now, answer)
    return answer


def forget() -> None:
    """Drop remembered answers (a "Check again" button, tests)."""
    with _lock:
        _answers.clear()
