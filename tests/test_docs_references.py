"""The design lives in the repository (docs/): no code, test, script or README line points at a
file a clone does not have."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

OUTSIDE = re.compile(
    r"\.\./shared|shared/notes|DESIGN\.md|\bDESIGN \d|\bnotes [A-H0-9](?:\.\d+)?\b|\bthe notes\b"
    r"|packaging notes"
)


def test_nothing_outside_docs_points_at_design_notes_a_clone_lacks() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    found = []
    for name in files:
        if name.startswith("docs/") or name == "tests/test_docs_references.py":
            continue
        path = REPO / name
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary fixtures
        for number, line in enumerate(text.splitlines(), start=1):
            if OUTSIDE.search(line):
                found.append(f"{name}:{number}: {line.strip()[:100]}")
    assert found == []


def test_the_docs_index_lists_every_page() -> None:
    index = (REPO / "docs" / "README.md").read_text(encoding="utf-8")
    pages = {p.name for p in (REPO / "docs").glob("*.md")} - {"README.md"}
    assert {page for page in pages if f"]({page})" not in index} == set()
