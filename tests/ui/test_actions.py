"""The window's commands as a table, alone: their shortcuts and the menus they appear in."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QMenuBar, QWidget

from desktop_app.ui.actions import WindowActions


def test_main_actions_have_shortcuts(qapp: Any) -> None:
    owner = QWidget()
    WindowActions(owner)
    shortcuts = {
        act.text().replace("&", ""): act.shortcut().toString()
        for act in owner.actions()
        if not act.shortcut().isEmpty()
    }
    assert shortcuts["Generate"] == "Ctrl+Return"
    assert shortcuts["Stop"] == "Esc"
    assert shortcuts["New album"] == "Ctrl+N"
    assert shortcuts["Add photos…"] == "Ctrl+O"
    assert shortcuts["Move photo earlier"] == "Alt+Left"
    assert shortcuts["Move photo later"] == "Alt+Right"


def test_the_menus_offer_the_album_and_story_commands(qapp: Any) -> None:
    owner = QWidget()
    bar = QMenuBar(owner)
    WindowActions(owner).build_menus(bar)
    menus = {
        menu.title().replace("&", ""): [a.text().replace("&", "") for a in menu.actions()]
        for menu in (a.menu() for a in bar.actions())
    }
    assert list(menus) == ["File", "Album", "Story", "View", "Help"]
    assert menus["Story"][:2] == ["Generate", "Stop"]
    assert "Sort by date" in menus["Album"] and "Stop importing" in menus["Album"]
    export_menu = next(a.menu() for a in bar.actions()[0].menu().actions() if a.menu())
    assert [a.text() for a in export_menu.actions()] == [
        "Export as Slideshow…",
        "Export as HTML…",
        "Export as Markdown…",
        "Export as PDF…",
        "Export as Photos with XMP sidecars…",
        "Export as Captioned copies (XMP inside)…",
        "Export as JSON…",
    ]
