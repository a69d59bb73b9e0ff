"""The once-per-machine cache behind llama-server and the xgrammar venv (tests/machine_cache.py):
made once, in place only when complete, and nothing left behind by a make that fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from machine_cache import SetupError, made_once, run_logged


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STORYTELLER_TEST_CACHE", str(tmp_path))
    return tmp_path


def test_it_is_made_once_and_then_found(cache: Path) -> None:
    made: list[Path] = []

    def make(work: Path, log: Path) -> None:
        made.append(work)
        (work / "bin").mkdir()
        run_logged(["sh", "-c", "echo built > bin/tool"], log, cwd=work)

    first = made_once("tool-1", "bin/tool", make)
    again = made_once("tool-1", "bin/tool", make)
    assert first == again == cache / "tool-1" / "bin" / "tool"
    assert first.read_text() == "built\n" and len(made) == 1
    assert not made[0].exists()  # renamed into place
    assert "$ sh -c echo built > bin/tool" in (cache / "tool-1.log").read_text()


def test_a_failed_make_leaves_nothing_that_looks_finished(cache: Path) -> None:
    def make(work: Path, log: Path) -> None:
        (work / "bin").mkdir()
        (work / "bin" / "tool").write_text("half")
        run_logged(["sh", "-c", "echo compiler exploded; exit 3"], log)

    with pytest.raises(SetupError, match=r"sh -c echo compiler exploded; exit 3 failed \(3\)"):
        made_once("tool-1", "bin/tool", make)
    assert sorted(p.name for p in cache.iterdir()) == ["tool-1.lock", "tool-1.log"]
    assert "compiler exploded" in (cache / "tool-1.log").read_text()
