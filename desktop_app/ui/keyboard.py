"""Keyboard help for the window: moving between its panes, a visible focus ring, and the sheet
of every shortcut (built from the actions table, so it never drifts from the menus).

F6 and Shift+F6 cycle the focus through the panes (the album list, the photo strip, the story),
as file managers, browsers and mail programs do; the focus ring is a small style sheet that
draws the focused list, text view or button with the palette's highlight colour.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from desktop_app.ui.actions import ACTIONS

FOCUS_RING_STYLE = """
QAbstractItemView:focus, QTextBrowser:focus {
    border: 2px solid palette(highlight);
}
QPushButton:focus {
    border: 2px solid palette(highlight);
    border-radius: 4px;
    padding: 3px 10px;
}
"""

# Keys that belong to a list or the story, not to a command of the menus.
VIEW_KEYS: tuple[tuple[str, str], ...] = (
    ("F6 / Shift+F6", "Move between the albums, the photos and the story"),
    ("F2", "Rename the selected album, person or thing (in its list)"),
    ("Tab / Shift+Tab", "In the story: go to the next or previous highlighted word"),
    ("Enter", "In the story: show the highlighted word's box on the photo"),
    ("Arrow keys", "Move in a list or the photo strip"),
)


def cycle_focus(panes: Sequence[QWidget], step: int) -> QWidget | None:
    """Give the focus to the pane ``step`` places after the one that has it (the first pane
    when none has it), skipping hidden or disabled panes; returns the pane focused."""
    usable = [pane for pane in panes if pane.isVisible() and pane.isEnabled()]
    if not usable:
        return None
    focus = QApplication.focusWidget()
    current = next(
        (i for i, pane in enumerate(usable) if focus is not None and _inside(focus, pane)), None
    )
    target = usable[0] if current is None else usable[(current + step) % len(usable)]
    target.setFocus()
    return target


def _inside(widget: QWidget, pane: QWidget) -> bool:
    return widget is pane or pane.isAncestorOf(widget)


def shortcut_rows() -> list[tuple[str, str]]:
    """(keys, what they do) for every command of the actions table that has a shortcut, then
    the keys of the lists and the story."""
    rows = []
    for spec in ACTIONS:
        if spec.shortcut is None:
            continue
        keys = QKeySequence(spec.shortcut).toString(QKeySequence.SequenceFormat.NativeText)
        if keys:
            rows.append((keys, spec.text.replace("&", "").replace("…", "")))
    return [*rows, *VIEW_KEYS]


class ShortcutSheet(QDialog):
    """Every keyboard shortcut of the window, in one table."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("shortcutSheet")
        self.setWindowTitle("Keyboard shortcuts")
        rows = "".join(
            f"<tr><td style='padding-right:16px;'><b>{html.escape(keys)}</b></td>"
            f"<td>{html.escape(what)}</td></tr>"
            for keys, what in shortcut_rows()
        )
        self.table = QLabel(f"<table>{rows}</table>")
        self.table.setObjectName("shortcutTable")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
