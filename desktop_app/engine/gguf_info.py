"""What a GGUF file says about itself, read without loading it into llama.cpp.

llama.cpp aborts the whole process on some malformed files, and mismatched text/mmproj pairs fail
deep inside mtmd; reading the metadata first (pure Python, memory-mapped) turns those into clear
errors before anything is loaded.
"""

from __future__ import annotations

import logging
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

from desktop_app.errors import StorytellerError

logger = logging.getLogger(__name__)


class ModelFileError(StorytellerError):
    """A model file is missing, unreadable, or not what it should be."""


@dataclass(frozen=True)
class TextModelInfo:
    """The numbers of a text GGUF that sizing and pairing need."""

    path: Path
    architecture: str
    embedding_length: int
    context_length: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    chat_template: str | None
    file_size: int
    feed_forward_length: int = 0

    @property
    def head_dim(self) -> int:
        return self.embedding_length // max(1, self.n_heads)


@dataclass(frozen=True)
class ProjectorInfo:
    """The numbers of an mmproj GGUF that pairing and sizing need."""

    path: Path
    projector_type: str
    projection_dim: int
    vision_heads: int
    file_size: int


# GGUF value types (gguf spec; gguf.GGUFValueType): fixed sizes of the scalar ones.
_SCALAR_FORMATS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
_STRING, _ARRAY = 8, 9
# Arrays longer than this (the tokenizer's 152k tokens and merges) are skipped, not decoded.
_SMALL_ARRAY = 64


def read_metadata(path: Path, role: str) -> dict[str, object]:
    """The key/value metadata of a GGUF file: scalars, strings and short arrays.

    A small reader of our own: gguf-py's ``GGUFReader`` builds a numpy view per array element
    and takes ~15 s on a real Qwen tokenizer (300k strings); this skips long arrays in well
    under a second. Raises ``ModelFileError`` for a missing, foreign or damaged file.
    """
    if not path.is_file():
        raise ModelFileError(f"{role} {path} does not exist: check the path or the settings")
    try:
        with (
            open(path, "rb") as handle,
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data,
        ):
            return _parse_metadata(data)
    except (ValueError, struct.error, OSError, UnicodeDecodeError, IndexError) as err:
        raise ModelFileError(
            f"{role} {path.name} is not a readable GGUF file ({err}): convert the model again"
        ) from err


def _parse_metadata(data: mmap.mmap) -> dict[str, object]:
    if data[:4] != b"GGUF":
        raise ValueError("no GGUF magic")
    version, _tensors, count = struct.unpack_from("<IQQ", data, 4)
    if version not in (2, 3):
        raise ValueError(f"unsupported GGUF version {version}")
    offset = 24
    size = len(data)

    def string(at: int) -> tuple[str, int]:
        (length,) = struct.unpack_from("<Q", data, at)
        if at + 8 + length > size:
            raise ValueError("string runs past the end of the file")
        return data[at + 8 : at + 8 + length].decode("utf-8"), at + 8 + length

    def value(kind: int, at: int) -> tuple[object, int]:
        if kind in _SCALAR_FORMATS:
            fmt = "<" + _SCALAR_FORMATS[kind]
            return struct.unpack_from(fmt, data, at)[0], at + struct.calcsize(fmt)
        if kind == _STRING:
            return string(at)
        if kind == _ARRAY:
            item_kind, length = struct.unpack_from("<IQ", data, at)
            at += 12
            if item_kind in _SCALAR_FORMATS and length > _SMALL_ARRAY:
                end = at + length * struct.calcsize("<" + _SCALAR_FORMATS[item_kind])
                if end > size:
                    raise ValueError("array runs past the end of the file")
                return None, end
            items = []
            for _ in range(length):
                item, at = value(item_kind, at)
                if length <= _SMALL_ARRAY:
                    items.append(item)
            return (items if length <= _SMALL_ARRAY else None), at
        raise ValueError(f"unknown GGUF value type {kind}")

    metadata: dict[str, object] = {}
    for _ in range(count):
        key, offset = string(offset)
        (kind,) = struct.unpack_from("<I", data, offset)
        item, offset = value(kind, offset + 4)
        if item is not None:
            metadata[key] = item
    return metadata


def _int(metadata: dict[str, object], key: str, default: int = 0) -> int:
    value = metadata.get(key)
    if isinstance(value, list):
        value = value[0] if value else None
    return (
        int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default
    )


def read_text_model_info(path: str | Path) -> TextModelInfo:
    """Read a text GGUF's architecture, widths and template; ``ModelFileError`` if unusable."""
    path = Path(path)
    metadata = read_metadata(path, "text model")
    arch = metadata.get("general.architecture")
    if not isinstance(arch, str):
        raise ModelFileError(f"text model {path.name} has no general.architecture: not a model")
    if arch == "clip":
        raise ModelFileError(
            f"{path.name} is a vision projector (mmproj), not the text model: "
            "swap --model and --mmproj"
        )
    template = metadata.get("tokenizer.chat_template")
    heads = _int(metadata, f"{arch}.attention.head_count", 1)
    return TextModelInfo(
        path=path,
        architecture=arch,
        embedding_length=_int(metadata, f"{arch}.embedding_length"),
        context_length=_int(metadata, f"{arch}.context_length", 4096),
        n_layers=_int(metadata, f"{arch}.block_count"),
        n_heads=heads,
        n_kv_heads=_int(metadata, f"{arch}.attention.head_count_kv") or heads,
        chat_template=template if isinstance(template, str) and template else None,
        file_size=path.stat().st_size,
        feed_forward_length=_int(metadata, f"{arch}.feed_forward_length"),
    )


def read_projector_info(path: str | Path) -> ProjectorInfo:
    """Read an mmproj GGUF's projector type and output width; ``ModelFileError`` if unusable."""
    path = Path(path)
    metadata = read_metadata(path, "vision projector")
    arch = metadata.get("general.architecture")
    if arch != "clip":
        raise ModelFileError(
            f"{path.name} is not a vision projector (architecture {arch!r}): pass the file "
            "whose name contains 'mmproj' as --mmproj"
        )
    projection_dim = _int(metadata, "clip.vision.projection_dim")
    if not projection_dim:
        projection_dim = _merger_output_width(path)
    projector_type = metadata.get("clip.projector_type")
    return ProjectorInfo(
        path=path,
        projector_type=projector_type if isinstance(projector_type, str) else "",
        projection_dim=projection_dim,
        vision_heads=_int(metadata, "clip.vision.attention.head_count", 16),
        file_size=path.stat().st_size,
    )


def _merger_output_width(path: Path) -> int:
    """Older writers omit projection_dim; the last projector layer's bias has the width."""
    from gguf import GGUFReader  # an mmproj has no tokenizer arrays: gguf-py is quick here

    try:
        reader = GGUFReader(path, "r")
    except Exception as err:  # gguf-py raises ValueError/struct errors on damaged files
        raise ModelFileError(
            f"vision projector {path.name} is not a readable GGUF file ({err})"
        ) from err
    for tensor in reader.tensors:
        if tensor.name == "mm.2.bias":
            return int(tensor.shape[0])
    return 0


def check_pair(text: TextModelInfo, projector: ProjectorInfo) -> None:
    """Raise ``ModelFileError`` unless the projector feeds this text model (same width)."""
    if text.architecture != "qwen2vl":
        logger.warning("text model architecture is %s, expected qwen2vl", text.architecture)
    if projector.projection_dim != text.embedding_length:
        raise ModelFileError(
            f"{projector.path.name} does not belong to {text.path.name}: the projector outputs "
            f"{projector.projection_dim}-wide embeddings but the text model takes "
            f"{text.embedding_length}; use the mmproj converted with this model"
        )
