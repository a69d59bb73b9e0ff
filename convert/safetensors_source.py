"""Memory-mapped, tensor-at-a-time reading of (sharded) safetensors files, without torch.

Only the JSON header of each file is parsed up front; a tensor's bytes are mapped when it is
asked for and unmapped when the caller drops the array, so peak memory follows the largest
tensor, not the model.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convert.config import load_json
from convert.errors import ConversionError, MissingFileError

# safetensors dtype string -> (numpy dtype of the stored bytes, element size)
_STORED_DTYPES: dict[str, np.dtype] = {
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # numpy has no bfloat16: keep the raw 16-bit patterns
    "F64": np.dtype("<f8"),
}


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives: file, byte range, dtype string and shape."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    path: Path
    offset: int
    nbytes: int

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)


def bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    """Widen bfloat16 bit patterns (uint16) to float32 exactly: bf16 is the top half of an f32."""
    widened = raw.astype(np.uint32)
    widened <<= 16  # in place: one copy, not two
    return widened.view(np.float32)


def read_header(path: Path) -> list[TensorEntry]:
    """Parse one safetensors file's header into entries (no tensor data is read)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            if len(head) != 8:
                raise ConversionError(
                    f"{path} is not a safetensors file (it is shorter than 8 bytes): download it again"
                )
            (header_len,) = struct.unpack("<Q", head)
            file_size = path.stat().st_size
            if header_len > file_size - 8:
                raise ConversionError(
                    f"{path} is truncated or not a safetensors file (header claims {header_len} bytes): "
                    "download it again"
                )
            header = json.loads(handle.read(header_len))
    except FileNotFoundError as err:
        raise MissingFileError(
            f"{path} is missing: download the complete checkpoint folder"
        ) from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConversionError(
            f"{path} is not a safetensors file (unreadable header): download it again"
        ) from err
    data_start = 8 + header_len
    entries = []
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        begin, end = meta["data_offsets"]
        if data_start + end > file_size:
            raise ConversionError(
                f"{path} is truncated ({name} runs past the end): download it again"
            )
        entries.append(
            TensorEntry(
                name=name,
                dtype=meta["dtype"],
                shape=tuple(int(d) for d in meta["shape"]),
                path=path,
                offset=data_start + begin,
                nbytes=end - begin,
            )
        )
    return entries


def safetensors_files(folder: Path) -> list[Path]:
    """The weight files of a checkpoint folder, from its index when sharded; checks every shard exists."""
    index_path = folder / "model.safetensors.index.json"
    if index_path.is_file():
        index = load_json(index_path)
        names = sorted(set(index.get("weight_map", {}).values()))
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise MissingFileError(
                f"{folder} is missing {len(missing)} of {len(names)} weight shards ({', '.join(missing)}): "
                "download the complete checkpoint folder"
            )
        return [folder / n for n in names]
    names = [p.name for p in folder.iterdir() if p.is_file()]
    files = [folder / n for n in weight_file_names(names)]
    if not files:
        raise no_weights_error(str(folder), names)
    return files


def weight_file_names(names: Iterable[str]) -> list[str]:
    """The unsharded checkpoint's weight files among ``names`` (an adapter's are not weights)."""
    return sorted(
        n for n in names if n.endswith(".safetensors") and not n.startswith("adapter_model")
    )


def no_weights_error(where: str, names: Iterable[str]) -> MissingFileError:
    """What to say about a checkpoint (a folder, or a Hub repository's listing) without
    safetensors weights: PyTorch pickles are named, since a safetensors copy usually exists."""
    bins = sorted(n for n in names if n.endswith((".bin", ".pt")))
    hint = (
        f" (it has PyTorch pickle files such as {bins[0]}: download the safetensors version)"
        if bins
        else ""
    )
    return MissingFileError(f"{where} holds no .safetensors weights{hint}")


class TensorSource:
    """All tensors of a set of safetensors files, by name, read lazily one at a time."""

    def __init__(self, files: Iterable[Path]) -> None:
        self._entries: dict[str, TensorEntry] = {}
        for path in files:
            for entry in read_header(path):
                if entry.dtype not in _STORED_DTYPES:
                    raise ConversionError(
                        f"{entry.name} in {path.name} is stored as {entry.dtype}; only F32, F16 and BF16 "
                        "checkpoints can be converted: use the original, unquantized checkpoint"
                    )
                earlier = self._entries.get(entry.name)
                if earlier is not None:
                    # Which copy is right cannot be told; silently keeping one would convert a
                    # mix of two downloads.
                    raise ConversionError(
                        f"{entry.name} is stored twice, in {earlier.path.name} and {path.name}: the "
                        "folder mixes files from two downloads; delete the checkpoint folder and "
                        "download it again"
                    )
                self._entries[entry.name] = entry

    @classmethod
    def from_folder(cls, folder: Path) -> TensorSource:
        return cls(safetensors_files(folder))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def entry(self, name: str) -> TensorEntry:
        return self._entries[name]

    def raw(self, name: str) -> np.ndarray:
        """The stored elements as a read-only memory map (BF16 as uint16 bit patterns)."""
        entry = self._entries[name]
        dtype = _STORED_DTYPES[entry.dtype]
        if entry.n_elements == 0:
            return np.zeros(entry.shape, dtype=dtype)
        mapped = np.memmap(
            entry.path, dtype=np.uint8, mode="r", offset=entry.offset, shape=(entry.nbytes,)
        )
        return mapped.view(dtype).reshape(entry.shape)

    def float32(self, name: str) -> np.ndarray:
        """The tensor as float32 (a zero-copy map when stored as F32, else one converted copy)."""
        entry = self._entries[name]
        raw = self.raw(name)
        if entry.dtype == "BF16":
            return bf16_to_f32(raw)
        if entry.dtype == "F32":
            return raw
        return raw.astype(np.float32)
