"""Command-line test set-up: the library's test helpers are importable here too."""

from __future__ import annotations

import sys
from pathlib import Path

# Test folders are not packages: pytest puts each test file's folder on sys.path. The album
# commands' tests build photos and libraries with tests/library's helpers, so that folder goes on
# the path as well, whichever tests run first.
_LIBRARY_TESTS = str(Path(__file__).resolve().parent.parent / "library")
if _LIBRARY_TESTS not in sys.path:
    sys.path.insert(0, _LIBRARY_TESTS)
