"""Help and keyboard: About with the version, the shortcut sheet from the actions table,
Ctrl+, for Settings, F6/Shift+F6 between the panes, and a focus ring that can be seen."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QStringListModel
from PySide6.QtWidgets import QHBoxLayout, QListView, QMenuBar, QTextBrowser, QWidget

import desktop_app
from desktop_app.ui.about import AboutDialog
from desktop_app.ui.actions import WindowActions
from desktop_app.ui.keyboard import FOCUS_RING_STYLE, ShortcutSheet, cycle_focus, shortcut_rows


def test_about_shows_the_version(qtbot: Any) -> None:
    about = AboutDialog()
    qtbot.addWidget(about)
    assert f"Storyteller {desktop_app.__version__}" in about.text.text()


def test_settings_has_ctrl_comma_and_help_offers_shortcuts_and_about(qapp: Any) -> None:
    owner = QWidget()
    bar = QMenuBar(owner)
    actions = WindowActions(owner)
    actions.build_menus(bar)
    assert actions["settings"].shortcut().toString() == "Ctrl+,"
    assert actions["next_pane"].shortcut().toString() == "F6"
    assert actions["previous_pane"].shortcut().toString() == "Shift+F6"
    help_menu = bar.actions()[-1].menu()
    entries = [a.text().replace("&", "") for a in help_menu.actions() if a.text()]
    assert entries == ["First-run guide…", "Keyboard shortcuts", "About Storyteller"]


def test_the_shortcut_sheet_lists_every_command_with_a_shortcut(qtbot: Any) -> None:
    owner = QWidget()
    actions = WindowActions(owner)
    sheet = ShortcutSheet()
    qtbot.addWidget(sheet)
    text = sheet.table.text()
    for name in actions:
        keys = actions[name].shortcut().toString()
        if keys:
            assert keys.replace("&", "&amp;") in text, name
    rows = dict(shortcut_rows())
    assert rows["Ctrl+Return"] == "Generate" and rows["Ctrl+,"] == "Settings"


def _panes(host: Any) -> tuple[QWidget, list[QWidget]]:
    owner = QWidget()
    layout = QHBoxLayout(owner)
    panes: list[QWidget] = []
    for _ in range(2):
        view = QListView(owner)
        view.setModel(QStringListModel(["a", "b"], view))
        panes.append(view)
        layout.addWidget(view)
    story = QTextBrowser(owner)
    panes.append(story)
    layout.addWidget(story)
    host(owner)
    owner.activateWindow()
    return owner, panes


def test_f6_cycles_the_focus_through_the_panes_both_ways(qtbot: Any, host: Any) -> None:
    _owner, (albums, strip, story) = _panes(host)
    assert cycle_focus([albums, strip, story], +1) is albums  # none focused: the first
    qtbot.waitUntil(albums.hasFocus)
    cycle_focus([albums, strip, story], +1)
    qtbot.waitUntil(strip.hasFocus)
    cycle_focus([albums, strip, story], +1)
    qtbot.waitUntil(story.hasFocus)
    cycle_focus([albums, strip, story], +1)
    qtbot.waitUntil(albums.hasFocus)  # round again
    cycle_focus([albums, strip, story], -1)
    qtbot.waitUntil(story.hasFocus)
    story.viewport().setFocus()  # focus inside a pane counts as that pane
    assert cycle_focus([albums, strip, story], -1) is strip


def test_the_focus_ring_can_be_seen(qtbot: Any, host: Any) -> None:
    owner, (albums, strip, _story) = _panes(host)
    owner.setStyleSheet(FOCUS_RING_STYLE)
    highlight = albums.palette().highlight().color().rgb()

    def edge(view: QWidget) -> int:
        image = view.grab().toImage()
        return image.pixel(0, image.height() // 2)

    strip.setFocus()
    qtbot.waitUntil(strip.hasFocus)
    assert edge(albums) != highlight
    albums.setFocus()
    qtbot.waitUntil(albums.hasFocus)
    assert edge(albums) == highlight  # a ring in the highlight colour
