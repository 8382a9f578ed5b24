"""Runtime profile by GPU, overrides, apply-once, telemetry and doctor — on a GPU-less machine,
with GPUs simulated through GpuInfo or a patched torch.cuda."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ocr_studio import hardware
from ocr_studio.doctor import doctor_report
from ocr_studio.hardware import GpuInfo, choose_profile, runtime_profile, telemetry
from ocr_studio.settings import Settings, SettingsError, load_settings

EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "assets" / "config.example.toml"


def gpu(capability: tuple[int, int], *, flash_attn: bool = False, triton: bool = True, name: str = "") -> GpuInfo:
    return GpuInfo(
        available=True,
        name=name or f"Simulated sm_{capability[0]}{capability[1]}",
        capability=capability,
        total_memory_bytes=16 * 1024**3,
        flash_attn=flash_attn,
        triton=triton,
    )


CPU = GpuInfo(available=False, reason="No CUDA GPU detected")


@pytest.fixture(autouse=True)
def fresh_process_state(monkeypatch, tmp_path):
    """Each test is a fresh process: no probe cached, nothing applied, torch flags restored,
    compile caches under tmp, the user's inductor variables untouched."""
    hardware._reset_for_tests()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("TORCHINDUCTOR_CACHE_DIR", "TORCHINDUCTOR_FX_GRAPH_CACHE", "TORCHINDUCTOR_AUTOGRAD_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("TRITON_CACHE_DIR", raising=False)
    precision = torch.get_float32_matmul_precision()
    cudnn_tf32 = torch.backends.cudnn.allow_tf32
    yield
    torch.set_float32_matmul_precision(precision)
    torch.backends.cudnn.allow_tf32 = cudnn_tf32
    hardware._reset_for_tests()


# ----------------------------------------------------------------------------- profile by capability


@pytest.mark.parametrize(
    ("capability", "name", "dtype", "tf32"),
    [
        ((7, 0), "Volta (sm_70)", "float16", False),
        ((7, 5), "Turing (sm_75)", "float16", False),
        ((8, 0), "Ampere (sm_80)", "bfloat16", True),
        ((8, 6), "Ampere (sm_86)", "bfloat16", True),
        ((8, 9), "Ada (sm_89)", "bfloat16", True),
        ((9, 0), "Hopper (sm_90)", "bfloat16", True),
        ((10, 0), "Blackwell datacenter (sm_100)", "bfloat16", True),
        ((12, 0), "Blackwell consumer (sm_120)", "bfloat16", True),
    ],
)
def test_auto_profile_follows_compute_capability(capability, name, dtype, tf32):
    profile = choose_profile(gpu(capability), Settings())
    assert profile.name == name
    assert profile.device == "cuda"
    assert profile.dtype == dtype
    assert profile.attention == "sdpa"
    assert profile.tf32 is tf32
    assert profile.compiled_decode is True
    assert profile.compile_backend == "inductor"
    assert set(profile.sources.values()) == {"auto"}
    assert profile.notes == ()


def test_first_users_laptop_gets_blackwell_consumer_profile_with_cudagraphs_when_triton_fails():
    laptop = gpu((12, 0), triton=False, name="NVIDIA GeForce RTX 5070 Ti Laptop GPU")
    profile = choose_profile(laptop, Settings())
    assert (profile.name, profile.dtype, profile.attention, profile.tf32) == (
        "Blackwell consumer (sm_120)",
        "bfloat16",
        "sdpa",
        True,
    )
    assert profile.compiled_decode and profile.compile_backend == "cudagraphs"


def test_cpu_profile_is_float32_without_compilation():
    profile = choose_profile(CPU, Settings())
    assert (profile.name, profile.device, profile.dtype, profile.attention) == ("CPU", "cpu", "float32", "sdpa")
    assert not profile.tf32 and not profile.compiled_decode and profile.compile_backend == "none"


def test_pre_volta_gpu_runs_float32_with_a_note():
    profile = choose_profile(gpu((6, 1)), Settings())
    assert profile.dtype == "float32"
    assert profile.name == "Pascal (sm_61)"
    assert any("older" in note for note in profile.notes)


@pytest.mark.parametrize(
    ("capability", "expected"),
    [
        ((7, 5), "sdpa"),  # flash-attention 2 needs sm_80+
        ((8, 0), "flash_attention_2"),
        ((8, 6), "flash_attention_2"),
        ((8, 9), "flash_attention_2"),
        ((9, 0), "flash_attention_2"),
        ((10, 0), "sdpa"),
        ((12, 0), "sdpa"),  # not on consumer Blackwell
    ],
)
def test_flash_attention_only_where_installed_and_supported(capability, expected):
    assert choose_profile(gpu(capability, flash_attn=True), Settings()).attention == expected
    assert choose_profile(gpu(capability, flash_attn=False), Settings()).attention == "sdpa"


def test_probe_reports_a_simulated_gpu_with_flash_attn_installed(monkeypatch):
    props = SimpleNamespace(major=8, minor=6, name="NVIDIA RTX A6000", total_memory=48 * 1024**3)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index=0: props)
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_75", "sm_80", "sm_86", "sm_90"])
    monkeypatch.setattr(hardware, "flash_attn_installed", lambda: True)
    monkeypatch.setattr(hardware, "_triton_works", lambda: False)
    info = hardware.probe()
    assert (info.name, info.capability, info.flash_attn, info.triton) == ("NVIDIA RTX A6000", (8, 6), True, False)
    assert hardware.probe() is info  # probed once per process
    profile = choose_profile(info, Settings())
    assert profile.attention == "flash_attention_2"
    assert profile.compile_backend == "cudagraphs"


def test_eager_attention_only_when_asked_for():
    assert choose_profile(gpu((8, 9)), Settings(attention="eager")).attention == "eager"
    assert choose_profile(CPU, Settings(attention="eager")).attention == "eager"


# ----------------------------------------------------------------------------- overrides


def test_overrides_from_config_env_and_flags_take_effect(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[runtime]\ndtype = "float16"\ntf32 = "off"\n', encoding="utf-8")
    settings = load_settings(
        config_path=config,
        environ={"OCR_STUDIO_ATTENTION": "eager"},
        overrides={"compile_backend": "cudagraphs"},
    )
    profile = choose_profile(gpu((12, 0)), settings)
    assert profile.dtype == "float16"
    assert profile.tf32 is False
    assert profile.attention == "eager"
    assert profile.compile_backend == "cudagraphs"
    assert profile.sources["dtype"] != "auto" and profile.sources["attention"] != "auto"
    assert profile.sources["device"] == "auto" and profile.sources["compile"] == "auto"
    shown = dict(profile.rows())
    assert shown["dtype"] == f"float16 ({profile.sources['dtype']})"


def test_sources_use_settings_origins_when_settings_carry_them():
    settings = Settings(dtype="float16")
    settings.origins = {"dtype": "env"}  # type: ignore[attr-defined]
    assert choose_profile(gpu((8, 0)), settings).sources["dtype"] == "env"


def test_compile_off_and_forced_cpu():
    assert choose_profile(gpu((9, 0)), Settings(compile="off")).compile_backend == "none"
    profile = choose_profile(gpu((9, 0)), Settings(device="cpu"))
    assert (profile.name, profile.dtype, profile.compiled_decode) == ("CPU", "float32", False)


def test_bfloat16_override_on_turing_falls_back_to_float16_with_reason():
    profile = choose_profile(gpu((7, 5), name="Tesla T4"), Settings(dtype="bf16"))
    assert profile.dtype == "float16"
    assert any("bfloat16" in note and "Tesla T4" in note for note in profile.notes)


def test_overrides_that_cannot_work_fall_back_and_say_why():
    profile = choose_profile(gpu((12, 0), flash_attn=True), Settings(attention="flash_attention_2"))
    assert profile.attention == "sdpa"
    assert any("sm_120" in note for note in profile.notes)
    profile = choose_profile(gpu((8, 0), flash_attn=False), Settings(attention="flash_attention_2"))
    assert profile.attention == "sdpa" and any("not installed" in note for note in profile.notes)
    profile = choose_profile(CPU, Settings(device="cuda", dtype="bfloat16"))
    assert profile.device == "cpu" and profile.dtype == "float32" and len(profile.notes) == 2


def test_invalid_value_is_a_clear_settings_error():
    with pytest.raises(SettingsError, match="dtype.*bfloat16, float16, float32"):
        choose_profile(gpu((8, 0)), Settings(dtype="int4"))


# ----------------------------------------------------------------------------- apply once


def test_runtime_profile_applies_process_settings_once(monkeypatch, tmp_path):
    monkeypatch.setattr(hardware, "probe", lambda: gpu((12, 0)))
    monkeypatch.setenv("TORCHINDUCTOR_FX_GRAPH_CACHE", "0")  # a user's own choice wins
    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.allow_tf32 = False

    first = runtime_profile(Settings())
    second = runtime_profile(Settings())

    assert first == second
    assert hardware.apply_count == 1
    assert torch.get_float32_matmul_precision() == "high"
    assert torch.backends.cudnn.allow_tf32 is True
    cache_dir = Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    assert cache_dir.is_relative_to(tmp_path / "cache")
    assert os.environ["TORCHINDUCTOR_FX_GRAPH_CACHE"] == "0"
    assert os.environ["TORCHINDUCTOR_AUTOGRAD_CACHE"] == "1"


def test_compile_cache_replaces_torchs_tmp_default_but_not_a_users_choice(monkeypatch, tmp_path):
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    monkeypatch.setattr(hardware, "probe", lambda: gpu((12, 0)))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", os.path.abspath(default_cache_dir()))  # what torch sets itself
    runtime_profile(Settings())
    assert Path(os.environ["TORCHINDUCTOR_CACHE_DIR"]).is_relative_to(tmp_path / "cache")

    hardware._reset_for_tests()
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    runtime_profile(Settings())
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "mine")


def test_runtime_profile_on_cpu_leaves_torch_alone():
    torch.set_float32_matmul_precision("highest")
    profile = runtime_profile(Settings())
    assert profile.device == "cpu"
    assert torch.get_float32_matmul_precision() == "highest"
    assert hardware.apply_count == 0


# ----------------------------------------------------------------------------- telemetry and doctor


def test_telemetry_without_gpu_is_a_plain_sentence():
    data = telemetry()
    assert data["available"] is False
    assert "No CUDA GPU detected" in str(data["reason"]) and "CPU" in str(data["reason"])


def test_telemetry_never_raises(monkeypatch):
    def broken_probe():
        raise RuntimeError("driver exploded")

    monkeypatch.setattr(hardware, "probe", broken_probe)
    data = telemetry()
    assert data["available"] is False and "driver exploded" in str(data["reason"])


def test_telemetry_with_gpu_but_no_nvml_degrades_to_what_torch_knows(monkeypatch):
    monkeypatch.setattr(hardware, "probe", lambda: gpu((12, 0), name="RTX 5070 Ti Laptop"))
    monkeypatch.setattr(hardware, "_nvml", lambda: None)
    data = telemetry()
    assert data["available"] is True
    assert (data["name"], data["capability"], data["nvml"]) == ("RTX 5070 Ti Laptop", "12.0", False)
    assert data["memory_total_bytes"] == 16 * 1024**3
    assert "temperature_c" not in data


def test_telemetry_reads_nvml_when_present(monkeypatch):
    class FakeNvml:
        def nvmlDeviceGetHandleByIndex(self, index):  # noqa: N802 (NVML's names)
            return "handle"

        def nvmlDeviceGetMemoryInfo(self, handle):  # noqa: N802
            return SimpleNamespace(used=3 * 1024**3, total=16 * 1024**3)

        def nvmlDeviceGetUtilizationRates(self, handle):  # noqa: N802
            return SimpleNamespace(gpu=87, memory=40)

        def nvmlDeviceGetTemperature(self, handle, sensor):  # noqa: N802
            return 71

        def nvmlDeviceGetPowerUsage(self, handle):  # noqa: N802
            raise RuntimeError("Not Supported")  # laptops often lack this

    monkeypatch.setattr(hardware, "probe", lambda: gpu((12, 0)))
    monkeypatch.setattr(hardware, "_nvml", lambda: FakeNvml())
    monkeypatch.setattr(hardware, "_nvml_handle", lambda nvml, torch_module: "handle")
    data = telemetry()
    assert data["nvml"] is True
    assert (data["utilization_percent"], data["temperature_c"]) == (87, 71)
    assert data["memory_used_bytes"] == 3 * 1024**3
    assert "power_w" not in data


def test_doctor_report_without_gpu():
    rows = doctor_report(Settings())
    shown = dict(rows)
    assert shown["PyTorch"] == torch.__version__
    assert shown["CUDA available"].startswith("no")
    assert shown["bf16 supported"].startswith("no")
    assert shown["Runtime profile"] == "CPU"
    assert shown["dtype"] == "float32 (auto)"
    assert "NVML" in shown
    assert hardware.apply_count == 0  # a report changes nothing


def test_doctor_report_shows_a_simulated_gpu_and_bad_settings_as_rows(monkeypatch):
    monkeypatch.setattr(hardware, "probe", lambda: gpu((8, 9), name="NVIDIA GeForce RTX 4090"))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    shown = dict(doctor_report(Settings()))
    assert shown["GPU"] == "NVIDIA GeForce RTX 4090"
    assert shown["Compute capability"] == "8.9 (sm_89)"
    assert shown["bf16 supported"] == "yes"
    assert shown["VRAM"] == "16.0 GB"
    assert shown["Runtime profile"] == "Ada (sm_89)"
    broken = dict(doctor_report(Settings(attention="fastest")))
    assert broken["Runtime profile"].startswith("error: Invalid attention")


def test_arch_coverage_of_the_torch_build():
    build = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]
    assert hardware._arch_in_build((12, 0), build)
    assert hardware._arch_in_build((8, 9), build)  # runs sm_86 binaries
    assert not hardware._arch_in_build((7, 0), build)
    assert hardware._arch_in_build((7, 0), ["compute_70"])
    profile = choose_profile(dataclasses.replace(gpu((7, 0)), arch_supported=False), Settings())
    assert any("no kernels for sm_70" in note for note in profile.notes)


# ----------------------------------------------------------------------------- example config


def test_example_config_loads_and_yields_the_defaults():
    settings = load_settings(config_path=EXAMPLE_CONFIG, environ={})
    assert settings == Settings()


def test_example_config_documents_every_setting():
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    data = tomllib.loads(text)
    assert set(data) == {"server", "documents", "runtime", "models", "remote"}
    for item in dataclasses.fields(Settings):
        if item.name == "origins":  # bookkeeping, not a setting
            continue
        assert f"{item.name} =" in text, f"{item.name} is missing from {EXAMPLE_CONFIG.name}"
