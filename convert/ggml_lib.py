"""ggml's own quantizer, ``ggml_quantize_chunk``, from the libggml-base that llama-cpp-python ships.

Straight K-quants (docs/conversion.md) quantize row chunks with the very function llama.cpp's
quantizer calls, so the bytes are llama.cpp's bytes. The library is found next to the installed
``llama_cpp`` package (``llama_cpp/lib``), where llama-cpp-python puts it; importing ``llama_cpp``
first loads it with the right search path on every platform. ctypes releases the GIL during the
call, so Python threads quantize in parallel.

Only the quantizer child process (``convert.quantize``) loads this: a bad call aborts the process.
"""

from __future__ import annotations

import ctypes
import sys
from functools import cache
from pathlib import Path

import gguf
import numpy as np
from gguf import GGMLQuantizationType as GGML

from convert.errors import QuantizationError

# The ggml_type numbers ggml.h assigns; gguf-py's enum uses the same values for these types,
# and load_ggml checks each against ggml_type_name so a renumbering is caught, not written.
_CHECKED_TYPES = (GGML.F32, GGML.F16, GGML.BF16, GGML.Q8_0, GGML.Q5_0, GGML.Q5_1, GGML.Q4_0)
_CHECKED_TYPES += (GGML.Q4_K, GGML.Q5_K, GGML.Q6_K)


def _library_names() -> tuple[str, ...]:
    if sys.platform == "win32":
        return ("ggml-base.dll", "libggml-base.dll")
    if sys.platform == "darwin":
        return ("libggml-base.dylib",)
    return ("libggml-base.so",)


def library_path() -> Path:
    """Where the installed llama-cpp-python keeps libggml-base."""
    try:
        import llama_cpp
    except Exception as err:  # ImportError, or OSError when libllama cannot load
        raise QuantizationError(
            f"K-quants need llama-cpp-python (pip install llama-cpp-python): {err}"
        ) from err
    package = Path(llama_cpp.__file__).resolve().parent
    for folder in (package / "lib", package):
        for name in _library_names():
            if (folder / name).is_file():
                return folder / name
    raise QuantizationError(
        f"llama-cpp-python at {package} has no {_library_names()[0]} in its lib folder: reinstall "
        "llama-cpp-python, or pass --via-intermediate to quantize through llama.cpp's own quantizer"
    )


@cache
def load_ggml() -> ctypes.CDLL:
    """libggml-base with ``ggml_quantize_chunk`` and ``ggml_type_name`` typed."""
    lib = ctypes.CDLL(str(library_path()))
    lib.ggml_quantize_chunk.restype = ctypes.c_size_t
    lib.ggml_quantize_chunk.argtypes = [
        ctypes.c_int,  # enum ggml_type
        ctypes.c_void_p,  # const float * src
        ctypes.c_void_p,  # void * dst
        ctypes.c_int64,  # start
        ctypes.c_int64,  # nrows
        ctypes.c_int64,  # n_per_row
        ctypes.c_void_p,  # const float * imatrix
    ]
    lib.ggml_type_name.restype = ctypes.c_char_p
    lib.ggml_type_name.argtypes = [ctypes.c_int]
    lib.ggml_row_size.restype = ctypes.c_size_t
    lib.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]
    for kind in _CHECKED_TYPES:
        name = lib.ggml_type_name(int(kind)).decode()
        if name.upper() != kind.name:
            raise QuantizationError(
                f"this libggml-base numbers its types differently from gguf-py ({kind.name} is "
                f"{name!r} there): install the llama-cpp-python and gguf versions the converter "
                "names in its requirements"
            )
    return lib


def row_bytes(kind: GGML, n_per_row: int) -> int:
    """Bytes of one row of ``n_per_row`` values stored as ``kind``."""
    block, type_size = gguf.GGML_QUANT_SIZES[kind]
    return n_per_row // block * type_size


def quantize_rows(kind: GGML, values: np.ndarray) -> np.ndarray:
    """float32 rows (2-D, C order) -> the bytes ggml stores for them as ``kind`` (uint8, 1-D).

    F32 is a copy; every other type goes through ``ggml_quantize_chunk``, as in llama.cpp.
    """
    values = np.ascontiguousarray(values, dtype=np.float32)
    if kind is GGML.F32:
        return values.reshape(-1).view(np.uint8)
    rows, n_per_row = values.shape if values.ndim == 2 else (1, values.size)
    out = np.empty(rows * row_bytes(kind, n_per_row), dtype=np.uint8)
    written = load_ggml().ggml_quantize_chunk(
        int(kind), values.ctypes.data, out.ctypes.data, 0, rows, n_per_row, None
    )
    if written != out.nbytes:
        raise QuantizationError(
            f"ggml_quantize_chunk wrote {written} bytes for {rows} rows of {n_per_row} as "
            f"{kind.name}, expected {out.nbytes}"
        )
    return out
