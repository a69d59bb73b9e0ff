"""Reading the analysis part of QwenStoryteller output: markdown lines, headings and tables.

Inside ``<think>`` the output is line-oriented markdown: a heading per frame, then Characters,
Objects and Setting tables, and a Narrative Structure table (docs/model-contract.md 3.2). This module
holds the header vocabulary, the cell readers (``parse_box``, ``parse_image_list``) and
``_AnalysisReader``, the part of the parse state that turns lines into frames and table rows.
"""

from __future__ import annotations

import enum
import re

from desktop_app.story.ids import OBJECT_TABLE_KINDS, EntityKind, is_entity_id
from desktop_app.story.model import (
    Box,
    Character,
    Frame,
    NarrativePhase,
    SettingRow,
    StoryObject,
    ThinkState,
)
from desktop_app.story.tag_reader import _TAG_RE, _Mode

_HEADING_RE = re.compile(r"^\s*(?:#{1,6}\s*(.*?)\s*#*|\*\*(.+?)\*\*:?)\s*$")
_FRAME_TITLE_RE = re.compile(r"^(?:image|frame|photo|picture)\s*#?\s*(\d{1,6})\b", re.IGNORECASE)
_BARE_FRAME_TITLE_RE = re.compile(r"^(?:image|frame)\s*#?\s*\d{1,6}\s*:?$", re.IGNORECASE)
_SEPARATOR_ROW_RE = re.compile(r"^[\s|:-]*$")  # "|---|:--:|", or a row of empty cells
# A number not glued to a word: "x1=40" yields 40, not 1.
_NUMBER_RE = re.compile(r"(?<![\w.])[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
_IMAGE_RANGE_RE = re.compile(r"(\d{1,6})\s*(?:-|–|—|to)\s*(\d{1,6})|(\d{1,6})")


class _Table(enum.Enum):
    NONE = "none"
    CHARACTERS = "characters"
    OBJECTS = "objects"
    SETTING = "setting"
    NARRATIVE = "narrative"


_DEFAULT_COLUMNS: dict[_Table, tuple[str, ...]] = {
    _Table.CHARACTERS: (
        "id",
        "name",
        "description",
        "emotions",
        "actions",
        "narrative_function",
        "box",
    ),
    _Table.OBJECTS: ("id", "description", "function", "interaction", "narrative_function", "box"),
    _Table.SETTING: ("element", "description", "mood", "time", "narrative_function"),
    _Table.NARRATIVE: ("phase", "description", "key_events", "images"),
}

_COMMON_HEADERS = {
    "description": "description",
    "narrative function": "narrative_function",
    "narrative role": "narrative_function",
}
_HEADERS: dict[_Table, dict[str, str]] = {
    _Table.CHARACTERS: {
        **_COMMON_HEADERS,
        "character id": "id",
        "char id": "id",
        "id": "id",
        "name": "name",
        "character name": "name",
        "emotions": "emotions",
        "emotion": "emotions",
        "actions": "actions",
        "action": "actions",
        "function": "narrative_function",
    },
    _Table.OBJECTS: {
        **_COMMON_HEADERS,
        "object id": "id",
        "obj id": "id",
        "id": "id",
        "function": "function",
        "interaction": "interaction",
        "interactions": "interaction",
    },
    _Table.SETTING: {
        **_COMMON_HEADERS,
        "setting element": "element",
        "element": "element",
        "setting": "element",
        "mood": "mood",
        "time": "time",
    },
    _Table.NARRATIVE: {
        **_COMMON_HEADERS,
        "narrative phase": "phase",
        "phase": "phase",
        "key events": "key_events",
        "key event": "key_events",
        "events": "key_events",
        "images": "images",
        "image": "images",
        "frames": "images",
        "image numbers": "images",
    },
}
# Header cells that only one kind of table has: they decide the table when no heading does.
_DISTINCTIVE_HEADERS = {
    "character id": _Table.CHARACTERS,
    "char id": _Table.CHARACTERS,
    "emotions": _Table.CHARACTERS,
    "object id": _Table.OBJECTS,
    "obj id": _Table.OBJECTS,
    "interaction": _Table.OBJECTS,
    "setting element": _Table.SETTING,
    "mood": _Table.SETTING,
    "narrative phase": _Table.NARRATIVE,
    "key events": _Table.NARRATIVE,
}


def parse_box(text: str) -> Box | None:
    """The box in a Bounding Box cell, or None unless it holds exactly four numbers.

    Accepts "40, 88, 210, 400", "[40, 88, 210, 400]", "(40.5, 88, 210, 400)", "40 88 210 400",
    "x1=40, y1=88, x2=210, y2=400" and "[40, 88], [210, 400]".
    """
    numbers = _NUMBER_RE.findall(text)
    if len(numbers) != 4:
        return None
    try:
        x1, y1, x2, y2 = (float(n) for n in numbers)
    except ValueError:
        return None
    return Box(x1, y1, x2, y2)


def parse_image_list(text: str) -> tuple[int, ...]:
    """Frame numbers in a narrative Images cell: "1, 2", "Images 1 and 3", "2-4"."""
    images: dict[int, None] = {}
    for match in _IMAGE_RANGE_RE.finditer(text):
        if match.group(3) is not None:
            images.setdefault(int(match.group(3)), None)
            continue
        first, last = int(match.group(1)), int(match.group(2))
        if first <= last and last - first <= 100:
            for number in range(first, last + 1):
                images.setdefault(number, None)
        else:
            images.setdefault(first, None)
            images.setdefault(last, None)
    return tuple(images)


def _normalise_header(cell: str) -> str:
    cleaned = cell.replace("*", "").replace("_", " ").replace("`", "").strip().rstrip(":")
    return " ".join(cleaned.lower().split())


def _column_field(table: _Table, header: str) -> str | None:
    if table is not _Table.NARRATIVE and (
        header.startswith("bounding box") or header in ("bbox", "box", "boxes", "coordinates")
    ):
        return "box" if table in (_Table.CHARACTERS, _Table.OBJECTS) else None
    return _HEADERS.get(table, {}).get(header)


def _split_cells(line: str) -> list[str]:
    """Cells of a markdown table row; an escaped ``\\|`` stays inside its cell."""
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    cells = re.split(r"(?<!\\)\|", body)
    return [cell.replace("\\|", "|").strip() for cell in cells]


class _AnalysisReader:
    """The analysis half of the parse state: lines into frames, table rows and narrative."""

    # Set by the parse state's __init__; listed here for readers and type checkers.
    mode: _Mode
    think: ThinkState
    line: int
    frames: tuple[Frame, ...]
    frame_index: int | None
    frame_line: int | None
    characters: list[Character]
    objects: list[StoryObject]
    settings: list[SettingRow]
    table: _Table
    columns: tuple[str | None, ...] | None
    narrative: list[NarrativePhase]

    def _consume_line(self, line: str, *, ends_with_newline: bool) -> str | None:
        """Handle one analysis line; returns the text that belongs to the story, if it starts."""
        newline = "\n" if ends_with_newline else ""
        for match in _TAG_RE.finditer(line):
            closing, name = match.group(1), match.group(2).lower()
            before, after = line[: match.start()], line[match.end() :]
            if name == "think" and not closing and self.mode is _Mode.PREAMBLE:
                if before.strip():
                    # "Sure! <think>": the story reader keeps the chatter as stray text,
                    # then hands the rest back to the analysis.
                    self.mode = _Mode.STORY
                    return line + newline
                self.think = ThinkState.OPEN
                self.mode = _Mode.ANALYSIS
                return self._consume_line(after, ends_with_newline=ends_with_newline)
            if name == "think" and closing:
                self._analysis_line(before)
                self.think = ThinkState.CLOSED
                self._close_frame()
                self.mode = _Mode.STORY
                return after + newline
            if name.startswith("gd") and (self.mode is _Mode.PREAMBLE or name == "gdi"):
                self._analysis_line(before)
                self._close_frame()
                self.mode = _Mode.STORY
                return line[match.start() :] + newline
        if self.mode is _Mode.PREAMBLE and line.strip() and not self._looks_like_analysis(line):
            # Prose with no <think> before it: a story written without tags or analysis.
            self.mode = _Mode.STORY
            return line + newline
        self._analysis_line(line)
        if ends_with_newline:
            self.line += 1
        return None

    @staticmethod
    def _looks_like_analysis(line: str) -> bool:
        stripped = line.strip()
        return stripped.startswith(("#", "|")) or (
            _HEADING_RE.match(line) is not None and stripped.startswith("**")
        )

    def _analysis_line(self, line: str) -> None:
        stripped = line.strip()
        if not stripped:
            return
        heading = _HEADING_RE.match(line)
        if heading is not None and "|" not in stripped:
            self._heading((heading.group(1) or heading.group(2) or "").strip())
            return
        if _BARE_FRAME_TITLE_RE.match(stripped):  # "Image 2:" on its own line
            self._heading(stripped)
            return
        if "|" in stripped and (stripped.startswith("|") or self.table is not _Table.NONE):
            self._table_row(stripped)
        # Any other line is the model thinking aloud: not part of the structure.

    def _heading(self, title: str) -> None:
        frame_title = _FRAME_TITLE_RE.match(title)
        lowered = title.lower()
        if frame_title is not None:
            self._close_frame()
            self.frame_index = int(frame_title.group(1))
            self.frame_line = self.line
            self.table = _Table.NONE
        elif "narrative" in lowered:
            self._close_frame()
            self.table = _Table.NARRATIVE
        elif "character" in lowered:
            self.table = _Table.CHARACTERS
        elif "object" in lowered:
            self.table = _Table.OBJECTS
        elif "setting" in lowered:
            self.table = _Table.SETTING
        else:
            return
        self.columns = None

    def _close_frame(self) -> None:
        if self.frame_index is None:
            return
        frame = Frame(
            self.frame_index,
            tuple(self.characters),
            tuple(self.objects),
            tuple(self.settings),
            self.frame_line,
        )
        self.frames = (*self.frames, frame)
        self.frame_index = None
        self.characters, self.objects, self.settings = [], [], []

    def _header_table(self, headers: list[str]) -> _Table | None:
        """The table kind a header row announces, or None when the row is data."""
        if any(is_entity_id(h) for h in headers):
            return None
        for header in headers:
            if header in _DISTINCTIVE_HEADERS:
                return _DISTINCTIVE_HEADERS[header]
        candidates = [self.table] if self.table is not _Table.NONE else list(_HEADERS)
        for table in candidates:
            known = sum(1 for h in headers if _column_field(table, h) is not None)
            if known >= 2 and known * 2 >= sum(1 for h in headers if h):
                return table
        return None

    def _table_row(self, line: str) -> None:
        if _SEPARATOR_ROW_RE.match(line):
            return  # the |---|---| line, or an empty row
        cells = _split_cells(line)
        # Rows that start with an id are data; only other rows can be a header.
        header_table = None
        if not (cells and is_entity_id(cells[0])):
            headers = [_normalise_header(c) for c in cells]
            header_table = self._header_table(headers)
        if header_table is not None:
            if header_table is _Table.NARRATIVE and self.table is not _Table.NARRATIVE:
                self._close_frame()
            self.table = header_table
            self.columns = tuple(_column_field(header_table, h) for h in headers)
            return
        table = self.table
        if table is _Table.NONE:
            first = cells[0].lower() if cells else ""
            if first.startswith(EntityKind.CHARACTER.value):
                table = _Table.CHARACTERS
            elif first.startswith(tuple(kind.value for kind in OBJECT_TABLE_KINDS)):
                table = _Table.OBJECTS
            else:
                return  # a row of a table we cannot place
            # self.table stays NONE: without a heading or header, each row's id decides.
        columns = self.columns if self.columns is not None else _DEFAULT_COLUMNS[table]
        values: dict[str, str] = {}
        for position, field_name in enumerate(columns):
            if field_name is None or position >= len(cells):
                continue
            if field_name == "box" and position == len(columns) - 1 and len(cells) > len(columns):
                split_box = ", ".join(c for c in cells[position:] if c)
                if parse_box(split_box) is not None:
                    values["box"] = split_box  # "| 40 | 88 | 210 | 400 |": split over cells
                    continue
            values.setdefault(field_name, cells[position])
        self._add_row(table, values)

    def _add_row(self, table: _Table, values: dict[str, str]) -> None:
        get = values.get
        if table is _Table.NARRATIVE:
            images_text = get("images", "")
            self.narrative.append(
                NarrativePhase(
                    get("phase", ""),
                    get("description", ""),
                    get("key_events", ""),
                    parse_image_list(images_text),
                    images_text,
                    self.line,
                )
            )
            return
        if self.frame_index is None:
            # Rows before any "## Image N": the model skipped a heading; give them the next frame.
            self.frame_index = max((f.index for f in self.frames), default=0) + 1
            self.frame_line = self.line
        box_text = get("box", "")
        if table is _Table.CHARACTERS:
            self.characters.append(
                Character(
                    get("id", ""),
                    get("name", ""),
                    get("description", ""),
                    get("emotions", ""),
                    get("actions", ""),
                    get("narrative_function", ""),
                    parse_box(box_text),
                    box_text,
                    self.line,
                )
            )
        elif table is _Table.OBJECTS:
            self.objects.append(
                StoryObject(
                    get("id", ""),
                    get("description", ""),
                    get("function", ""),
                    get("interaction", ""),
                    get("narrative_function", ""),
                    parse_box(box_text),
                    box_text,
                    self.line,
                )
            )
        else:
            self.settings.append(
                SettingRow(
                    get("element", ""),
                    get("description", ""),
                    get("mood", ""),
                    get("time", ""),
                    get("narrative_function", ""),
                    self.line,
                )
            )
