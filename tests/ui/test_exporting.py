"""Export files: photos embedded upright and downscaled, and a clear message when the file
cannot be written."""

from __future__ import annotations

from pathlib import Path

import pytest
import ui_sample


def test_html_exports_embed_each_photo_upright_and_downscaled(tmp_path: Path) -> None:
    import base64
    import io

    from PIL import Image

    from desktop_app.ui.exporting import photo_data_uri

    sideways = tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: the camera was turned, show it rotated by 90 degrees
    Image.new("RGB", (300, 100), (200, 30, 30)).save(sideways, exif=exif)
    uri = photo_data_uri(sideways, max_side=150)
    assert uri is not None and uri.startswith("data:image/jpeg;base64,")
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as embedded:
        assert embedded.size == (50, 150)
    assert photo_data_uri(tmp_path / "gone.jpg") is None  # left out, not a failed export


@pytest.mark.parametrize("kind", ["markdown", "pdf"])
def test_an_export_that_cannot_be_written_says_what_to_do(tmp_path: Path, kind: str) -> None:
    from desktop_app.errors import StorytellerError
    from desktop_app.story.parser import parse_story
    from desktop_app.ui.exporting import export_story

    not_a_folder = tmp_path / "notes.txt"
    not_a_folder.write_text("")
    story = parse_story(ui_sample.story_text())
    with pytest.raises(StorytellerError, match=r"cannot be written \(.*\): choose another folder"):
        export_story(kind, not_a_folder / f"story.{kind}", story, [], {}, {}, "Kite day")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
