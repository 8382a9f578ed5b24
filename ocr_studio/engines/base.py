"""What every engine is (the contract lives in ``ocr_studio.recognition``, below both the engines
and the runtime that runs them); kept so ``from .base import ...`` reads as before."""

from ..recognition import TASK_LABELS, Engine, EngineError, EngineInfo, PreparedPage, RecognizeRequest, Task

__all__ = ["TASK_LABELS", "Engine", "EngineError", "EngineInfo", "PreparedPage", "RecognizeRequest", "Task"]
