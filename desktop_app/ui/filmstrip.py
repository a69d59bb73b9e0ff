"""The photos of the open album, in story order: a strip of thumbnails under a bar with the
album's title, the photo commands and the cost estimate of a story.

Dragging inside the strip reorders the photos (the model saves the order); files dropped on it
are imported by ``desktop_app.ui.imports``.
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Sequence

from PySide6.QtCore import (
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListView,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.app.estimates import plan_run
from desktop_app.errors import StorytellerError
from desktop_app.library.errors import PhotoMissingError
from desktop_app.library.records import Album, Photo
from desktop_app.ui.actions import WindowActions, tool_button
from desktop_app.ui.gui_words import gui_text
from desktop_app.ui.photos import load_photo
from desktop_app.ui.session import Session
from desktop_app.ui.workers import CallableWorker, JobContext
from desktop_app.words import counted

logger = logging.getLogger(__name__)

THUMBNAIL_PX = 256
FILMSTRIP_ICON = QSize(128, 96)
COST_TIP = (
    "Estimated cost of a story of these photos (detail: {}, at most {} tokens per photo): "
    "vision tokens, context size and memory for the model chosen in Settings"
)


class FilmstripDelegate(QStyledItemDelegate):
    """Thumbnail above its caption, as in a photo strip; a selected photo is highlighted just
    around its thumbnail and caption, not down the whole height of the strip."""

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        super().initStyleOption(option, index)
        option.decorationPosition = QStyleOptionViewItem.Position.Top
        option.displayAlignment = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop

    def highlight_rect(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QRect:
        """Where the item paints: its cell, cut to the height of its thumbnail and caption."""
        shaped = QStyleOptionViewItem(option)
        self.initStyleOption(shaped, index)
        rect = option.rect.adjusted(2, 2, -2, 0)
        caption = shaped.fontMetrics.boundingRect(
            QRect(0, 0, rect.width() - 8, 1000),
            int(Qt.AlignmentFlag.AlignHCenter | Qt.TextFlag.TextWordWrap),
            shaped.text,
        )
        thumbnail = FILMSTRIP_ICON.height()  # also before the thumbnail is loaded
        rect.setHeight(min(option.rect.height() - 2, thumbnail + caption.height() + 10))
        return rect

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        shaped = QStyleOptionViewItem(option)
        shaped.rect = self.highlight_rect(option, index)
        super().paint(painter, shaped, index)


class Filmstrip(QWidget):
    """The album's title and photo commands above its photos; the cost of a story beside."""

    frame_requested = Signal(int, tuple)  # frame, entity ids: show them on the frame's photo
    photo_requested = Signal(object, str)  # a photo no story shows yet, and its caption
    full_size_requested = Signal(object)  # a photo's path: open it full size

    def __init__(
        self, session: Session, actions: WindowActions, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._session = session
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 8, 8, 0)
        layout.addLayout(self._build_bar(actions))
        self.view = self._build_view()
        layout.addWidget(self.view)
        model = session.photo_model
        model.order_changed.connect(self._on_order_changed)
        model.modelReset.connect(self._on_photos_reset)
        model.rowsMoved.connect(lambda *_: self.view.viewport().update())
        self.view.clicked.connect(self._on_photo_clicked)
        self.view.doubleClicked.connect(self._on_photo_opened)
        self.view.activated.connect(self._on_photo_opened)  # Enter (and double-click on some)
        session.album_opened.connect(self.set_album_title)
        session.album_renamed.connect(self.set_album_title)
        session.choices_changed.connect(self.update_cost)
        session.settings_changed.connect(self.update_cost)
        # The estimate now has this run's speeds, and what it left cached.
        session.run_ended.connect(self.update_cost)

    def _build_bar(self, actions: WindowActions) -> QHBoxLayout:
        bar = QHBoxLayout()
        self.album_title = QLabel("")
        self.album_title.setObjectName("albumTitle")
        self.add_photos_button = tool_button(actions["add_photos"], "Add photos…")
        self.remove_photos_button = tool_button(actions["remove_photos"], "Remove")
        self.sort_button = tool_button(actions["sort_date"], "Sort by date")
        self.cancel_import_button = tool_button(actions["cancel_import"], "Stop importing")
        self.cancel_import_button.setObjectName("cancelImportButton")
        self.cancel_import_button.setVisible(False)  # shown only while photos are imported
        self.cost_label = QLabel("")
        self.cost_label.setObjectName("costLabel")
        self.cost_label.setToolTip("")  # set with the first estimate
        # Wraps instead of widening the window: with the time and what is cached it is ~680 px,
        # which on one line kept the window from narrowing below ~1280 px.
        self.cost_label.setWordWrap(True)
        self.cost_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        bar.addWidget(self.album_title)
        bar.addSpacing(12)
        bar.addWidget(self.add_photos_button)
        bar.addWidget(self.remove_photos_button)
        bar.addWidget(self.sort_button)
        bar.addWidget(self.cancel_import_button)
        bar.addWidget(self.cost_label, 1)  # all the room left, right-aligned: wraps only if short
        return bar

    def _build_view(self) -> QListView:
        view = QListView(self)
        view.setObjectName("filmstrip")
        view.setAccessibleName("Photos of the album, in story order")
        view.setModel(self._session.photo_model)
        # List mode (not icon mode): a drag inside the strip goes through the model, so the new
        # order is saved; icon mode would only move the icons on screen.
        view.setViewMode(QListView.ViewMode.ListMode)
        view.setFlow(QListView.Flow.LeftToRight)
        view.setItemDelegate(FilmstripDelegate(view))
        view.setWrapping(False)
        view.setIconSize(FILMSTRIP_ICON)
        view.setGridSize(QSize(FILMSTRIP_ICON.width() + 28, FILMSTRIP_ICON.height() + 48))
        view.setUniformItemSizes(True)
        view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        view.setDragEnabled(True)
        view.setAcceptDrops(True)
        view.setDropIndicatorShown(True)
        view.setDragDropMode(QAbstractItemView.DragDropMode.DragDrop)
        view.setDefaultDropAction(Qt.DropAction.MoveAction)
        view.setFixedHeight(FILMSTRIP_ICON.height() + 70)
        view.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        view.setToolTip("Drop photos or folders here; drag photos to change the story order")
        return view

    def focus_order(self) -> list[QWidget]:
        """The strip's widgets in keyboard (Tab) order."""
        return [
            self.add_photos_button,
            self.remove_photos_button,
            self.sort_button,
            self.cancel_import_button,
            self.view,
        ]

    def set_album_title(self, album: Album | None) -> None:
        """Show the open album's name above its photos."""
        self.album_title.setText(f"<b>{html.escape(album.name)}</b>" if album else "")

    def has_selection(self) -> bool:
        """True when photos are selected in the strip."""
        return bool(self.view.selectionModel().selectedIndexes())

    # ---------------------------------------------------------------- photos

    def _on_photos_reset(self) -> None:
        self._load_thumbnails(self._session.photo_model.photos())
        self.update_cost()

    def _load_thumbnails(self, photos: Sequence[Photo]) -> None:
        model = self._session.photo_model
        wanted = [p for p in photos if not p.missing and not model.has_thumbnail(p.id)]
        if not wanted:
            return
        library = self._session.library
        device_ratio = self.view.devicePixelRatioF()
        # Enough pixels for the icon on this screen (the cached 256 px covers up to 2x).
        size = max(THUMBNAIL_PX, math.ceil(FILMSTRIP_ICON.width() * device_ratio))

        def job(ctx: JobContext) -> None:
            for photo in wanted:
                if ctx.should_stop():
                    return
                try:
                    path = library.thumbnail_path(photo, size)
                except PhotoMissingError:
                    continue
                except StorytellerError as err:
                    # The thumbnail cache cannot be written (a full disk, say): it is a cache,
                    # so the strip shows the photo itself, decoded at the icon's size.
                    logger.warning("%s; showing the photo without caching its thumbnail", err)
                    path = photo.path
                image, _full = load_photo(path, size)  # the thumbnail file, through the decoder
                if not image.isNull():
                    ctx.emit((photo.id, image))

        handle = self._session.start_job(CallableWorker(job), "Loading thumbnails")
        handle.item.connect(lambda item: model.set_thumbnail(item[0], item[1], device_ratio))

    def _on_order_changed(self, photo_ids: list[int]) -> None:
        session = self._session
        if session.album_id is None:
            return
        try:
            session.library.reorder(session.album_id, photo_ids)
        except StorytellerError as err:
            session.report_error(err, action="Reordering photos")
            session.reload_photos()
            return
        self.view.viewport().update()
        self.update_cost()  # the saved prompt was for the old order
        session.show_status("New photo order saved.")

    def remove_selected_photos(self) -> None:
        """Take the selected photos out of the album (the files stay)."""
        session = self._session
        album_id = session.album_id
        if album_id is None:
            return
        model = session.photo_model
        ids = [
            model.photo_at(index.row()).id for index in self.view.selectionModel().selectedIndexes()
        ]
        if not ids:
            return
        try:
            session.library.remove_photos(album_id, ids)
        except StorytellerError as err:
            session.report_error(err, action="Removing photos")
            return
        session.reload_photos()
        session.album_changed.emit(album_id)
        session.show_status(
            f"Removed {counted(len(ids), 'photo')} from the album; the files are untouched."
        )

    def move_selected_photos(self, step: int) -> None:
        """Move the selected photos one place earlier (-1) or later (+1): drag without a mouse."""
        model = self._session.photo_model
        rows = sorted(i.row() for i in self.view.selectionModel().selectedIndexes())
        if not rows:
            return
        ids = [model.photo_at(r).id for r in rows]
        target = rows[0] - 1 if step < 0 else rows[-1] + 2
        if target < 0 or target > model.rowCount() or not model.move_photos(ids, target):
            return
        selection = self.view.selectionModel()
        selection.clearSelection()
        for photo_id in ids:
            row = model.row_of(photo_id)
            if row is not None:
                selection.select(model.index(row), QItemSelectionModel.SelectionFlag.Select)
        first_row = model.row_of(ids[0])
        if first_row is not None:
            selection.setCurrentIndex(
                model.index(first_row), QItemSelectionModel.SelectionFlag.NoUpdate
            )

    def _on_photo_clicked(self, index: QModelIndex) -> None:
        """Show the clicked photo: as its frame, with every box the story on screen has in it,
        or large on its own while no story speaks of it."""
        photo = self._session.photo_model.photo_at(index.row())
        if photo is None:
            return
        shown = self._session.shown_story()
        frames = shown[1] if shown is not None else {}
        frame = next((n for n, p in frames.items() if p.path == photo.path), None)
        if shown is None or frame is None:
            place = f"Photo {index.row() + 1} of {self._session.photo_model.rowCount()}"
            self.photo_requested.emit(photo.path, f"{place} · {photo.name}")
            return
        story = shown[0]
        analysis = story.frame(frame)
        ids = tuple(e.id for e in (*analysis.characters, *analysis.objects)) if analysis else ()
        self.frame_requested.emit(frame, ids)

    def _on_photo_opened(self, index: QModelIndex) -> None:
        photo = self._session.photo_model.photo_at(index.row())
        if photo is not None and not photo.missing:
            self.full_size_requested.emit(photo.path)

    def select_frame(self, frame: int) -> None:
        """Select the photo of frame ``frame`` of the story on screen (the viewer shows it)."""
        shown = self._session.shown_story()
        if shown is None or frame not in shown[1]:
            return
        path = shown[1][frame].path
        model = self._session.photo_model
        row = next((r for r, p in enumerate(model.photos()) if p.path == path), None)
        if row is None:
            return
        index = model.index(row)
        self.view.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect
        )
        self.view.scrollTo(index)

    def sort_by_date(self) -> None:
        """Order the album's photos by capture date and save that order."""
        session = self._session
        album_id = session.album_id
        if album_id is None:
            return
        library = session.library
        photos = session.try_library(
            lambda: library.sort_by_capture_date(album_id), "Sorting photos"
        )
        if photos is None:
            return
        session.photo_model.apply_order([p.id for p in photos])
        session.show_status("Photos sorted by the date they were taken.")

    def update_cost(self, *_why: object) -> None:
        """Show what a story of these photos at the chosen detail would cost, or a hint."""
        session = self._session
        album = session.photo_model.photos()
        detail = session.choices.detail
        plan = plan_run(
            [(p.width, p.height) if p.width and p.height else None for p in album],
            detail,
            session.settings.max_tokens,
            session.settings,
            session.cached(album),  # Generate again: only the writing
        )
        if not plan.photos:
            self.cost_label.setText("Drop photos here or use Add photos (5–10 work best)")
            self.cost_label.setToolTip("")  # not the estimate of the photos that were here
            return
        text = f"{plan.photos} photos · {plan.describe()}"
        if plan.cost.problem:
            self.cost_label.setText(f'<span style="color:#b00020;">⚠ {html.escape(text)}</span>')
            self.cost_label.setToolTip(gui_text(plan.cost.problem))
        else:
            self.cost_label.setText(html.escape(text))
            self.cost_label.setToolTip(COST_TIP.format(detail.label, detail.token_budget))
