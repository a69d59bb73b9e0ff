"""K-quants through llama.cpp's quantizer (``llama_cpp.llama_model_quantize``), in a subprocess.

The C call cannot be cancelled and aborts the process on some malformed inputs, so it runs in a
child process (``python -m convert.quantize IN OUT FTYPE THREADS``); its log lines
``[  12/ 339] name - [...]`` drive the progress callback. In the bundled app ``sys.executable`` is
the app itself, which runs ``-m MODULE`` like Python does (packaging/storyteller_main.py), so the
same child process works there.

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

from convert.errors import QuantizationError

_PROGRESS = re.compile(rb"\[\s*(\d+)/\s*(\d+)\]")
_NO_LLAMA_CPP_EXIT = 3  # the child's exit status when llama-cpp-python cannot be imported
_NO_LLAMA_CPP = (
    "K-quants need llama-cpp-python (pip install llama-cpp-python); F32, F16, BF16 and Q8_0 "
    "work without it"
)
_IMPORT_ERROR_PREFIX = "llama_cpp import failed: "  # the child's line naming the real error
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
    package_root = str(Path(__file__).resolve().parent.parent)
    src, dst = Path(src).resolve(), Path(dst).resolve()  # the child runs in package_root
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    command = [
        sys.executable,
        "-m",
        "convert.quantize",
        str(src),
        str(dst),
        str(ftype),
        str(threads),
    ]
    tail: deque[str] = deque(maxlen=15)
    with subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, cwd=package_root
    ) as child:
        assert child.stderr is not None
        try:
            for line in child.stderr:
                tail.append(line.decode("utf-8", "replace").rstrip())
                match = _PROGRESS.search(line)
                if match and on_progress is not None:
                    on_progress(int(match[1]), int(match[2]))
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
    if code != 0:
        details = "\n".join(tail)
        what = f"crashed (signal {-code})" if code < 0 else f"failed (exit {code})"
        raise QuantizationError(
            f"llama.cpp's quantizer {what} on {src.name}: {_OTHER_TYPES}. Its last output:\n{details}"
        )


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
    _logger.logger.setLevel(logging.DEBUG)  # let the per-tensor progress lines through
    src, dst, ftype, threads = Path(argv[0]), Path(argv[1]), int(argv[2]), int(argv[3])
    return 0 if _quantize_in_process(src, dst, ftype, threads) == 0 else 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
