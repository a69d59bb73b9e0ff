"""Entry script of the bundled app: ``Storyteller`` runs ``desktop_app.cli:console_main``.

The GUI starts by default; ``Storyteller --self-test`` and every ``storyteller`` subcommand work
the same as in a source install. ``Storyteller -m MODULE ARGS...`` runs one of the bundled modules
the way ``python -m`` does: inside the bundle ``sys.executable`` is this program, and the project
starts helper processes as ``[sys.executable, "-m", module, ...]`` (the doctor's model probe, the
converter's quantizer, ``-m convert.cli`` for ``storyteller-convert``).
"""

from __future__ import annotations

import multiprocessing
import os
import runpy
import sys
from typing import TextIO


def _inherited_windows_stream(std_handle: int) -> TextIO | None:
    """The stdout/stderr pipe a parent handed to the windowed .exe, if any.

    A windowed (GUI-subsystem) program gets ``sys.stdout = None`` even when its parent captures
    its output (the first-run guide runs ``Storyteller --self-test`` and reads the report), but
    the inherited OS handle is still there.
    """
    try:
        import ctypes
        import msvcrt

        get_std_handle = ctypes.windll.kernel32.GetStdHandle  # type: ignore[attr-defined]
        get_std_handle.restype = ctypes.c_void_p
        handle = get_std_handle(std_handle)
        if handle in (None, 0, ctypes.c_void_p(-1).value):
            return None
        fd = msvcrt.open_osfhandle(handle, os.O_WRONLY)
        return open(fd, "w", encoding="utf-8", buffering=1)
    except (OSError, AttributeError, ValueError, ImportError):
        return None


def _ensure_streams() -> None:
    """A windowed app on Windows/macOS has no stdout/stderr; printing must not crash it."""
    for name, std_handle in (("stdout", -11), ("stderr", -12)):  # STD_OUTPUT/ERROR_HANDLE
        if getattr(sys, name) is None:
            stream = _inherited_windows_stream(std_handle) if sys.platform == "win32" else None
            setattr(sys, name, stream or open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115


def _run_module(argv: list[str]) -> None:
    """``Storyteller -m MODULE ARGS...``: run MODULE as ``__main__`` with ARGS, like python -m."""
    module = argv[2]
    sys.argv = [argv[0], *argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    multiprocessing.freeze_support()
    _ensure_streams()
    if len(sys.argv) >= 3 and sys.argv[1] == "-m":
        _run_module(sys.argv)
        sys.exit(0)
    from desktop_app.cli import console_main

    console_main()
