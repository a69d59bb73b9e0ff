"""What a GGUF file says about itself, read without loading it into llama.cpp.

llama.cpp aborts the whole process on some malformed files, and mismatched text/mmproj pairs fail
deep inside mtmd; reading the metadata first (gguf-py, pure Python, memory-mapped) turns those
into clear errors before anything is loaded.
"""

from __future__ import annotations

import logging
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

    @property
    def head_dim(self) -> int:
        return self.embedding_length // max(1, self.n_heads)

    @property
    def kv_bytes_per_token(self) -> int:
        """Bytes of F16 K and V cache per context cell."""
        return 2 * self.n_layers * self.n_kv_heads * self.head_dim * 2


@dataclass(frozen=True)
class ProjectorInfo:
    """The numbers of an mmproj GGUF that pairing and sizing need."""

    path: Path
    projector_type: str
    projection_dim: int
    vision_heads: int
    file_size: int


def _open_reader(path: Path, role: str) -> object:
    from gguf import GGUFReader  # heavy import kept inside the engine

    if not path.is_file():
        raise ModelFileError(f"{role} {path} does not exist: check the path or the settings")
    try:
        return GGUFReader(path, "r")
    except Exception as err:  # gguf-py raises ValueError/struct errors/... on damaged files
        raise ModelFileError(
            f"{role} {path.name} is not a readable GGUF file ({err}): convert the model again"
        ) from err


def _field(reader: object, key: str) -> object | None:
    field = reader.fields.get(key)  # type: ignore[attr-defined]
    if field is None:
        return None
    try:
        return field.contents()
    except Exception:  # an odd type in a key we only read for information
        return None


def _int_field(reader: object, key: str, default: int = 0) -> int:
    value = _field(reader, key)
    if isinstance(value, list):
        value = value[0] if value else None
    return int(value) if isinstance(value, (int, float)) else default


def read_text_model_info(path: str | Path) -> TextModelInfo:
    """Read a text GGUF's architecture, widths and template; ``ModelFileError`` if unusable."""
    path = Path(path)
    reader = _open_reader(path, "text model")
    arch = _field(reader, "general.architecture")
    if not isinstance(arch, str):
        raise ModelFileError(f"text model {path.name} has no general.architecture: not a model")
    if arch == "clip":
        raise ModelFileError(
            f"{path.name} is a vision projector (mmproj), not the text model: "
            "swap --model and --mmproj"
        )
    template = _field(reader, "tokenizer.chat_template")
    return TextModelInfo(
        path=path,
        architecture=arch,
        embedding_length=_int_field(reader, f"{arch}.embedding_length"),
        context_length=_int_field(reader, f"{arch}.context_length", 4096),
        n_layers=_int_field(reader, f"{arch}.block_count"),
        n_heads=_int_field(reader, f"{arch}.attention.head_count", 1),
        n_kv_heads=_int_field(reader, f"{arch}.attention.head_count_kv")
        or _int_field(reader, f"{arch}.attention.head_count", 1),
        chat_template=template if isinstance(template, str) and template else None,
        file_size=path.stat().st_size,
    )


def read_projector_info(path: str | Path) -> ProjectorInfo:
    """Read an mmproj GGUF's projector type and output width; ``ModelFileError`` if unusable."""
    path = Path(path)
    reader = _open_reader(path, "vision projector")
    arch = _field(reader, "general.architecture")
    if arch != "clip":
        raise ModelFileError(
            f"{path.name} is not a vision projector (architecture {arch!r}): pass the file "
            "whose name contains 'mmproj' as --mmproj"
        )
    projection_dim = _int_field(reader, "clip.vision.projection_dim")
    if not projection_dim:
        # Older writers omit the key; the last projector layer's bias has the output width.
        for tensor in reader.tensors:  # type: ignore[attr-defined]
            if tensor.name == "mm.2.bias":
                projection_dim = int(tensor.shape[0])
    projector_type = _field(reader, "clip.projector_type")
    return ProjectorInfo(
        path=path,
        projector_type=projector_type if isinstance(projector_type, str) else "",
        projection_dim=projection_dim,
        vision_heads=_int_field(reader, "clip.vision.attention.head_count", 16),
        file_size=path.stat().st_size,
    )


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
