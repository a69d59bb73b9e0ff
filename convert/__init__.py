"""Hugging Face Qwen2.5-VL checkpoint (+ PEFT LoRA) to a text GGUF and an mmproj GGUF, quantized.

numpy + gguf at run time (llama-cpp-python for K-quants); never torch, never desktop_app.
"""

from __future__ import annotations

__version__ = "0.1.0"

from convert.errors import ConversionError
from convert.pipeline import (
    ConversionResult,
    ProgressEvent,
    Stage,
    convert_checkpoint,
)
from convert.quant_types import MmprojType, TextQuant

__all__ = [
    "ConversionError",
    "ConversionResult",
    "MmprojType",
    "ProgressEvent",
    "Stage",
    "TextQuant",
    "__version__",
    "convert_checkpoint",
]
