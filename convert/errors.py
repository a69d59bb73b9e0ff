"""Errors the converter reports: each message says what is wrong and what to do about it.

``convert`` never imports ``desktop_app``, so it has its own base class; the app's CLI and GUI
catch ``ConversionError`` next to ``StorytellerError``.
"""

from __future__ import annotations


class ConversionError(Exception):
    """A conversion cannot go on; ``str(err)`` is the message to show the user."""


class NotQwen25VLError(ConversionError):
    """The source folder holds some other model (or no model at all)."""


class UnsupportedCheckpointError(ConversionError):
    """A Qwen2.5-VL checkpoint llama.cpp would reject or silently run wrong."""


class MissingFileError(ConversionError):
    """A file the checkpoint needs (a shard, config.json, tokenizer.json) is not there."""


class UnknownTensorError(ConversionError):
    """A tensor the converter has no mapping for; never skipped silently."""


class AdapterError(ConversionError):
    """The LoRA adapter cannot be merged (unsupported kind, or made for another base model)."""


class OutputExistsError(ConversionError):
    """Converted files are already in the output folder and --force was not given."""


class InsufficientDiskSpaceError(ConversionError):
    """The output folder's disk cannot hold the files about to be written."""


class QuantizationError(ConversionError):
    """llama.cpp's quantizer failed or is not installed."""


class ShapeMismatchError(UnsupportedCheckpointError):
    """A tensor's shape is not the one config.json implies (weights and config from different models)."""


class DownloadError(ConversionError):
    """Getting a checkpoint from the Hugging Face Hub failed (network, access, a damaged file)."""
