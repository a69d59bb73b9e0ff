"""The main window: albums on the left, the album's photos on top, its story below.

The window owns the library handle, the current album and version, and the background workers.
Views are item models (albums, photos, versions) and the story/analysis panels; every long task
(import, thumbnails, generation, export) runs in a worker thread.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QByteArray,
    QItemSelectionModel,
    QModelIndex,
    QSettings,
    QSize,
    Qt,
    QTimer,
)
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from desktop_app import paths
from desktop_app.engine.events import (
    Detail,
    PhaseEvent,
    Preset,
    RunResult,
    StoryBackend,
    StoryRequest,
)
from desktop_app.errors import StorytellerError
from desktop_app.ui import services
from desktop_app.ui.analysis import AnalysisPanel
from desktop_app.ui.compare import ComparePanel
from desktop_app.ui.errors import show_error
from desktop_app.ui.exporting import EXPORT_KINDS, export_story
from desktop_app.ui.models import AlbumListModel, PhotoListModel, RunListModel
from desktop_app.ui.story_panel import FramePhoto, StoryPanel, frame_photos_of
from desktop_app.ui.workers import (
    CallableWorker,
    GenerateWorker,
    JobContext,
    Worker,
    WorkerHandle,
    start_worker,
)

logger = logging.getLogger(__name__)

RENDER_INTERVAL_MS = 100  # live story re-render: at most ~10 times a second
THUMBNAIL_PX = 256
FILMSTRIP_ICON = QSize(128, 96)
DEFAULT_MAX_TOKENS = 4096  # the model card's limit; Settings.max_tokens overrides it

BackendFactory = Callable[[], StoryBackend]


@dataclass
class LiveRun:
    """The run being generated: its id, the stream parser and speed bookkeeping."""

    album_id: int
    run_id: int
    frame_count: int
    parser: Any
    frame_photos: dict[int, FramePhoto]
    tokens: int = 0
    first_token_at: float | None = None
    dirty: bool = False  # tokens arrived since the last render
    clock: Any = None  # engine.speeds.RunClock: the remaining time (None: unknown)

    def remaining(self) -> str:
        """`` · about 4 min left`` while the remaining time is known, else ""."""
        if self.clock is None:
            return ""
        left = services.describe_time(
            self.clock.remaining_s(), measured=self.clock.speeds.measured, left=True
        )
        return f" · {left}"

    def tokens_per_s(self) -> float:
        """Decoding speed since the first token."""
        if self.first_token_at is None or self.tokens < 2:
            return 0.0
        elapsed = time.perf_counter() - self.first_token_at
        return (self.tokens - 1) / elapsed if elapsed > 0 else 0.0


class MainWindow(QMainWindow):
    """Albums, photos, generation and the story of the current version."""

    def __init__(
        self,
        library: Any,
        backend_factory: BackendFactory,
        *,
        settings: Any = None,
        confirm: Callable[[QWidget, str, str], bool] | None = None,
    ) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("Storyteller")
        self.library = library
        self.settings = settings
        self._backend_factory = backend_factory
        self._backend: StoryBackend | None = None
        self._confirm = confirm or _ask_yes_no
        self._workers: list[WorkerHandle] = []
        self._imports: list[WorkerHandle] = []  # imports and relinks: "Stop importing" ends them
        self._closing = False
        self._generation: WorkerHandle | None = None
        self.live: LiveRun | None = None
        self._close_when_idle = False
        self.current_album_id: int | None = None
        self.current_run: Any = None
        self.current_story: Any = None
        self.current_issues: list[Any] = []

        self.album_model = AlbumListModel(self)
        self.photo_model = PhotoListModel(self)
        self.run_model = RunListModel(self)
        self._build_actions()
        self._build_ui()
        self._build_menus()
        self._connect()
        self.setAcceptDrops(True)
        self._render_timer = QTimer(self)
        self._render_timer.setInterval(RENDER_INTERVAL_MS)
        self._render_timer.timeout.connect(self._render_live)
        self.resize(1440, 900)
        last_album = self._restore_window_state()
        self.reload_albums(select_id=last_album)
        self._update_actions()

    # ================================================================== construction

    def _build_actions(self) -> None:
        style = self.style()

        def action(
            text: str,
            slot: Callable[[], Any],
            shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None,
            icon: QStyle.StandardPixmap | None = None,
            tip: str = "",
        ) -> QAction:
            act = QAction(text, self)
            if shortcut is not None:
                act.setShortcut(QKeySequence(shortcut))
            if icon is not None:
                act.setIcon(style.standardIcon(icon))
            hint = tip or text.replace("&", "").replace("…", "")
            if shortcut is not None:
                hint += f" ({act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})"
            act.setToolTip(hint)
            act.setStatusTip(hint)
            act.triggered.connect(lambda _checked=False: slot())
            self.addAction(act)
            return act

        sp = QStyle.StandardPixmap
        self.act_new_album = action(
            "&New album", self.new_album, "Ctrl+N", sp.SP_FileDialogNewFolder
        )
        self.act_rename_album = action("&Rename album", self.rename_album, "F2")
        self.act_delete_album = action("&Delete album…", self.delete_album, None, sp.SP_TrashIcon)
        self.act_add_photos = action(
            "&Add photos…",
            self.add_photos_dialog,
            "Ctrl+O",
            sp.SP_DialogOpenButton,
            "Add photos or a folder to this album",
        )
        self.act_remove_photos = action(
            "Re&move photos",
            self.remove_selected_photos,
            QKeySequence.StandardKey.Delete,
            None,
            "Remove the selected photos from this album (the files are kept)",
        )
        self.act_move_earlier = action(
            "Move photo &earlier",
            lambda: self.move_selected_photos(-1),
            "Alt+Left",
            None,
            "Move the selected photos one place earlier in the story",
        )
        self.act_move_later = action(
            "Move photo &later",
            lambda: self.move_selected_photos(+1),
            "Alt+Right",
            None,
            "Move the selected photos one place later in the story",
        )
        self.act_sort_date = action(
            "Sort by &date",
            self.sort_by_date,
            "Ctrl+Shift+D",
            None,
            "Order the photos by when they were taken",
        )
        self.act_relink = action(
            "Re&link missing photos…",
            self.relink_dialog,
            None,
            None,
            "Find moved photos in a folder by their content",
        )
        self.act_cancel_import = action(
            "Stop &importing",
            self.cancel_imports,
            None,
            sp.SP_DialogCancelButton,
            "Stop adding photos (or looking for moved ones); photos already added stay",
        )
        self.act_generate = action(
            "&Generate",
            self.generate,
            "Ctrl+Return",
            sp.SP_MediaPlay,
            "Tell the story of these photos",
        )
        self.act_stop = action(
            "&Stop",
            self.stop_generation,
            "Esc",
            sp.SP_MediaStop,
            "Stop writing; the story so far is kept as a stopped version",
        )
        self.act_copy = action(
            "&Copy story as text",
            self.copy_story,
            "Ctrl+Shift+C",
            None,
            "Copy the story, without tags, to the clipboard",
        )
        self.export_actions: dict[str, QAction] = {}
        for kind, (label, _suffix, _filter) in EXPORT_KINDS.items():
            self.export_actions[kind] = action(
                f"Export as {label}…", lambda k=kind: self.export_dialog(k)
            )
        self.export_actions["html"].setShortcut(QKeySequence("Ctrl+E"))
        self.act_delete_run = action(
            "Delete version…",
            self.delete_current_run,
            None,
            sp.SP_TrashIcon,
            "Delete the selected version of the story",
        )
        self.act_compare = action(
            "Compare versions",
            self.compare_versions,
            "Ctrl+K",
            None,
            "Show two versions of the story side by side",
        )
        self.act_settings = action(
            "&Settings…", self.open_settings, QKeySequence.StandardKey.Preferences
        )
        self.act_guide = action("&First-run guide…", self.open_first_run_guide)
        self.act_quit = action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_story_tab = action("Show story", lambda: self.tabs.setCurrentIndex(0), "Ctrl+1")
        self.act_analysis_tab = action(
            "Show analysis", lambda: self.tabs.setCurrentIndex(1), "Ctrl+2"
        )
        self.act_compare_tab = action(
            "Show comparison", lambda: self.tabs.setCurrentIndex(2), "Ctrl+3"
        )

    def _build_ui(self) -> None:
        # ---- left: albums and versions
        left = QWidget(self)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(8, 8, 4, 8)
        albums_label = QLabel("<b>Albums</b>")
        self.album_view = QListView(left)
        self.album_view.setObjectName("albumList")
        self.album_view.setAccessibleName("Albums")
        self.album_view.setModel(self.album_model)
        self.album_view.setEditTriggers(
            QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.DoubleClicked
        )
        self.album_view.setSpacing(2)
        self.album_view.setWordWrap(True)
        self.album_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        albums_label.setBuddy(self.album_view)
        album_buttons = QHBoxLayout()
        self.new_album_button = _tool_button(self.act_new_album, "New")
        self.rename_album_button = _tool_button(self.act_rename_album, "Rename")
        self.delete_album_button = _tool_button(self.act_delete_album, "Delete")
        for button in (self.new_album_button, self.rename_album_button, self.delete_album_button):
            album_buttons.addWidget(button)
        versions_label = QLabel("<b>Versions</b>")
        self.run_view = QListView(left)
        self.run_view.setObjectName("versionList")
        self.run_view.setAccessibleName("Story versions")
        self.run_view.setModel(self.run_model)
        self.run_view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.run_view.setWordWrap(True)
        self.run_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.run_view.setSpacing(2)
        self.run_view.setToolTip("Select one version to read it; select two and Compare.")
        versions_label.setBuddy(self.run_view)
        run_buttons = QHBoxLayout()
        self.delete_run_button = _tool_button(self.act_delete_run, "Delete")
        self.compare_button = _tool_button(self.act_compare, "Compare")
        run_buttons.addWidget(self.delete_run_button)
        run_buttons.addWidget(self.compare_button)
        left_layout.addWidget(albums_label)
        left_layout.addWidget(self.album_view, 3)
        left_layout.addLayout(album_buttons)
        left_layout.addSpacing(8)
        left_layout.addWidget(versions_label)
        left_layout.addWidget(self.run_view, 2)
        left_layout.addLayout(run_buttons)

        # ---- centre top: photos of the album
        photos = QWidget(self)
        photos_layout = QVBoxLayout(photos)
        photos_layout.setContentsMargins(4, 8, 8, 0)
        photo_bar = QHBoxLayout()
        self.album_title = QLabel("")
        self.album_title.setObjectName("albumTitle")
        self.add_photos_button = _tool_button(self.act_add_photos, "Add photos…")
        self.remove_photos_button = _tool_button(self.act_remove_photos, "Remove")
        self.sort_button = _tool_button(self.act_sort_date, "Sort by date")
        self.cancel_import_button = _tool_button(self.act_cancel_import, "Stop importing")
        self.cancel_import_button.setObjectName("cancelImportButton")
        self.cancel_import_button.setVisible(False)  # shown only while photos are imported
        self.cost_label = QLabel("")
        self.cost_label.setObjectName("costLabel")
        self.cost_label.setToolTip(
            "Estimated cost of a story of these photos at this detail level: vision tokens, "
            "context size and memory for the default 7B model"
        )
        photo_bar.addWidget(self.album_title)
        photo_bar.addSpacing(12)
        photo_bar.addWidget(self.add_photos_button)
        photo_bar.addWidget(self.remove_photos_button)
        photo_bar.addWidget(self.sort_button)
        photo_bar.addWidget(self.cancel_import_button)
        photo_bar.addStretch(1)
        photo_bar.addWidget(self.cost_label)
        self.filmstrip = QListView(photos)
        self.filmstrip.setObjectName("filmstrip")
        self.filmstrip.setAccessibleName("Photos of the album, in story order")
        self.filmstrip.setModel(self.photo_model)
        # List mode (not icon mode): a drag inside the strip goes through the model, so the new
        # order is saved; icon mode would only move the icons on screen.
        self.filmstrip.setViewMode(QListView.ViewMode.ListMode)
        self.filmstrip.setFlow(QListView.Flow.LeftToRight)
        self.filmstrip.setItemDelegate(FilmstripDelegate(self.filmstrip))
        self.filmstrip.setWrapping(False)
        self.filmstrip.setIconSize(FILMSTRIP_ICON)
        self.filmstrip.setGridSize(QSize(FILMSTRIP_ICON.width() + 28, FILMSTRIP_ICON.height() + 48))
        self.filmstrip.setUniformItemSizes(True)
        self.filmstrip.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.filmstrip.setDragEnabled(True)
        self.filmstrip.setAcceptDrops(True)
        self.filmstrip.setDropIndicatorShown(True)
        self.filmstrip.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        self.filmstrip.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.filmstrip.setFixedHeight(FILMSTRIP_ICON.height() + 70)
        self.filmstrip.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.filmstrip.setToolTip(
            "Drop photos or folders here; drag photos to change the story order"
        )
        photos_layout.addLayout(photo_bar)
        photos_layout.addWidget(self.filmstrip)

        # ---- generation toolbar
        toolbar = QToolBar("Story", self)
        toolbar.setObjectName("storyToolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.addAction(self.act_generate)
        toolbar.addAction(self.act_stop)
        toolbar.addSeparator()
        self.preset_combo = QComboBox(self)
        self.preset_combo.setObjectName("presetCombo")
        self.preset_combo.addItem("Faithful", Preset.FAITHFUL)
        self.preset_combo.addItem("Creative", Preset.CREATIVE)
        preset = getattr(self.settings, "preset", Preset.FAITHFUL)
        self.preset_combo.setCurrentIndex(0 if preset is Preset.FAITHFUL else 1)
        self.preset_combo.setToolTip(
            "Faithful: sticks closely to what is in the photos. Creative: the model card's "
            "sampling (temperature 0.7, top-p 0.9)."
        )
        self.detail_combo = QComboBox(self)
        self.detail_combo.setObjectName("detailCombo")
        for detail in Detail:
            self.detail_combo.addItem(
                f"{detail.value.capitalize()} detail ({detail.token_budget} tokens/photo)", detail
            )
        detail = getattr(self.settings, "detail", Detail.NORMAL)
        self.detail_combo.setCurrentIndex(list(Detail).index(detail))
        self.detail_combo.setToolTip("More detail: better boxes, slower and more memory")
        self.seed_spin = QSpinBox(self)
        self.seed_spin.setObjectName("seedSpin")
        self.seed_spin.setRange(-1, 2_147_483_647)
        seed = getattr(self.settings, "seed", None)
        self.seed_spin.setValue(-1 if seed is None else seed)
        self.seed_spin.setSpecialValueText("random")
        self.seed_spin.setPrefix("seed ")
        self.seed_spin.setToolTip("A fixed seed tells the same story again; 'random' varies it")
        preset_label = QLabel(" Preset ")
        preset_label.setBuddy(self.preset_combo)
        toolbar.addWidget(preset_label)
        toolbar.addWidget(self.preset_combo)
        toolbar.addWidget(QLabel("  "))
        toolbar.addWidget(self.detail_combo)
        toolbar.addWidget(QLabel("  "))
        toolbar.addWidget(self.seed_spin)
        toolbar.addSeparator()
        self.phase_label = QLabel("")
        self.phase_label.setObjectName("phaseLabel")
        self.progress_bar = QProgressBar(self)
        self.progress_bar.setMaximumWidth(180)
        self.progress_bar.setTextVisible(False)
        toolbar.addWidget(QLabel(" "))
        # A widget inside a toolbar is shown and hidden through its action.
        self.progress_action = toolbar.addWidget(self.progress_bar)
        self.progress_action.setVisible(False)
        toolbar.addWidget(QLabel(" "))
        toolbar.addWidget(self.phase_label)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)
        self.toolbar = toolbar

        # ---- centre bottom: story / analysis / compare
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
        centre.addWidget(photos)
        centre.addWidget(self.tabs)
        centre.setStretchFactor(1, 1)
        centre.setChildrenCollapsible(False)
        main = QSplitter(Qt.Orientation.Horizontal, self)
        main.addWidget(left)
        main.addWidget(centre)
        main.setStretchFactor(1, 1)
        main.setSizes([250, 1190])
        main.setChildrenCollapsible(False)
        self.setCentralWidget(main)
        self.main_splitter = main
        self.centre_splitter = centre

        # ---- status bar
        status = self.statusBar()
        self.backend_label = QLabel("")
        self.backend_label.setObjectName("backendLabel")
        self.model_label = QLabel("")
        self.model_label.setObjectName("modelLabel")
        self.speed_label = QLabel("")
        self.speed_label.setObjectName("speedLabel")
        for label in (self.backend_label, self.model_label, self.speed_label):
            status.addPermanentWidget(label)
        self.set_backend_status("", "")

        # Tab order: albums -> photos -> generation controls -> story -> photo -> issues.
        order = [
            self.album_view,
            self.new_album_button,
            self.rename_album_button,
            self.delete_album_button,
            self.run_view,
            self.delete_run_button,
            self.compare_button,
            self.add_photos_button,
            self.remove_photos_button,
            self.sort_button,
            self.cancel_import_button,
            self.filmstrip,
            self.preset_combo,
            self.detail_combo,
            self.seed_spin,
            self.tabs,
            self.story_panel.browser,
            self.story_panel.issues_list,
        ]
        for first, second in itertools.pairwise(order):
            self.setTabOrder(first, second)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.act_new_album)
        file_menu.addAction(self.act_add_photos)
        file_menu.addSeparator()
        export_menu = file_menu.addMenu("&Export story")
        for act in self.export_actions.values():
            export_menu.addAction(act)
        file_menu.addAction(self.act_copy)
        file_menu.addSeparator()
        file_menu.addAction(self.act_settings)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        album_menu = bar.addMenu("&Album")
        for act in (
            self.act_rename_album,
            self.act_delete_album,
            self.act_add_photos,
            self.act_remove_photos,
            self.act_move_earlier,
            self.act_move_later,
            self.act_sort_date,
            self.act_relink,
            self.act_cancel_import,
        ):
            album_menu.addAction(act)
        story_menu = bar.addMenu("&Story")
        for act in (self.act_generate, self.act_stop):
            story_menu.addAction(act)
        story_menu.addSeparator()
        for act in (self.act_compare, self.act_delete_run):
            story_menu.addAction(act)
        view_menu = bar.addMenu("&View")
        for act in (self.act_story_tab, self.act_analysis_tab, self.act_compare_tab):
            view_menu.addAction(act)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.act_guide)

    def _connect(self) -> None:
        self.album_view.selectionModel().currentChanged.connect(self._on_album_changed)
        self.album_model.rename_requested.connect(self._rename_album_to)
        self.photo_model.order_changed.connect(self._on_order_changed)
        self.photo_model.files_dropped.connect(self._on_files_dropped)
        self.photo_model.modelReset.connect(self._update_cost)
        self.filmstrip.clicked.connect(self._on_photo_clicked)
        self.filmstrip.activated.connect(self._on_photo_clicked)
        self.photo_model.rowsMoved.connect(lambda *_: self.filmstrip.viewport().update())
        self.run_view.selectionModel().selectionChanged.connect(self._on_run_selection)
        # The compare tab offers the versions the list shows, whatever changed them.
        for signal in (
            self.run_model.modelReset,
            self.run_model.rowsInserted,
            self.run_model.rowsRemoved,
            self.run_model.dataChanged,
        ):
            signal.connect(lambda *_: self.compare_panel.set_runs(self.run_model.runs()))
        self.detail_combo.currentIndexChanged.connect(self._update_cost)
        self.story_panel.status_message.connect(self.show_status)
        self.analysis_panel.name_edited.connect(self.rename_entity)
        self.analysis_panel.entity_activated.connect(self._show_entity_from_analysis)
        self.filmstrip.selectionModel().selectionChanged.connect(self._update_actions)

    # ================================================================== albums

    def reload_albums(self, select_id: int | None = None) -> None:
        """Read the album list from the library (start-up, library moved)."""
        try:
            albums = self.library.albums()
            missing = {album.id: len(self.library.missing_photos(album.id)) for album in albums}
        except StorytellerError as err:
            show_error(self, err, action="Reading the library")
            albums, missing = [], {}
        self.album_model.set_albums(albums, missing)
        target = select_id if select_id is not None else self.current_album_id
        row = self.album_model.row_of(target) if target is not None else None
        if row is None and albums:
            row = 0
        if row is not None:
            self.album_view.setCurrentIndex(self.album_model.index(row))
        else:
            self._show_album(None)

    def _refresh_album_row(self, album_id: int) -> None:
        try:
            album = self.library.album(album_id)
            missing = len(self.library.missing_photos(album_id))
        except StorytellerError:
            return
        self.album_model.update_album(album, missing)

    def _unique_album_name(self, base: str = "New album") -> str:
        names = {album.name for album in self.album_model.albums()}
        if base not in names:
            return base
        n = 2
        while f"{base} {n}" in names:
            n += 1
        return f"{base} {n}"

    def new_album(self, name: str | None = None, *, edit: bool = True) -> Any:
        """Create an album (named, or "New album N" to be renamed in place) and select it."""
        try:
            album = self.library.create_album(name or self._unique_album_name())
        except StorytellerError as err:
            show_error(self, err, action="Creating the album")
            return None
        self.album_model.update_album(album, 0)
        row = self.album_model.row_of(album.id)
        assert row is not None
        index = self.album_model.index(row)
        self.album_view.setCurrentIndex(index)
        if name is None and edit:
            self.album_view.edit(index)
        return album

    def rename_album(self) -> None:
        """Start editing the current album's name in place."""
        index = self.album_view.currentIndex()
        if index.isValid():
            self.album_view.setFocus()
            self.album_view.edit(index)

    def _rename_album_to(self, album_id: int, name: str) -> None:
        try:
            album = self.library.rename_album(album_id, name)
        except StorytellerError as err:
            show_error(self, err, action="Renaming the album")
            return
        self.album_model.update_album(album)
        if album_id == self.current_album_id:
            self.album_title.setText(f"<b>{_html(album.name)}</b>")
            self.setWindowTitle(f"{album.name} — Storyteller")

    def delete_album(self) -> None:
        """Delete the current album (after asking); photo files are not touched."""
        album = self.current_album()
        if album is None:
            return
        if self.live is not None and self.live.album_id == album.id:
            self.show_status("Stop the story being written before deleting its album.")
            return
        if not self._confirm(
            self,
            "Delete album",
            f"Delete the album “{album.name}” and its {album.run_count} stories? "
            "Your photo files are not touched.",
        ):
            return
        try:
            self.library.delete_album(album.id)
        except StorytellerError as err:
            show_error(self, err, action="Deleting the album")
            return
        row = self.album_model.row_of(album.id)
        self.album_model.remove_album(album.id)
        if self.album_model.rowCount():
            row = min(row or 0, self.album_model.rowCount() - 1)
            self.album_view.setCurrentIndex(self.album_model.index(row))
        else:
            self._show_album(None)

    def current_album(self) -> Any | None:
        """The selected album's record, or None."""
        if self.current_album_id is None:
            return None
        row = self.album_model.row_of(self.current_album_id)
        return self.album_model.album_at(row) if row is not None else None

    def _on_album_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        album = self.album_model.album_at(current.row()) if current.isValid() else None
        self._show_album(album)

    def _show_album(self, album: Any | None) -> None:
        self.current_album_id = album.id if album is not None else None
        self.album_title.setText(f"<b>{_html(album.name)}</b>" if album else "")
        self.setWindowTitle(f"{album.name} — Storyteller" if album else "Storyteller")
        if album is None:
            self.photo_model.set_photos([])
            self.run_model.set_runs([])
            self._show_run(None)
            self._update_actions()
            return
        self._reload_photos()
        self._reload_runs(select_latest=True)
        self._update_actions()

    # ================================================================== photos

    def _reload_photos(self) -> None:
        if self.current_album_id is None:
            return
        try:
            photos = self.library.photos(self.current_album_id)
        except StorytellerError as err:
            show_error(self, err, action="Reading the album")
            photos = []
        self.photo_model.set_photos(photos)
        self._load_thumbnails(photos)
        self._update_cost()
        self._update_actions()

    def _load_thumbnails(self, photos: Sequence[Any]) -> None:
        wanted = [p for p in photos if not p.missing and not self.photo_model.has_thumbnail(p.id)]
        if not wanted:
            return
        library = self.library
        device_ratio = self.filmstrip.devicePixelRatioF()
        # Enough pixels for the icon on this screen (the cached 256 px covers up to 2x).
        size = max(THUMBNAIL_PX, math.ceil(FILMSTRIP_ICON.width() * device_ratio))

        def job(ctx: JobContext) -> None:
            for photo in wanted:
                if ctx.should_stop():
                    return
                try:
                    path = library.thumbnail_path(photo, size)
                except StorytellerError:
                    continue
                image = QImage(str(path))  # QImage (not QPixmap) is safe outside the GUI thread
                if not image.isNull():
                    ctx.emit((photo.id, image))

        handle = self._start(CallableWorker(job), "Loading thumbnails")
        handle.item.connect(
            lambda item: self.photo_model.set_thumbnail(item[0], item[1], device_ratio)
        )

    def add_photos_dialog(self) -> None:
        """Pick photos with a file dialog and import them into the current album."""
        if self.current_album_id is None:
            self.new_album(self._unique_album_name(), edit=False)
        files, _ = QFileDialog.getOpenFileNames(
            self,
            "Add photos",
            str(Path.home()),
            "Images (*.jpg *.jpeg *.png *.webp *.heic *.heif *.bmp *.tif *.tiff);;All files (*)",
        )
        if files:
            self.import_paths([Path(f) for f in files])

    def _on_files_dropped(self, paths: list[Path], row: int) -> None:
        self.import_paths(paths, insert_at=row)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.import_paths(paths)

    def import_paths(self, paths: Sequence[Path], insert_at: int = -1) -> None:
        """Add files and folders to the current album in the background (a new album if none)."""
        if (
            self.current_album_id is None
            and self.new_album(self._unique_album_name(), edit=False) is None
        ):
            return
        album_id = self.current_album_id
        assert album_id is not None
        library = self.library

        def job(ctx: JobContext) -> Any:
            def progress(count: int, path: Path) -> None:
                ctx.report(-1, f"Importing {count}: {path.name}")

            report = library.add_photos(
                album_id, list(paths), progress=progress, should_stop=ctx.should_stop
            )
            if insert_at >= 0 and report.added:
                order = [p.id for p in library.photos(album_id)]
                added = [p.id for p in report.added]
                rest = [pid for pid in order if pid not in set(added)]
                library.reorder(album_id, rest[:insert_at] + added + rest[insert_at:])
            return report

        handle = self._start(CallableWorker(job), "Importing photos", busy=True)
        handle.finished.connect(lambda report: self._on_import_done(album_id, report))
        self._track_import(handle)

    def _track_import(self, handle: WorkerHandle) -> None:
        """Offer "Stop importing" while ``handle`` (an import or a relink) runs."""
        self._imports.append(handle)
        handle.ended.connect(lambda h=handle: self._import_ended(h))
        self._update_actions()

    def _import_ended(self, handle: WorkerHandle) -> None:
        if handle in self._imports:
            self._imports.remove(handle)
        self._update_actions()

    def is_importing(self) -> bool:
        """True while photos are being imported or looked for."""
        return any(handle.is_running() for handle in self._imports)

    def cancel_imports(self) -> None:
        """Stop the running imports and relinks after the file each one is reading; the photos
        added so far stay in the album."""
        running = [handle for handle in self._imports if handle.is_running()]
        for handle in running:
            handle.cancel()
        if running:
            self.show_status("Stopping the import…")

    def _on_import_done(self, album_id: int, report: Any) -> None:
        self._refresh_album_row(album_id)
        if album_id == self.current_album_id:
            self._reload_photos()
        added = f"Added {len(report.added)} photo(s)"
        parts = [f"Import stopped. {added}" if report.stopped else added]
        if report.duplicates:
            parts.append(f"{len(report.duplicates)} already in the album")
        if report.skipped:
            parts.append(f"{len(report.skipped)} non-image file(s) skipped")
        if report.failed:
            parts.append(f"{len(report.failed)} could not be read")
        self.show_status("; ".join(parts) + ".")
        if report.failed and not self._closing:  # no message box for a window being closed
            details = "\n".join(f.message for f in report.failed[:20])
            show_error(
                self,
                StorytellerError(f"{len(report.failed)} file(s) could not be added:\n{details}"),
                action="Importing photos",
            )

    def _on_order_changed(self, photo_ids: list[int]) -> None:
        if self.current_album_id is None:
            return
        try:
            self.library.reorder(self.current_album_id, photo_ids)
        except StorytellerError as err:
            show_error(self, err, action="Reordering photos")
            self._reload_photos()
            return
        self.filmstrip.viewport().update()
        self.show_status("New photo order saved.")

    def remove_selected_photos(self) -> None:
        """Take the selected photos out of the album (the files stay)."""
        if self.current_album_id is None:
            return
        ids = [
            self.photo_model.photo_at(index.row()).id
            for index in self.filmstrip.selectionModel().selectedIndexes()
        ]
        if not ids:
            return
        try:
            self.library.remove_photos(self.current_album_id, ids)
        except StorytellerError as err:
            show_error(self, err, action="Removing photos")
            return
        self._reload_photos()
        self._refresh_album_row(self.current_album_id)
        self.show_status(f"Removed {len(ids)} photo(s) from the album; the files are untouched.")

    def move_selected_photos(self, step: int) -> None:
        """Move the selected photos one place earlier (-1) or later (+1): drag without a mouse."""
        rows = sorted(i.row() for i in self.filmstrip.selectionModel().selectedIndexes())
        if not rows:
            return
        ids = [self.photo_model.photo_at(r).id for r in rows]
        target = rows[0] - 1 if step < 0 else rows[-1] + 2
        if target < 0 or target > self.photo_model.rowCount():
            return
        if self.photo_model.move_photos(ids, target):
            selection = self.filmstrip.selectionModel()
            selection.clearSelection()
            for photo_id in ids:
                row = self.photo_model.row_of(photo_id)
                if row is not None:
                    selection.select(
                        self.photo_model.index(row), QItemSelectionModel.SelectionFlag.Select
                    )
            first_row = self.photo_model.row_of(ids[0])
            if first_row is not None:
                selection.setCurrentIndex(
                    self.photo_model.index(first_row), QItemSelectionModel.SelectionFlag.NoUpdate
                )

    def _on_photo_clicked(self, index: QModelIndex) -> None:
        """Show the clicked photo, with every box the current story has in it."""
        photo = self.photo_model.photo_at(index.row())
        if photo is None or self.current_story is None:
            return
        frames = self.story_panel.frame_photos
        frame = next((n for n, p in frames.items() if p.path == photo.path), None)
        if frame is None:
            return
        analysis = self.current_story.frame(frame)
        ids = tuple(e.id for e in (*analysis.characters, *analysis.objects)) if analysis else ()
        self.story_panel.show_entities(frame, ids)
        self.tabs.setCurrentWidget(self.story_panel)

    def sort_by_date(self) -> None:
        """Order the album's photos by capture date and save that order."""
        if self.current_album_id is None:
            return
        try:
            photos = self.library.sort_by_capture_date(self.current_album_id)
        except StorytellerError as err:
            show_error(self, err, action="Sorting photos")
            return
        self.photo_model.apply_order([p.id for p in photos])
        self.show_status("Photos sorted by the date they were taken.")

    def relink_dialog(self) -> None:
        """Pick a folder to look for the album's missing photos in."""
        if self.current_album_id is None:
            return
        folder = QFileDialog.getExistingDirectory(self, "Find moved photos in")
        if folder:
            self.relink(Path(folder))

    def relink(self, folder: Path) -> WorkerHandle | None:
        """Look for the album's missing photos in ``folder`` (by content) in the background."""
        if self.current_album_id is None:
            return None
        album_id = self.current_album_id
        library = self.library
        worker = CallableWorker(
            lambda ctx: library.relink(album_id, folder, should_stop=ctx.should_stop)
        )
        handle = self._start(worker, "Looking for moved photos", busy=True)
        handle.finished.connect(lambda report: self._on_relinked(album_id, report))
        self._track_import(handle)
        return handle

    def _on_relinked(self, album_id: int, report: Any) -> None:
        self._refresh_album_row(album_id)
        if album_id == self.current_album_id:
            self._reload_photos()
        found = f"Found {len(report.relinked)} photo(s); {len(report.still_missing)} still missing"
        if report.unreadable:  # non-fatal: those files vanished or were unreadable mid-search
            found += f"; {len(report.unreadable)} file(s) in the folder could not be read"
        found += "."
        self.show_status(f"Search stopped. {found}" if report.stopped else found)

    def _update_cost(self) -> None:
        photos = [p for p in self.photo_model.photos() if p.width and p.height]
        if not photos:
            self.cost_label.setText("Drop photos here or use Add photos (5–10 work best)")
            self.cost_label.setToolTip("")  # not the estimate of the photos that were here
            return
        estimate = services.estimate_cost(
            [(p.width, p.height) for p in photos],
            self.detail(),
            self.max_tokens(),
            services.run_speeds(self.settings),
        )
        text = f"{len(photos)} photos · {estimate.describe()}"
        if estimate.problem:
            self.cost_label.setText(f'<span style="color:#b00020;">⚠ {_html(text)}</span>')
            self.cost_label.setToolTip(estimate.problem)
        else:
            self.cost_label.setText(_html(text))
            self.cost_label.setToolTip(
                "Estimated cost of a story of these photos at this detail level: vision "
                "tokens, context size and memory for the default 7B model"
            )

    # ================================================================== generation

    def detail(self) -> Detail:
        """The detail level chosen in the toolbar."""
        return self.detail_combo.currentData()

    def preset(self) -> Preset:
        """The sampling preset chosen in the toolbar."""
        return self.preset_combo.currentData()

    def max_tokens(self) -> int:
        """The longest story to ask for (Settings.max_tokens, else the model card's 4096)."""
        return int(getattr(self.settings, "max_tokens", 0) or DEFAULT_MAX_TOKENS)

    def seed(self) -> int | None:
        """The seed chosen in the toolbar; None for a random one."""
        value = self.seed_spin.value()
        return None if value < 0 else value

    def is_generating(self) -> bool:
        """True while a story is being written."""
        return self._generation is not None

    def generate(self) -> None:
        """Start telling the story of the current album's photos."""
        if self.is_generating() or self.current_album_id is None:
            return
        photos = self.photo_model.photos()
        usable = [p for p in photos if not p.missing]
        if not usable:
            self.show_status("Add photos to the album first.")
            return
        if len(usable) < len(photos):
            self.show_status(
                f"{len(photos) - len(usable)} missing photo(s) are left out of this story."
            )
        request = StoryRequest(
            photos=tuple(p.path for p in usable),
            detail=self.detail(),
            sampling=self.preset().sampling(max_tokens=self.max_tokens(), seed=self.seed()),
        )
        self._remember_choices()
        parameters = {
            "preset": self.preset().value,
            "detail": self.detail().value,
            **request.sampling.to_dict(),
        }
        try:
            from desktop_app.library.records import RunSpec

            run_id = self.library.start_run(
                self.current_album_id,
                RunSpec(
                    photo_ids=tuple(p.id for p in usable),
                    parameters=parameters,
                    backend=self._backend.description if self._backend else "",
                ),
            )
        except StorytellerError as err:
            show_error(self, err, action="Starting the story")
            return
        frame_photos = {
            index: FramePhoto(p.path, services.prepared_size((p.width, p.height), self.detail()))
            for index, p in enumerate(usable, start=1)
        }
        self.live = LiveRun(
            self.current_album_id, run_id, len(usable), services.new_stream_parser(), frame_photos
        )
        self.live.clock = services.run_clock(
            services.run_speeds(self.settings),
            [(p.width, p.height) for p in usable if p.width and p.height],
            self.detail(),
            self.max_tokens(),
        )
        self.current_run = None  # the panels now show the run being written
        self.story_panel.set_frame_photos(frame_photos)
        self.analysis_panel.set_frame_photos(frame_photos)
        self.story_panel.clear("Starting…")
        self.tabs.setCurrentWidget(self.story_panel)
        self._refresh_album_row(self.current_album_id)
        with contextlib.suppress(StorytellerError):
            self.run_model.upsert(self.library.run(run_id))
        self._select_run_row(run_id)

        handle = self._start(GenerateWorker(_LazyBackend(self), request), None)
        handle.phase.connect(self._on_phase)
        handle.token.connect(self._on_token)
        handle.finished.connect(self._on_generation_finished)
        handle.failed.connect(self._on_generation_failed)
        self._generation = handle
        self.progress_bar.setRange(0, 0)
        self.progress_action.setVisible(True)
        self.phase_label.setText("Starting…")
        self._render_timer.start()
        self._update_actions()

    def _remember_choices(self) -> None:
        """Keep the toolbar's preset, detail and seed as the defaults of the next session."""
        if self.settings is None:
            return
        chosen = {"preset": self.preset(), "detail": self.detail(), "seed": self.seed()}
        if all(getattr(self.settings, key) == value for key, value in chosen.items()):
            return
        settings = self.settings.replace(**chosen)
        try:
            services.save_settings(settings)
        except (StorytellerError, OSError) as err:
            self.show_status(f"Could not save your choices: {err}")
            return
        self.settings = settings

    def backend(self) -> StoryBackend:
        """The backend, created on first use (in the worker thread: loading can take a while)."""
        if self._backend is None:
            self._backend = self._backend_factory()
        return self._backend

    def replace_backend(self, factory: BackendFactory) -> None:
        """Use another backend from the next run on (settings changed)."""
        if self._backend is not None and not self.is_generating():
            self._backend.close()
            self._backend = None
        self._backend_factory = factory

    def _on_phase(self, event: PhaseEvent) -> None:
        if self.live is None:
            return
        if self.live.clock is not None:
            self.live.clock.on_phase(event.phase, event.index)
        self.phase_label.setText(event.describe().capitalize() + "…" + self.live.remaining())
        if event.total:
            self.progress_bar.setRange(0, event.total)
            self.progress_bar.setValue(event.index)
        else:
            self.progress_bar.setRange(0, 0)

    def _on_token(self, text: str) -> None:
        live = self.live
        if live is None:
            return
        if live.first_token_at is None:
            live.first_token_at = time.perf_counter()
        live.tokens += 1
        if live.clock is not None:
            live.clock.on_tokens(1)
        live.parser.feed(text)
        live.dirty = True
        try:
            self.library.append_output(live.run_id, text)
        except StorytellerError:
            logger.warning("could not save streamed text of run %s", live.run_id, exc_info=True)

    def _render_live(self) -> None:
        live = self.live
        if live is None or not live.dirty or live.album_id != self.current_album_id:
            return  # (the user is looking at another album: render when they come back)
        if self.current_run is not None and self.current_run.id != live.run_id:
            return  # an older version of this album is open
        live.dirty = False
        story = live.parser.snapshot()
        self.current_story = story
        self.story_panel.set_story(story, live=True, frame_count=live.frame_count)
        if self.tabs.currentWidget() is self.analysis_panel:
            self.analysis_panel.set_story(story, {})
        self.phase_label.setText(self._live_phase(story, live))
        self.progress_bar.setRange(0, live.frame_count * 2)
        self.progress_bar.setValue(self._live_progress(story, live))

    @staticmethod
    def _live_phase(story: Any, live: LiveRun) -> str:
        speed = live.tokens_per_s()
        rate = f" · {speed:.1f} tokens/s" if speed else ""
        if story.segments:
            frame = story.segments[-1].image or len(story.segments)
            where = f"Writing frame {frame}/{live.frame_count}"
        elif story.narrative:
            where = "Planning the narrative"
        elif story.frames:
            where = f"Analysing frame {story.frames[-1].index}/{live.frame_count}"
        else:
            where = "Analysing"
        return f"{where}{rate} · {live.tokens} tokens{live.remaining()}"

    @staticmethod
    def _live_progress(story: Any, live: LiveRun) -> int:
        if story.segments:
            return live.frame_count + min(live.frame_count, len(story.segments))
        return min(live.frame_count, len(story.frames))

    def stop_generation(self) -> None:
        """Stop writing at the next token; the story so far becomes a stopped version."""
        if self._generation is None or self.live is None:
            return
        self._generation.cancel()
        self.phase_label.setText("Stopping…")
        self.act_stop.setEnabled(False)

    def _end_generation(self) -> LiveRun | None:
        live = self.live
        self.live = None
        self._generation = None
        self._render_timer.stop()
        self.progress_action.setVisible(False)
        self._update_actions()
        self._update_cost()  # the time estimate now includes what this run measured
        return live

    def _on_generation_finished(self, result: RunResult) -> None:
        live = self._end_generation()
        if live is None:
            return
        try:
            run = self.library.finish_run(live.run_id, result)
        except StorytellerError as err:
            show_error(self, err, action="Saving the story")
            run = None
        speed = result.timings.tokens_per_s or live.tokens_per_s()
        self.speed_label.setText(f"last run {speed:.1f} tokens/s")
        self.set_backend_status(result.backend, result.model)
        verb = "Stopped" if result.cancelled else "Finished"
        self.phase_label.setText(
            f"{verb}: {result.timings.generated_tokens or live.tokens} tokens, {speed:.1f} tokens/s"
        )
        self._after_run(live, run)

    def _on_generation_failed(self, err: BaseException, details: str) -> None:
        live = self._end_generation()
        run = None
        if live is not None:
            try:
                run = self.library.fail_run(live.run_id, str(err))
                if live.tokens == 0:
                    # Nothing was written (no model set up, a server down...): no version to keep.
                    self.library.delete_run(live.run_id)
                    self.run_model.remove(live.run_id)
                    run = None
            except StorytellerError:
                logger.warning("could not record the failure of run %s", live.run_id)
        self.phase_label.setText("Failed")
        show_error(self, err, details, action="Writing the story")
        if live is not None:
            self._after_run(live, run)
            if run is None and live.album_id == self.current_album_id:
                self._reload_runs(select_latest=True)

    def _after_run(self, live: LiveRun, run: Any) -> None:
        self._refresh_album_row(live.album_id)
        if run is not None and live.album_id == self.current_album_id:
            self.run_model.upsert(run)
            self._select_run_row(run.id)
            self._show_run(run)
        if self._close_when_idle:
            QTimer.singleShot(0, self.close)

    # ================================================================== versions

    def _reload_runs(self, select_latest: bool = False) -> None:
        if self.current_album_id is None:
            return
        try:
            runs = self.library.runs(self.current_album_id)
        except StorytellerError as err:
            show_error(self, err, action="Reading the stories")
            runs = []
        self.run_model.set_runs(runs)
        if select_latest and runs:
            self._select_run_row(self.run_model.run_at(0).id)
        elif not runs:
            self._show_run(None)

    def _select_run_row(self, run_id: int) -> None:
        row = self.run_model.row_of(run_id)
        if row is None:
            return
        index = self.run_model.index(row)
        self.run_view.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect
        )

    def _on_run_selection(self, *_args: object) -> None:
        rows = sorted(i.row() for i in self.run_view.selectionModel().selectedIndexes())
        self._update_actions()
        if len(rows) != 1:
            return
        run = self.run_model.run_at(rows[0])
        if run is None:
            return
        if self.live is not None and run.id == self.live.run_id:
            self._show_live()
            return
        if self.current_run is not None and run.id == self.current_run.id:
            return
        try:
            run = self.library.run(run.id)
        except StorytellerError as err:
            show_error(self, err, action="Opening the story")
            return
        self._show_run(run)

    def _show_live(self) -> None:
        """Show the story being written (after looking at another album or version)."""
        live = self.live
        if live is None:
            return
        self.current_run = None
        self.story_panel.set_frame_photos(live.frame_photos)
        self.analysis_panel.set_frame_photos(live.frame_photos)
        live.dirty = True
        self._render_live()

    def _show_run(self, run: Any) -> None:
        """Show a stored version: parse its output, check it, render story and analysis."""
        self.current_run = run
        if run is None:
            self.current_story = None
            self.current_issues = []
            self.story_panel.clear()
            self.analysis_panel.clear()
            self._update_actions()
            return
        frame_photos = frame_photos_of(run)
        self.story_panel.set_frame_photos(frame_photos)
        self.analysis_panel.set_frame_photos(frame_photos)
        story = services.parse_story(run.raw_output)
        image_sizes = {i: p.prepared_size for i, p in frame_photos.items() if p.prepared_size}
        try:
            issues = services.validate_story(story, len(run.photos), image_sizes)
        except Exception:  # a validator bug must not hide the story
            logger.exception("validating run %s failed", run.id)
            issues = []
        names = self.library.display_names(run.id)
        self.current_story = story
        self.current_issues = issues
        status = getattr(run.status, "value", run.status)
        self.story_panel.set_story(story, names=names, issues=issues, frame_count=len(run.photos))
        self.analysis_panel.set_story(story, names)
        if status in ("stopped", "interrupted", "failed"):
            self.show_status(
                f"Version #{run.id} was {status}: it shows the story as far as it got."
            )
        self._update_actions()

    def selected_runs(self) -> list[Any]:
        """The versions selected in the versions list, newest first."""
        rows = sorted({i.row() for i in self.run_view.selectionModel().selectedIndexes()})
        return [run for run in (self.run_model.run_at(r) for r in rows) if run is not None]

    def delete_current_run(self) -> None:
        """Delete the selected versions (after asking)."""
        runs = self.selected_runs()
        if not runs:
            return
        if self.live is not None and any(run.id == self.live.run_id for run in runs):
            self.show_status("Stop the story being written before deleting it.")
            return
        label = f"version #{runs[0].id}" if len(runs) == 1 else f"{len(runs)} versions"
        if not self._confirm(self, "Delete version", f"Delete {label} of this story?"):
            return
        for run in runs:
            try:
                self.library.delete_run(run.id)
            except StorytellerError as err:
                show_error(self, err, action="Deleting the version")
                return
            self.run_model.remove(run.id)
        self.current_run = None
        if self.current_album_id is not None:
            self._refresh_album_row(self.current_album_id)
        if self.run_model.rowCount():
            self._select_run_row(self.run_model.run_at(0).id)
        else:
            self._show_run(None)

    def compare_versions(self) -> None:
        """Show the two selected versions (or the two newest) side by side."""
        runs = self.selected_runs()
        all_runs = self.run_model.runs()
        if len(runs) < 2:
            runs = all_runs[:2]
        if len(runs) < 2:
            self.show_status("An album needs two versions to compare: generate another one.")
            return
        left, right = runs[1], runs[0]  # older on the left
        self.compare_panel.compare(
            self.library.run(left.id),
            self.library.run(right.id),
            self.library.display_names(left.id),
            self.library.display_names(right.id),
        )
        self.tabs.setCurrentWidget(self.compare_panel)

    # ================================================================== names

    def rename_entity(self, entity_id: str, name: str) -> None:
        """Give ``entity_id`` a display name in the current version (stored as an edit)."""
        if self.current_run is None:
            return
        try:
            self.library.set_display_name(self.current_run.id, entity_id, name or None)
            names = self.library.display_names(self.current_run.id)
        except StorytellerError as err:
            show_error(self, err, action="Renaming")
            return
        self.story_panel.set_names(names)
        self.analysis_panel.set_story(self.current_story, names)
        self.show_status(
            f"{entity_id} is now called “{name}” in this version."
            if name
            else f"{entity_id} has its original name again."
        )

    def _show_entity_from_analysis(self, frame: int, entity_id: str) -> None:
        self.story_panel.show_entities(frame, (entity_id,))
        self.story_panel.select_entity(entity_id)
        self.tabs.setCurrentWidget(self.story_panel)

    # ================================================================== export

    def current_names(self) -> dict[str, str]:
        """The user's display names for the open version."""
        return self.library.display_names(self.current_run.id) if self.current_run else {}

    def export_dialog(self, kind: str) -> None:
        """Ask where to export the open version as ``kind`` and export it."""
        if self.current_story is None or self.current_run is None:
            self.show_status("Open a story version to export it.")
            return
        label, suffix, file_filter = EXPORT_KINDS[kind]
        album = self.current_album()
        default = (
            Path.home() / f"{(album.name if album else 'story')}-{self.current_run.id}{suffix}"
        )
        path, _ = QFileDialog.getSaveFileName(self, f"Export as {label}", str(default), file_filter)
        if path:
            self.export(kind, Path(path))

    def export(self, kind: str, path: Path) -> WorkerHandle | None:
        """Write the current version to ``path`` in the background."""
        if self.current_story is None or self.current_run is None:
            return None
        album = self.current_album()
        title = album.name if album else "Story"
        story, issues, names = self.current_story, list(self.current_issues), self.current_names()
        photos = {i: p.path for i, p in frame_photos_of(self.current_run).items()}
        worker = CallableWorker(
            lambda ctx: export_story(kind, path, story, issues, names, photos, title)
        )
        handle = self._start(worker, f"Exporting {path.name}")
        handle.finished.connect(lambda _r: self.show_status(f"Exported to {path}"))
        return handle

    def copy_story(self) -> None:
        """Copy the open version's story, without tags, to the clipboard."""
        if self.current_story is None:
            return
        text = services.render_export("text", self.current_story, [], names=self.current_names())
        QGuiApplication.clipboard().setText(text)
        self.show_status("Story copied as text.")

    # ================================================================== settings

    def open_settings(self) -> None:
        """Open the settings dialog (non-modal to the event loop)."""
        from desktop_app.ui.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings, self)
        dialog.saved.connect(self._on_settings_saved)
        dialog.open()

    def _on_settings_saved(self, settings: Any) -> None:
        old_library = services.library_location(self.settings)
        self.settings = settings
        self.replace_backend(lambda: services.backend_from_settings(settings))
        self.set_backend_status(services.describe_backend_settings(settings), "")
        new_library = services.library_location(settings)
        if new_library != old_library and not self.is_generating():
            try:
                library = services.open_library(settings)
            except StorytellerError as err:
                show_error(self, err, action="Opening the library")
                return
            self.library.close()
            self.library = library
            self.current_album_id = None
            self.reload_albums()
        self.show_status("Settings saved.")

    def open_first_run_guide(self) -> None:
        """Open the first-run guide."""
        from desktop_app.ui.first_run import FirstRunGuide

        guide = FirstRunGuide(self.settings, self)
        guide.saved.connect(self._on_settings_saved)
        guide.open()

    # ================================================================== misc

    def set_backend_status(self, backend: str, model: str) -> None:
        """Show the backend/device and model in the status bar."""
        self.backend_label.setText(backend or "no model loaded yet")
        self.backend_label.setToolTip("The engine and the device it runs on")
        self.model_label.setText(f"model: {model}" if model else "")

    def show_status(self, message: str) -> None:
        """A passing message in the status bar."""
        self.statusBar().showMessage(message, 8000)

    def _update_actions(self) -> None:
        has_album = self.current_album_id is not None
        has_photos = self.photo_model.rowCount() > 0
        generating = self.is_generating()
        has_story = self.current_story is not None and self.current_run is not None
        selected_photos = bool(self.filmstrip.selectionModel().selectedIndexes())
        self.act_rename_album.setEnabled(has_album)
        self.act_delete_album.setEnabled(has_album)
        self.act_remove_photos.setEnabled(has_album and selected_photos)
        self.act_sort_date.setEnabled(has_album and has_photos)
        self.act_move_earlier.setEnabled(has_album and selected_photos)
        self.act_move_later.setEnabled(has_album and selected_photos)
        self.act_relink.setEnabled(has_album and has_photos)
        importing = bool(self._imports)
        self.act_cancel_import.setEnabled(importing)
        self.cancel_import_button.setVisible(importing)
        self.act_generate.setEnabled(has_album and has_photos and not generating)
        self.act_stop.setEnabled(generating)
        self.act_copy.setEnabled(has_story and not generating)
        for act in self.export_actions.values():
            act.setEnabled(has_story and not generating)
        self.act_delete_run.setEnabled(bool(self.selected_runs()))
        self.act_compare.setEnabled(self.run_model.rowCount() >= 2)
        for widget in (self.preset_combo, self.detail_combo, self.seed_spin):
            widget.setEnabled(not generating)

    def _start(self, worker: Worker, action: str | None, busy: bool = False) -> WorkerHandle:
        """Start ``worker``; failures are shown as "``action`` failed"."""
        handle = start_worker(worker, self)
        if action is not None:
            handle.failed.connect(
                lambda err, details: show_error(self, err, details, action=action)
            )
            if busy:
                handle.progress.connect(lambda _p, message: self.show_status(message))
        self._workers.append(handle)
        handle.ended.connect(lambda h=handle: self._forget_worker(h))
        return handle

    def _forget_worker(self, handle: WorkerHandle) -> None:
        if handle in self._workers:
            self._workers.remove(handle)
        handle.worker.deleteLater()
        handle.thread.deleteLater()

    def running_workers(self) -> list[WorkerHandle]:
        """Workers whose thread is still running."""
        return [h for h in self._workers if h.is_running()]

    def _window_state(self) -> QSettings:
        return QSettings(str(paths.config_dir() / "window.ini"), QSettings.Format.IniFormat)

    def _restore_window_state(self) -> int | None:
        """Size, panel sizes and album of the last session; returns that album's id."""
        state = self._window_state()
        for key, restore in (
            ("geometry", self.restoreGeometry),
            ("main_splitter", self.main_splitter.restoreState),
            ("centre_splitter", self.centre_splitter.restoreState),
            ("story_splitter", self.story_panel.splitter.restoreState),
        ):
            value = state.value(key)
            if isinstance(value, QByteArray):
                restore(value)
        album = state.value("album")
        try:
            return int(album) if album is not None else None
        except (TypeError, ValueError):
            return None

    def _save_window_state(self) -> None:
        state = self._window_state()
        state.setValue("geometry", self.saveGeometry())
        state.setValue("main_splitter", self.main_splitter.saveState())
        state.setValue("centre_splitter", self.centre_splitter.saveState())
        state.setValue("story_splitter", self.story_panel.splitter.saveState())
        if self.current_album_id is not None:
            state.setValue("album", self.current_album_id)
        state.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.is_generating():
            if not self._close_when_idle and not self._confirm(
                self,
                "Stop writing?",
                "A story is being written. Stop it and quit? The story so far is kept as a "
                "stopped version.",
            ):
                event.ignore()
                return
            self._close_when_idle = True
            self.stop_generation()
            event.ignore()  # closes again once the partial story is saved
            return
        self._save_window_state()
        self._closing = True
        # Every job checks its cancel flag between steps (an import between files), so this
        # returns after the current file or token, not when a big folder is done.
        for handle in list(self._workers):
            handle.stop()
        if self._backend is not None:
            self._backend.close()
            self._backend = None
        event.accept()


class FilmstripDelegate(QStyledItemDelegate):
    """Thumbnail above its caption, as in a photo strip."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        super().initStyleOption(option, index)
        option.decorationPosition = QStyleOptionViewItem.Position.Top
        option.displayAlignment = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop


class _LazyBackend:
    """Creates the window's backend on first use, in the worker thread."""

    def __init__(self, window: MainWindow) -> None:
        self._window = window

    @property
    def description(self) -> str:
        return self._window.backend().description

    def generate(self, request: StoryRequest, *, should_stop: Callable[[], bool]) -> Any:
        return self._window.backend().generate(request, should_stop=should_stop)

    def close(self) -> None:
        pass


def _tool_button(action: QAction, text: str) -> QPushButton:
    button = QPushButton(text)
    button.setIcon(action.icon())
    button.setToolTip(action.toolTip())
    button.clicked.connect(action.trigger)
    action.changed.connect(lambda: button.setEnabled(action.isEnabled()))
    button.setEnabled(action.isEnabled())
    return button


def _html(text: str) -> str:
    import html

    return html.escape(text)


def _ask_yes_no(parent: QWidget, title: str, text: str) -> bool:
    answer = QMessageBox.question(
        parent,
        title,
        text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes
