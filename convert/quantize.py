"""K-quants made in a child process: straight from the checkpoint, or from an F16/BF16 file.

The C calls cannot be cancelled and abort the process on some malformed inputs, so they run in a
child process:

- ``python -m convert.quantize straight JOB_JSON`` writes the K-quant text GGUF straight from
  the safetensors (``convert.kquant``; ggml's quantizer, llama.cpp's per-tensor types); its
  ``bytes DONE TOTAL`` lines, at least five a second, drive the progress callback;
- ``python -m convert.quantize IN OUT FTYPE THREADS`` runs llama.cpp's own quantizer on an
  F16/BF16 GGUF (``llama_cpp.llama_model_quantize``; the older path, kept for
  ``--via-intermediate`` and the benchmark); its log lines ``[  12/ 339] name - [...]`` drive
  the progress callback.

Either way the parent kills the child as soon as the callback raises (Cancel) or Ctrl-C arrives.
In the bundled app ``sys.executable`` is the app itself, which runs ``-m MODULE`` like Python
does (packaging/storyteller_main.py), so the same child process works there.

``python -m`` puts its working directory first on ``sys.path``, so the child runs in the folder
that holds this package, never in the user's: a ``llama_cpp.py`` next to the user's checkpoint
must not shadow the real llama-cpp-python.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path

from convert.errors import ConversionError, QuantizationError
from convert.kquant import StraightJob

_PROGRESS = re.compile(rb"\[\s*(\d+)/\s*(\d+)\]")
_NO_LLAMA_CPP_EXIT = 3  # the child's exit status when llama-cpp-python cannot be imported
_NO_LLAMA_CPP = (
    "K-quants need llama-cpp-python (pip install llama-cpp-python); F32, F16, BF16 and Q8_0 "
    "work without it"
)
_IMPORT_ERROR_PREFIX = "llama_cpp import failed: "  # the child's line naming the real error
_CONVERSION_ERROR_EXIT = 4  # the child's exit status after a ConversionError it explained
_ERROR_PREFIX = "conversion error: "  # the child's line with that error's message
_OTHER_TYPES = "choose --quant Q8_0, F16 or BF16, which do not go through llama.cpp's quantizer"


def _quantize_in_process(src: Path, dst: Path, ftype: int, threads: int) -> int:
    try:
        import llama_cpp
    except ImportError as err:  # pragma: no cover - depends on the install
        raise QuantizationError(_NO_LLAMA_CPP) from err
    import ctypes

    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads
    return int(
        llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    )


def _run_child(
    arguments: list[str], on_line: Callable[[bytes], None], what: str, src_name: str
) -> None:
    """Run ``python -m convert.quantize ARGUMENTS``; ``on_line`` sees each stderr line."""
    package_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "convert.quantize", *arguments]
    tail: deque[str] = deque(maxlen=15)
    with subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, cwd=package_root
    ) as child:
        assert child.stderr is not None
        try:
            for line in child.stderr:
                if not line.startswith(b"bytes "):
                    tail.append(line.decode("utf-8", "replace").rstrip())
                on_line(line)
        except BaseException:
            # Ctrl-C, or the caller cancelling from on_progress: the C call cannot be stopped, so
            # kill the child and reap it before the caller deletes the file it is writing.
            child.kill()
            child.wait()
            raise
        code = child.wait()
    if code == _NO_LLAMA_CPP_EXIT:
        reasons = [line for line in tail if line.startswith(_IMPORT_ERROR_PREFIX)]
        reason = reasons[-1].removeprefix(_IMPORT_ERROR_PREFIX) if reasons else "unknown"
        raise QuantizationError(f"{_NO_LLAMA_CPP}. Importing it failed with: {reason}")
    if code == _CONVERSION_ERROR_EXIT:
        messages = [line for line in tail if line.startswith(_ERROR_PREFIX)]
        raise QuantizationError(
            messages[-1].removeprefix(_ERROR_PREFIX) if messages else "\n".join(tail)
        )
    if code != 0:
        details = "\n".join(tail)
        state = f"crashed (signal {-code})" if code < 0 else f"failed (exit {code})"
        raise QuantizationError(
            f"{what} {state} on {src_name}: {_OTHER_TYPES}. Its last output:\n{details}"
        )


def quantize_gguf(
    src: Path,
    dst: Path,
    ftype: int,
    *,
    threads: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> None:
    """Quantize the F16/BF16 GGUF ``src`` to ``dst`` with llama.cpp file type ``ftype``."""
    threads = threads or os.cpu_count() or 1
    src, dst = Path(src).resolve(), Path(dst).resolve()  # the child runs in package_root

    def on_line(line: bytes) -> None:
        match = _PROGRESS.search(line)
        if match and on_progress is not None:
            on_progress(int(match[1]), int(match[2]))

    _run_child(
        [str(src), str(dst), str(ftype), str(threads)], on_line, "llama.cpp's quantizer", src.name
    )


def quantize_straight(
    job: StraightJob, *, on_progress: Callable[[int, int], None] | None = None
) -> None:
    """Write ``job.out``, a K-quant text GGUF, straight from the checkpoint (``convert.kquant``);
    ``on_progress(done, total)`` counts output bytes, several times a second."""

    def on_line(line: bytes) -> None:
        if line.startswith(b"bytes ") and on_progress is not None:
            _, done, total = line.split()
            if int(total):
                on_progress(int(done), int(total))

    _run_child(["straight", job.dumps()], on_line, "the K-quantizer", Path(job.src).name)


def _main(argv: list[str]) -> int:
    import logging

    try:
        from llama_cpp import _logger
    except Exception as err:  # ImportError, or OSError/RuntimeError when libllama cannot load
        origin = getattr(sys.modules.get("llama_cpp"), "__file__", None)
        where = f" (llama_cpp was found at {origin})" if origin else ""
        message = " ".join(str(err).split())  # one line: the parent reads the last lines
        print(f"{_IMPORT_ERROR_PREFIX}{type(err).__name__}: {message}{where}", file=sys.stderr)
        return _NO_LLAMA_CPP_EXIT
    if argv[0] == "straight":
        from convert.kquant import Heartbeat, StraightJob, write_straight

        job = StraightJob.loads(argv[1])
        try:
            with Heartbeat() as heartbeat:
                write_straight(job, heartbeat.update)
        except ConversionError as err:
            print(_ERROR_PREFIX + " ".join(str(err).split()), file=sys.stderr)
            return _CONVERSION_ERROR_EXIT
        return 0
    _logger.logger.setLevel(logging.DEBUG)  # let the per-tensor progress lines through
    src, dst, ftype, threads = Path(argv[0]), Path(argv[1]), int(argv[2]), int(argv[3])
    return 0 if _quantize_in_process(src, dst, ftype, threads) == 0 else 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
