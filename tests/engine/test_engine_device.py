"""Which backends and devices llama.cpp reports, whichever library exports each function."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from desktop_app.engine import device


class _Function:
    """Stands in for a ctypes function: callable, with settable restype/argtypes."""

    def __init__(self, body: Callable[..., Any]) -> None:
        self.body = body
        self.restype: object = None
        self.argtypes: object = None

    def __call__(self, *args: Any) -> Any:
        return self.body(*args)


class _Library:
    """A shared library that exports exactly ``functions`` (others raise AttributeError)."""

    def __init__(self, **functions: Callable[..., Any]) -> None:
        for name, body in functions.items():
            setattr(self, name, _Function(body))


def _write_memory(_dev: int, free: Any, total: Any) -> None:
    free._obj.value, total._obj.value = 6 * 2**30, 8 * 2**30


# A CUDA build as Windows sees it: GetProcAddress on ggml.dll finds only what ggml.dll itself
# defines (the registry); names, types and memory live in ggml-base.dll.
_REGISTRY = _Library(
    ggml_backend_reg_count=lambda: 2,
    ggml_backend_reg_get=lambda index: 100 + index,
    ggml_backend_dev_count=lambda: 1,
    ggml_backend_dev_get=lambda index: 200 + index,
)
_BASE = _Library(
    ggml_backend_reg_name=lambda reg: {100: b"CUDA", 101: b"CPU"}[reg],
    ggml_backend_dev_name=lambda dev: b"CUDA0",
    ggml_backend_dev_description=lambda dev: b"NVIDIA GeForce RTX 4070",
    ggml_backend_dev_type=lambda dev: 1,
    ggml_backend_dev_memory=_write_memory,
)


def test_ggml_alone_cannot_answer_on_windows() -> None:
    with pytest.raises(AttributeError, match="ggml_backend_reg_name"):
        device.bind_ggml([_REGISTRY])


def test_backends_and_devices_come_through_ggml_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "_libggml", lambda: device.bind_ggml([_BASE, _REGISTRY]))
    assert device.compiled_backends.__wrapped__() == ("CUDA", "CPU")
    (gpu,) = device.devices()
    assert (gpu.name, gpu.kind, gpu.description) == ("CUDA0", "GPU", "NVIDIA GeForce RTX 4070")
    assert (gpu.memory_free, gpu.memory_total) == (6 * 2**30, 8 * 2**30)
    assert device.gpu_backend(device.compiled_backends.__wrapped__()) == "CUDA"


def test_the_real_build_splits_the_registry_and_still_lists_its_backends() -> None:
    from llama_cpp import _ctypes_extensions, _ggml

    base = _ctypes_extensions.load_shared_library("ggml-base", _ggml.libggml_base_path)
    assert hasattr(base, "ggml_backend_reg_name")
    with pytest.raises(AttributeError, match="ggml_backend_reg_count"):
        device.bind_ggml([base])  # the registry itself is in libggml
    assert "CPU" in device.compiled_backends()
    cpu = device.devices()[-1]
    assert cpu.kind == "CPU" and cpu.memory_total > 0


@pytest.mark.parametrize(
    ("backends", "label"),
    [
        (("CPU",), None),
        (("BLAS", "CPU"), None),
        (("CUDA", "CPU"), "CUDA"),
        (("MTL", "BLAS", "CPU"), "Metal"),
        (("Metal", "CPU"), "Metal"),
        (("HIP", "CPU"), "ROCm"),
        (("vulkan", "CPU"), "Vulkan"),
        (("OpenCL", "CPU"), "OpenCL"),
    ],
)
def test_gpu_backend_names_the_accelerator_in_users_words(
    backends: tuple[str, ...], label: str | None
) -> None:
    assert device.gpu_backend(backends) == label


def _topology(root: Path, siblings: list[str]) -> Path:
    for index, listed in enumerate(siblings):
        folder = root / f"cpu{index}" / "topology"
        folder.mkdir(parents=True)
        (folder / "thread_siblings_list").write_text(listed + "\n")
    (root / "cpufreq").mkdir()  # not a CPU
    return root


@pytest.mark.parametrize(
    ("siblings", "cores"),
    [
        (["0,2", "1,3", "0,2", "1,3"], 2),  # x86 with hyper-threading: two threads per core
        (["0", "1", "2", "3", "4", "5"], 6),  # ARM (Ampere, Apple silicon under Linux): no SMT
        (["0-1", "0-1", "2-3", "2-3"], 2),
    ],
)
def test_linux_cores_come_from_the_kernels_thread_siblings(
    siblings: list[str], cores: int, tmp_path: Path
) -> None:
    assert device._linux_physical_cores(_topology(tmp_path, siblings)) == cores


def test_no_topology_means_unknown(tmp_path: Path) -> None:
    assert device._linux_physical_cores(tmp_path) is None
