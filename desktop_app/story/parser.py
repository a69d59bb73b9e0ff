"""Tolerant, incremental parser for QwenStoryteller output (DESIGN.md sections 2.1 and 2.2).

The output is ``<think>`` + markdown analysis (per-frame tables, narrative structure) +
``</think>`` + the story as ``<gdi imageN>`` blocks holding ``<gdo>``/``<gda>``/``<gdl>`` spans.

``StoryStreamParser`` reads the text as it streams in. Work that is settled — complete analysis
lines, story text that cannot be part of a tag, finished tags, frames and segments — is done once
and kept; only the unsettled tail (the current line of the analysis, or a tag still being
written) is looked at again by ``snapshot()``, on a cheap copy of the small mutable state. So
streaming token by token costs time linear in the output, and every decision depends only on the
text, never on how it was chunked: feeding it whole or one character at a time gives the same
``Story``, and ``snapshot()`` after any prefix equals ``parse_story(prefix)``.

The parser never raises on text: anything it cannot place is kept as plain text or reported as a
parse issue that ``validate`` passes on.
"""

from __future__ import annotations

import enum
import functools
import re

from desktop_app.story.ids import OBJECT_TABLE_KINDS, EntityKind, is_entity_id
from desktop_app.story.model import (
    Box,
    Character,
    Frame,
    Issue,
    NarrativePhase,
    Segment,
    SettingRow,
    Span,
    SpanKind,
    Story,
    StoryObject,
    ThinkState,
)

# The longest a tag may be; a "<gd..." that runs longer (or over a line end) is plain text.
# Bounding it keeps the unsettled tail short.
MAX_TAG_CHARS = 200

_ATTRIBUTES = rf"[^<>\n]{{0,{MAX_TAG_CHARS}}}"
_TAG_RE = re.compile(rf"<(/?)(gd[ioal]|think)(?=[\s>/])({_ATTRIBUTES})>", re.IGNORECASE)
# Matches when the text from "<" to the end could still grow into a tag.
_PARTIAL_TAG_RE = re.compile(
    rf"<(?:/?(?:g(?:d(?:[ioal](?:[\s/]{_ATTRIBUTES})?)?)?"
    rf"|t(?:h(?:i(?:n(?:k(?:[\s/]{_ATTRIBUTES})?)?)?)?)?)?)?\Z",
    re.IGNORECASE,
)
_INLINE_KINDS = {"gdo": SpanKind.ENTITY, "gda": SpanKind.ACTION, "gdl": SpanKind.LOCATION}
_TAG_NAMES = {SpanKind.ENTITY: "gdo", SpanKind.ACTION: "gda", SpanKind.LOCATION: "gdl"}

_HEADING_RE = re.compile(r"^\s*(?:#{1,6}\s*(.*?)\s*#*|\*\*(.+?)\*\*:?)\s*$")
_FRAME_TITLE_RE = re.compile(r"^(?:image|frame|photo|picture)\s*#?\s*(\d{1,6})\b", re.IGNORECASE)
_BARE_FRAME_TITLE_RE = re.compile(r"^(?:image|frame)\s*#?\s*\d{1,6}\s*:?$", re.IGNORECASE)
_SEPARATOR_ROW_RE = re.compile(r"^[\s|:-]*$")  # "|---|:--:|", or a row of empty cells
# A number not glued to a word: "x1=40" yields 40, not 1.
_NUMBER_RE = re.compile(r"(?<![\w.])[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
_IMAGE_RANGE_RE = re.compile(r"(\d{1,6})\s*(?:-|–|—|to)\s*(\d{1,6})|(\d{1,6})")
_ID_SPLIT_RE = re.compile(r"[\s,;]+")
_DIGITS_RE = re.compile(r"\d{1,9}")


class _Mode(enum.Enum):
    PREAMBLE = "preamble"  # nothing placed yet: waiting for <think>, analysis or story
    ANALYSIS = "analysis"  # inside <think>: line-oriented markdown
    STORY = "story"  # after </think> (or a story that starts without one): tags and text


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


@functools.lru_cache(maxsize=512)  # the same few tags ("<gdo char1>") come back all the time
def _tag_ids(attributes: str) -> tuple[str, ...]:
    ids = (part.strip("\"'/=") for part in _ID_SPLIT_RE.split(attributes))
    return tuple(dict.fromkeys(i for i in ids if i))


class _ParseState:
    """Everything the parser knows; settled parts are tuples shared by copies of the state."""

    def __init__(self) -> None:
        self.mode = _Mode.PREAMBLE
        self.think = ThinkState.ABSENT
        self.line = 1  # line number of the next character to consume
        self.pending: list[str] = []  # analysis: the unfinished line; story: an unfinished tag
        self.issues: tuple[Issue, ...] = ()
        # analysis
        self.frames: tuple[Frame, ...] = ()
        self.frame_index: int | None = None
        self.frame_line: int | None = None
        self.characters: list[Character] = []
        self.objects: list[StoryObject] = []
        self.settings: list[SettingRow] = []
        self.table = _Table.NONE
        self.columns: tuple[str | None, ...] | None = None
        self.narrative: list[NarrativePhase] = []
        # story
        self.segments: tuple[Segment, ...] = ()
        self.segment_open = False
        self.segment_is_block = False  # opened by <gdi>, not stray text
        self.segment_image: int | None = None
        self.segment_line: int | None = None
        self.spans: list[Span] = []
        self.stack: list[tuple[SpanKind, tuple[str, ...], int]] = []
        self.text_parts: list[str] = []
        self.closed_blocks = 0
        self.saw_block = False

    def copy(self) -> _ParseState:
        """A copy whose mutable parts are fresh lists (all of them short by construction)."""
        twin = _ParseState.__new__(_ParseState)
        twin.__dict__.update(self.__dict__)
        for name in (
            "pending",
            "characters",
            "objects",
            "settings",
            "narrative",
            "spans",
            "stack",
            "text_parts",
        ):
            setattr(twin, name, list(getattr(self, name)))
        return twin

    def add_issue(self, issue: Issue) -> None:
        self.issues = (*self.issues, issue)

    # ---- dispatch -------------------------------------------------------------------------

    def consume(self, text: str) -> None:
        """Settle everything in ``text`` that does not depend on what comes next."""
        position = 0
        while position < len(text):
            if self.mode is _Mode.STORY:
                rest = self._consume_story(text, position)
                if rest is None:
                    return
                text, position = rest, 0
                continue
            newline = text.find("\n", position)
            if newline < 0:
                self.pending.append(text[position:])
                return
            line_text = "".join(self.pending) + text[position:newline]
            self.pending.clear()
            position = newline + 1
            story_text = self._consume_line(line_text, ends_with_newline=True)
            if story_text is not None:
                text, position = story_text + text[position:], 0

    def finish(self) -> None:
        """Treat the unsettled tail as final (used on a copy by ``snapshot``)."""
        if self.mode is not _Mode.STORY:
            tail = "".join(self.pending)
            self.pending.clear()
            story_text = self._consume_line(tail, ends_with_newline=False) if tail else None
            while story_text is not None:
                rest = self._consume_story(story_text, 0)
                story_text = None
                if rest:
                    # a <think> switched back to the analysis: its last, unfinished line
                    story_text = self._consume_line(rest, ends_with_newline=False)

    # ---- analysis (line by line) ----------------------------------------------------------

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

    # ---- story (tags and text) ------------------------------------------------------------

    def _consume_story(self, text: str, position: int) -> str | None:
        """Settle story text from ``position``; returns leftover text if the analysis restarts."""
        if self.pending:
            text = "".join(self.pending) + text[position:]
            position = 0
            self.pending.clear()
        end = len(text)
        while position < end:
            lt = text.find("<", position)
            if lt < 0:
                self._story_text(text[position:])
                return None
            if lt > position:
                self._story_text(text[position:lt])
            tag = _TAG_RE.match(text, lt)
            if tag is not None:
                position = tag.end()
                if self._story_tag(tag.group(1) == "/", tag.group(2).lower(), tag.group(3)):
                    return text[position:]
                continue
            if _PARTIAL_TAG_RE.match(text, lt) is not None:
                self.pending.append(text[lt:])
                return None
            self._story_text("<")
            position = lt + 1
        return None

    def _story_text(self, piece: str) -> None:
        if not self.segment_open:
            stripped = piece.lstrip()
            if not stripped:
                self.line += piece.count("\n")
                return
            self.line += piece[: len(piece) - len(stripped)].count("\n")
            self._open_segment(image=None, block=False)
            self.add_issue(
                Issue.for_code("stray-text", "story text outside any <gdi> block", line=self.line)
            )
            piece = stripped
        self.text_parts.append(piece)
        self.line += piece.count("\n")

    def _open_segment(self, *, image: int | None, block: bool) -> None:
        self.segment_open = True
        self.segment_is_block = block
        self.segment_image = image
        self.segment_line = self.line
        self.spans = []
        self.stack = []
        self.text_parts = []

    def _flush_text(self) -> None:
        if not self.text_parts:
            return
        text = "".join(self.text_parts)
        self.text_parts = []
        if self.stack:
            kind, ids, line = self.stack[-1]
            if text:
                self.spans.append(Span(text, kind, ids, line))
            return
        if not self.spans:
            text = text.lstrip()
        if not text:
            return
        if self.spans and self.spans[-1].kind is SpanKind.TEXT:
            self.spans[-1] = Span(self.spans[-1].text + text)
        else:
            self.spans.append(Span(text))

    def _close_inline(self, kind: SpanKind, ids: tuple[str, ...], line: int, why: str) -> None:
        self.add_issue(
            Issue.for_code(
                "unclosed-tag",
                f"<{_TAG_NAMES[kind]} {' '.join(ids)}> is not closed ({why})",
                line=line,
                frame=self.segment_image,
                entity_id=ids[0] if ids else None,
            )
        )

    def _close_segment(self, *, closed: bool, why: str = "") -> None:
        self._flush_text()
        while self.stack:
            kind, ids, line = self.stack.pop()
            self._close_inline(kind, ids, line, why or "the block ends")
        if self.segment_is_block and not closed:
            self.add_issue(
                Issue.for_code(
                    "unclosed-tag",
                    f"<gdi image{self.segment_image}> is not closed ({why})",
                    line=self.segment_line,
                    frame=self.segment_image,
                )
            )
        spans = self.spans
        while spans and not spans[-1].text.strip():
            spans.pop()
        if spans and spans[-1].text != spans[-1].text.rstrip():
            last = spans[-1]
            spans[-1] = Span(last.text.rstrip(), last.kind, last.ids, last.line)
        if self.segment_is_block and closed:
            self.closed_blocks += 1
        block_closed = closed if self.segment_is_block else True
        self.segments = (
            *self.segments,
            Segment(self.segment_image, tuple(spans), block_closed, self.segment_line),
        )
        self.segment_open = False
        self.segment_is_block = False
        self.spans = []

    def _story_tag(self, closing: bool, name: str, attributes: str) -> bool:
        """Apply one tag; True when a ``<think>`` sends the rest back to the analysis."""
        if name == "think":
            if not closing and self.think is ThinkState.ABSENT and not self.saw_block:
                if self.segment_open:
                    self._close_segment(closed=True)
                self.think = ThinkState.OPEN
                self.mode = _Mode.ANALYSIS
                return True
            self.add_issue(
                Issue.for_code(
                    "stray-tag", f"<{'/' if closing else ''}think> in the story", line=self.line
                )
            )
            return False
        if name == "gdi":
            self._block_tag(closing, attributes)
            return False
        kind = _INLINE_KINDS[name]
        if not closing:
            if not self.segment_open:
                self._open_segment(image=None, block=False)
                self.add_issue(
                    Issue.for_code(
                        "stray-text", "story text outside any <gdi> block", line=self.line
                    )
                )
            self._flush_text()
            self.stack.append((kind, _tag_ids(attributes), self.line))
            return False
        if not self.stack:
            self.add_issue(
                Issue.for_code(
                    "stray-tag",
                    f"</{name}> closes nothing",
                    line=self.line,
                    frame=self.segment_image,
                )
            )
            return False
        self._flush_text()
        kinds = [entry[0] for entry in self.stack]
        if kind in kinds:
            while self.stack[-1][0] is not kind:
                inner_kind, inner_ids, inner_line = self.stack.pop()
                self._close_inline(inner_kind, inner_ids, inner_line, f"</{name}> came first")
            self.stack.pop()
        else:
            open_kind, open_ids, _ = self.stack.pop()
            self.add_issue(
                Issue.for_code(
                    "mismatched-tag",
                    f"</{name}> closes <{_TAG_NAMES[open_kind]} {' '.join(open_ids)}>",
                    line=self.line,
                    frame=self.segment_image,
                    entity_id=open_ids[0] if open_ids else None,
                )
            )
        return False

    def _block_tag(self, closing: bool, attributes: str) -> None:
        if closing:
            if self.segment_open and self.segment_is_block:
                self._close_segment(closed=True)
            else:
                self.add_issue(Issue.for_code("stray-tag", "</gdi> closes nothing", line=self.line))
            return
        number = _DIGITS_RE.search(attributes)
        image = int(number.group()) if number is not None else None
        if self.segment_open:
            self._close_segment(closed=False, why=f"<gdi image{image}> starts")
        self._open_segment(image=image, block=True)
        self.saw_block = True
        if image is None:
            self.add_issue(
                Issue.for_code(
                    "bad-tag", f"<gdi{attributes}> names no image number", line=self.line
                )
            )

    # ---- the result -----------------------------------------------------------------------

    def story(self, *, empty: bool, ends_with_newline: bool) -> Story:
        """Close everything still open (call on a copy) and build the ``Story``."""
        self.finish()
        end_line = self.line - 1 if ends_with_newline and self.line > 1 else self.line
        ends_mid_tag = self.mode is _Mode.STORY and bool(self.pending)
        self.pending.clear()
        ends_inside = ends_mid_tag or bool(self.stack)
        block_open = self.segment_open and self.segment_is_block
        ends_inside = ends_inside or block_open
        if self.segment_open:
            self._close_segment(closed=False, why="the output ends")
        self._close_frame()
        truncated = ends_inside or (self.think is ThinkState.OPEN and self.mode is not _Mode.STORY)
        complete = self.think is ThinkState.CLOSED and self.closed_blocks > 0 and not truncated
        return Story(
            frames=self.frames,
            narrative=tuple(self.narrative),
            segments=self.segments,
            complete=complete,
            think=self.think,
            truncated=truncated,
            ends_mid_tag=ends_mid_tag,
            empty=empty,
            parse_issues=self.issues,
            end_line=end_line,
        )


class StoryStreamParser:
    """Parse an output while it streams: ``feed`` text as it arrives, ``snapshot`` at any time."""

    def __init__(self) -> None:
        self._state = _ParseState()
        self._chunks: list[str] = []
        self._snapshot: Story | None = None
        self._blank = True

    @property
    def text(self) -> str:
        """All the text fed so far."""
        if len(self._chunks) > 1:
            self._chunks = ["".join(self._chunks)]
        return self._chunks[0] if self._chunks else ""

    def feed(self, chunk: str) -> None:
        """Add the next piece of output (any size, split anywhere)."""
        if not chunk:
            return
        self._chunks.append(chunk)
        self._snapshot = None
        if self._blank and chunk.strip():
            self._blank = False
        self._state.consume(chunk)

    def snapshot(self) -> Story:
        """The best structured view of the text so far; equals ``parse_story(self.text)``."""
        if self._snapshot is None:
            state = self._state
            # Join the unsettled parts once so later copies stay short.
            if len(state.pending) > 1:
                state.pending[:] = ["".join(state.pending)]
            if len(state.text_parts) > 1:
                state.text_parts[:] = ["".join(state.text_parts)]
            ends_with_newline = bool(self._chunks) and self._chunks[-1].endswith("\n")
            self._snapshot = state.copy().story(
                empty=self._blank, ends_with_newline=ends_with_newline
            )
        return self._snapshot


def parse_story(text: str) -> Story:
    """Parse a whole output (or any prefix of one) into a ``Story``. Never raises on text."""
    parser = StoryStreamParser()
    parser.feed(text)
    return parser.snapshot()
