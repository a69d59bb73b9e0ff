"""Two versions of an album's story side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from desktop_app.ui import services
from desktop_app.ui.models import describe_run
from desktop_app.ui.story_html import render_story


class ComparePanel(QWidget):
    """Pick two versions; each is rendered (with the user's names) in its own column."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("comparePanel")
        self._runs: list[Any] = []
        self._library_names: dict[int, Mapping[str, str]] = {}
        self.left_combo = QComboBox(self)
        self.right_combo = QComboBox(self)
        self.left_browser = QTextBrowser(self)
        self.right_browser = QTextBrowser(self)
        for browser in (self.left_browser, self.right_browser):
            browser.setOpenLinks(False)
        columns = QSplitter(Qt.Orientation.Horizontal, self)
        for combo, browser in (
            (self.left_combo, self.left_browser),
            (self.right_combo, self.right_browser),
        ):
            column = QWidget(columns)
            layout = QVBoxLayout(column)
            layout.setContentsMargins(0, 0, 0, 0)
            layout.addWidget(combo)
            layout.addWidget(browser)
            columns.addWidget(column)
        top = QHBoxLayout()
        top.addWidget(QLabel("Compare two versions of this album's story:"))
        top.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(columns)
        self.left_combo.currentIndexChanged.connect(
            lambda _i: self._show(self.left_combo, self.left_browser)
        )
        self.right_combo.currentIndexChanged.connect(
            lambda _i: self._show(self.right_combo, self.right_browser)
        )
        self._placeholder()

    def _placeholder(self) -> None:
        text = '<p style="color:#666;">Generate two versions of a story to compare them here.</p>'
        self.left_browser.setHtml(text)
        self.right_browser.setHtml("")

    def set_runs(self, runs: Sequence[Any]) -> None:
        """The versions to choose from (newest first)."""
        self._runs = list(runs)
        for combo in (self.left_combo, self.right_combo):
            current = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            for run in self._runs:
                combo.addItem(describe_run(run), run.id)
            row = combo.findData(current)
            combo.setCurrentIndex(row if row >= 0 else -1)
            combo.blockSignals(False)
        if len(self._runs) < 2:
            self._placeholder()

    def compare(
        self,
        left: Any,
        right: Any,
        left_names: Mapping[str, str],
        right_names: Mapping[str, str],
    ) -> None:
        """Show ``left`` and ``right`` (StoryRun records) side by side."""
        self._library_names = {left.id: left_names, right.id: right_names}
        known = {run.id for run in self._runs}
        for run in (left, right):
            if run.id not in known:
                self._runs.append(run)
        self._full = {left.id: left, right.id: right}
        self.set_runs(self._runs)
        self.left_combo.setCurrentIndex(self.left_combo.findData(left.id))
        self.right_combo.setCurrentIndex(self.right_combo.findData(right.id))
        self._show(self.left_combo, self.left_browser)
        self._show(self.right_combo, self.right_browser)

    def _show(self, combo: QComboBox, browser: QTextBrowser) -> None:
        run_id = combo.currentData()
        run = getattr(self, "_full", {}).get(run_id) or next(
            (r for r in self._runs if r.id == run_id), None
        )
        if run is None:
            return
        story = services.parse_story(run.raw_output)
        names = self._library_names.get(run_id, {})
        rendered = render_story(story, names=names, frame_images=None, image_width=0)
        header = f"<p><b>{describe_run(run)}</b> · {len(run.raw_output)} characters</p>"
        browser.setHtml(header + rendered.html)
