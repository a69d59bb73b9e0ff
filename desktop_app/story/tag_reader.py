"""Reading the story part of QwenStoryteller output: its tags and the text between them.

After ``</think>`` the output is ``<gdi imageN>`` blocks holding ``<gdo>``/``<gda>``/``<gdl>``
spans (docs/model-contract.md 3.3). This module holds the tag grammar (also used to find the tags that
end the analysis), the reading modes the tags switch between, and ``_StoryReader``, the part of
the parse state that turns tags and text into segments, spans and parse issues.
"""

from __future__ import annotations

import enum
import functools
import re

from desktop_app.story.model import Issue, Segment, Span, SpanKind, ThinkState

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
_ID_SPLIT_RE = re.compile(r"[\s,;]+")
_DIGITS_RE = re.compile(r"\d{1,9}")


class _Mode(enum.Enum):
    PREAMBLE = "preamble"  # nothing placed yet: waiting for <think>, analysis or story
    ANALYSIS = "analysis"  # inside <think>: line-oriented markdown
    STORY = "story"  # after </think> (or a story that starts without one): tags and text


@functools.lru_cache(maxsize=512)  # the same few tags ("<gdo char1>") come back all the time
def _tag_ids(attributes: str) -> tuple[str, ...]:
    ids = (part.strip("\"'/=") for part in _ID_SPLIT_RE.split(attributes))
    return tuple(dict.fromkeys(i for i in ids if i))


class _StoryReader:
    """The story half of the parse state: tags and text into segments, spans and issues."""

    # Set by the parse state's __init__; listed here for readers and type checkers.
    mode: _Mode
    think: ThinkState
    line: int
    pending: list[str]
    issues: tuple[Issue, ...]
    segments: tuple[Segment, ...]
    segment_open: bool
    segment_is_block: bool
    segment_image: int | None
    segment_line: int | None
    spans: list[Span]
    stack: list[tuple[SpanKind, tuple[str, ...], int]]
    text_parts: list[str]
    closed_blocks: int
    saw_block: bool

    def add_issue(self, issue: Issue) -> None:
        self.issues = (*self.issues, issue)

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
