"""Entry script of the bundled app: ``Storyteller`` runs ``desktop_app.cli:main``.

The GUI starts by default; ``Storyteller --self-test`` and every ``storyteller`` subcommand work
the same as in a source install.
"""

from __future__ import annotations

import multiprocessing
import os
import sys


def _ensure_streams() -> None:
    """A windowed app on Windows/macOS has no stdout/stderr; printing must not crash it."""
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115


if __name__ == "__main__":
    multiprocessing.freeze_support()
    _ensure_streams()
    from desktop_app.cli import main

    sys.exit(main())
