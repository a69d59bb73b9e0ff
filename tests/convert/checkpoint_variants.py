"""Rewrite the committed tiny checkpoint into the other layouts real checkpoints come in.

Real Qwen2.5-VL folders differ in tensor naming (legacy ``model.layers.*`` / ``visual.*`` versus
transformers 4.52-4.57's ``model.language_model.*`` / ``model.visual.*``), config layout (flat hub
keys, nested ``text_config`` with ``rope_scaling``, transformers 5 ``rope_parameters``), storage
dtype and sharding. These helpers produce each variant from the one committed fixture.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np

from convert.safetensors_source import TensorSource

_DTYPE_NAMES = {np.dtype("<f4"): "F32", np.dtype("<f2"): "F16", np.dtype("<u2"): "BF16"}
_TEXT_KEYS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "rms_norm_eps",
    "max_position_embeddings",
    "vocab_size",
    "rope_theta",
    "rope_scaling",
    "sliding_window",
    "use_sliding_window",
    "max_window_layers",
    "hidden_act",
    "attention_dropout",
    "bos_token_id",
    "eos_token_id",
)


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """A minimal safetensors writer (header JSON + raw little-endian bytes)."""
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, array in tensors.items():
        header[name] = {
            "dtype": _DTYPE_NAMES[array.dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        offset += array.nbytes
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)))
        handle.write(encoded)
        for array in tensors.values():
            handle.write(np.ascontiguousarray(array).tobytes())


def prefixed_name(name: str) -> str:
    """Legacy hub name -> transformers 4.52-4.57 name."""
    if name.startswith("model."):
        return "model.language_model." + name[len("model.") :]
    if name.startswith("visual."):
        return "model." + name
    return name


def copy_checkpoint(
    src: Path,
    dst: Path,
    *,
    prefixed: bool = False,
    dtype: str = "BF16",
    config_layout: str = "flat",
    single_file: bool = False,
) -> Path:
    """Write a variant of ``src`` into ``dst``; config_layout is "flat", "nested" or "v5"."""
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.suffix == ".json" and item.name not in (
            "config.json",
            "model.safetensors.index.json",
        ):
            shutil.copy2(item, dst / item.name)
    source = TensorSource.from_folder(src)
    tensors: dict[str, np.ndarray] = {}
    for name in source:
        if dtype == "BF16":
            array = np.array(source.raw(name))
        else:
            array = np.array(source.float32(name)).astype(
                {"F32": np.float32, "F16": np.float16}[dtype]
            )
        tensors[prefixed_name(name) if prefixed else name] = array
    if single_file:
        write_safetensors(dst / "model.safetensors", tensors)
    else:
        files = {"model-00001-of-00002.safetensors": {}, "model-00002-of-00002.safetensors": {}}
        for i, (name, array) in enumerate(tensors.items()):
            files[list(files)[i % 2]][name] = array
        weight_map = {}
        for file_name, part in files.items():
            write_safetensors(dst / file_name, part)
            weight_map.update(dict.fromkeys(part, file_name))
        index = {
            "metadata": {"total_size": sum(a.nbytes for a in tensors.values())},
            "weight_map": weight_map,
        }
        (dst / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    config = json.loads((src / "config.json").read_text())
    (dst / "config.json").write_text(json.dumps(reshape_config(config, config_layout), indent=2))
    return dst


def reshape_config(config: dict, layout: str) -> dict:
    """The flat hub config in another layout ("flat" returns it unchanged)."""
    if layout == "flat":
        return config
    root = {k: v for k, v in config.items() if k not in _TEXT_KEYS}
    text = {k: config[k] for k in _TEXT_KEYS if k in config}
    section = config["rope_scaling"]["mrope_section"]
    if layout == "nested":
        text["rope_scaling"] = {"mrope_section": section, "rope_type": "default", "type": "default"}
    elif layout == "v5":
        theta = text.pop("rope_theta")
        text.pop("rope_scaling")
        text["rope_parameters"] = {
            "rope_type": "default",
            "rope_theta": theta,
            "mrope_section": section,
        }
    else:
        raise ValueError(layout)
    text["model_type"] = "qwen2_5_vl_text"
    root["text_config"] = text
    return root
