"""The window's seams: parts are built with the session, never reach the window, and are tested
alone; only a few end-to-end tests build the whole window."""

from __future__ import annotations

import re
from pathlib import Path

UI_DIR = Path(__file__).resolve().parents[2] / "desktop_app" / "ui"
TESTS_DIR = Path(__file__).resolve().parent

# Start-up builds the window and the window builds itself; window_state keeps a QMainWindow's
# geometry (and only that).
NOT_PARTS = {"__init__.py", "main_window.py", "startup.py", "window_state.py"}

# Each part of the window and the class its own test file builds alone (with a session).
PARTS = {
    "sidebar.py": "Sidebar",
    "filmstrip.py": "Filmstrip",
    "story_toolbar.py": "StoryToolbar",
    "status_bar.py": "StatusBar",
    "story_tabs.py": "StoryTabs",
    "imports.py": "ImportController",
    "generation.py": "GenerationController",
    "preparation.py": "PreparationController",
    "versions.py": "VersionsController",
    "presentation.py": "PresentationController",
}

REACHES_THE_WINDOW = re.compile(r"\bMainWindow\b|\.window\(\)|\.parent\(\)|\b_window\b")


def test_no_part_holds_or_reaches_the_main_window() -> None:
    offenders = {
        path.name: sorted(set(REACHES_THE_WINDOW.findall(path.read_text(encoding="utf-8"))))
        for path in sorted(UI_DIR.glob("*.py"))
        if path.name not in NOT_PARTS
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_every_part_has_a_test_file_that_builds_it_with_a_session_alone() -> None:
    missing = []
    for module, cls in PARTS.items():
        assert (UI_DIR / module).exists(), module
        tests = TESTS_DIR / f"test_{module}"
        text = tests.read_text(encoding="utf-8") if tests.exists() else ""
        if f"{cls}(" not in text or "session" not in text or "make_window" in text:
            missing.append(f"{tests.name} ({cls})")
    assert missing == []


def test_at_most_eleven_tests_build_the_whole_window() -> None:
    # Eleven since issue 27: the session-end test runs the whole app in a child process (a
    # signal and the session manager reach a whole program, not a part).
    marked = sum(
        path.read_text(encoding="utf-8").count("@pytest.mark.end_to_end")
        for path in TESTS_DIR.rglob("test_*.py")
        if path.name != Path(__file__).name
    )
    assert 0 < marked <= 11


def test_the_import_contract_covers_every_ui_module_but_start_up_and_the_window() -> None:
    pyproject = (UI_DIR.parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    contract = pyproject.split('name = "UI parts never import the main window"', 1)[1]
    sources = contract.split("source_modules = [", 1)[1].split("]", 1)[0]
    listed = set(re.findall(r'"desktop_app\.ui\.(\w+)"', sources))
    expected = {
        path.stem
        for path in UI_DIR.glob("*.py")
        if path.name not in {"__init__.py", "main_window.py", "startup.py"}
    }
    assert listed == expected
