"""The story tabs: the story, its analysis and the comparison of two versions.

``StoryTabs`` is built with the session and shows what the session has open: a stored version,
the run being written (re-rendered as it grows), or nothing. The panels inside only show what
they are given; the tabs turn the session's signals into those calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QTabWidget, QWidget

from desktop_app.app.album_cast import CastEntry, cast_entries
from desktop_app.errors import StorytellerError
from desktop_app.library.records import StoryRun
from desktop_app.ui.analysis import AnalysisPanel, NameOrigin
from desktop_app.ui.check_messages import checks_for
from desktop_app.ui.compare import ComparePanel
from desktop_app.ui.session import LiveRun, OpenVersion, Session, Shown
from desktop_app.ui.story_panel import StoryPanel


class StoryTabs(QTabWidget):
    """Story, Analysis and Compare versions, following the session's open version."""

    frame_shown = Signal(int)  # the story tab's viewer shows this frame (the user chose it)

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("storyTabs")
        self._session = session
        self.story_panel = StoryPanel(self)
        self.analysis_panel = AnalysisPanel(self)
        self.compare_panel = ComparePanel(self)
        self.addTab(self.story_panel, "Story")
        self.addTab(self.analysis_panel, "Analysis")
        self.addTab(self.compare_panel, "Compare versions")
        self.setDocumentMode(True)
        self.story_panel.status_message.connect(session.show_status)
        self.story_panel.frame_shown.connect(self.frame_shown)
        self.analysis_panel.entity_activated.connect(self._show_entity_from_analysis)
        self.currentChanged.connect(self._on_tab_changed)
        session.version_opened.connect(self._show)
        # A photo taken out of the album (or gone missing) leaves the viewer, not a stale message.
        session.photo_model.modelReset.connect(self._forget_photos_gone)
        session.run_started.connect(self._on_run_started)
        session.live_story_changed.connect(self._on_live_story)
        session.names_changed.connect(self._on_names_changed)
        # The compare tab offers the versions the list shows, whatever changed them.
        model = session.run_model
        for signal in (model.modelReset, model.rowsInserted, model.rowsRemoved, model.dataChanged):
            signal.connect(lambda *_: self.compare_panel.set_runs(model.runs()))

    def _show(self, shown: Shown) -> None:
        if shown is None:
            self.story_panel.clear()
            self.analysis_panel.clear()
        elif isinstance(shown, OpenVersion):
            frames = shown.frames
            self.story_panel.set_frame_photos(frames)
            self.analysis_panel.set_frame_photos(frames)
            names = shown.stored.names
            frame_count = len(shown.run.photos)
            issues = checks_for(shown.issues, shown.story, shown.run.status, frame_count)
            self.story_panel.set_story(
                shown.story, names=names, issues=issues, frame_count=frame_count
            )
            self.analysis_panel.set_story(shown.story, names, self._origins(shown))
        else:
            self.story_panel.set_frame_photos(shown.frames)
            self.analysis_panel.set_frame_photos(shown.frames)
            if shown.story.frames or shown.story.narrative or shown.story.segments:
                self._render_live(shown)
            else:
                self.story_panel.clear("Starting…")
            self._checks_while_writing()

    def _on_run_started(self, live: LiveRun) -> None:
        if live.album_id == self._session.album_id:
            self.setCurrentWidget(self.story_panel)
            self._checks_while_writing()

    def _checks_while_writing(self) -> None:
        """Checks shows no earlier version's problems while a story is written."""
        panel = self.story_panel
        panel.issues_list.clear()
        panel.issues_label.setText("Checks: the story is checked when it is finished")

    def _on_live_story(self, live: LiveRun) -> None:
        if self._session.showing_live(live):
            self._render_live(live)

    def _render_live(self, live: LiveRun) -> None:
        self.story_panel.set_story(live.story, live=True, frame_count=live.frame_count)
        if self.currentWidget() is self.analysis_panel:
            self.analysis_panel.set_story(live.story, {})

    def _on_tab_changed(self, _index: int) -> None:
        shown = self._session.shown
        if isinstance(shown, LiveRun) and self.currentWidget() is self.analysis_panel:
            self.analysis_panel.set_story(shown.story, {})

    def _on_names_changed(self, names: Mapping[str, str]) -> None:
        self.story_panel.set_names(names)
        shown = self._session.shown
        if isinstance(shown, OpenVersion):
            self.analysis_panel.set_story(shown.story, names, self._origins(shown))

    def _origins(self, shown: OpenVersion) -> dict[str, NameOrigin]:
        """Where each name of the open version came from (names that stay)."""
        try:
            entries = cast_entries(self._session.library, shown.run.id)
        except StorytellerError:
            return {}
        return {entry.entity_id: name_origin(entry) for entry in entries}

    def _forget_photos_gone(self) -> None:
        view = self.story_panel.photo_view
        shown = view.photo_path or view.failed_path
        if shown is None:
            return
        in_album = {p.path for p in self._session.photo_model.photos() if not p.missing}
        if shown not in in_album:
            view.clear_photo()
            self.story_panel.photo_caption.setText("")

    def show_frame(self, frame: int, entity_ids: Sequence[str]) -> None:
        """Show frame ``frame``'s photo with the boxes of ``entity_ids`` in the story tab, and
        bring that frame's text into view."""
        self.story_panel.show_entities(frame, tuple(entity_ids))
        self.story_panel.scroll_to_frame(frame)
        self.setCurrentWidget(self.story_panel)

    def show_photo(self, path: Path, caption: str) -> None:
        """Show a photo large in the story tab's viewer (no story speaks of it yet)."""
        self.story_panel.show_photo(path, caption)
        self.setCurrentWidget(self.story_panel)

    def _show_entity_from_analysis(self, frame: int, entity_id: str) -> None:
        self.story_panel.show_entities(frame, (entity_id,))
        self.story_panel.select_entity(entity_id)
        self.setCurrentWidget(self.story_panel)

    def compare(
        self,
        left: StoryRun,
        right: StoryRun,
        left_names: Mapping[str, str],
        right_names: Mapping[str, str],
    ) -> None:
        """Show two versions side by side in the compare tab."""
        self.compare_panel.compare(left, right, left_names, right_names)
        self.setCurrentWidget(self.compare_panel)


def name_origin(entry: CastEntry) -> NameOrigin:
    """A cast entry in the gallery's words."""
    if entry.origin == "matched":
        where = f"version #{entry.from_run}" if entry.from_run else "the album's cast (imported)"
        overlap = f"; the boxes overlap {entry.mean_iou:.0%} on average" if entry.mean_iou else ""
        return NameOrigin(f"“{entry.name}”: the name you gave in {where}{overlap}.", True)
    if entry.origin == "undone":
        return NameOrigin(f"Not “{entry.name}”: you undid that name here.")
    return NameOrigin(f"“{entry.name}”: named by you in this version.")
