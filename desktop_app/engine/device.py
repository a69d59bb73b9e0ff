"""Which compute backends this llama.cpp build has, which devices it sees, and CPU cores.

The ggml backend registry (``ggml_backend_reg_*`` / ``ggml_backend_dev_*`` in libggml) is the
authority: a CUDA, Metal or Vulkan build registers that backend next to the CPU one.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import subprocess
import sys
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# ggml_backend_dev_type
_DEVICE_TYPES = {0: "CPU", 1: "GPU", 2: "iGPU", 3: "accelerator", 4: "meta"}
# Registry names of the GPU backends users ask about, in the words they use.
_ACCELERATORS = {
    "CUDA": "CUDA",
    "Metal": "Metal",
    "MTL": "Metal",
    "Vulkan": "Vulkan",
    "ROCm": "ROCm",
    "HIP": "ROCm",
    "SYCL": "SYCL",
}


@dataclass(frozen=True)
class DeviceInfo:
    """One device llama.cpp can run on."""

    name: str
    description: str
    kind: str  # "CPU", "GPU", "iGPU", "accelerator"
    memory_total: int
    memory_free: int


def _libggml() -> ctypes.CDLL:
    from llama_cpp import _ggml  # loads libggml next to libllama

    lib = _ggml.libggml
    lib.ggml_backend_reg_count.restype = ctypes.c_size_t
    lib.ggml_backend_reg_count.argtypes = []
    lib.ggml_backend_reg_get.restype = ctypes.c_void_p
    lib.ggml_backend_reg_get.argtypes = [ctypes.c_size_t]
    lib.ggml_backend_reg_name.restype = ctypes.c_char_p
    lib.ggml_backend_reg_name.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_dev_count.restype = ctypes.c_size_t
    lib.ggml_backend_dev_count.argtypes = []
    lib.ggml_backend_dev_get.restype = ctypes.c_void_p
    lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    for name in ("ggml_backend_dev_name", "ggml_backend_dev_description"):
        getattr(lib, name).restype = ctypes.c_char_p
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    lib.ggml_backend_dev_type.restype = ctypes.c_int
    lib.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_dev_memory.restype = None
    lib.ggml_backend_dev_memory.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_size_t),
        ctypes.POINTER(ctypes.c_size_t),
    ]
    return lib


@functools.lru_cache(maxsize=1)
def compiled_backends() -> tuple[str, ...]:
    """Names of the ggml backends in this build, e.g. ``("CUDA", "CPU")``."""
    try:
        lib = _libggml()
        count = lib.ggml_backend_reg_count()
        return tuple(
            (lib.ggml_backend_reg_name(lib.ggml_backend_reg_get(i)) or b"?").decode()
            for i in range(count)
        )
    except (ImportError, OSError, AttributeError) as err:
        logger.warning("cannot list llama.cpp backends: %s", err)
        return ()


def devices() -> list[DeviceInfo]:
    """Every device the build can use, GPUs first as llama.cpp orders them."""
    try:
        lib = _libggml()
    except (ImportError, OSError, AttributeError) as err:
        logger.warning("cannot list llama.cpp devices: %s", err)
        return []
    found = []
    for index in range(lib.ggml_backend_dev_count()):
        dev = lib.ggml_backend_dev_get(index)
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        lib.ggml_backend_dev_memory(dev, ctypes.byref(free), ctypes.byref(total))
        found.append(
            DeviceInfo(
                name=(lib.ggml_backend_dev_name(dev) or b"").decode(errors="replace"),
                description=(lib.ggml_backend_dev_description(dev) or b"").decode(errors="replace"),
                kind=_DEVICE_TYPES.get(lib.ggml_backend_dev_type(dev), "unknown"),
                memory_total=total.value,
                memory_free=free.value,
            )
        )
    return found


def gpu_offload_supported() -> bool:
    """Whether this llama.cpp build can put layers on a GPU."""
    try:
        import llama_cpp

        return bool(llama_cpp.llama_supports_gpu_offload())
    except ImportError:
        return False


def accelerator(n_gpu_layers: int = -1) -> str:
    """What runs the model: "CUDA", "Metal", "Vulkan", ... or "CPU"."""
    if n_gpu_layers == 0 or not gpu_offload_supported():
        return "CPU"
    for name in compiled_backends():
        for prefix, label in _ACCELERATORS.items():
            if name.startswith(prefix):
                return label
    return "GPU"


@functools.lru_cache(maxsize=1)
def physical_cores() -> int:
    """Physical CPU cores (hyper-threads do not speed up llama.cpp's matrix kernels)."""
    count: int | None = None
    if sys.platform.startswith("linux"):
        try:
            cores = set()
            physical_id = core_id = ""
            with open("/proc/cpuinfo", encoding="utf-8") as handle:
                for line in handle:
                    key, _, value = line.partition(":")
                    key, value = key.strip(), value.strip()
                    if key == "physical id":
                        physical_id = value
                    elif key == "core id":
                        core_id = value
                    elif not key and (physical_id or core_id):
                        cores.add((physical_id, core_id))
                        physical_id = core_id = ""
            if physical_id or core_id:
                cores.add((physical_id, core_id))
            count = len(cores) or None
        except OSError:
            count = None
    elif sys.platform == "darwin":
        try:
            out = subprocess.run(
                ["sysctl", "-n", "hw.perflevel0.physicalcpu"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout.strip()
            count = int(out)
        except (OSError, ValueError, subprocess.SubprocessError):
            count = None
    logical = os.cpu_count() or 1
    if count is None:
        count = max(1, logical // 2) if logical > 2 else logical
    return max(1, min(count, logical))
