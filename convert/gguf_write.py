"""Plan and stream one GGUF file: tensor infos first, then tensor data chunk by chunk.

Every tensor is produced in row chunks of at most ``CHUNK_ELEMENTS`` values, from a memory map of
just those rows, so even the 7B's 152064 x 3584 embedding never sits in memory whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np
from gguf import GGMLQuantizationType as GGML

from convert.lora import LoraAdapter
from convert.safetensors_source import TensorSource, bf16_to_f32
from convert.tensor_map import MappedTensor, Transform

CHUNK_ELEMENTS = 1 << 22  # 16 MiB of float32 per chunk: a few copies of it are the working set


@dataclass(frozen=True)
class PlannedTensor:
    """One output tensor: where its values come from and how they are stored."""

    name: str
    source: MappedTensor
    target_index: int  # which of the source's targets (q/k/v thirds, time slices)
    shape: tuple[int, ...]  # numpy order (rows first), as in the checkpoint
    ggml_type: GGML

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        block, type_size = gguf.GGML_QUANT_SIZES[self.ggml_type]
        return self.n_elements // block * type_size


def target_shape(mapped: MappedTensor, source_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of each GGUF tensor a checkpoint tensor becomes (``source_shape`` was checked
    against the config by ``tensor_map.check_shapes``: 3 x rows for q/k/v, a time axis of 2)."""
    if mapped.transform is Transform.SPLIT_ROWS_3:
        return (source_shape[0] // 3, *source_shape[1:])
    if mapped.transform is Transform.SPLIT_TIME:
        return (source_shape[0], source_shape[1], source_shape[3], source_shape[4])
    return source_shape


def f32_to_bf16(values: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (uint16), rounding to nearest even; NaN stays NaN."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = ((bits + np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))) >> 16).astype(np.uint16)
    nan = np.isnan(values)
    if nan.any():
        rounded[nan] = ((bits[nan] >> 16) | np.uint32(0x40)).astype(np.uint16)
    return rounded


def encode(values_f32: np.ndarray, ggml_type: GGML) -> np.ndarray:
    """float32 values -> the bytes/elements GGUF stores for ``ggml_type``."""
    if ggml_type is GGML.F32:
        return np.ascontiguousarray(values_f32, dtype=np.float32)
    if ggml_type is GGML.F16:
        return values_f32.astype(np.float16)
    if ggml_type is GGML.BF16:
        return f32_to_bf16(values_f32)
    return gguf.quants.quantize(np.ascontiguousarray(values_f32, dtype=np.float32), ggml_type)


class TensorProducer:
    """Makes the data of planned tensors from the checkpoint, merging the LoRA on the way."""

    def __init__(self, source: TensorSource, adapter: LoraAdapter | None) -> None:
        self.source = source
        self.adapter = adapter

    def _rows(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of a checkpoint tensor, mapped from disk (stored dtype)."""
        full = self.source.raw(name)
        return full[start:stop]  # a view: only these rows' pages are touched

    def chunks(self, planned: PlannedTensor) -> Iterator[np.ndarray]:
        """The encoded data of one planned tensor, in row chunks."""
        mapped = planned.source
        entry = self.source.entry(mapped.source_name)
        merge = self.adapter is not None and mapped.hf_name in self.adapter.target_weights
        raw_passthrough = not merge and (
            (entry.dtype == "BF16" and planned.ggml_type is GGML.BF16)
            or (entry.dtype == "F16" and planned.ggml_type is GGML.F16)
            or (entry.dtype == "F32" and planned.ggml_type is GGML.F32)
        )
        if raw_passthrough and mapped.transform is not Transform.SPLIT_TIME and planned.shape:
            for start, stop, row_offset in self._row_ranges(planned, CHUNK_ELEMENTS):
                yield np.ascontiguousarray(
                    self._rows(mapped.source_name, row_offset + start, row_offset + stop)
                )
            return
        for make_values in self.value_blocks(planned, CHUNK_ELEMENTS):
            yield encode(make_values(), planned.ggml_type)

    def _row_ranges(
        self, planned: PlannedTensor, max_elements: int
    ) -> Iterator[tuple[int, int, int]]:
        """(start, stop, row offset in the checkpoint tensor) of each block of whole rows."""
        rows_total = planned.shape[0]
        row_offset = (
            planned.target_index * rows_total
            if planned.source.transform is Transform.SPLIT_ROWS_3
            else 0
        )
        row_elems = max(1, planned.n_elements // max(1, rows_total))
        step = max(1, max_elements // row_elems)
        for start in range(0, rows_total, step):
            yield start, min(rows_total, start + step), row_offset

    def value_blocks(
        self, planned: PlannedTensor, max_elements: int
    ) -> Iterator[Callable[[], np.ndarray]]:
        """One callable per block of whole rows (at most ``max_elements`` values unless a single
        row is longer) that returns those rows as float32, LoRA merged.

        The callables do the reading and arithmetic, so a caller can run them on other threads
        while it asks for the next block (straight K-quants read ahead this way).
        """
        mapped = planned.source
        entry = self.source.entry(mapped.source_name)
        merge = self.adapter is not None and mapped.hf_name in self.adapter.target_weights
        if mapped.transform is Transform.SPLIT_TIME:
            # small; the pipeline refuses LoRA here
            def time_slice() -> np.ndarray:
                values = self.source.float32(mapped.source_name)
                return np.ascontiguousarray(values[:, :, planned.target_index])

            yield time_slice
            return
        if not planned.shape:  # scalar: never in Qwen2.5-VL, but keep the path honest
            yield lambda: self.source.float32(mapped.source_name).reshape(())
            return
        for start, stop, row_offset in self._row_ranges(planned, max_elements):

            def block(
                start: int = start, stop: int = stop, row_offset: int = row_offset
            ) -> np.ndarray:
                raw = self._rows(mapped.source_name, row_offset + start, row_offset + stop)
                values = bf16_to_f32(raw) if entry.dtype == "BF16" else raw.astype(np.float32)
                if merge:
                    assert self.adapter is not None
                    values = self.adapter.merge(mapped.hf_name, values, row_offset + start)
                return values

            yield block


class StreamingGGUFWriter(gguf.GGUFWriter):
    """gguf-py's writer plus one method: write a tensor's data from several chunks."""

    def write_tensor_chunks(self, chunks: Iterator[np.ndarray], nbytes: int) -> None:
        """Like ``write_tensor_data`` for a tensor whose bytes arrive in pieces, in plan order."""
        assert self.fout is not None and len(self.fout) == 1
        fout = self.fout[0]
        first = next(iter(self.tensors[0]))
        info = self.tensors[0].pop(first)
        if info.nbytes != nbytes:
            raise ValueError(f"{first}: planned {info.nbytes} bytes, producing {nbytes}")
        self.write_padding(fout, fout.tell())
        written = 0
        for chunk in chunks:
            chunk.tofile(fout)
            written += chunk.nbytes
        if written != nbytes:
            raise ValueError(f"{first}: wrote {written} bytes, planned {nbytes}")
        self.write_padding(fout, written)
        self.state = gguf.gguf_writer.WriterState.WEIGHTS


def write_gguf(
    path: Path,
    arch: str,
    add_metadata: Callable[[gguf.GGUFWriter], None],
    plan: list[PlannedTensor],
    producer: TensorProducer,
    on_bytes: Callable[[int], None] | None = None,
) -> None:
    """Write a complete GGUF file at ``path`` (the caller owns temporary naming)."""
    writer = StreamingGGUFWriter(path, arch)
    try:
        add_metadata(writer)
        for planned in plan:
            # element shape with a non-uint8 dtype: gguf-py takes it as is and uses raw_dtype
            writer.add_tensor_info(
                planned.name,
                planned.shape,
                np.dtype(np.float32),
                planned.nbytes,
                raw_dtype=planned.ggml_type,
            )
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for planned in plan:
            writer.write_tensor_chunks(producer.chunks(planned), planned.nbytes)
            if on_bytes is not None:
                on_bytes(planned.nbytes)
        writer.flush()
    finally:
        writer.close()
