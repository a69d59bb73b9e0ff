"""Which compute backends this llama.cpp build has, which devices it sees, and CPU cores.

The ggml backend registry (``ggml_backend_reg_*`` / ``ggml_backend_dev_*`` in libggml and
libggml-base) is the authority: a CUDA, Metal or Vulkan build registers that backend next to the
CPU one.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

logger = logging.getLogger(__name__)

# ggml_backend_dev_type
_DEVICE_TYPES = {0: "CPU", 1: "GPU", 2: "iGPU", 3: "accelerator", 4: "meta"}
# Registry names of the GPU backends users ask about, in the words they use ("BLAS" and "RPC"
# are helpers, not accelerators).
_ACCELERATORS = {
    "CUDA": "CUDA",
    "Metal": "Metal",
    "MTL": "Metal",
    "Vulkan": "Vulkan",
    "ROCm": "ROCm",
    "HIP": "ROCm",
    "SYCL": "SYCL",
    "OpenCL": "OpenCL",
    "MUSA": "MUSA",
    "CANN": "CANN",
}

# The registry query: (result type, argument types) of each ggml function it calls.
_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "ggml_backend_reg_count": (ctypes.c_size_t, []),
    "ggml_backend_reg_get": (ctypes.c_void_p, [ctypes.c_size_t]),
    "ggml_backend_reg_name": (ctypes.c_char_p, [ctypes.c_void_p]),
    "ggml_backend_dev_count": (ctypes.c_size_t, []),
    "ggml_backend_dev_get": (ctypes.c_void_p, [ctypes.c_size_t]),
    "ggml_backend_dev_name": (ctypes.c_char_p, [ctypes.c_void_p]),
    "ggml_backend_dev_description": (ctypes.c_char_p, [ctypes.c_void_p]),
    "ggml_backend_dev_type": (ctypes.c_int, [ctypes.c_void_p]),
    "ggml_backend_dev_memory": (
        None,
        [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_size_t)],
    ),
}


@dataclass(frozen=True)
class DeviceInfo:
    """One device llama.cpp can run on."""

    name: str
    description: str
    kind: str  # "CPU", "GPU", "iGPU", "accelerator"
    memory_total: int
    memory_free: int


def bind_ggml(libraries: Sequence[object]) -> SimpleNamespace:
    """The registry functions, each taken from the first of ``libraries`` that exports it.

    The registry (``*_count``/``*_get``) lives in libggml, the name and memory accessors in
    libggml-base. Linux and macOS find both through libggml's handle, but Windows'
    GetProcAddress does not look into a DLL's dependencies, so ggml-base must be asked itself.
    Raises AttributeError naming a function no library exports.
    """
    functions = {}
    for name, (result_type, argument_types) in _SIGNATURES.items():
        for library in libraries:
            try:
                function = getattr(library, name)
            except AttributeError:
                continue
            function.restype = result_type
            function.argtypes = argument_types
            functions[name] = function
            break
        else:
            raise AttributeError(f"no llama.cpp library exports {name}")
    return SimpleNamespace(**functions)


@functools.lru_cache(maxsize=1)
def _libggml() -> SimpleNamespace:
    from llama_cpp import _ctypes_extensions, _ggml  # loads libggml next to libllama

    libraries: list[object] = []
    try:  # first, so every platform resolves the accessors the way Windows must
        libraries.append(
            _ctypes_extensions.load_shared_library("ggml-base", _ggml.libggml_base_path)
        )
    except (OSError, RuntimeError) as err:  # a build with one merged libggml has no ggml-base
        logger.debug("no separate ggml-base library: %s", err)
    libraries.append(_ggml.libggml)
    return bind_ggml(libraries)


@functools.lru_cache(maxsize=1)
def compiled_backends() -> tuple[str, ...]:
    """Names of the ggml backends in this build, e.g. ``("CUDA", "CPU")``."""
    try:
        ggml = _libggml()
        return tuple(
            (ggml.ggml_backend_reg_name(ggml.ggml_backend_reg_get(i)) or b"?").decode()
            for i in range(ggml.ggml_backend_reg_count())
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


def gpu_backend(backends: Sequence[str]) -> str | None:
    """The GPU backend among registry ``backends`` in users' words ("Metal" for "MTL"), if any."""
    for name in backends:
        for prefix, label in _ACCELERATORS.items():
            if name.upper().startswith(prefix.upper()):
                return label
    return None


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
    return gpu_backend(compiled_backends()) or "GPU"


def _linux_physical_cores(cpu_root: Path = Path("/sys/devices/system/cpu")) -> int | None:
    """Cores as the kernel's topology groups hardware threads: one sibling list per core.

    Unlike ``/proc/cpuinfo``'s "core id" (x86 only), this also holds on ARM, where every CPU
    is its own core. None when the topology cannot be read.
    """
    try:
        siblings = {
            path.read_text(encoding="ascii").strip()
            for path in cpu_root.glob("cpu[0-9]*/topology/thread_siblings_list")
        }
    except OSError:
        return None
    return len(siblings) or None


@functools.lru_cache(maxsize=1)
def physical_cores() -> int:
    """Physical CPU cores (hyper-threads do not speed up llama.cpp's matrix kernels)."""
    count: int | None = None
    if sys.platform.startswith("linux"):
        count = _linux_physical_cores()
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
