"""The sidebar: albums (create, rename, delete, drop a folder on one) and the window's item models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ui_helpers import drop_urls

from desktop_app.ui.models import AlbumListModel, PhotoListModel, RunListModel


def test_item_models_pass_qt_model_tester(qtmodeltester: Any, story_window: Any) -> None:
    window = story_window
    assert isinstance(window.album_model, AlbumListModel)
    qtmodeltester.check(window.album_model)
    assert isinstance(window.photo_model, PhotoListModel)
    qtmodeltester.check(window.photo_model)
    assert isinstance(window.run_model, RunListModel)
    qtmodeltester.check(window.run_model)


def test_create_rename_delete_album_updates_the_list_and_library(
    qtbot: Any, make_window: Callable[..., Any], library: Any
) -> None:
    window = make_window()
    window.sidebar.new_album("Holiday", edit=False)
    index = window.sidebar.album_view.currentIndex()
    assert "Holiday" in index.data()
    assert window.album_model.setData(index, "Summer holiday")
    assert [a.name for a in library.albums()] == ["Summer holiday"]
    assert "Summer holiday" in window.sidebar.album_view.currentIndex().data()
    window.sidebar.delete_album()
    assert library.albums() == []
    assert window.album_model.rowCount() == 0


def test_a_folder_dropped_on_the_album_list_is_imported(
    qtbot: Any, make_window: Callable[..., Any], library: Any, sample_photos: list[Path]
) -> None:
    window = make_window()
    album = window.sidebar.new_album("From a folder", edit=False)
    drop_urls(window.sidebar.album_view.viewport(), [sample_photos[0].parent])
    qtbot.waitUntil(lambda: window.photo_model.rowCount() == len(sample_photos), timeout=10_000)
    assert sorted(p.path.name for p in library.photos(album.id)) == sorted(
        p.name for p in sample_photos
    )
