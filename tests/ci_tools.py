"""Tests that need a real tool (Chromium, exiftool, a tmpfs, llama-server, xgrammar): under
CI=true a missing one fails the test, since .ci/run installs or builds each; on a developer's
machine it skips, saying why (round 3's shared rule)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def tool_missing(reason: str, ci_needs: str) -> NoReturn:
    """Fail under CI (``ci_needs`` says what CI must run), else skip with ``reason``."""
    if IN_CI:
        pytest.fail(f"{reason}; {ci_needs}")
    pytest.skip(reason)
