"""The native dots.ocr model: checkpoint compatibility, per-image attention, dtypes, processor."""

from __future__ import annotations

import json
import os

import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from safetensors import safe_open  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText  # noqa: E402

from ocr_studio.models.dots_ocr import (  # noqa: E402
    DotsOCRConfig,
    DotsOCRForCausalLM,
    DotsOCRProcessor,
    DotsVisionTransformer,
    register,
    smart_resize,
)
from ocr_studio.models.dots_ocr.modeling import per_image_attention  # noqa: E402
from tests.tiny_dots import TINY_MAX_PIXELS, TINY_MIN_PIXELS, build_tiny_dots_ocr, tiny_config, tiny_tokenizer  # noqa: E402

PUBLISHED_CONFIG = {
    "architectures": ["DotsOCRForCausalLM"],
    "auto_map": {"AutoConfig": "configuration_dots.DotsOCRConfig"},
    "model_type": "dots_ocr",
    "attention_bias": True,
    "hidden_act": "silu",
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "max_position_embeddings": 131072,
    "num_attention_heads": 12,
    "num_hidden_layers": 28,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "vocab_size": 151936,
    "image_token_id": 151665,
    "video_token_id": 151656,
    "eos_token_id": [151643, 151672, 151673],  # config.json's list; generation_config.json has [151643, 151673]
    "vision_config": {
        "embed_dim": 1536,
        "hidden_size": 1536,
        "intermediate_size": 4224,
        "num_hidden_layers": 42,
        "num_attention_heads": 12,
        "num_channels": 3,
        "patch_size": 14,
        "post_norm": True,
        "rms_norm_eps": 1e-05,
        "spatial_merge_size": 2,
        "temporal_patch_size": 1,
        "use_bias": False,
        "attn_implementation": "flash_attention_2",
        "is_causal": False,
    },
}

VISION_BLOCK_SHAPES = {
    "norm1.weight": (1536,),
    "attn.qkv.weight": (4608, 1536),
    "attn.proj.weight": (1536, 1536),
    "norm2.weight": (1536,),
    "mlp.fc1.weight": (4224, 1536),
    "mlp.fc2.weight": (1536, 4224),
    "mlp.fc3.weight": (4224, 1536),
}
VISION_OTHER_SHAPES = {
    "vision_tower.patch_embed.patchifier.proj.weight": (1536, 3, 14, 14),
    "vision_tower.patch_embed.patchifier.proj.bias": (1536,),
    "vision_tower.patch_embed.patchifier.norm.weight": (1536,),
    "vision_tower.post_trunk_norm.weight": (1536,),
    "vision_tower.merger.ln_q.weight": (1536,),
    "vision_tower.merger.ln_q.bias": (1536,),
    "vision_tower.merger.mlp.0.weight": (6144, 6144),
    "vision_tower.merger.mlp.0.bias": (6144,),
    "vision_tower.merger.mlp.2.weight": (1536, 6144),
    "vision_tower.merger.mlp.2.bias": (1536,),
}
LM_LAYER_SHAPES = {
    "self_attn.q_proj.weight": (1536, 1536),
    "self_attn.q_proj.bias": (1536,),
    "self_attn.k_proj.weight": (256, 1536),
    "self_attn.k_proj.bias": (256,),
    "self_attn.v_proj.weight": (256, 1536),
    "self_attn.v_proj.bias": (256,),
    "self_attn.o_proj.weight": (1536, 1536),
    "mlp.gate_proj.weight": (8960, 1536),
    "mlp.up_proj.weight": (8960, 1536),
    "mlp.down_proj.weight": (1536, 8960),
    "input_layernorm.weight": (1536,),
    "post_attention_layernorm.weight": (1536,),
}
LM_OTHER_SHAPES = {
    "model.embed_tokens.weight": (151936, 1536),
    "model.norm.weight": (1536,),
    "lm_head.weight": (151936, 1536),
}


def published_parameter_shapes() -> dict[str, tuple[int, ...]]:
    """Every tensor name and shape in the published safetensors (models.md)."""
    shapes = dict(VISION_OTHER_SHAPES) | dict(LM_OTHER_SHAPES)
    for i in range(42):
        shapes |= {f"vision_tower.blocks.{i}.{name}": shape for name, shape in VISION_BLOCK_SHAPES.items()}
    for i in range(28):
        shapes |= {f"model.layers.{i}.{name}": shape for name, shape in LM_LAYER_SHAPES.items()}
    return shapes


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_dots_ocr(tmp_path_factory.mktemp("dots") / "tiny")


@pytest.fixture(scope="module")
def tiny_model(tiny_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def processor(tiny_dir):
    return DotsOCRProcessor.from_pretrained(tiny_dir)


def page(width: int, height: int, seed: int) -> Image.Image:
    """A page-like picture with lines of 'text' so different pages give different pixels."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    g = torch.Generator().manual_seed(seed)
    for y in range(4, height - 6, 9):
        x2 = int(torch.randint(width // 3, width - 2, (1,), generator=g))
        draw.rectangle((4, y, x2, y + 4), fill=(int(torch.randint(0, 120, (1,), generator=g)),) * 3)
    return image


# --- checkpoint compatibility -------------------------------------------------------------


def test_published_config_builds_exactly_the_published_parameters(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(PUBLISHED_CONFIG))
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, DotsOCRConfig)
    with torch.device("meta"):
        model = DotsOCRForCausalLM(config)
    got = {name: tuple(p.shape) for name, p in model.state_dict().items()}
    expected = published_parameter_shapes()
    assert sorted(set(got) - set(expected)) == [], "names the checkpoint does not have"
    assert sorted(set(expected) - set(got)) == [], "checkpoint names the model lacks"
    assert got == expected
    assert len([n for n in got if n.startswith("vision_tower.blocks.") and n.endswith(".norm1.weight")]) == 42
    assert len([n for n in got if n.startswith("model.layers.") and n.endswith(".input_layernorm.weight")]) == 28
    n_params = sum(p.numel() for p in model.parameters())
    assert 2.9e9 < n_params < 3.2e9  # "~3.0 B parameters"


def test_config_reads_published_values(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(PUBLISHED_CONFIG))
    config = DotsOCRConfig.from_pretrained(tmp_path)
    assert (config.hidden_size, config.num_hidden_layers, config.num_key_value_heads) == (1536, 28, 2)
    assert config.image_token_id == 151665 and config.tie_word_embeddings is False
    vision = config.vision_config
    assert (vision.num_hidden_layers, vision.intermediate_size, vision.temporal_patch_size) == (42, 4224, 1)
    config.save_pretrained(tmp_path / "again")
    again = DotsOCRConfig.from_pretrained(tmp_path / "again")
    assert again.vision_config.to_dict() == vision.to_dict()


def test_default_config_is_the_published_model(tmp_path):
    """``DotsOCRConfig()`` (benchmarks build from it) equals the published config.json, not Qwen2's defaults."""
    (tmp_path / "config.json").write_text(json.dumps(PUBLISHED_CONFIG))
    published = DotsOCRConfig.from_pretrained(tmp_path).to_dict()
    default = DotsOCRConfig().to_dict()
    for key in (
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "max_position_embeddings",
        "rms_norm_eps",
        "tie_word_embeddings",
        "rope_parameters",
        "image_token_id",
    ):
        assert default[key] == published[key], key
    for key, value in default["vision_config"].items():
        assert published["vision_config"].get(key) == value, f"vision_config.{key}"


def test_default_stop_tokens_are_the_published_generation_configs(tmp_path):
    """A config.json without an EOS list stops where the published generation_config.json does:
    <|endoftext|> (151643) and <|endofassistant|> (151673), never <|assistant|> (151672), which opens
    a turn; a config.json that names its own list (the published one does) keeps it as written."""
    from transformers import GenerationConfig

    assert DotsOCRConfig().eos_token_id == [151643, 151673]
    without_eos = {k: v for k, v in PUBLISHED_CONFIG.items() if k != "eos_token_id"}
    (tmp_path / "config.json").write_text(json.dumps(without_eos))
    config = DotsOCRConfig.from_pretrained(tmp_path)
    assert config.eos_token_id == [151643, 151673]
    # what transformers' generate falls back to for a folder with no generation_config.json
    assert GenerationConfig.from_model_config(config).eos_token_id == [151643, 151673]
    (tmp_path / "config.json").write_text(json.dumps(PUBLISHED_CONFIG))
    assert DotsOCRConfig.from_pretrained(tmp_path).eos_token_id == [151643, 151672, 151673]


def test_registration_is_repeatable_and_reaches_both_auto_classes(tiny_dir):
    register()
    register()
    model = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    assert isinstance(model, DotsOCRForCausalLM)


def test_save_and_load_round_trip_keeps_names_and_outputs(tiny_dir, tiny_model, processor, tmp_path):
    # The file on disk holds exactly the model's names: nothing renamed on save.
    with safe_open(str(tiny_dir / "model.safetensors"), "pt") as f:
        on_disk = set(f.keys())
    assert on_disk == set(tiny_model.state_dict())
    # Loading through the real loader reports nothing missing or unexpected, and the config's
    # auto_map (remote code) is ignored: the files it names do not exist.
    model, info = AutoModelForCausalLM.from_pretrained(tiny_dir, output_loading_info=True)
    assert isinstance(model, DotsOCRForCausalLM)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    # Saving again and loading gives the same outputs.
    model.save_pretrained(tmp_path / "resaved")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "resaved").eval()
    batch = processor([page(120, 160, 1)], ["Extract the text content from this image."])
    with torch.no_grad():
        a = tiny_model(**batch).logits
        b = reloaded(**batch).logits
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_state_dict_with_published_names_loads_strictly(tiny_model):
    fresh = DotsOCRForCausalLM(tiny_model.config)
    result = fresh.load_state_dict(tiny_model.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys


# --- vision encoder -----------------------------------------------------------------------


def test_vision_attention_matches_full_matrix_with_block_diagonal_mask():
    torch.manual_seed(0)
    lengths = [12, 20, 8]
    heads, dim = 3, 16
    q, k, v = (torch.randn(sum(lengths), heads, dim) for _ in range(3))
    cu = torch.tensor([0, 12, 32, 40])
    ours = per_image_attention(q, k, v, cu)
    # Reference: the published formulation, one [S, S] additive mask and an fp32 softmax.
    mask = torch.full((sum(lengths), sum(lengths)), float("-inf"))
    for start, end in zip(cu[:-1].tolist(), cu[1:].tolist(), strict=True):
        mask[start:end, start:end] = 0
    scores = torch.einsum("qhd,khd->hqk", q, k) / dim**0.5 + mask
    reference = torch.einsum("hqk,khd->qhd", scores.softmax(-1), v)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)
    # Equal-sized images take the batched path: same answer.
    cu_equal = torch.tensor([0, 20, 40])
    mask = torch.full((40, 40), float("-inf"))
    mask[:20, :20] = mask[20:, 20:] = 0
    scores = torch.einsum("qhd,khd->hqk", q, k) / dim**0.5 + mask
    reference = torch.einsum("hqk,khd->qhd", scores.softmax(-1), v)
    torch.testing.assert_close(per_image_attention(q, k, v, cu_equal), reference, rtol=1e-5, atol=1e-5)


def test_two_images_batched_equal_each_image_alone(tiny_model, processor):
    vision: DotsVisionTransformer = tiny_model.vision_tower
    pages = [page(120, 160, 1), page(200, 100, 2), page(120, 160, 3)]
    batch = processor(pages, ["x"] * 3)
    with torch.no_grad():
        together = vision(batch["pixel_values"], batch["image_grid_thw"])
        alone = [vision(**_single(processor, p)) for p in pages]
    torch.testing.assert_close(together, torch.cat(alone), rtol=1e-5, atol=1e-5)
    # and images do change the features (the test would be empty if they did not)
    assert not torch.allclose(alone[0], alone[2])


def _single(processor, image):
    b = processor([image], ["x"])
    return {"pixel_values": b["pixel_values"], "grid_thw": b["image_grid_thw"]}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_agrees_with_float32(tiny_dir, processor, dtype):
    batch = processor([page(120, 160, 4)], ["Extract the text content from this image."])
    reference = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32).eval()
    half = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=dtype).eval()
    assert half.vision_tower.dtype == dtype and half.lm_head.weight.dtype == dtype
    with torch.no_grad():
        try:
            features = half.get_image_features(batch["pixel_values"], batch["image_grid_thw"])
            logits = half(**batch).logits
        except RuntimeError as err:  # some CPU builds lack half kernels; the GPU runs these
            pytest.skip(f"{dtype} unsupported on this CPU: {err}")
        ref_features = reference.get_image_features(batch["pixel_values"], batch["image_grid_thw"])
        ref_logits = reference(**batch).logits
    assert features.dtype == dtype and logits.dtype == dtype
    tol = 0.05 if dtype == torch.bfloat16 else 0.01
    torch.testing.assert_close(features.float(), ref_features, rtol=tol, atol=tol)
    torch.testing.assert_close(logits.float(), ref_logits, rtol=tol, atol=tol)


def test_mismatched_image_tokens_give_a_clear_error(tiny_model, processor):
    batch = processor([page(120, 160, 1)], ["x"])
    ids = batch["input_ids"].clone()
    ids[ids == tiny_model.config.image_token_id] = processor.pad_token_id
    with pytest.raises(ValueError, match="image tokens"):
        tiny_model(input_ids=ids, pixel_values=batch["pixel_values"], image_grid_thw=batch["image_grid_thw"])


# --- generation ---------------------------------------------------------------------------


def test_generate_with_cache_equals_without_cache_on_a_left_padded_batch(tiny_model, processor):
    pages = [page(120, 160, 5), page(260, 110, 6)]
    batch = processor(pages, ["Extract the text content from this image.", "Layout"])
    assert (batch["attention_mask"][:, 0] == 0).any(), "the two prompts should differ in length (left padding)"
    kwargs = dict(max_new_tokens=6, do_sample=False, eos_token_id=None)
    with torch.no_grad():
        cached = tiny_model.generate(**batch, **kwargs)
        uncached = tiny_model.generate(**batch, use_cache=False, **kwargs)
        # Each page alone gives the same tokens as inside the padded batch.
        first_alone = tiny_model.generate(
            **processor(pages[:1], ["Extract the text content from this image."]), **kwargs
        )
    assert cached.shape[1] == batch["input_ids"].shape[1] + 6
    assert torch.equal(cached, uncached)
    assert torch.equal(cached[0, -6:], first_alone[0, -6:])


def test_decode_step_with_cache_matches_full_forward(tiny_model, processor):
    batch = processor([page(120, 160, 7)], ["x"])
    ids = batch["input_ids"]
    with torch.no_grad():
        prefill = tiny_model(**batch, use_cache=True)
        next_id = prefill.logits[:, -1:].argmax(-1)
        mask = torch.cat([batch["attention_mask"], torch.ones_like(next_id)], dim=1)
        step = tiny_model(
            input_ids=next_id, attention_mask=mask, past_key_values=prefill.past_key_values, use_cache=True
        )
        full = tiny_model(
            input_ids=torch.cat([ids, next_id], 1),
            attention_mask=mask,
            pixel_values=batch["pixel_values"],
            image_grid_thw=batch["image_grid_thw"],
        )
    torch.testing.assert_close(step.logits[:, -1], full.logits[:, -1], rtol=1e-4, atol=1e-4)


# --- processor ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("height", "width"), [(2200, 1700), (3508, 2480), (50, 60), (10000, 9000), (28, 28 * 150), (1123, 794)]
)
def test_smart_resize_gives_multiples_of_28_within_bounds(height, width):
    h, w = smart_resize(height, width)
    assert h % 28 == 0 and w % 28 == 0
    assert 3136 <= h * w <= 11_289_600
    # aspect ratio kept up to the rounding of each side to a multiple of 28
    assert abs((h / w) / (height / width) - 1) <= 2 * 28 / min(h, w)


def test_smart_resize_letter_page_at_200_dpi():
    assert smart_resize(2200, 1700) == (2212, 1708)  # 19,276 patches, 4,819 visual tokens


def test_smart_resize_rejects_extreme_aspect_ratios():
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 5000)


def test_processor_expands_imgpad_to_the_page_token_count(processor, tiny_model):
    pages = [page(120, 160, 1), page(300, 90, 2)]
    batch = processor(pages, ["Extract the text content from this image.", "hi"])
    image_id = tiny_model.config.image_token_id
    for i, image in enumerate(pages):
        w, h = processor.resized_size(*image.size)
        assert w % 28 == 0 and h % 28 == 0 and TINY_MIN_PIXELS <= w * h <= TINY_MAX_PIXELS
        assert int((batch["input_ids"][i] == image_id).sum()) == (h // 28) * (w // 28)
        assert batch["image_grid_thw"][i].tolist() == [1, h // 14, w // 14]
    assert batch["pixel_values"].shape == (int(batch["image_grid_thw"].prod(-1).sum()), 3 * 14 * 14)
    # left padding: the shorter prompt is padded at the start, and every row ends with <|assistant|>
    assert batch["attention_mask"][:, -1].all()
    text = processor.decode(batch["input_ids"][1], skip_special_tokens=False)
    assert text.endswith("hi<|endofuser|><|assistant|>")
    assert "<|user|><|img|><|imgpad|>" in text and "<|imgpad|><|endofimg|>hi" in text


def test_processor_pixel_bounds_are_configurable(tiny_dir):
    small = DotsOCRProcessor.from_pretrained(tiny_dir, max_pixels=28 * 28 * 8)
    w, h = small.resized_size(1000, 1400)
    assert w * h <= 28 * 28 * 8 and w % 28 == 0 and h % 28 == 0
    assert small.image_token_count(1000, 1400) == (w // 28) * (h // 28)


def test_processor_errors_are_clear(processor, tmp_path):
    with pytest.raises(ValueError, match="one prompt per image"):
        processor([page(100, 100, 1)], ["a", "b"])
    with pytest.raises(FileNotFoundError, match="dots.ocr checkpoint"):
        DotsOCRProcessor.from_pretrained(tmp_path / "missing")


def test_processor_flattens_transparency_onto_white(processor):
    transparent = Image.new("RGBA", (112, 112), (0, 0, 0, 0))
    white = Image.new("RGB", (112, 112), "white")
    a = processor([transparent], ["x"])["pixel_values"]
    b = processor([white], ["x"])["pixel_values"]
    torch.testing.assert_close(a, b)


def test_tiny_tokenizer_has_dots_chat_tokens_as_single_ids():
    tokenizer = tiny_tokenizer()
    for token in ("<|imgpad|>", "<|img|>", "<|endofimg|>", "<|user|>", "<|endofuser|>", "<|assistant|>"):
        assert len(tokenizer(token, add_special_tokens=False)["input_ids"]) == 1
    config = tiny_config(tokenizer)
    assert config.image_token_id == tokenizer.convert_tokens_to_ids("<|imgpad|>")


def test_patch_rows_from_a_two_frame_processor_give_the_same_features(tiny_model, processor):
    batch = processor([page(120, 160, 3)], ["x"])
    rows = batch["pixel_values"]
    doubled = rows.view(-1, 3, 1, 14 * 14).expand(-1, 3, 2, 14 * 14).reshape(rows.shape[0], -1)
    with torch.no_grad():
        a = tiny_model.vision_tower(rows, batch["image_grid_thw"])
        b = tiny_model.vision_tower(doubled, batch["image_grid_thw"])
    torch.testing.assert_close(a, b)


def test_vision_never_builds_a_patches_squared_mask(tiny_model, processor, monkeypatch):
    seen = []
    real_sdpa = F.scaled_dot_product_attention

    def spy(q, k, v, *args, **kwargs):
        seen.append((q.shape, kwargs.get("attn_mask", args[0] if args else None)))
        return real_sdpa(q, k, v, *args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    batch = processor([page(120, 160, 1), page(200, 100, 2)], ["x", "x"])
    with torch.no_grad():
        tiny_model.vision_tower(batch["pixel_values"], batch["image_grid_thw"])
    lengths = (batch["image_grid_thw"].prod(-1)).tolist()
    assert seen and all(mask is None for _, mask in seen)
    assert max(shape[-2] for shape, _ in seen) == max(lengths)  # attention spans one image, not the batch


def test_a_page_larger_than_a_chunk_gives_the_same_features_in_bounded_pieces(tiny_model, processor, monkeypatch):
    """The encoder's patch-wise parts run in chunks of VISION_CHUNK patches (bounded memory on an 11 MP
    page); features equal the unchunked pass, and no patch-wise layer ever sees more than a chunk."""
    from ocr_studio.models.dots_ocr import modeling

    pages = [page(200, 260, 4), page(120, 160, 5)]
    batch = processor(pages, ["x", "x"])
    with torch.no_grad():
        whole = tiny_model.vision_tower(batch["pixel_values"], batch["image_grid_thw"])
    assert batch["pixel_values"].shape[0] > 3 * 16
    monkeypatch.setattr(modeling, "VISION_CHUNK", 16)
    widest = []
    mlp = tiny_model.vision_tower.blocks[0].mlp
    hook = mlp.register_forward_hook(lambda _m, args, _out: widest.append(args[0].shape[0]))
    try:
        with torch.no_grad():
            chunked = tiny_model.vision_tower(batch["pixel_values"], batch["image_grid_thw"])
    finally:
        hook.remove()
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-6)
    assert len(widest) > 3 and max(widest) == 16


def test_fast_generation_path_gives_the_same_tokens_as_generate(tiny_model, processor):
    from ocr_studio.models.generation import GenerationConfig, generate

    pages = [page(120, 160, 8), page(260, 110, 9)]
    batch = processor(pages, ["Extract the text content from this image.", "Layout"])
    config = GenerationConfig(max_new_tokens=6, eos_token_ids=(), pad_token_id=processor.pad_token_id, repetition=None)
    fast = generate(tiny_model, dict(batch), config, path="eager")
    assert fast.path == "eager" and not fast.warnings
    with torch.no_grad():
        reference = tiny_model.generate(**batch, max_new_tokens=6, do_sample=False, eos_token_id=None)
    assert fast.tokens == reference[:, -6:].tolist()


def test_fused_decode_step_gives_the_same_tokens_as_generate(tiny_model, processor):
    """dots.ocr's Qwen2 decoder (q/k/v biases, no q/k norm) runs the fused decode step too."""
    from ocr_studio.models.generation import FastGenerator, GenerationConfig

    pages = [page(120, 160, 8), page(260, 110, 9)]
    batch = processor(pages, ["Extract the text content from this image.", "Layout"])
    config = GenerationConfig(max_new_tokens=12, eos_token_ids=(), pad_token_id=processor.pad_token_id, repetition=None)
    fused = FastGenerator(tiny_model, path="eager", fuse=True).generate(dict(batch), config)
    assert fused.fused and fused.path == "eager", fused.warnings
    with torch.no_grad():
        reference = tiny_model.generate(**batch, max_new_tokens=12, do_sample=False, eos_token_id=None)
    assert fused.tokens == reference[:, -12:].tolist()
