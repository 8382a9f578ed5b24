"""One settings object: defaults < config file (TOML) < environment < CLI flags.

The config file lives in the user config dir (``ocr-studio config-path`` prints
it; ``assets/config.example.toml`` is an annotated example). Environment
variables are ``OCR_STUDIO_<FIELD>`` (upper case), e.g. ``OCR_STUDIO_DTYPE=float16``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import platformdirs

from .documents import Limits
from .i18n import LocalizedError, message

APP_NAME = "ocr-studio"


def default_workspace() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "workspace"


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


@dataclass
class Settings:
    # where jobs, page images and exports are written
    workspace: Path = field(default_factory=default_workspace)
    # server
    host: str = "127.0.0.1"
    port: int = 7860
    max_upload_mb: int = 200
    # a per-launch token in the URL the launcher opens (then a session cookie); turn it off only
    # to script the API without it (gradio_client): the Host and Origin checks stay either way
    require_token: bool = True
    allowed_hosts: str = ""  # extra host names the server answers to, comma-separated (loopback always)
    # the language of the UI and the CLI's messages: "en" or "ru"; "" = follow the browser (the UI)
    # and the locale (the CLI); OCR_STUDIO_LANGUAGE wins over the config file, as for every setting
    language: str = ""
    # documents
    dpi: int = 200
    max_file_mb: int = 200
    max_pages: int = 2000
    max_image_megapixels: int = 200
    # pages are opened, rendered (and OCR'd by CPU engines) in a worker process with these limits
    page_timeout: float = 120.0  # seconds per page; a page over it fails alone
    worker_memory_mb: int = 8192  # the worker's address-space limit where the OS allows (0 = none)
    # engines
    engine: str = "text-layer"
    # Tesseract languages of the text-layer engine's OCR, e.g. "eng+rus"; "" = auto: the installed
    # packs among those the studio offers (engines.tesseract.SUPPORTED_LANGUAGES)
    ocr_languages: str = ""
    tesseract_language: str = ""  # the old name of ocr_languages, still read when that is empty
    # runtime profile overrides ("auto" = chosen from the GPU)
    device: str = "auto"  # auto | cuda | cpu
    dtype: str = "auto"  # auto | bfloat16 | float16 | float32
    attention: str = "auto"  # auto | sdpa | flash_attention_2 | eager
    tf32: str = "auto"  # auto | on | off
    compile: str = "auto"  # auto | on | off  (compiled decoding with a static cache)
    compile_backend: str = "auto"  # auto | inductor | cudagraphs
    vram_budget_gb: float = 0.0  # 0 = all free VRAM minus a safety margin
    # models
    qwen_model: str = "Qwen/Qwen3-VL-2B-Instruct"
    dots_model: str = "rednote-hilab/dots.ocr"
    dots_mocr_model: str = "rednote-hilab/dots.mocr"  # dots.ocr's successor, the dots-mocr engine
    max_new_tokens: int = 4096
    max_pixels: int = 0  # 0 = the engine's own default pixel budget
    batch_size: int = 0  # 0 = chosen from free VRAM
    loop_retry: bool = True  # a page whose answer loops is read once more with a repetition penalty
    # exports: JPEG quality of the searchable PDF's page images (0 keeps them lossless)
    pdf_jpeg_quality: int = 75
    # remote runtime: "local" runs vision models here; "remote" sends their work to an
    # OpenAI-compatible server (vLLM, SGLang, transformers serve) at remote_url
    runtime: str = "local"
    remote_url: str = ""
    remote_model: str = ""
    remote_api_key: str = dataclasses.field(default="", repr=False)
    remote_timeout: float = 600.0
    remote_retries: int = 3
    remote_concurrency: int = 4
    # where each value that is not a default came from: "config", "env" or "flag"
    origins: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def limits(self) -> Limits:
        return Limits(
            max_file_bytes=self.max_file_mb * 1024 * 1024,
            max_pages=self.max_pages,
            max_image_pixels=self.max_image_megapixels * 1_000_000,
            dpi=self.dpi,
        )

    def public_dict(self) -> dict[str, Any]:
        """Settings as shown to the user and written to job files: no secrets."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("remote_api_key", "origins")}
        data["workspace"] = str(self.workspace)
        data["remote_api_key"] = "set" if self.remote_api_key else ""
        return data


def _coerce(name: str, value: Any) -> Any:
    kinds = {f.name: f.type for f in fields(Settings)}
    kind = str(kinds[name])
    if kind == "Path":
        return Path(str(value)).expanduser()
    if kind == "bool":
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in {"1", "true", "yes", "on"}
    if kind == "int":
        return int(value)
    if kind == "float":
        return float(value)
    return str(value)


class SettingsError(LocalizedError, ValueError):
    pass


def load_settings(
    *,
    config_path: str | Path | None = None,
    environ: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Build settings from the four layers. Unknown keys are an error, so a typo in
    the config file is reported instead of silently ignored."""
    environ = dict(os.environ if environ is None else environ)
    names = {f.name for f in fields(Settings)} - {"origins"}
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}

    path = Path(config_path or environ.get("OCR_STUDIO_CONFIG") or default_config_path())
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(message("core.settings.config_unreadable", path=str(path), detail=str(exc))) from exc
        flat: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, dict):  # sections are for readability only
                flat.update(value)
            else:
                flat[key] = value
        unknown = sorted(set(flat) - names)
        if unknown:
            raise SettingsError(message("core.settings.unknown_in_file", path=str(path), names=", ".join(unknown)))
        values.update(flat)
        origins.update(dict.fromkeys(flat, "config"))

    for name in names:
        env_value = environ.get(f"OCR_STUDIO_{name.upper()}")
        if env_value is not None and env_value != "":
            values[name] = env_value
            origins[name] = "env"

    for name, value in (overrides or {}).items():
        if value is None:
            continue
        if name not in names:
            raise SettingsError(message("core.settings.unknown", name=name))
        values[name] = value
        origins[name] = "flag"

    try:
        return Settings(**{name: _coerce(name, value) for name, value in values.items()}, origins=origins)
    except (TypeError, ValueError) as exc:
        raise SettingsError(message("core.settings.invalid", detail=str(exc))) from exc
