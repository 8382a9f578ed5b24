"""Turns page images and prompts into dots.ocr model inputs, and generated ids back into text.

The checkpoint's own tokenizer and image-processor settings are read from its folder; the
prompt framing and the resize rule are the published ones. Pages are resized (PIL bicubic,
as the official parser does) to sides that are multiples of 28 within a pixel budget, and
each page's ``<|imgpad|>`` is expanded to its visual-token count (H/28)·(W/28).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from transformers import AutoTokenizer, BatchFeature

from ..resize import fit_to_grid

MIN_PIXELS = 3136
MAX_PIXELS = 11_289_600
PATCH_SIZE = 14
MERGE_SIZE = 2
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

IMAGE_START = "<|img|>"
IMAGE_PAD = "<|imgpad|>"
IMAGE_END = "<|endofimg|>"
USER_START = "<|user|>"
USER_END = "<|endofuser|>"
ASSISTANT_START = "<|assistant|>"
ASSISTANT_END = "<|endofassistant|>"
END_OF_TEXT = "<|endoftext|>"
SPECIAL_TOKENS = (
    END_OF_TEXT,
    IMAGE_PAD,
    IMAGE_START,
    IMAGE_END,
    "<|systemprompt|>",
    "<|endofsystemprompt|>",
    USER_START,
    USER_END,
    ASSISTANT_START,
    ASSISTANT_END,
)


def smart_resize(
    height: int, width: int, factor: int = 28, min_pixels: int = MIN_PIXELS, max_pixels: int = MAX_PIXELS
) -> tuple[int, int]:
    """(height, width) rounded to multiples of ``factor``, pixel count within [min_pixels, max_pixels],
    aspect ratio kept as closely as possible (the Qwen2-VL rule dots.ocr was trained with)."""
    w, h = fit_to_grid(width, height, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    return h, w


def _load_image_processor(path: Path):
    """The checkpoint's Qwen2VLImageProcessor (torchvision backend, or the PIL one where torchvision is missing)."""
    try:
        from transformers import Qwen2VLImageProcessor as processor_class
    except ImportError:  # pragma: no cover - depends on the installed extras
        from transformers import Qwen2VLImageProcessorPil as processor_class
    if (path / "preprocessor_config.json").is_file():
        return processor_class.from_pretrained(str(path))
    return processor_class(
        patch_size=PATCH_SIZE, merge_size=MERGE_SIZE, image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD)
    )


def _pixel_bounds(image_processor) -> tuple[int | None, int | None]:
    size = getattr(image_processor, "size", None) or {}
    get = size.get if isinstance(size, dict) else lambda key: getattr(size, key, None)
    low = get("shortest_edge") or getattr(image_processor, "min_pixels", None)
    high = get("longest_edge") or getattr(image_processor, "max_pixels", None)
    return low, high


def _temporal_patch_size(path: Path) -> int:
    """The vision encoder's temporal patch size from config.json (1 for dots.ocr): one frame per row."""
    config_file = path / "config.json"
    if config_file.is_file():
        vision = json.loads(config_file.read_text(encoding="utf-8")).get("vision_config") or {}
        return int(vision.get("temporal_patch_size", 1))
    return 1


def _as_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.split()[-1])
        return background
    return image.convert("RGB")


class DotsOCRProcessor:
    """Tokenizer + image processor of one dots.ocr checkpoint folder.

    ``processor(images, prompts)`` gives a left-padded batch ready for ``DotsOCRForCausalLM``.
    """

    def __init__(
        self,
        tokenizer,
        image_processor,
        min_pixels: int = MIN_PIXELS,
        max_pixels: int = MAX_PIXELS,
        temporal_patch_size: int = 1,
    ):
        if min_pixels > max_pixels:
            raise ValueError(f"min_pixels ({min_pixels}) is larger than max_pixels ({max_pixels}).")
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = END_OF_TEXT
        self.image_processor = image_processor
        self.min_pixels = int(min_pixels)
        self.max_pixels = int(max_pixels)
        self.temporal_patch_size = temporal_patch_size
        self.patch_size = int(getattr(image_processor, "patch_size", PATCH_SIZE))
        self.merge_size = int(getattr(image_processor, "merge_size", MERGE_SIZE))
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(IMAGE_PAD)
        if self.image_token_id is None or self.image_token_id == self.tokenizer.unk_token_id:
            raise ValueError(f"The tokenizer has no {IMAGE_PAD} token: this folder is not a dots.ocr checkpoint.")

    @classmethod
    def from_pretrained(
        cls, path: str | Path, min_pixels: int | None = None, max_pixels: int | None = None
    ) -> DotsOCRProcessor:
        """Load from a local checkpoint folder. Pixel bounds: arguments, else the folder's
        preprocessor config, else the published 3,136 … 11,289,600."""
        folder = Path(path)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder with a dots.ocr checkpoint (download it first).")
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        image_processor = _load_image_processor(folder)
        low, high = _pixel_bounds(image_processor)
        return cls(
            tokenizer,
            image_processor,
            min_pixels=min_pixels if min_pixels is not None else (low or MIN_PIXELS),
            max_pixels=max_pixels if max_pixels is not None else (high or MAX_PIXELS),
            temporal_patch_size=_temporal_patch_size(folder),
        )

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) the model sees for a page of this size; its bboxes are in these pixels."""
        h, w = smart_resize(height, width, self.factor, self.min_pixels, self.max_pixels)
        return w, h

    def image_token_count(self, width: int, height: int) -> int:
        w, h = self.resized_size(width, height)
        return (h // self.factor) * (w // self.factor)

    @staticmethod
    def prompt_text(prompt: str, image_tokens: int) -> str:
        """One user turn with one image, then the assistant's turn opens."""
        image = IMAGE_START + IMAGE_PAD * image_tokens + IMAGE_END
        return f"{USER_START}{image}{prompt}{USER_END}{ASSISTANT_START}"

    def __call__(
        self, images: Sequence[Image.Image], prompts: Sequence[str], return_tensors: str = "pt"
    ) -> BatchFeature:
        """input_ids / attention_mask (left padded), pixel_values [patches, 3·14·14], image_grid_thw [pages, 3]."""
        if isinstance(prompts, str):
            prompts = [prompts] * len(images)
        if len(images) != len(prompts):
            raise ValueError(f"Got {len(images)} images but {len(prompts)} prompts: give one prompt per image.")
        if not images:
            raise ValueError("No images given.")
        resized = []
        for image in images:
            rgb = _as_rgb(image)
            w, h = self.resized_size(*rgb.size)
            resized.append(rgb if rgb.size == (w, h) else rgb.resize((w, h), Image.Resampling.BICUBIC))
        vision = self.image_processor(
            images=resized, do_resize=False, temporal_patch_size=self.temporal_patch_size, return_tensors="pt"
        )
        grid = vision["image_grid_thw"]
        token_counts = (grid.prod(-1) // self.merge_size**2).tolist()
        texts = [self.prompt_text(p, n) for p, n in zip(prompts, token_counts, strict=True)]
        text_inputs = self.tokenizer(texts, padding=True, return_tensors="pt")
        data = {
            "input_ids": text_inputs["input_ids"],
            "attention_mask": text_inputs["attention_mask"],
            "pixel_values": vision["pixel_values"],
            "image_grid_thw": grid.to(torch.long),
        }
        return BatchFeature(data=data, tensor_type=return_tensors)

    @property
    def eos_token_ids(self) -> list[int]:
        """Ids that end an answer (<|endofassistant|>, <|endoftext|>) present in this tokenizer."""
        ids = [self.tokenizer.convert_tokens_to_ids(t) for t in (ASSISTANT_END, END_OF_TEXT)]
        return [i for i in ids if i is not None and i != self.tokenizer.unk_token_id]

    @property
    def pad_token_id(self) -> int:
        return self.tokenizer.pad_token_id

    def batch_decode(self, sequences, skip_special_tokens: bool = True) -> list[str]:
        return self.tokenizer.batch_decode(sequences, skip_special_tokens=skip_special_tokens)

    def decode(self, sequence, skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(sequence, skip_special_tokens=skip_special_tokens)
