"""Entry script of the bundled app: ``Storyteller`` runs ``desktop_app.cli:main``.

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


def _ensure_streams() -> None:
    """A windowed app on Windows/macOS has no stdout/stderr; printing must not crash it."""
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115


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
    from desktop_app.cli import main

    sys.exit(main())
