"""The main window: albums on the left, the album's photos on top, its story below.

``MainWindow`` composes the parts and holds what they share: the library and the settings, the
item models (albums, photos, versions), the open album and version, and the worker pool. Each
part owns its widgets and what they do:

- ``actions``: every command (text, shortcut, when it is enabled) and the menus;
- ``sidebar``: the albums and the versions list; ``filmstrip``: the open album's photos;
- ``story_toolbar``: Generate/Stop and the run's choices; ``status_bar``; ``window_state``;
- ``import_controller`` and ``generation_controller``: the workers that add photos and tell
  the story; ``versions``: the open version (show, delete, compare, rename, export).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QMainWindow, QMessageBox, QSplitter, QTabWidget, QWidget

from desktop_app.app.backends import describe_settings_backend
from desktop_app.app.settings import Settings, open_library, save_settings
from desktop_app.app.stored_story import StoredStory
from desktop_app.errors import StorytellerError
from desktop_app.library.records import Album, StoryRun
from desktop_app.library.store import Library
from desktop_app.story.model import Issue, Story
from desktop_app.ui.actions import ActionState, WindowActions
from desktop_app.ui.analysis import AnalysisPanel
from desktop_app.ui.app import gui_backend
from desktop_app.ui.compare import ComparePanel
from desktop_app.ui.errors import show_error
from desktop_app.ui.exporting import EXPORT_KINDS
from desktop_app.ui.filmstrip import Filmstrip
from desktop_app.ui.generation_controller import BackendFactory, GenerationController, LiveRun
from desktop_app.ui.import_controller import ImportController
from desktop_app.ui.models import AlbumListModel, PhotoListModel, RunListModel
from desktop_app.ui.sidebar import Sidebar
from desktop_app.ui.status_bar import StatusBar
from desktop_app.ui.story_panel import StoryPanel
from desktop_app.ui.story_toolbar import StoryToolbar
from desktop_app.ui.versions import VersionsController
from desktop_app.ui.window_state import WindowState
from desktop_app.ui.workers import Worker, WorkerHandle, WorkerPool

logger = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_MAX_TOKENS = 4096  # the model card's limit; Settings.max_tokens overrides it


class MainWindow(QMainWindow):
    """Albums, photos, generation and the story of the current version."""

    def __init__(
        self,
        library: Library,
        backend_factory: BackendFactory,
        *,
        settings: Settings | None = None,
        confirm: Callable[[QWidget, str, str], bool] | None = None,
    ) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("Storyteller")
        self.library = library
        self.settings = settings
        self._confirm = confirm or _ask_yes_no
        self.closing = False  # no message boxes once the window is being closed
        self._close_when_idle = False
        self.current_album_id: int | None = None
        self.current_run: StoryRun | None = None
        self.current_story: Story | None = None
        self.current_issues: list[Issue] = []

        self.album_model = AlbumListModel(self)
        self.photo_model = PhotoListModel(self)
        self.run_model = RunListModel(self)
        self.workers = WorkerPool(self)
        self.generation = GenerationController(self, backend_factory)
        self.imports = ImportController(self)
        self.acts = WindowActions(self)
        self._build_parts()
        self.versions = VersionsController(self)
        self.acts.connect(self._action_slots())
        self.acts.build_menus(self.menuBar())
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
        self.sidebar = Sidebar(self, self.acts)
        self.filmstrip = Filmstrip(self, self.acts)
        self.story_toolbar = StoryToolbar(
            self.acts["generate"], self.acts["stop"], self.settings, self
        )
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.story_toolbar)

        self.story_panel = StoryPanel(self)
        self.analysis_panel = AnalysisPanel(self)
        self.compare_panel = ComparePanel(self)
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("storyTabs")
        self.tabs.addTab(self.story_panel, "Story")
        self.tabs.addTab(self.analysis_panel, "Analysis")
        self.tabs.addTab(self.compare_panel, "Compare versions")
        self.tabs.setDocumentMode(True)

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

        self.status_bar = StatusBar(self)
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
            "delete_run": versions.delete_current_run,
            "compare": versions.compare_versions,
            "settings": self.open_settings,
            "guide": self.open_first_run_guide,
            "quit": self.close,
            "story_tab": lambda: self.tabs.setCurrentIndex(0),
            "analysis_tab": lambda: self.tabs.setCurrentIndex(1),
            "compare_tab": lambda: self.tabs.setCurrentIndex(2),
        }

    def _connect(self) -> None:
        self.sidebar.album_selected.connect(self.show_album)
        self.sidebar.album_renamed.connect(self._on_album_renamed)
        self.photo_model.files_dropped.connect(
            lambda paths, row: self.imports.import_paths(paths, insert_at=row)
        )
        self.filmstrip.view.selectionModel().selectionChanged.connect(self.update_actions)
        self.story_toolbar.detail_combo.currentIndexChanged.connect(self.filmstrip.update_cost)
        # Another instruction is another prompt: what is cached changes the time.
        self.story_toolbar.instruction_combo.currentTextChanged.connect(self.filmstrip.update_cost)
        self.story_panel.status_message.connect(self.show_status)
        self.imports.state_changed.connect(self.update_actions)
        self.generation.run_started.connect(self._on_run_started)
        self.generation.run_ended.connect(self._on_run_ended)
        self.generation.state_changed.connect(self.update_actions)

    # ================================================================== the open album

    def show_album(self, album: Album | None) -> None:
        """Open ``album`` (None: no album): its photos, and its newest version."""
        self.current_album_id = album.id if album is not None else None
        self._show_title(album)
        if album is None:
            self.photo_model.set_photos([])
            self.run_model.set_runs([])
            self.versions.show_run(None)
            self.update_actions()
            return
        self.filmstrip.reload_photos()
        self.versions.reload_runs(select_latest=True)
        self.update_actions()

    def _show_title(self, album: Album | None) -> None:
        self.filmstrip.set_album_title(album)
        self.setWindowTitle(f"{album.name} — Storyteller" if album else "Storyteller")

    def _on_album_renamed(self, album: Album) -> None:
        if album.id == self.current_album_id:
            self._show_title(album)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.imports.import_paths(paths)

    # ================================================================== generation

    def max_tokens(self) -> int:
        """The longest story to ask for (Settings.max_tokens, else the model card's 4096)."""
        return int(getattr(self.settings, "max_tokens", 0) or DEFAULT_MAX_TOKENS)

    def remember_choices(self) -> None:
        """Keep the toolbar's preset, detail and seed as the defaults of the next session."""
        if self.settings is None:
            return
        chosen = self.story_toolbar.choices()
        if all(getattr(self.settings, key) == value for key, value in chosen.items()):
            return
        settings = self.settings.replace(**chosen)
        try:
            save_settings(settings)
        except (StorytellerError, OSError) as err:
            self.show_status(f"Could not save your choices: {err}")
            return
        self.settings = settings

    def _on_run_started(self, album_id: int, run_id: int) -> None:
        self.sidebar.refresh_album_row(album_id)
        with contextlib.suppress(StorytellerError):
            self.run_model.upsert(self.library.run(run_id))
        self.versions.select_run_row(run_id)

    def _on_run_ended(
        self, live: LiveRun, run: StoryRun | None, story: StoredStory | None, failed: bool
    ) -> None:
        self.sidebar.refresh_album_row(live.album_id)
        if run is not None and live.album_id == self.current_album_id:
            self.run_model.upsert(run)
            self.versions.select_run_row(run.id)
            self.versions.show_run(run, story)
        if self._close_when_idle:
            QTimer.singleShot(0, self.close)
        if failed and run is None and live.album_id == self.current_album_id:
            self.versions.reload_runs(select_latest=True)

    # ================================================================== settings

    def open_settings(self) -> None:
        """Open the settings dialog (non-modal to the event loop)."""
        from desktop_app.ui.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self)
        dialog.saved.connect(self._on_settings_saved)
        dialog.open()

    def _on_settings_saved(self, settings: Settings) -> None:
        old_library = self.settings.library_dir if self.settings is not None else None
        self.settings = settings
        self.generation.replace_backend(lambda: gui_backend(settings))
        self.status_bar.set_backend(describe_settings_backend(settings), "")
        if settings.library_dir != old_library and not self.generation.is_generating():
            try:
                library = open_library(settings)
            except StorytellerError as err:
                show_error(self, err, action="Opening the library")
                return
            self.library.close()
            self.library = library
            self.current_album_id = None
            self.sidebar.reload_albums()
        self.show_status("Settings saved.")

    def open_first_run_guide(self) -> None:
        """Open the first-run guide."""
        from desktop_app.ui.first_run import FirstRunGuide

        guide = FirstRunGuide(self.settings, self)
        guide.saved.connect(self._on_settings_saved)
        guide.open()

    # ================================================================== shared services

    def show_status(self, message: str) -> None:
        """A passing message in the status bar."""
        self.status_bar.show_status(message)

    def try_library(self, call: Callable[[], T], action: str) -> T | None:
        """``call()``'s result; None, after telling the user "``action`` failed", when it raises
        a ``StorytellerError``."""
        try:
            return call()
        except StorytellerError as err:
            show_error(self, err, action=action)
            return None

    def read_open_album(
        self, read: Callable[[Library, int], list[T]], action: str
    ) -> list[T] | None:
        """``read(library, album_id)`` for the open album: None when no album is open, and an
        empty list (after telling the user "``action`` failed") when the library fails."""
        album_id = self.current_album_id
        if album_id is None:
            return None
        library = self.library
        return self.try_library(lambda: read(library, album_id), action) or []

    def ask(self, title: str, text: str) -> bool:
        """Ask the user a yes/no question (No is the default)."""
        return self._confirm(self, title, text)

    def update_actions(self) -> None:
        """Enable the commands (and the run's choices) for what the window holds now."""
        generating = self.generation.is_generating()
        state = ActionState(
            has_album=self.current_album_id is not None,
            has_photos=self.photo_model.rowCount() > 0,
            selected_photos=self.filmstrip.has_selection(),
            importing=self.imports.has_imports(),
            generating=generating,
            stopping=self.generation.is_stopping(),
            has_story=self.current_story is not None and self.current_run is not None,
            selected_runs=bool(self.versions.selected_runs()),
            run_count=self.run_model.rowCount(),
        )
        self.acts.update(state)
        self.filmstrip.cancel_import_button.setVisible(state.importing)
        self.story_toolbar.set_choices_enabled(not generating)

    def start_job(self, worker: Worker, action: str | None, busy: bool = False) -> WorkerHandle:
        """Start ``worker``; failures are shown as "``action`` failed", and with ``busy`` its
        progress lines go to the status bar."""
        handle = self.workers.start(worker)
        if action is not None:
            handle.failed.connect(
                lambda err, details: show_error(self, err, details, action=action)
            )
            if busy:
                handle.progress.connect(lambda _p, message: self.show_status(message))
        return handle

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.generation.is_generating():
            if not self._close_when_idle and not self.ask(
                "Stop writing?",
                "A story is being written. Stop it and quit? The story so far is kept as a "
                "stopped version.",
            ):
                event.ignore()
                return
            self._close_when_idle = True
            self.generation.stop()
            event.ignore()  # closes again once the partial story is saved
            return
        self.window_state.save(self.current_album_id)
        self.closing = True
        # Every job checks its cancel flag between steps (an import between files), so this
        # returns after the current file or token, not when a big folder is done.
        self.workers.stop_all()
        self.generation.close_backend()
        event.accept()


def _ask_yes_no(parent: QWidget, title: str, text: str) -> bool:
    answer = QMessageBox.question(
        parent,
        title,
        text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes
