"""Shared test set-up: every test gets its own Storyteller home; Qt runs offscreen."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES_DIR = REPO_ROOT / "tests" / "fixtures"


@pytest.fixture(autouse=True)
def storyteller_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point STORYTELLER_HOME at a fresh folder so no test touches the user's real library."""
    home = tmp_path_factory.mktemp("storyteller-home")
    monkeypatch.setenv("STORYTELLER_HOME", str(home))
    return home
