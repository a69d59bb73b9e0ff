"""Two versions of an album's story side by side, each frame's photo beside its text.

Each column is rendered by the story view's own path (``register_frame_images`` and
``render_story``), only with smaller photos, under a header that says which version it is.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

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

from desktop_app.app.stored_story import StoredStory
from desktop_app.library.records import StoryRun
from desktop_app.story.display import display_story
from desktop_app.ui.item_models import describe_run
from desktop_app.ui.story_html import render_story
from desktop_app.ui.story_panel import frame_photos_of, register_frame_images
from desktop_app.ui.trained_choices import recorded_detail_words

COMPARE_THUMB_PX = 120  # half the window per column: smaller photos than the story view's


def run_header_html(run: StoryRun) -> str:
    """Which version a column shows: number, status and date; preset, detail, seed and model."""
    status = run.status.value
    when = (run.created or "")[:16].replace("T", " ")
    asked = run.asked
    model = dict(run.model).get("name") or run.backend or "unknown model"
    details = [
        f"preset {asked.preset}" if asked.preset else "",
        recorded_detail_words(dict(run.parameters)),
        f"seed {asked.seed}" if asked.seed is not None else "",
        f"model {model}",
        f"{len(run.raw_output)} characters",
    ]
    return (
        f"<b>Version #{run.id}</b> · <b>{html.escape(status)}</b> · {html.escape(when)}<br>"
        f'<span style="color:#555;">'
        f"{html.escape(' · '.join(bit for bit in details if bit))}</span>"
    )


class ComparePanel(QWidget):
    """Pick two versions; each is rendered (with the user's names) in its own column."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("comparePanel")
        self._runs: list[StoryRun] = []
        self._library_names: dict[int, Mapping[str, str]] = {}
        self.left_combo = QComboBox(self)
        self.right_combo = QComboBox(self)
        self.left_browser = QTextBrowser(self)
        self.right_browser = QTextBrowser(self)
        self.left_header = QLabel(self)
        self.right_header = QLabel(self)
        for browser in (self.left_browser, self.right_browser):
            browser.setOpenLinks(False)
        columns = QSplitter(Qt.Orientation.Horizontal, self)
        for side, combo, header, browser in (
            ("left", self.left_combo, self.left_header, self.left_browser),
            ("right", self.right_combo, self.right_header, self.right_browser),
        ):
            header.setObjectName(f"{side}CompareHeader")
            header.setTextFormat(Qt.TextFormat.RichText)
            header.setWordWrap(True)
            # Stays above the text while it scrolls: which version this column is.
            column = QWidget(columns)
            layout = QVBoxLayout(column)
            layout.setContentsMargins(0, 0, 0, 0)
            layout.addWidget(combo)
            layout.addWidget(header)
            layout.addWidget(browser)
            columns.addWidget(column)
        top = QHBoxLayout()
        top.addWidget(QLabel("Compare two versions of this album's story:"))
        top.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(columns, 1)  # the columns take the height, not the caption
        self.left_combo.currentIndexChanged.connect(
            lambda _i: self._show(self.left_combo, self.left_header, self.left_browser)
        )
        self.right_combo.currentIndexChanged.connect(
            lambda _i: self._show(self.right_combo, self.right_header, self.right_browser)
        )
        self._placeholder()

    def _placeholder(self) -> None:
        text = '<p style="color:#666;">Generate two versions of a story to compare them here.</p>'
        self.left_browser.setHtml(text)
        self.right_browser.setHtml("")
        self.left_header.setText("")
        self.right_header.setText("")

    def set_runs(self, runs: Sequence[StoryRun]) -> None:
        """The versions to choose from (newest first)."""
        self._runs = list(runs)
        for combo in (self.left_combo, self.right_combo):
            current = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            for run in self._runs:
                combo.addItem(describe_run(run).replace("\n", " · "), run.id)  # one line
            row = combo.findData(current)
            combo.setCurrentIndex(row if row >= 0 else -1)
            combo.blockSignals(False)
        if len(self._runs) < 2:
            self._placeholder()

    def compare(
        self,
        left: StoryRun,
        right: StoryRun,
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
        self._show(self.left_combo, self.left_header, self.left_browser)
        self._show(self.right_combo, self.right_header, self.right_browser)

    def _show(self, combo: QComboBox, header: QLabel, browser: QTextBrowser) -> None:
        run_id = combo.currentData()
        run = getattr(self, "_full", {}).get(run_id) or next(
            (r for r in self._runs if r.id == run_id), None
        )
        if run is None:
            return
        story = StoredStory.of_run(run).story
        names = self._library_names.get(run_id, {})
        # A fresh registration each time: the column may have shown another version (with other
        # photos under the same frame numbers) before.
        images = register_frame_images(
            browser.document(),
            story,
            frame_photos_of(run),
            width=COMPARE_THUMB_PX,
            device_ratio=self.devicePixelRatioF(),
        )
        rendered = render_story(
            display_story(story, (), names), frame_images=images, image_width=COMPARE_THUMB_PX
        )
        header.setText(run_header_html(run))
        browser.setHtml(rendered.html)
