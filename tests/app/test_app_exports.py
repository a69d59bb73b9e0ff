"""app.exports: one dispatcher for every format, one photo embedder."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from app_helpers import STORY
from PIL import Image

from desktop_app.app.exports import (
    EXPORT_FORMATS,
    embedded_photos,
    photo_data_uri,
    render_export,
    render_stored,
)
from desktop_app.app.stored_story import FrameGeometry, StoredStory
from desktop_app.imaging import PhotoUnreadableError


def test_every_format_renders_the_users_names(tmp_path: Path) -> None:
    stored = StoredStory.parse(STORY, [FrameGeometry(1, tmp_path / "gone.jpg")], {"char1": "Ada"})
    for kind in EXPORT_FORMATS:
        assert "Ada" in render_stored(kind, stored, title="Rain"), kind
    data = json.loads(render_stored("json", stored, extra={"run": {"backend": "x"}}))
    assert data["display_names"] == {"char1": "Ada"} and data["run"] == {"backend": "x"}
    with pytest.raises(ValueError, match="unknown export format 'pdf'"):
        render_export("pdf", stored.story, stored.issues)


def test_photos_are_embedded_upright_and_downscaled_and_a_missing_one_is_left_out(
    tmp_path: Path,
) -> None:
    sideways = tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown portrait
    Image.new("RGB", (300, 100), (10, 200, 10)).save(sideways, exif=exif)
    uri = photo_data_uri(sideways, max_side=150)
    assert uri.startswith("data:image/jpeg;base64,")
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as image:
        assert image.size == (50, 150)
    frames = [FrameGeometry(1, sideways), FrameGeometry(2, tmp_path / "gone.jpg")]
    stored = StoredStory.parse(STORY, frames)
    assert list(embedded_photos(stored)) == [1]  # the page shows no picture for frame 2
    with pytest.raises(PhotoUnreadableError, match=r"gone\.jpg cannot be read"):
        embedded_photos(stored, skip_unreadable=False)
