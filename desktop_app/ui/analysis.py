"""The analysis panel: what the model found in each photo, the narrative plan, the cast.

Per-frame tables (characters, objects, setting), the narrative structure, a cast gallery with a
crop of every character and object taken from its box (names are editable: a rename is stored
as an edit of this version, never by rewriting the model's output) and a cast-over-frames matrix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStyle,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.app.stored_story import FrameGeometry, box_on_photo
from desktop_app.story.ids import entity_kind
from desktop_app.story.model import Story
from desktop_app.story.names import display_name, entity_colours
from desktop_app.ui.cast_crops import CAST_ICON, PhotoCache, entity_crop
from desktop_app.ui.photo_view import BoxOverlay, PhotoView

MATRIX_LEGEND = (
    "● seen in the photo and named in the story     ○ seen in the photo only     "
    "· named in the story only"
)
NO_ANALYSIS = (
    "This version has no analysis: the model wrote no tables of who and what is in each "
    "photo, so there are no frames, narrative or cast to show. Generate again for a story "
    "with its analysis."
)


@dataclass(frozen=True)
class NameOrigin:
    """Where a name in the cast gallery came from, in words, and whether it can be undone (a
    name the album's cast gave by matching)."""

    text: str
    undoable: bool = False


IdRole = Qt.ItemDataRole.UserRole + 1
FrameRole = Qt.ItemDataRole.UserRole + 2


CELL_PADDING_PX = 14  # the text's margins inside a cell, and the grid line
SHORT_COLUMN_CHARS = 12  # a column whose longest cell is shorter than this keeps its width


def _set_rows(table: QTableWidget, rows: list[list[str]]) -> None:
    """Show ``rows`` of text in ``table``, each cell's full text also as its tooltip."""
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            item = QTableWidgetItem(value)
            item.setToolTip(value)
            table.setItem(r, c, item)


class FittedTable(QTableWidget):
    """A table of text whose columns fit their content and the width it has.

    Where every column fits on one line, each gets its content's width and the columns of
    running text share what is left. Where they do not, short columns (ids, numbers, boxes,
    one-word cells) keep their content's width and the text columns share the rest, wrapping
    between words (never narrower than their longest word); rows grow to their text. With
    ``fit_height`` the table is as tall as its rows (it sits in a scrolling page).
    """

    def __init__(
        self, headers: list[str], rows: list[list[str]], parent: QWidget, *, fit_height: bool
    ) -> None:
        super().__init__(len(rows), len(headers), parent)
        self._fit_height = fit_height
        self.setHorizontalHeaderLabels(headers)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setWordWrap(True)
        self.setAlternatingRowColors(True)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.horizontalHeader().setStretchLastSection(False)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.set_rows(rows)

    def set_rows(self, rows: list[list[str]]) -> None:
        """Show ``rows`` and fit the columns to them."""
        _set_rows(self, rows)
        self.fit_columns()

    def _texts(self, column: int) -> list[str]:
        items = (self.item(r, column) for r in range(self.rowCount()))
        return [item.text() for item in items if item is not None]

    def content_width(self, column: int) -> int:
        """The width column ``column`` needs to show every cell (and its header) on one line."""
        metrics = self.fontMetrics()
        header = self.horizontalHeaderItem(column)
        header_text = header.text() if header is not None else ""
        header_metrics = self.horizontalHeader().fontMetrics()
        widths = [header_metrics.horizontalAdvance(header_text) + 2 * CELL_PADDING_PX]
        widths += [metrics.horizontalAdvance(t) + CELL_PADDING_PX for t in self._texts(column)]
        return max(widths)

    def longest_word_width(self, column: int) -> int:
        """The narrowest column ``column`` can be without cutting a word (or its header)."""
        metrics = self.fontMetrics()
        words = [w for text in self._texts(column) for w in text.split()]
        header = self.horizontalHeaderItem(column)
        header_width = (
            self.horizontalHeader()
            .fontMetrics()
            .horizontalAdvance(header.text() if header is not None else "")
        )
        longest = max((metrics.horizontalAdvance(w) for w in words), default=0)
        return max(longest + CELL_PADDING_PX, header_width + 2 * CELL_PADDING_PX)

    def is_text_column(self, column: int) -> bool:
        """True for a column of running text (it may wrap), not ids, numbers or one word."""
        texts = self._texts(column)
        words = [
            t for t in texts if sum(any(ch.isalpha() for ch in w) for w in t.split()) >= 2
        ]  # "Holds up a red kite", not "317, 166, 400, 372"
        return bool(words) and max(map(len, texts)) >= SHORT_COLUMN_CHARS

    def fit_columns(self) -> None:
        """Size the columns to their content and the width there is, then the rows."""
        columns = range(self.columnCount())
        if not self.columnCount():
            return
        available = self.viewport().width()
        natural = [self.content_width(c) for c in columns]
        text = [c for c in columns if self.is_text_column(c)] or [self.columnCount() - 1]
        if sum(natural) <= available:
            widths = list(natural)
            spare = available - sum(natural)
            share = sum(natural[c] for c in text)
            for c in text:
                widths[c] += spare * natural[c] // share
        else:
            widths = list(natural)
            floors = {c: min(natural[c], self.longest_word_width(c)) for c in text}
            left = available - sum(natural[c] for c in columns if c not in floors)
            left -= sum(floors.values())
            want = sum(natural[c] - floors[c] for c in text) or 1
            for c in text:
                widths[c] = floors[c] + max(0, left) * (natural[c] - floors[c]) // want
        for c in columns:
            self.setColumnWidth(c, widths[c])
        self.resizeRowsToContents()
        if self._fit_height:
            scroll = sum(widths) > available
            height = (
                self.horizontalHeader().sizeHint().height()
                + sum(self.rowHeight(r) for r in range(self.rowCount()))
                + 2 * self.frameWidth()
                + 2
                + (self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent) if scroll else 0)
            )
            self.setFixedHeight(height)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.fit_columns()


class AnalysisPanel(QWidget):
    """Tabs: per-frame tables, narrative structure, cast gallery, cast over frames."""

    name_edited = Signal(str, str)  # entity id, new display name ("" restores the model's)
    match_undone = Signal(str)  # entity id: take back the name the album's cast gave it
    entity_activated = Signal(int, str)  # frame, entity id: show it on the photo

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("analysisPanel")
        self.tabs = QTabWidget(self)
        self.frame_tabs = QTabWidget(self)
        self.frame_tabs.setObjectName("frameTabs")
        self.narrative_table = FittedTable(
            ["Phase", "Description", "Key events", "Frames"], [], self, fit_height=False
        )
        self.narrative_table.setObjectName("narrativeTable")
        self.cast_list = QListWidget(self)
        self.cast_list.setObjectName("castGallery")
        self.cast_list.setAccessibleName("Cast: double-click a name to rename")
        self.cast_list.setViewMode(QListView.ViewMode.IconMode)
        self.cast_list.setIconSize(CAST_ICON)
        self.cast_list.setGridSize(QSize(CAST_ICON.width() + 56, CAST_ICON.height() + 56))
        self.cast_list.setResizeMode(QListView.ResizeMode.Adjust)
        self.cast_list.setMovement(QListView.Movement.Static)
        self.cast_list.setWordWrap(True)
        self.cast_list.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.matrix = QTableWidget(self)
        self.matrix.setObjectName("castMatrix")
        self.matrix.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.matrix_legend = QLabel(MATRIX_LEGEND)
        self.matrix_legend.setObjectName("matrixLegend")
        matrix_page = QWidget(self)
        matrix_layout = QVBoxLayout(matrix_page)
        matrix_layout.addWidget(self.matrix_legend)  # what the marks mean, not only a tooltip
        matrix_layout.addWidget(self.matrix)
        self.empty_note = QLabel(NO_ANALYSIS)
        self.empty_note.setObjectName("noAnalysisNote")
        self.empty_note.setWordWrap(True)
        self.empty_note.setContentsMargins(8, 8, 8, 8)
        self.empty_note.setStyleSheet("color: #444;")
        self.empty_note.setVisible(False)
        cast_page = QWidget(self)
        cast_layout = QVBoxLayout(cast_page)
        hint = QLabel(
            "Everyone and everything the model tracked across your photos. Double-click a name "
            "(or press F2) to rename it; the new name shows everywhere in this version."
        )
        hint.setWordWrap(True)
        cast_layout.addWidget(hint)
        cast_layout.addWidget(self.cast_list)
        # Where the selected name came from (names that stay: app.album_cast), and its undo.
        self.origin_label = QLabel("")
        self.origin_label.setObjectName("nameOrigin")
        self.origin_label.setWordWrap(True)
        self.undo_match_button = QPushButton("Not the same one: undo this name")
        self.undo_match_button.setObjectName("undoNameMatch")
        self.undo_match_button.setVisible(False)
        self.undo_match_button.clicked.connect(self._undo_selected_match)
        cast_layout.addWidget(self.origin_label)
        cast_layout.addWidget(self.undo_match_button)
        self.frame_photo = PhotoView(self)
        self.frame_photo.setObjectName("analysisPhoto")
        self.frame_photo.set_placeholder("The photo of the frame shows here.")
        frames_split = QSplitter(Qt.Orientation.Horizontal, self)
        frames_split.addWidget(self.frame_tabs)
        frames_split.addWidget(self.frame_photo)
        frames_split.setStretchFactor(0, 3)
        frames_split.setStretchFactor(1, 2)
        frames_split.setChildrenCollapsible(False)
        frames_split.setSizes([720, 440])
        self.tabs.addTab(frames_split, "Frames")
        self.frame_tabs.currentChanged.connect(lambda _i: self._show_frame_photo())
        self.tabs.addTab(self.narrative_table, "Narrative")
        self.tabs.addTab(cast_page, "Cast")
        self.tabs.addTab(matrix_page, "Who appears where")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.empty_note)
        layout.addWidget(self.tabs)
        self.frame_photos: dict[int, FrameGeometry] = {}
        self.story: Story | None = None
        self.names: dict[str, str] = {}
        self.origins: dict[str, NameOrigin] = {}
        self._filling = False
        self.cast_list.itemChanged.connect(self._on_cast_item_changed)
        self.cast_list.currentItemChanged.connect(lambda *_: self._show_origin())
        self.cast_list.itemActivated.connect(self._on_cast_activated)
        self.matrix.cellActivated.connect(self._on_matrix_activated)
        self.matrix.cellClicked.connect(self._on_matrix_activated)

    def set_frame_photos(self, frame_photos: Mapping[int, FrameGeometry]) -> None:
        """The photos of the frames (crops and the frame photo come from them)."""
        self.frame_photos = dict(frame_photos)

    def clear(self) -> None:
        """Show no analysis."""
        self.story = None
        self.empty_note.setVisible(False)
        self.frame_tabs.clear()
        self.frame_photo.clear_photo()
        self.narrative_table.setRowCount(0)
        self._filling = True
        self.cast_list.clear()
        self._filling = False
        self.matrix.clear()
        self.matrix.setRowCount(0)
        self.matrix.setColumnCount(0)

    def set_story(
        self,
        story: Story,
        names: Mapping[str, str],
        origins: Mapping[str, NameOrigin] | None = None,
    ) -> None:
        """Show the analysis of ``story`` with the user's ``names`` (and where each came from:
        ``origins``, by entity id)."""
        if story is None:
            self.clear()
            return
        self.story = story
        self.names = dict(names)
        self.origins = dict(origins or {})
        # A story told without the analysis tables says so, instead of showing empty panes
        # (a run still being written has no text yet while it analyses).
        self.empty_note.setVisible(
            bool(story.segments) and not story.frames and not story.narrative
        )
        current_frame_tab = self.frame_tabs.currentIndex()
        self._fill_frames(story)
        if 0 <= current_frame_tab < self.frame_tabs.count():
            self.frame_tabs.setCurrentIndex(current_frame_tab)
        self._show_frame_photo()
        self._fill_narrative(story)
        self._fill_cast(story)
        self._fill_matrix(story)

    # ------------------------------------------------------------------ frames

    def _fill_frames(self, story: Story) -> None:
        self.frame_tabs.clear()
        for frame in story.frames:
            page = QWidget()
            layout = QVBoxLayout(page)
            characters = FittedTable(
                ["ID", "Name", "Description", "Emotions", "Actions", "Role", "Box"],
                [
                    [
                        c.id,
                        display_name(c.id, story, self.names) if c.id in self.names else c.name,
                        c.description,
                        c.emotions,
                        c.actions,
                        c.narrative_function,
                        c.box_text,
                    ]
                    for c in frame.characters
                ],
                page,
                fit_height=True,
            )
            objects = FittedTable(
                ["ID", "Description", "Function", "Interaction", "Role", "Box"],
                [
                    [
                        o.id,
                        o.description,
                        o.function,
                        o.interaction,
                        o.narrative_function,
                        o.box_text,
                    ]
                    for o in frame.objects
                ],
                page,
                fit_height=True,
            )
            settings = FittedTable(
                ["Element", "Description", "Mood", "Time", "Role"],
                [
                    [s.element, s.description, s.mood, s.time, s.narrative_function]
                    for s in frame.settings
                ],
                page,
                fit_height=True,
            )
            for table in (characters, objects):
                table.setProperty("frame", frame.index)
                # Selecting a row shows its box on the photo; activating it (double-click,
                # Enter) shows it in the story.
                table.cellActivated.connect(
                    lambda r, _c, t=table, f=frame.index: self._on_table_row(t, f, r)
                )
                table.currentCellChanged.connect(
                    lambda r, _c, _pr, _pc, t=table, f=frame.index: self._on_row_selected(t, f, r)
                )
            layout.addWidget(QLabel("<b>Characters</b>"))
            layout.addWidget(characters)
            layout.addWidget(QLabel("<b>Objects and places</b>"))
            layout.addWidget(objects)
            layout.addWidget(QLabel("<b>Setting</b>"))
            layout.addWidget(settings)
            layout.addStretch(1)
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setWidget(page)
            scroll.setProperty("frame", frame.index)
            self.frame_tabs.addTab(scroll, f"Frame {frame.index}")

    def _frame_at_tab(self) -> int | None:
        page = self.frame_tabs.currentWidget()
        return page.property("frame") if page is not None else None

    def _show_frame_photo(self, only: str | None = None) -> None:
        """Show the current frame's photo with every box of that frame (or only ``only``'s)."""
        frame_number = self._frame_at_tab()
        if frame_number is None:
            return  # the tabs are being rebuilt
        photo = self.frame_photos.get(frame_number)
        if self.story is None or photo is None:
            self.frame_photo.clear_photo()
            return
        if not self.frame_photo.set_photo(photo.path):
            return
        frame = self.story.frame(frame_number)
        if frame is None:
            return
        original = self.frame_photo.original_size
        prepared = photo.prepared_size or original
        colors = entity_colours(self.story)
        overlays = []
        for entity in (*frame.characters, *frame.objects):
            if entity.box is None or (only is not None and entity.id != only):
                continue
            rect = box_on_photo(entity.box, prepared, original)
            label = display_name(entity.id, self.story, self.names)
            overlays.append(BoxOverlay(entity.id, label, rect, colors.get(entity.id, "#ffcc00")))
        self.frame_photo.show_boxes(overlays)

    def _on_row_selected(self, table: QTableWidget, frame: int, row: int) -> None:
        item = table.item(row, 0) if row >= 0 else None
        if item is not None and item.text():
            self._show_frame_photo(only=item.text())

    def _on_table_row(self, table: QTableWidget, frame: int, row: int) -> None:
        item = table.item(row, 0)
        if item is not None and item.text():
            self.entity_activated.emit(frame, item.text())

    # ------------------------------------------------------------------ narrative

    def _fill_narrative(self, story: Story) -> None:
        rows = [
            [
                p.phase,
                p.description,
                p.key_events,
                ", ".join(str(i) for i in p.images) or p.images_text,
            ]
            for p in story.narrative
        ]
        self.narrative_table.set_rows(rows)

    # ------------------------------------------------------------------ cast

    def cast_ids(self, story: Story) -> list[str]:
        """Characters first, then objects and places, each once, in order of first appearance."""
        seen: dict[str, None] = {}
        for frame in story.frames:
            for character in frame.characters:
                if character.id:
                    seen.setdefault(character.id, None)
        for frame in story.frames:
            for obj in frame.objects:
                if obj.id:
                    seen.setdefault(obj.id, None)
        return list(seen)

    def _fill_cast(self, story: Story) -> None:
        self._filling = True
        self.cast_list.clear()
        colors = entity_colours(story)
        photo_cache: PhotoCache = {}
        for entity_id in self.cast_ids(story):
            name = display_name(entity_id, story, self.names)
            frames = story.frames_of(entity_id)
            item = QListWidgetItem(name)
            item.setData(IdRole, entity_id)
            item.setData(FrameRole, frames[0] if frames else None)
            entity = story.entity(entity_id)
            description = getattr(entity, "description", "") if entity else ""
            kind = entity_kind(entity_id)
            where = ", ".join(str(f) for f in frames)
            appears = (
                f"appears in frame {where}"
                if len(frames) == 1
                else (f"appears in frames {where}" if frames else "not in any frame's table")
            )
            origin = self.origins.get(entity_id)
            item.setToolTip(
                f"{name}{' (' + kind.noun + ')' if kind else ''}\n{description}\n{appears}"
                + (f"\n{origin.text}" if origin is not None else "")
            )
            item.setFlags(
                Qt.ItemFlag.ItemIsEnabled
                | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemIsEditable
            )
            item.setForeground(QColor(colors.get(entity_id, "#333333")))
            icon = entity_crop(
                story, entity_id, self.frame_photos, self.devicePixelRatioF(), photo_cache
            )
            if icon is not None:
                item.setIcon(icon)
            self.cast_list.addItem(item)
        self._filling = False
        self._show_origin()

    def _show_origin(self) -> None:
        item = self.cast_list.currentItem()
        origin = self.origins.get(item.data(IdRole)) if item is not None else None
        self.origin_label.setText(origin.text if origin is not None else "")
        self.undo_match_button.setVisible(origin is not None and origin.undoable)

    def _undo_selected_match(self) -> None:
        item = self.cast_list.currentItem()
        if item is not None and item.data(IdRole):
            self.match_undone.emit(item.data(IdRole))

    def _on_cast_item_changed(self, item: QListWidgetItem) -> None:
        if self._filling:
            return
        entity_id = item.data(IdRole)
        if entity_id:
            self.name_edited.emit(entity_id, item.text().strip())

    def _on_cast_activated(self, item: QListWidgetItem) -> None:
        frame = item.data(FrameRole)
        if frame is not None:
            self.entity_activated.emit(int(frame), item.data(IdRole))

    def cast_names(self) -> dict[str, str]:
        """Entity id -> the name shown in the gallery (tests read what the user sees)."""
        return {
            self.cast_list.item(i).data(IdRole): self.cast_list.item(i).text()
            for i in range(self.cast_list.count())
        }

    # ------------------------------------------------------------------ matrix

    def _fill_matrix(self, story: Story) -> None:
        ids = self.cast_ids(story)
        frames = sorted({frame.index for frame in story.frames})
        mentioned: dict[int, set[str]] = {}
        for segment in story.segments:
            if segment.image is None:
                continue
            for span in segment.spans:
                mentioned.setdefault(segment.image, set()).update(span.ids)
        self.matrix.clear()
        self.matrix.setRowCount(len(ids))
        self.matrix.setColumnCount(len(frames))
        self.matrix.setHorizontalHeaderLabels([f"Frame {f}" for f in frames])
        self.matrix.setVerticalHeaderLabels([display_name(i, story, self.names) for i in ids])
        colors = entity_colours(story)
        for r, entity_id in enumerate(ids):
            present = set(story.frames_of(entity_id))
            for c, frame in enumerate(frames):
                in_table = frame in present
                in_text = entity_id in mentioned.get(frame, set())
                mark = (
                    "●" if in_table and in_text else ("○" if in_table else ("·" if in_text else ""))
                )
                item = QTableWidgetItem(mark)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                item.setForeground(QColor(colors.get(entity_id, "#333333")))
                item.setData(IdRole, entity_id)
                item.setData(FrameRole, frame)
                tip = []
                if in_table:
                    tip.append("seen in the photo")
                if in_text:
                    tip.append("named in the story")
                item.setToolTip(", ".join(tip) or "not in this frame")
                self.matrix.setItem(r, c, item)
        self.matrix.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.matrix.setToolTip(
            "● seen in the photo and named in the story · ○ seen only · · named only"
        )

    def _on_matrix_activated(self, row: int, column: int) -> None:
        item = self.matrix.item(row, column)
        if item is not None and item.text() in ("●", "○"):
            self.entity_activated.emit(int(item.data(FrameRole)), item.data(IdRole))
