"""Export files: a clear message when the file cannot be written (how photos are embedded is
tested with app.exports, which every export uses)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import ui_sample


@pytest.mark.parametrize("kind", ["markdown", "pdf"])
def test_an_export_that_cannot_be_written_says_what_to_do(
    qapp: Any, tmp_path: Path, kind: str
) -> None:  # qapp: Qt lays out the PDF's text with the application's fonts
    from desktop_app.app.stored_story import StoredStory
    from desktop_app.errors import StorytellerError
    from desktop_app.ui.exporting import export_story

    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("")
    stored = StoredStory.parse(ui_sample.story_text(), [])
    with pytest.raises(StorytellerError, match=r"cannot be written \(.*\): choose another folder"):
        export_story(kind, not_a_folder / f"story.{kind}", stored, "Kite day")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
