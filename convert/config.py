"""Read a Qwen2.5-VL config.json in any of its three layouts into one normalised record.

Layouts (docs/llamacpp.md 1, "Config layouts"): the original hub layout (flat text keys,
``rope_scaling.mrope_section``), transformers >= 4.53 re-saves (nested ``text_config`` with
``rope_scaling``) and transformers 5 (``rope_parameters``). ``vision_config`` is always nested.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convert.errors import (
    ConversionError,
    MissingFileError,
    NotQwen25VLError,
    UnsupportedCheckpointError,
)

QWEN25VL_ARCHITECTURE = "Qwen2_5_VLForConditionalGeneration"
QWEN25VL_MODEL_TYPE = "qwen2_5_vl"

# Image normalisation used by Qwen2.5-VL when preprocessor_config.json does not say (CLIP's).
DEFAULT_IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
DEFAULT_IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class TextConfig:
    """The language model's shape and numerics."""

    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    rope_theta: float
    rms_norm_eps: float
    max_position_embeddings: int
    vocab_size: int
    mrope_section: tuple[int, ...]
    tie_word_embeddings: bool
    bos_token_id: int | None
    eos_token_id: int | None

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


@dataclass(frozen=True)
class VisionConfig:
    """The vision tower and merger."""

    depth: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    patch_size: int
    spatial_merge_size: int
    temporal_patch_size: int
    window_size: int
    fullatt_block_indexes: tuple[int, ...]
    out_hidden_size: int
    in_channels: int
    hidden_act: str
    image_mean: tuple[float, ...]
    image_std: tuple[float, ...]

    @property
    def window_attention_pattern(self) -> int:
        """llama.cpp's n_wa_pattern: full attention on layers where (i + 1) % n == 0."""
        return self.fullatt_block_indexes[0] + 1


@dataclass(frozen=True)
class ModelConfig:
    """Everything the converter needs from config.json and preprocessor_config.json."""

    text: TextConfig
    vision: VisionConfig
    raw: dict[str, Any]


def load_json(path: Path) -> dict[str, Any]:
    """A checkpoint's or adapter's JSON file as a dict; a missing or broken file is a ConversionError."""
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise MissingFileError(
            f"{path} is missing: download the complete checkpoint folder"
        ) from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConversionError(f"{path} is not valid JSON ({err}): download it again") from err
    if not isinstance(loaded, dict):
        raise ConversionError(f"{path} is not a JSON object: download it again")
    return loaded


def describe_model(config: dict[str, Any]) -> str:
    """A short human name for whatever model a config.json describes."""
    archs = config.get("architectures") or []
    model_type = config.get("model_type")
    parts = [", ".join(archs)] if archs else []
    if model_type:
        parts.append(f"model_type {model_type!r}")
    return " / ".join(parts) if parts else "an unknown model (config.json names no architecture)"


def check_is_qwen25vl(folder: Path) -> dict[str, Any]:
    """Load config.json and fail with a message naming the model if it is not Qwen2.5-VL."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        if (folder / "adapter_config.json").is_file():
            raise NotQwen25VLError(
                f"{folder} is a PEFT adapter, not a model: pass the base Qwen2.5-VL checkpoint as SRC "
                "and this folder with --lora"
            )
        raise MissingFileError(
            f"{folder} has no config.json: point SRC at a Hugging Face checkpoint folder "
            "(config.json, *.safetensors, tokenizer.json)"
        )
    config = load_json(config_path)
    archs = config.get("architectures") or []
    if QWEN25VL_ARCHITECTURE in archs or config.get("model_type") == QWEN25VL_MODEL_TYPE:
        return config
    raise NotQwen25VLError(
        f"{folder} holds {describe_model(config)}, not Qwen2.5-VL "
        f"({QWEN25VL_ARCHITECTURE}): storyteller-convert only converts Qwen2.5-VL checkpoints "
        "such as QwenStoryteller or Qwen/Qwen2.5-VL-7B-Instruct"
    )


def _first_id(value: Any) -> int | None:
    if isinstance(value, list):
        return int(value[0]) if value else None
    return int(value) if isinstance(value, int) else None


def _text_section(config: dict[str, Any]) -> dict[str, Any]:
    """Flatten: nested text_config values win over the root (transformers >= 4.53 and 5)."""
    text = dict(config)
    nested = config.get("text_config")
    if isinstance(nested, dict):
        text.update(nested)
    return text


def _rope(text: dict[str, Any]) -> tuple[tuple[int, ...], float]:
    """(mrope_section, rope_theta) from rope_parameters (v5) or rope_scaling (older)."""
    params = text.get("rope_parameters") or text.get("rope_scaling") or {}
    section = params.get("mrope_section")
    if not section:
        raise UnsupportedCheckpointError(
            "config.json has no mrope_section (in rope_scaling or rope_parameters): "
            "this is not a Qwen2.5-VL config llama.cpp can run"
        )
    theta = params.get("rope_theta", text.get("rope_theta", 10000.0))
    return tuple(int(s) for s in section), float(theta)


def read_config(folder: Path) -> ModelConfig:
    """Normalise config.json (+ preprocessor_config.json) and check llama.cpp's constraints."""
    config = check_is_qwen25vl(folder)
    text_raw = _text_section(config)
    section, theta = _rope(text_raw)
    try:
        text = TextConfig(
            hidden_size=int(text_raw["hidden_size"]),
            intermediate_size=int(text_raw["intermediate_size"]),
            num_layers=int(text_raw["num_hidden_layers"]),
            num_heads=int(text_raw["num_attention_heads"]),
            num_kv_heads=int(text_raw.get("num_key_value_heads", text_raw["num_attention_heads"])),
            rope_theta=theta,
            rms_norm_eps=float(text_raw.get("rms_norm_eps", 1e-6)),
            max_position_embeddings=int(text_raw.get("max_position_embeddings", 128000)),
            vocab_size=int(text_raw["vocab_size"]),
            mrope_section=section,
            tie_word_embeddings=bool(
                config.get("tie_word_embeddings", text_raw.get("tie_word_embeddings", False))
            ),
            bos_token_id=_first_id(text_raw.get("bos_token_id")),
            eos_token_id=_first_id(text_raw.get("eos_token_id")),
        )
        vision_raw = config["vision_config"]
        preprocessor = {}
        if (folder / "preprocessor_config.json").is_file():
            preprocessor = load_json(folder / "preprocessor_config.json")
        vision = VisionConfig(
            depth=int(vision_raw.get("depth", vision_raw.get("num_hidden_layers", 32))),
            hidden_size=int(vision_raw["hidden_size"]),
            intermediate_size=int(vision_raw["intermediate_size"]),
            num_heads=int(vision_raw.get("num_heads", vision_raw.get("num_attention_heads", 16))),
            patch_size=int(vision_raw.get("patch_size", 14)),
            spatial_merge_size=int(vision_raw.get("spatial_merge_size", 2)),
            temporal_patch_size=int(vision_raw.get("temporal_patch_size", 2)),
            window_size=int(vision_raw.get("window_size", 112)),
            fullatt_block_indexes=tuple(int(i) for i in vision_raw["fullatt_block_indexes"]),
            out_hidden_size=int(vision_raw["out_hidden_size"]),
            in_channels=int(vision_raw.get("in_chans", vision_raw.get("in_channels", 3))),
            hidden_act=str(vision_raw.get("hidden_act", "silu")),
            image_mean=tuple(float(v) for v in preprocessor.get("image_mean", DEFAULT_IMAGE_MEAN)),
            image_std=tuple(float(v) for v in preprocessor.get("image_std", DEFAULT_IMAGE_STD)),
        )
    except KeyError as err:
        raise UnsupportedCheckpointError(
            f"config.json lacks {err.args[0]!r}, which every Qwen2.5-VL config has: the file is "
            "incomplete or from another model"
        ) from err
    model = ModelConfig(text=text, vision=vision, raw=config)
    check_llama_cpp_constraints(model)
    return model


def check_llama_cpp_constraints(model: ModelConfig) -> None:
    """Refuse configs llama.cpp 0.3.36 would reject, or run differently from transformers (docs/llamacpp.md 3)."""
    text, vision = model.text, model.vision
    sizes = {
        "hidden_size": text.hidden_size,
        "intermediate_size": text.intermediate_size,
        "num_hidden_layers": text.num_layers,
        "num_attention_heads": text.num_heads,
        "num_key_value_heads": text.num_kv_heads,
        "vocab_size": text.vocab_size,
        "vision_config.depth": vision.depth,
        "vision_config.hidden_size": vision.hidden_size,
        "vision_config.intermediate_size": vision.intermediate_size,
        "vision_config.num_heads": vision.num_heads,
        "vision_config.patch_size": vision.patch_size,
        "vision_config.out_hidden_size": vision.out_hidden_size,
    }
    not_positive = [f"{key} {value}" for key, value in sizes.items() if value <= 0]
    if not_positive:  # checked first: the rules below divide by these
        raise UnsupportedCheckpointError(
            f"config.json gives {', '.join(not_positive)}, but sizes must be positive: the file "
            "was edited or damaged; download the checkpoint folder again"
        )
    problems = []
    if text.hidden_size % text.num_heads or text.num_heads % text.num_kv_heads:
        problems.append(
            "text hidden_size must divide into num_attention_heads, and heads into KV heads"
        )
    if (
        len(text.mrope_section) > 4
        or min(text.mrope_section) < 0
        or sum(text.mrope_section) * 2 != text.head_dim
    ):
        problems.append(
            f"mrope_section {list(text.mrope_section)} must have at most 4 entries summing to "
            f"head_dim/2 = {text.head_dim // 2}"
        )
    if vision.spatial_merge_size != 2:
        problems.append("vision spatial_merge_size must be 2 (llama.cpp hard-codes it)")
    if vision.temporal_patch_size != 2:
        problems.append("vision temporal_patch_size must be 2 (llama.cpp uses exactly two kernels)")
    if vision.in_channels != 3:
        problems.append(f"vision in_chans is {vision.in_channels}; llama.cpp feeds 3-channel RGB")
    if vision.window_size != 112:
        problems.append(
            f"vision window_size is {vision.window_size}; llama.cpp hard-codes a 112-pixel window"
        )
    if vision.patch_size > 56:
        problems.append(
            "vision patch_size must be at most 56 (a window must hold one merged patch)"
        )
    if vision.hidden_size % vision.num_heads or (vision.hidden_size // vision.num_heads) % 4:
        problems.append("vision head size (hidden_size / num_heads) must be a multiple of 4")
    if vision.intermediate_size == vision.hidden_size:
        problems.append(
            "vision intermediate_size equal to hidden_size makes llama.cpp swap the FFN"
        )
    if vision.out_hidden_size != text.hidden_size:
        problems.append(
            f"vision out_hidden_size {vision.out_hidden_size} must equal the text hidden_size {text.hidden_size}"
        )
    if vision.hidden_act not in ("silu", "swish"):
        problems.append(
            f"vision hidden_act {vision.hidden_act!r} is not supported (llama.cpp runs SiLU)"
        )
    indexes = vision.fullatt_block_indexes
    if indexes:
        step = max(indexes[0] + 1, 1)
        expected = tuple(range(step - 1, vision.depth, step))
        if indexes != expected:
            problems.append(
                f"fullatt_block_indexes {list(indexes)} is not the regular pattern llama.cpp assumes "
                f"({list(expected)})"
            )
    else:
        problems.append("fullatt_block_indexes is empty")
    if len(vision.image_mean) < 3 or len(vision.image_std) < 3:
        problems.append("preprocessor_config.json image_mean/image_std need 3 values")
    if problems:
        raise UnsupportedCheckpointError(
            "this Qwen2.5-VL checkpoint cannot run correctly in llama.cpp: "
            + "; ".join(problems)
            + ". If config.json was edited, download the checkpoint folder again; otherwise this "
            "model cannot be converted for llama.cpp"
        )
