"""The main window: albums on the left, the album's photos on top, its story below.

``MainWindow`` builds the session and the parts, each with the session (and the actions table),
and wires what is left between them in one place (qutebrowser's style); it owns the close
protocol. The parts never hold the window:

- ``session``: the library, settings, engine, open album and version, the run being written;
- ``actions``: every command (text, shortcut, when it is enabled) and the menus;
- ``sidebar``: the albums and the versions list; ``filmstrip``: the open album's photos;
- ``story_toolbar``: Generate/Stop and the run's choices; ``story_tabs``; ``status_bar``;
- ``imports``, ``generation`` and ``versions``: adding photos, telling
  the story, and what the user does with a version.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QDialog, QMainWindow, QSplitter, QWidget

from desktop_app.app.settings import Settings
from desktop_app.library.records import Album, StoryRun
from desktop_app.library.store import Library
from desktop_app.story.model import Story
from desktop_app.ui.about import AboutDialog
from desktop_app.ui.actions import ActionState, WindowActions
from desktop_app.ui.analysis import AnalysisPanel
from desktop_app.ui.compare import ComparePanel
from desktop_app.ui.exporting import EXPORT_KINDS
from desktop_app.ui.filmstrip import Filmstrip
from desktop_app.ui.generation import GenerationController
from desktop_app.ui.imports import ImportController
from desktop_app.ui.item_models import AlbumListModel, PhotoListModel, RunListModel
from desktop_app.ui.keyboard import FOCUS_RING_STYLE, ShortcutSheet, cycle_focus
from desktop_app.ui.missing_photos import offer_missing_photos
from desktop_app.ui.photo_window import open_full_size
from desktop_app.ui.preparation import PreparationController
from desktop_app.ui.presentation import PresentationController
from desktop_app.ui.session import BackendFactory, Confirm, EndedRun, OpenVersion, Session
from desktop_app.ui.sidebar import Sidebar
from desktop_app.ui.status_bar import StatusBar
from desktop_app.ui.story_panel import StoryPanel
from desktop_app.ui.story_tabs import StoryTabs
from desktop_app.ui.story_toolbar import StoryToolbar
from desktop_app.ui.versions import VersionsController
from desktop_app.ui.window_state import WindowState
from desktop_app.ui.workers import WorkerPool

logger = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """Albums, photos, generation and the story of the open version."""

    def __init__(
        self,
        library: Library,
        backend_factory: BackendFactory,
        *,
        settings: Settings | None = None,
        confirm: Confirm | None = None,
    ) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("Storyteller")
        self.session = Session(library, backend_factory, settings, confirm=confirm, parent=self)
        self.session.dialog_parent = self
        self._close_when_idle = False
        self._ending = False  # end_session: closing without a question
        self.generation = GenerationController(self.session)
        self.preparation = PreparationController(self.session)
        self.imports = ImportController(self.session)
        self.versions = VersionsController(self.session)
        self.presenting = PresentationController(self.session)
        self.acts = WindowActions(self)
        self._build_parts()
        self.acts.connect(self._action_slots())
        self.acts.build_menus(self.menuBar())
        self.setStyleSheet(FOCUS_RING_STYLE)  # the focused list, story or button is plain to see
        self._connect()
        self.setAcceptDrops(True)
        self.resize(1440, 900)
        self.window_state = WindowState(
            self,
            {
                "main_splitter": self.main_splitter,
                "centre_splitter": self.centre_splitter,
                "story_splitter": self.story_panel.splitter,
            },
        )
        last_album = self.window_state.restore()
        self.sidebar.reload_albums(select_id=last_album)
        self.update_actions()

    # ================================================================== composition

    def _build_parts(self) -> None:
        session = self.session
        self.sidebar = Sidebar(session, self.acts, self)
        self.filmstrip = Filmstrip(session, self.acts, self)
        self.story_toolbar = StoryToolbar(session, self.acts["generate"], self.acts["stop"], self)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.story_toolbar)
        self.tabs = StoryTabs(session, self)
        # The strip's selection follows the frame the story's viewer shows.
        self.tabs.frame_shown.connect(self.filmstrip.select_frame)

        centre = QSplitter(Qt.Orientation.Vertical, self)
        centre.addWidget(self.filmstrip)
        centre.addWidget(self.tabs)
        centre.setStretchFactor(1, 1)
        centre.setChildrenCollapsible(False)
        main = QSplitter(Qt.Orientation.Horizontal, self)
        main.addWidget(self.sidebar)
        main.addWidget(centre)
        main.setStretchFactor(1, 1)
        main.setSizes([250, 1190])
        main.setChildrenCollapsible(False)
        self.setCentralWidget(main)
        self.main_splitter = main
        self.centre_splitter = centre

        self.status_bar = StatusBar(session, self)
        self.setStatusBar(self.status_bar)

        # Tab order: albums -> photos -> generation controls -> story -> photo -> issues.
        order = [
            *self.sidebar.focus_order(),
            *self.filmstrip.focus_order(),
            self.story_toolbar.preset_combo,
            self.story_toolbar.detail_combo,
            self.story_toolbar.seed_spin,
            self.story_toolbar.instruction_combo,
            self.tabs,
            self.story_panel.browser,
            self.story_panel.issues_list,
        ]
        for first, second in itertools.pairwise(order):
            self.setTabOrder(first, second)

    def _action_slots(self) -> dict[str, Callable[[], object]]:
        strip, versions, imports = self.filmstrip, self.versions, self.imports
        return {
            "new_album": self.sidebar.new_album,
            "rename_album": self.sidebar.rename_album,
            "delete_album": self.sidebar.delete_album,
            "add_photos": imports.add_photos_dialog,
            "remove_photos": strip.remove_selected_photos,
            "move_earlier": lambda: strip.move_selected_photos(-1),
            "move_later": lambda: strip.move_selected_photos(+1),
            "sort_date": strip.sort_by_date,
            "relink": imports.relink_dialog,
            "cancel_import": imports.cancel_imports,
            "generate": self.generation.generate,
            "stop": self.generation.stop,
            "copy": versions.copy_story,
            **{f"export_{k}": lambda k=k: versions.export_dialog(k) for k in EXPORT_KINDS},
            "delete_run": versions.delete_selected,
            "compare": versions.compare_versions,
            "present": lambda: self.presenting.present(),
            "settings": self.open_settings,
            "guide": self.open_first_run_guide,
            "shortcuts": lambda: ShortcutSheet(self).open(),
            "about": lambda: AboutDialog(self).open(),
            "next_pane": lambda: cycle_focus(self._panes(), +1),
            "previous_pane": lambda: cycle_focus(self._panes(), -1),
            "quit": self.close,
            "story_tab": lambda: self.tabs.setCurrentIndex(0),
            "analysis_tab": lambda: self.tabs.setCurrentIndex(1),
            "compare_tab": lambda: self.tabs.setCurrentIndex(2),
        }

    def _panes(self) -> list[QWidget]:
        """The panes F6 and Shift+F6 move between, in reading order."""
        return [self.sidebar.album_view, self.filmstrip.view, self.tabs.currentWidget()]

    def _connect(self) -> None:
        session = self.session
        session.album_opened.connect(self._show_title)
        session.album_renamed.connect(self._show_title)
        session.state_changed.connect(self.update_actions)
        session.run_ended.connect(self._on_run_ended)
        session.photo_model.files_dropped.connect(
            lambda paths, row: self.imports.import_paths(paths, insert_at=row)
        )
        self.filmstrip.view.selectionModel().selectionChanged.connect(self.update_actions)
        self.filmstrip.frame_requested.connect(self.tabs.show_frame)
        self.filmstrip.photo_requested.connect(self.tabs.show_photo)
        self.filmstrip.full_size_requested.connect(lambda path: open_full_size(path, self))
        self.generation.photos_missing.connect(
            lambda album_id, missing, message: offer_missing_photos(
                session, album_id, missing, message, self.imports.relink_dialog, self
            )
        )
        self.imports.state_changed.connect(self.update_actions)
        self.versions.comparison_ready.connect(self.tabs.compare)
        self.tabs.analysis_panel.name_edited.connect(self.versions.rename_entity)
        self.tabs.analysis_panel.match_undone.connect(self.versions.undo_name_match)

    # ================================================================== what tests and the
    # close protocol read: the session's state under the names the window always had

    @property
    def library(self) -> Library:
        return self.session.library

    @property
    def settings(self) -> Settings:
        return self.session.settings

    @property
    def current_album_id(self) -> int | None:
        return self.session.album_id

    @property
    def current_run(self) -> StoryRun | None:
        return self.session.open_run

    @property
    def current_story(self) -> Story | None:
        shown = self.session.shown_story()
        return shown[0] if shown is not None else None

    @property
    def story_panel(self) -> StoryPanel:
        return self.tabs.story_panel

    @property
    def analysis_panel(self) -> AnalysisPanel:
        return self.tabs.analysis_panel

    @property
    def compare_panel(self) -> ComparePanel:
        return self.tabs.compare_panel

    @property
    def album_model(self) -> AlbumListModel:
        return self.session.album_model

    @property
    def photo_model(self) -> PhotoListModel:
        return self.session.photo_model

    @property
    def run_model(self) -> RunListModel:
        return self.session.run_model

    @property
    def workers(self) -> WorkerPool:
        return self.session.workers

    # ================================================================== the open album

    def _show_title(self, album: Album | None) -> None:
        self.setWindowTitle(f"{album.name} — Storyteller" if album else "Storyteller")

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.imports.import_paths(paths)

    def _on_run_ended(self, _ended: EndedRun) -> None:
        if self._close_when_idle:
            QTimer.singleShot(0, self.close)

    # ================================================================== settings

    def open_settings(self) -> None:
        """Open the settings dialog (non-modal to the event loop)."""
        from desktop_app.ui.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self)
        dialog.saved.connect(self._on_settings_saved)
        dialog.open()

    def _on_settings_saved(self, settings: Settings) -> None:
        self.session.apply_settings(settings)
        self.session.show_status("Settings saved.")

    def open_first_run_guide(self) -> None:
        """Open the first-run guide."""
        from desktop_app.ui.first_run import FirstRunGuide

        guide = FirstRunGuide(self.settings, self)
        guide.saved.connect(self._on_settings_saved)
        guide.open()

    # ================================================================== commands

    def update_actions(self) -> None:
        """Enable the commands (and the run's choices) for what the window holds now."""
        session = self.session
        generating = self.generation.is_generating()
        state = ActionState(
            has_album=session.album_id is not None,
            has_photos=session.photo_model.rowCount() > 0,
            selected_photos=self.filmstrip.has_selection(),
            importing=self.imports.has_imports(),
            generating=generating,
            stopping=self.generation.is_stopping(),
            has_story=isinstance(session.shown, OpenVersion),
            selected_runs=bool(session.selected_runs),
            run_count=session.run_model.rowCount(),
        )
        self.acts.update(state)
        self.filmstrip.cancel_import_button.setVisible(state.importing)
        self.story_toolbar.set_choices_enabled(not generating)

    # ================================================================== closing

    def end_session(self, why: str) -> None:
        """Close as the window's close does, asking nothing: at logout (the session manager's
        requests), on SIGTERM or SIGHUP, or Ctrl-C in the terminal that started the app.

        A story being written stops and is kept as *stopped*; open dialogs are dismissed (a
        download pauses, a conversion is cancelled, an unsaved settings dialog is dropped); the
        choices and the window's layout are saved. A photo in the vision encoder is not waited
        for (the program ends as the CLI does then: ``cli.console_main``).
        """
        logger.info("closing the window: %s", why)
        if self._ending:
            return
        self._ending = True
        self._close_when_idle = True
        self.session.closing = True  # no question or message box from here on
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, QDialog) and widget.isVisible():
                widget.reject()  # a nested exec() returns; the close runs once it has
        QTimer.singleShot(0, self.close)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.generation.is_generating():
            if not self._close_when_idle and not self.session.ask(
                "Stop writing?",
                "A story is being written. Stop it and quit? The story so far is kept as a "
                "stopped version.",
                action="Stop and quit",
            ):
                event.ignore()
                return
            self._close_when_idle = True
            self.generation.stop()
            event.ignore()  # closes again once the partial story is saved
            return
        self.session.remember_choices()
        self.window_state.save(self.current_album_id)
        self.session.close()
        event.accept()
