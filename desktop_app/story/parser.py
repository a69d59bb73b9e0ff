"""Tolerant, incremental parser for QwenStoryteller output (docs/model-contract.md section 3).

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

``table_reader`` reads the analysis and ``tag_reader`` the story; this module holds the state
they share, its copy for snapshots, and the streaming entry points.
"""

from __future__ import annotations

from desktop_app.story.model import (
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
from desktop_app.story.table_reader import _AnalysisReader, _Table
from desktop_app.story.tag_reader import _Mode, _StoryReader


class _ParseState(_AnalysisReader, _StoryReader):
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
