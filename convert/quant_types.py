"""The output types the converter offers, as data: GGML tensor type, GGUF file type, size per weight."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeVar

from gguf import GGMLQuantizationType as GGML
from gguf import LlamaFileType

from convert.errors import ConversionError


@dataclass(frozen=True)
class QuantSpec:
    """One ``--quant`` / ``--mmproj-type`` choice."""

    label: str
    file_type: LlamaFileType
    direct_type: GGML | None  # written by gguf-py; None: a K-quant made by llama.cpp's quantizer
    bits_per_weight: float  # for size estimates of 2-D weights (Q4_K_M/Q5_K_M are mixes)


class TextQuant(enum.Enum):
    """``--quant``: how the text model's matrices are stored."""

    F32 = QuantSpec("F32", LlamaFileType.ALL_F32, GGML.F32, 32.0)
    F16 = QuantSpec("F16", LlamaFileType.MOSTLY_F16, GGML.F16, 16.0)
    BF16 = QuantSpec("BF16", LlamaFileType.MOSTLY_BF16, GGML.BF16, 16.0)
    Q8_0 = QuantSpec("Q8_0", LlamaFileType.MOSTLY_Q8_0, GGML.Q8_0, 8.5)
    Q6_K = QuantSpec("Q6_K", LlamaFileType.MOSTLY_Q6_K, None, 6.5625)
    Q5_K_M = QuantSpec("Q5_K_M", LlamaFileType.MOSTLY_Q5_K_M, None, 5.75)
    Q4_K_M = QuantSpec("Q4_K_M", LlamaFileType.MOSTLY_Q4_K_M, None, 5.0)

    @property
    def spec(self) -> QuantSpec:
        return self.value

    @property
    def is_kquant(self) -> bool:
        return self.value.direct_type is None


class MmprojType(enum.Enum):
    """``--mmproj-type``: how the vision tower's matrices are stored."""

    F16 = QuantSpec("f16", LlamaFileType.MOSTLY_F16, GGML.F16, 16.0)
    F32 = QuantSpec("f32", LlamaFileType.ALL_F32, GGML.F32, 32.0)
    BF16 = QuantSpec("bf16", LlamaFileType.MOSTLY_BF16, GGML.BF16, 16.0)
    Q8_0 = QuantSpec("q8_0", LlamaFileType.MOSTLY_Q8_0, GGML.Q8_0, 8.5)

    @property
    def spec(self) -> QuantSpec:
        return self.value


_Kind = TypeVar("_Kind", TextQuant, MmprojType)


def _parse(kinds: type[_Kind], value: str | _Kind, option: str) -> _Kind:
    """The member of ``kinds`` whose label is ``value`` (case-insensitive), with the choices in the error."""
    if isinstance(value, kinds):
        return value
    for kind in kinds:
        if kind.spec.label.lower() == str(value).lower():
            return kind
    choices = ", ".join(k.spec.label for k in kinds)
    raise ConversionError(f"unknown {option} {value!r}: choose one of {choices}")


def parse_quant(value: str | TextQuant) -> TextQuant:
    """``"q4_k_m"`` -> TextQuant.Q4_K_M (case-insensitive), with the choices in the error."""
    return _parse(TextQuant, value, "--quant")


def parse_mmproj_type(value: str | MmprojType) -> MmprojType:
    """``"F16"`` -> MmprojType.F16 (case-insensitive), with the choices in the error."""
    return _parse(MmprojType, value, "--mmproj-type")
