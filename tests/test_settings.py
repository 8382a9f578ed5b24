"""Settings layers: defaults < config file < environment < flags, and where each value came from."""

from __future__ import annotations

import pytest

from ocr_studio.hardware import GpuInfo, choose_profile
from ocr_studio.settings import SettingsError, load_settings


def test_layers_override_in_order_and_remember_their_origin(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[runtime]\ndtype = "float16"\nattention = "eager"\n[documents]\ndpi = 150\n', encoding="utf-8")
    settings = load_settings(
        config_path=config,
        environ={"OCR_STUDIO_ATTENTION": "sdpa", "OCR_STUDIO_DPI": "120"},
        overrides={"dpi": 300, "engine": None},
    )
    assert (settings.dtype, settings.attention, settings.dpi) == ("float16", "sdpa", 300)
    assert settings.origins == {"dtype": "config", "attention": "env", "dpi": "flag"}
    profile = choose_profile(GpuInfo(available=True, name="GPU", capability=(9, 0)), settings)
    assert profile.sources["dtype"] == "config"
    assert profile.sources["attention"] == "env"
    assert "origins" not in settings.public_dict()


def test_a_typo_in_the_config_file_is_reported(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("dtpye = 'float16'\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="dtpye"):
        load_settings(config_path=config, environ={})


def test_the_api_key_is_never_in_public_settings():
    settings = load_settings(environ={"OCR_STUDIO_REMOTE_API_KEY": "sk-secret-123"}, config_path="/nonexistent.toml")
    assert settings.remote_api_key == "sk-secret-123"
    assert "sk-secret-123" not in repr(settings)
    assert "sk-secret-123" not in str(settings.public_dict())
