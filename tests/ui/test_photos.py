"""One photo decoder for the screen and the exports: a HEIC photo (iPhones' format, which Qt reads
only with a plugin few installs have) shows in the strip, the story view and the PDF."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QImage, QTextDocument
from PySide6.QtWidgets import QWidget
from ui_helpers import session_album, show_told
from ui_sample import scripted_backend

from desktop_app.app.telling import TellOptions, tell_album
from desktop_app.ui.actions import WindowActions
from desktop_app.ui.exporting import export_story
from desktop_app.ui.filmstrip import Filmstrip
from desktop_app.ui.photos import load_photo
from desktop_app.ui.story_tabs import StoryTabs

HEIC = Path(__file__).resolve().parents[1] / "fixtures" / "kite.heic"  # 336x252, red block


@pytest.fixture
def heic_support() -> None:
    try:
        import pi_heif  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            raise  # a dependency: a missing decoder is a failure in CI
        pytest.skip("pi-heif is not installed (a dependency: pip install -e .)")


def test_a_heic_photo_decodes_upright_at_the_size_asked(heic_support: None) -> None:
    image, full = load_photo(HEIC, 168)
    assert (image.width(), image.height()) == (168, 126)
    assert (full.width(), full.height()) == (336, 252)
    red = image.pixelColor(50, 50)
    assert red.red() > 180 and red.green() < 110


def test_a_heic_photo_shows_in_the_strip_the_story_and_the_pdf(
    qtbot: Any,
    heic_support: None,
    make_session: Callable[..., Any],
    host: Callable[[Any], Any],
    tmp_path: Path,
    story_output: str,
) -> None:
    session = make_session()
    owner = QWidget()
    strip = Filmstrip(session, WindowActions(owner), owner)
    tabs = StoryTabs(session, owner)
    host(owner)
    photo = tmp_path / "kite.heic"
    photo.write_bytes(HEIC.read_bytes())
    session_album(session, [photo])
    model = session.photo_model
    qtbot.waitUntil(lambda: model.has_thumbnail(model.photos()[0].id), timeout=10_000)
    assert strip.view.model() is model
    tell_album(session.library, session.album_id, scripted_backend(story_output), TellOptions())
    stored = show_told(session).stored
    image = tabs.story_panel.browser.document().resource(
        QTextDocument.ResourceType.ImageResource, QUrl("frame-photo:1")
    )
    assert isinstance(image, QImage) and not image.isNull()
    assert image.pixelColor(image.width() // 4, image.height() // 2).red() > 150
    pdf = export_story("pdf", tmp_path / "story.pdf", stored, "Kite")
    assert pdf.read_bytes().count(b"/Subtype /Image") >= 1
