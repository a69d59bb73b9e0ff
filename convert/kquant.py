"""Straight K-quants: safetensors -> Q4_K_M / Q5_K_M / Q6_K text GGUF in one streaming pass.

No F16/BF16 intermediate file (docs/conversion.md, "How K-quants are made"):

1. Each tensor's type comes from the pinned llama.cpp itself: a BF16 GGUF *header* of the text
   model (metadata + tensor infos, the data region a sparse hole) goes through
   ``llama_model_quantize`` with ``dry_run``, which logs the type it would give every tensor.
2. The output is written in the order llama.cpp writes it (its loader sorts tensors by layer,
   then name; the two keys it sets, ``general.quantization_version`` and ``general.file_type``,
   move to the end of the metadata), so the file is the one llama.cpp's quantizer would write
   from a BF16 conversion, byte for byte, for a bf16 checkpoint.
3. Tensor data: blocks of whole rows (at most ``BLOCK_ELEMENTS`` float32 values each) are read
   from the memory-mapped shards, widened (LoRA merged in float32) and quantized with ggml's
   ``ggml_quantize_chunk`` on a pool of threads; a window of blocks ahead of the writer keeps
   every core busy and the disk reading while they quantize.

Runs only inside the quantizer child process (``python -m convert.quantize straight JOB``): the
C calls cannot be interrupted and abort on bad input.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as GGML
from gguf import GGUFWriter

from convert.errors import QuantizationError
from convert.gguf_write import PlannedTensor, StreamingGGUFWriter, TensorProducer
from convert.tensor_map import Part

# 4 MiB of float32 per block: a quarter of a second of work for one thread at most, so progress
# (and the parent's Cancel) never waits long; a few blocks per thread are the working set.
BLOCK_ELEMENTS = 1 << 20
# general.* keys llama_model_quantize sets after copying the input's metadata (so they end up last)
_KEYS_SET_LAST = ("general.quantization_version", "general.file_type")
_DRY_RUN_LINE = re.compile(
    r"\[\s*\d+/\s*\d+\]\s+(?P<name>\S+)\s+-\s+\[[^\]]*\],\s+type\s+=\s*(?P<type>\w+),\s+size\s+=\s*"
    r"[\d.]+\s+MiB(?:\s+->\s+[\d.]+\s+MiB\s+\((?P<new>\w+)\))?"
)


@dataclass(frozen=True)
class StraightJob:
    """What the quantizer child needs to write a straight K-quant text GGUF."""

    src: str
    lora: str | None
    name: str
    ftype: int  # llama_ftype: 15 Q4_K_M, 17 Q5_K_M, 18 Q6_K
    out: str  # the output file (the parent's *.partial name)
    header: str  # scratch path for the dry run's BF16 header
    threads: int

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, text: str) -> StraightJob:
        return cls(**json.loads(text))


def llama_order(names: list[str]) -> list[str]:
    """Tensor names in the order llama.cpp's loader keeps them: by block number, then by name
    (tensors outside ``blk.N.`` first)."""

    def key(name: str) -> tuple[int, str]:
        match = re.match(r"blk\.(\d+)\.", name)
        return (int(match[1]) if match else -1, name)

    return sorted(names, key=key)


def _reorder_metadata(writer: GGUFWriter) -> None:
    kv = writer.kv_data[0]
    for key in _KEYS_SET_LAST:
        if key in kv:
            kv[key] = kv.pop(key)


def write_header_only(
    path: Path, arch: str, add_metadata: Callable[[GGUFWriter], None], plan: list[PlannedTensor]
) -> None:
    """A complete-looking GGUF whose data region is a sparse hole (no data is written)."""
    writer = StreamingGGUFWriter(path, arch)
    try:
        add_metadata(writer)
        for planned in plan:
            writer.add_tensor_info(
                planned.name, planned.shape, np.dtype(np.float32), planned.nbytes, planned.ggml_type
            )
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        assert writer.fout is not None
        start = GGUFWriter.ggml_pad(writer.fout[0].tell(), writer.data_alignment)
        size = start + sum(GGUFWriter.ggml_pad(p.nbytes, writer.data_alignment) for p in plan)
        writer.fout[0].truncate(size)
    finally:
        writer.close()


def dry_run_types(header: Path, ftype: int) -> dict[str, GGML]:
    """The type llama.cpp's quantizer gives each tensor of ``header`` for ``ftype``, from the log
    of its dry run (which reads the metadata and tensor infos, never the data)."""
    import llama_cpp
    from llama_cpp import _logger

    lines: list[str] = []

    @llama_cpp.llama_log_callback
    def collect(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        lines.append(text.decode("utf-8", "replace"))

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    try:
        llama_cpp.llama_backend_init()
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = ftype
        params.dry_run = True
        code = llama_cpp.llama_model_quantize(
            str(header).encode(), str(header).encode(), ctypes.byref(params)
        )
    finally:
        llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
    log = "".join(lines)
    if code != 0:
        tail = "\n".join(log.strip().splitlines()[-10:])
        raise QuantizationError(f"llama.cpp's quantizer refused the model's header:\n{tail}")
    types: dict[str, GGML] = {}
    for match in _DRY_RUN_LINE.finditer(log):
        name = match["new"] or match["type"]
        types[match["name"]] = GGML[name.upper()]
    return types


def _encode_block(make_values: Callable[[], np.ndarray], kind: GGML, n_per_row: int) -> np.ndarray:
    from convert.ggml_lib import quantize_rows

    values = make_values()
    return quantize_rows(kind, values.reshape(-1, n_per_row) if values.ndim > 1 else values)


class _Window:
    """Blocks submitted ahead of the writer, in file order, a bounded number at a time."""

    def __init__(
        self,
        pool: ThreadPoolExecutor,
        blocks: Iterator[tuple[int, Callable[[], np.ndarray], GGML, int]],
        size: int,
    ) -> None:
        self.pool = pool
        self.blocks = blocks
        self.size = size
        self.pending: deque[tuple[int, Future[np.ndarray]]] = deque()

    def _fill(self) -> None:
        while len(self.pending) < self.size:
            item = next(self.blocks, None)
            if item is None:
                return
            index, make_values, kind, n_per_row = item
            self.pending.append(
                (index, self.pool.submit(_encode_block, make_values, kind, n_per_row))
            )

    def tensor(self, index: int) -> Iterator[np.ndarray]:
        """The encoded blocks of tensor ``index``, waiting for each in turn."""
        while True:
            self._fill()
            if not self.pending or self.pending[0][0] != index:
                return
            yield self.pending.popleft()[1].result()

    def cancel(self) -> None:
        for _, future in self.pending:
            future.cancel()


def write_straight(job: StraightJob, report: Callable[[int, int], None]) -> None:
    """Write the K-quant text GGUF ``job.out``; ``report(done, total)`` counts output bytes."""
    from convert.ggml_lib import load_ggml
    from convert.pipeline import TEXT_ARCH, add_text_metadata, plan_tensors, read_checkpoint

    load_ggml()  # fail on a missing or mismatched library before any work
    checkpoint = read_checkpoint(Path(job.src), Path(job.lora) if job.lora else None)
    bf16_plan = plan_tensors(checkpoint.mapped, checkpoint.source, Part.TEXT, GGML.BF16)

    def metadata(file_type: int) -> Callable[[GGUFWriter], None]:
        def add(writer: GGUFWriter) -> None:
            add_text_metadata(writer, checkpoint.config, checkpoint.vocab, job.name, file_type)
            _reorder_metadata(writer)

        return add

    header = Path(job.header)
    try:
        write_header_only(header, TEXT_ARCH, metadata(int(GGML_FTYPE_BF16)), bf16_plan)
        types = dry_run_types(header, job.ftype)
    finally:
        with contextlib.suppress(FileNotFoundError):
            header.unlink()
    missing = [p.name for p in bf16_plan if p.name not in types]
    if missing:
        raise QuantizationError(
            f"llama.cpp's quantizer did not say which type {len(missing)} tensor(s) get "
            f"({', '.join(missing[:3])}): its log format changed; pass --via-intermediate"
        )
    by_name = {p.name: p for p in bf16_plan}
    plan = [
        PlannedTensor(p.name, p.source, p.target_index, p.shape, types[p.name])
        for p in (by_name[n] for n in llama_order(list(by_name)))
    ]
    total = sum(p.nbytes for p in plan)
    producer = TensorProducer(checkpoint.source, checkpoint.adapter)
    blocks = (
        (index, make_values, planned.ggml_type, planned.shape[-1])
        for index, planned in enumerate(plan)
        for make_values in producer.value_blocks(planned, BLOCK_ELEMENTS)
    )
    writer = StreamingGGUFWriter(Path(job.out), TEXT_ARCH)
    done = 0
    try:
        metadata(job.ftype)(writer)
        for planned in plan:
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
        report(0, total)
        threads = max(1, job.threads)
        with ThreadPoolExecutor(threads, thread_name_prefix="quantize") as pool:
            window = _Window(pool, blocks, 2 * threads + 2)
            try:
                for index, planned in enumerate(plan):

                    def counted(chunks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
                        nonlocal done
                        for chunk in chunks:
                            yield chunk
                            done += chunk.nbytes
                            report(done, total)

                    writer.write_tensor_chunks(counted(window.tensor(index)), planned.nbytes)
            finally:
                window.cancel()
        writer.flush()
    finally:
        writer.close()


GGML_FTYPE_BF16 = 32  # LLAMA_FTYPE_MOSTLY_BF16: the header llama.cpp's dry run reads


class Heartbeat:
    """Prints ``bytes DONE TOTAL`` to stderr at least every ``interval`` seconds (the parent
    checks for Cancel on each line, so it never waits long for one)."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.done = 0
        self.total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def update(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    def _emit(self) -> None:
        os.write(2, f"bytes {self.done} {self.total}\n".encode())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._emit()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._emit()
