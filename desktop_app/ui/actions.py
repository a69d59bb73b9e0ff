"""The main window's commands as one table: text, shortcut, icon, tip, when each is enabled,
and the menus they appear in.

``WindowActions`` turns the table into ``QAction``s on the window (so shortcuts work anywhere in
it); the window connects each to its slot by name and calls ``update(state)`` whenever what
the user may do changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenuBar, QPushButton, QStyle, QWidget

from desktop_app.ui.exporting import EXPORT_KINDS

Shortcut = QKeySequence.StandardKey | str


@dataclass(frozen=True)
class ActionState:
    """What the window holds right now, as far as enabling commands goes."""

    has_album: bool
    has_photos: bool
    selected_photos: bool
    importing: bool
    generating: bool
    stopping: bool
    has_story: bool
    selected_runs: bool
    run_count: int


def _always(_state: ActionState) -> bool:
    return True


def _album(state: ActionState) -> bool:
    return state.has_album


def _photo_selection(state: ActionState) -> bool:
    return state.has_album and state.selected_photos


def _album_photos(state: ActionState) -> bool:
    return state.has_album and state.has_photos


def _open_story(state: ActionState) -> bool:
    return state.has_story and not state.generating


@dataclass(frozen=True)
class ActionSpec:
    """One command: ``name`` is how the window connects it and enables it."""

    name: str
    text: str
    shortcut: Shortcut | None = None
    icon: QStyle.StandardPixmap | None = None
    tip: str = ""  # "" : the text without "&" and "…"
    enabled: Callable[[ActionState], bool] = _always


_SP = QStyle.StandardPixmap
_KEY = QKeySequence.StandardKey

ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("new_album", "&New album", "Ctrl+N", _SP.SP_FileDialogNewFolder),
    ActionSpec("rename_album", "&Rename album", "F2", enabled=_album),
    ActionSpec("delete_album", "&Delete album…", None, _SP.SP_TrashIcon, enabled=_album),
    ActionSpec(
        "add_photos",
        "&Add photos…",
        "Ctrl+O",
        _SP.SP_DialogOpenButton,
        "Add photos or a folder to this album",
    ),
    ActionSpec(
        "remove_photos",
        "Re&move photos",
        _KEY.Delete,
        tip="Remove the selected photos from this album (the files are kept)",
        enabled=_photo_selection,
    ),
    ActionSpec(
        "move_earlier",
        "Move photo &earlier",
        "Alt+Left",
        tip="Move the selected photos one place earlier in the story",
        enabled=_photo_selection,
    ),
    ActionSpec(
        "move_later",
        "Move photo &later",
        "Alt+Right",
        tip="Move the selected photos one place later in the story",
        enabled=_photo_selection,
    ),
    ActionSpec(
        "sort_date",
        "Sort by &date",
        "Ctrl+Shift+D",
        tip="Order the photos by when they were taken",
        enabled=_album_photos,
    ),
    ActionSpec(
        "relink",
        "Re&link missing photos…",
        tip="Find moved photos in a folder by their content",
        enabled=_album_photos,
    ),
    ActionSpec(
        "cancel_import",
        "Stop &importing",
        None,
        _SP.SP_DialogCancelButton,
        "Stop adding photos (or looking for moved ones); photos already added stay",
        enabled=lambda s: s.importing,
    ),
    ActionSpec(
        "generate",
        "&Generate",
        "Ctrl+Return",
        _SP.SP_MediaPlay,
        "Tell the story of these photos",
        enabled=lambda s: s.has_album and s.has_photos and not s.generating,
    ),
    ActionSpec(
        "stop",
        "&Stop",
        "Esc",
        _SP.SP_MediaStop,
        "Stop writing; the story so far is kept as a stopped version",
        enabled=lambda s: s.generating and not s.stopping,
    ),
    ActionSpec(
        "copy",
        "&Copy story as text",
        "Ctrl+Shift+C",
        tip="Copy the story, without tags, to the clipboard",
        enabled=_open_story,
    ),
    *(
        ActionSpec(
            f"export_{kind}",
            f"Export as {label}…",
            "Ctrl+E" if kind == "html" else None,
            enabled=_open_story,
        )
        for kind, (label, _suffix, _filter) in EXPORT_KINDS.items()
    ),
    ActionSpec(
        "delete_run",
        "Delete version…",
        None,
        _SP.SP_TrashIcon,
        "Delete the selected version of the story",
        enabled=lambda s: s.selected_runs,
    ),
    ActionSpec(
        "compare",
        "Compare versions",
        "Ctrl+K",
        tip="Show two versions of the story side by side",
        enabled=lambda s: s.run_count >= 2,
    ),
    ActionSpec("settings", "&Settings…", "Ctrl+,"),
    ActionSpec("guide", "&First-run guide…"),
    ActionSpec("shortcuts", "&Keyboard shortcuts", "Ctrl+/", tip="Every keyboard shortcut"),
    ActionSpec("about", "&About Storyteller"),
    ActionSpec("next_pane", "Next pane", "F6", tip="Move to the next pane: albums, photos, story"),
    ActionSpec("previous_pane", "Previous pane", "Shift+F6", tip="Move to the previous pane"),
    ActionSpec("quit", "&Quit", _KEY.Quit),
    ActionSpec(
        "present",
        "&Present",
        "F5",
        tip="Show the version you are reading full screen, a photo at a time",
        enabled=lambda s: s.has_story,
    ),
    ActionSpec("story_tab", "Show story", "Ctrl+1"),
    ActionSpec("analysis_tab", "Show analysis", "Ctrl+2"),
    ActionSpec("compare_tab", "Show comparison", "Ctrl+3"),
)

EXPORT_ACTIONS = tuple(f"export_{kind}" for kind in EXPORT_KINDS)
SEPARATOR = "-"
# Menu title -> entries: an action name, SEPARATOR, or (submenu title, action names).
MENUS: tuple[tuple[str, tuple[str | tuple[str, tuple[str, ...]], ...]], ...] = (
    (
        "&File",
        (
            "new_album",
            "add_photos",
            SEPARATOR,
            ("&Export story", EXPORT_ACTIONS),
            "copy",
            SEPARATOR,
            "settings",
            SEPARATOR,
            "quit",
        ),
    ),
    (
        "&Album",
        (
            "rename_album",
            "delete_album",
            "add_photos",
            "remove_photos",
            "move_earlier",
            "move_later",
            "sort_date",
            "relink",
            "cancel_import",
        ),
    ),
    ("&Story", ("generate", "stop", SEPARATOR, "compare", "delete_run")),
    (
        "&View",
        (
            "present",
            SEPARATOR,
            "story_tab",
            "analysis_tab",
            "compare_tab",
            SEPARATOR,
            "next_pane",
            "previous_pane",
        ),
    ),
    ("&Help", ("guide", "shortcuts", SEPARATOR, "about")),
)


class WindowActions:
    """The ``QAction`` of every command in ``ACTIONS``, added to ``window``."""

    def __init__(self, window: QWidget) -> None:
        style = window.style()
        self._specs = {spec.name: spec for spec in ACTIONS}
        self._actions: dict[str, QAction] = {}
        for spec in ACTIONS:
            act = QAction(spec.text, window)
            if spec.shortcut is not None:
                act.setShortcut(QKeySequence(spec.shortcut))
            if spec.icon is not None:
                act.setIcon(style.standardIcon(spec.icon))
            hint = spec.tip or spec.text.replace("&", "").replace("…", "")
            if spec.shortcut is not None:
                hint += f" ({act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})"
            act.setToolTip(hint)
            act.setStatusTip(hint)
            window.addAction(act)
            self._actions[spec.name] = act
        self._owner = window

    def scope_to(self, name: str, widget: QWidget) -> None:
        """Make the shortcut of action ``name`` work only while ``widget`` (or a child of it)
        has the focus, so that a key such as F2 reaches the list the user is in (the Cast's
        F2 renames a person, not the album); its menu entry and buttons still trigger it."""
        act = self._actions[name]
        self._owner.removeAction(act)
        widget.addAction(act)
        act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)

    def __getitem__(self, name: str) -> QAction:
        return self._actions[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._actions)

    def connect(self, slots: Mapping[str, Callable[[], object]]) -> None:
        """Run ``slots[name]()`` when the action ``name`` is triggered; every action needs one."""
        missing = set(self._actions) - set(slots)
        unknown = set(slots) - set(self._actions)
        if missing or unknown:
            raise ValueError(
                f"actions without a slot: {missing}; slots without an action: {unknown}"
            )
        for name, slot in slots.items():
            self._actions[name].triggered.connect(lambda _checked=False, s=slot: s())

    def update(self, state: ActionState) -> None:
        """Enable each action by its rule in the table."""
        for name, act in self._actions.items():
            act.setEnabled(self._specs[name].enabled(state))

    def build_menus(self, bar: QMenuBar) -> None:
        """Fill the menu bar from ``MENUS``."""
        for title, entries in MENUS:
            menu = bar.addMenu(title)
            for entry in entries:
                if entry == SEPARATOR:
                    menu.addSeparator()
                elif isinstance(entry, tuple):
                    submenu = menu.addMenu(entry[0])
                    for name in entry[1]:
                        submenu.addAction(self._actions[name])
                else:
                    menu.addAction(self._actions[entry])


def tool_button(action: QAction, text: str) -> QPushButton:
    """A push button that triggers ``action`` and follows its enabled state."""
    button = QPushButton(text)
    button.setIcon(action.icon())
    button.setToolTip(action.toolTip())
    button.clicked.connect(action.trigger)
    action.changed.connect(lambda: button.setEnabled(action.isEnabled()))
    button.setEnabled(action.isEnabled())
    return button
