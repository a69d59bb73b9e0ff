"""The window's commands: their shortcuts, and when each can be used."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ui_helpers import album_with_photos, generate_and_wait


def test_main_actions_have_shortcuts(make_window: Callable[..., Any]) -> None:
    window = make_window()
    shortcuts = {
        act.text().replace("&", ""): act.shortcut().toString()
        for act in window.actions()
        if not act.shortcut().isEmpty()
    }
    assert shortcuts["Generate"] == "Ctrl+Return"
    assert shortcuts["Stop"] == "Esc"
    assert shortcuts["New album"] == "Ctrl+N"
    assert shortcuts["Add photos…"] == "Ctrl+O"


def test_commands_are_enabled_only_when_they_can_do_something(
    qtbot: Any, make_window: Callable[..., Any], sample_photos: list[Path]
) -> None:
    window = make_window()
    acts = window.acts
    assert acts["new_album"].isEnabled() and acts["add_photos"].isEnabled()
    for name in ("rename_album", "delete_album", "remove_photos", "generate", "stop", "copy"):
        assert not acts[name].isEnabled(), f"{name} is enabled without an album"
    album_with_photos(qtbot, window, sample_photos)
    assert acts["rename_album"].isEnabled() and acts["generate"].isEnabled()
    assert not acts["remove_photos"].isEnabled()  # no photo selected yet
    assert not window.filmstrip.remove_photos_button.isEnabled()  # the button follows
    window.filmstrip.view.setCurrentIndex(window.photo_model.index(0))
    assert acts["remove_photos"].isEnabled() and acts["move_later"].isEnabled()
    assert window.filmstrip.remove_photos_button.isEnabled()
    assert not acts["export_pdf"].isEnabled()  # no story yet
    generate_and_wait(qtbot, window)
    assert acts["copy"].isEnabled() and acts["export_pdf"].isEnabled()
    assert not acts["compare"].isEnabled()  # one version: nothing to compare it with
    assert window.story_toolbar.detail_combo.isEnabled()  # the run's choices are free again


def test_the_menus_offer_the_album_and_story_commands(make_window: Callable[..., Any]) -> None:
    window = make_window()
    menus = {
        menu.title().replace("&", ""): [a.text().replace("&", "") for a in menu.actions()]
        for menu in (a.menu() for a in window.menuBar().actions())
    }
    assert list(menus) == ["File", "Album", "Story", "View", "Help"]
    assert menus["Story"][:2] == ["Generate", "Stop"]
    assert "Sort by date" in menus["Album"] and "Stop importing" in menus["Album"]
    export_menu = next(a.menu() for a in window.menuBar().actions()[0].menu().actions() if a.menu())
    assert [a.text() for a in export_menu.actions()] == [
        "Export as HTML…",
        "Export as Markdown…",
        "Export as JSON…",
        "Export as PDF…",
    ]
