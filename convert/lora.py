"""PEFT LoRA adapters: read adapter_config.json + adapter_model.safetensors, merge in float32.

The merge is ``W += scale * B @ A`` with ``scale = alpha / r`` (``alpha / sqrt(r)`` with rsLoRA),
where ``r`` and ``alpha`` may be overridden per module by ``rank_pattern`` / ``alpha_pattern``.
Adapter keys may use either naming scheme (``base_model.model.model.layers.*`` or
``base_model.model.model.language_model.layers.*``); both normalise to the checkpoint's names.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convert.config import load_json
from convert.errors import AdapterError, MissingFileError
from convert.safetensors_source import TensorSource
from convert.tensor_map import normalise_name

_PEFT_PREFIX = "base_model.model."
_KEY = re.compile(r"(?P<module>.+)\.lora_(?P<ab>[AB])(?:\.(?P<adapter>[^.]+))?\.weight")


@dataclass(frozen=True)
class LoraPair:
    """The A/B matrices of one adapted module and its merge scale."""

    module: str  # normalised module name, e.g. model.layers.0.self_attn.q_proj
    a_key: str
    b_key: str
    rank: int
    scale: float


def _pattern_value(patterns: dict[str, Any], names: tuple[str, ...], default: Any) -> Any:
    """PEFT's rank/alpha pattern lookup: a key matches a module name or a dotted suffix of it.

    ``names`` holds the module name as the adapter spells it and in the legacy layout, so a
    pattern written for either naming scheme applies.
    """
    for pattern, value in patterns.items():
        if any(re.fullmatch(rf"(?:.*\.)?(?:{pattern})", name) for name in names):
            return value
    return default


class LoraAdapter:
    """A PEFT LoRA adapter folder, checked and ready to merge into base weights."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        config_path = folder / "adapter_config.json"
        if not config_path.is_file():
            if (folder / "config.json").is_file():
                raise AdapterError(
                    f"{folder} is a full model, not a PEFT adapter (no adapter_config.json): if it is "
                    "already merged, pass it as SRC without --lora"
                )
            raise MissingFileError(
                f"{folder} has no adapter_config.json: --lora needs a PEFT adapter folder"
            )
        self.config: dict[str, Any] = load_json(config_path)
        self._check_kind()
        weights = folder / "adapter_model.safetensors"
        if not weights.is_file():
            hint = (
                " (only adapter_model.bin was found: save the adapter as safetensors)"
                if (folder / "adapter_model.bin").is_file()
                else ""
            )
            raise MissingFileError(f"{folder} has no adapter_model.safetensors{hint}")
        self.tensors = TensorSource([weights])
        self.pairs = self._pair_tensors()

    def _check_kind(self) -> None:
        peft_type = str(self.config.get("peft_type", "")).upper()
        if peft_type != "LORA":
            raise AdapterError(
                f"{self.folder} is a {peft_type or 'unknown'} adapter; only LoRA adapters can be merged"
            )
        if self.config.get("use_dora"):
            raise AdapterError(
                f"{self.folder} is a DoRA adapter (use_dora: true), which needs a different merge: merge it "
                "with PEFT (merge_and_unload) and convert the merged model instead"
            )
        if self.config.get("fan_in_fan_out"):
            raise AdapterError(
                f"{self.folder} uses fan_in_fan_out, which Qwen2.5-VL's Linear layers never do"
            )
        if self.config.get("modules_to_save"):
            raise AdapterError(
                f"{self.folder} also replaces whole modules ({self.config['modules_to_save']}); merge it with "
                "PEFT (merge_and_unload) and convert the merged model instead"
            )

    def _pair_tensors(self) -> dict[str, LoraPair]:
        halves: dict[str, dict[str, str]] = {}
        spelled: dict[str, str] = {}
        for key in self.tensors:
            if "lora_magnitude_vector" in key:
                raise AdapterError(
                    f"{self.folder} is a DoRA adapter ({key}); only plain LoRA can be merged"
                )
            bare = key[len(_PEFT_PREFIX) :] if key.startswith(_PEFT_PREFIX) else key
            match = _KEY.fullmatch(bare)
            if not match:
                raise AdapterError(
                    f"{self.folder} holds {key!r}, which is not a LoRA A/B matrix (embedding LoRA and other "
                    "adapter tensors are not supported)"
                )
            module = normalise_name(match["module"])
            spelled[module] = match["module"]
            halves.setdefault(module, {})[match["ab"]] = key
        rank = int(self.config.get("r", 8))
        alpha = float(self.config.get("lora_alpha", rank))
        rank_pattern = self.config.get("rank_pattern") or {}
        alpha_pattern = self.config.get("alpha_pattern") or {}
        rslora = bool(self.config.get("use_rslora", False))
        pairs = {}
        for module, ab in halves.items():
            if set(ab) != {"A", "B"}:
                raise AdapterError(f"{self.folder} has lora_A or lora_B but not both for {module}")
            names = (spelled[module], module)
            r = int(_pattern_value(rank_pattern, names, rank))
            a = float(_pattern_value(alpha_pattern, names, alpha))
            a_shape = self.tensors.entry(ab["A"]).shape
            b_shape = self.tensors.entry(ab["B"]).shape
            if len(a_shape) != 2 or len(b_shape) != 2 or a_shape[0] != r or b_shape[1] != r:
                raise AdapterError(
                    f"{module}: lora_A {list(a_shape)} / lora_B {list(b_shape)} do not have the rank {r} that "
                    "adapter_config.json gives (r / rank_pattern)"
                )
            scale = a / math.sqrt(r) if rslora else a / r
            pairs[module + ".weight"] = LoraPair(module, ab["A"], ab["B"], r, scale)
        if not pairs:
            raise AdapterError(f"{self.folder} holds no LoRA matrices")
        return pairs

    @property
    def target_weights(self) -> set[str]:
        """Normalised names of the checkpoint weights this adapter changes."""
        return set(self.pairs)

    def check_against(self, shapes: dict[str, tuple[int, ...]]) -> None:
        """Fail unless every adapted weight exists in the base with the adapter's shape."""
        for weight, pair in self.pairs.items():
            if weight not in shapes:
                raise AdapterError(
                    f"the adapter changes {pair.module}, which the base checkpoint does not have: it was "
                    "trained for another model"
                )
            out_features = self.tensors.entry(pair.b_key).shape[0]
            in_features = self.tensors.entry(pair.a_key).shape[1]
            if shapes[weight] != (out_features, in_features):
                raise AdapterError(
                    f"the adapter was trained for another base model: {pair.module} is "
                    f"{out_features}x{in_features} in the adapter but {shapes[weight][0]}x{shapes[weight][1]} "
                    "in the checkpoint; pass the base model it was trained on"
                )

    def merge(self, weight_name: str, weight: np.ndarray, first_row: int = 0) -> np.ndarray:
        """``weight + scale * B @ A`` in float32 (a new array; the input is not modified).

        ``weight`` may be a block of rows of the full matrix starting at ``first_row``, so a large
        weight can be merged chunk by chunk.
        """
        pair = self.pairs[weight_name]
        lora_a = self.tensors.float32(pair.a_key)
        lora_b = self.tensors.float32(pair.b_key)[first_row : first_row + weight.shape[0]]
        delta = lora_b @ lora_a
        delta *= np.float32(pair.scale)
        delta += weight
        return delta
