"""Strict format v2: GBNF grammars that make the output a complete story in the trained layout.

Every literal comes from ``desktop_app.story.trained_layout``, the renderer of the trained
layout, so a strict run writes exactly the bytes QwenStoryteller was trained on
(docs/model-contract.md, section 3) and ``render_trained(parse_story(output)) == output``. Two grammars, one after the other
(the sampler switches when ``</think>\\n`` has been written):

1. the analysis: ``<think>``, exactly one ``## Image K`` section per photo in order with its three
   tables (each may be empty), ids ``charK`` in Characters and ``objK``/``bgK``/``lmK`` in
   Objects with any K of up to ``ID_DIGITS`` digits, so ids are global and a later frame may
   reuse any earlier one (cross-frame identity); boxes ``x1,y1,x2,y2`` inside that photo's
   prepared size with ``x1 < x2`` and ``y1 < y2``; the Narrative Structure table with image
   numbers 1..N, then ``</think>``;
2. the story: one ``<gdi imageK>`` segment per photo in order, one empty line apart, whose tags
   may only name ids that frame K's tables defined (``gdo`` any, ``gda`` characters, ``gdl``
   background regions and landmarks).

Unique ids within a table. With unbounded numbers this is not context-free in any useful size
(the grammar would have to remember every subset of ids used so far), so the grammar allows any
id and the engine enforces uniqueness: ``table_ids.TableIds`` follows the text as it is written and, while
an id is being written in a Characters or Objects row, names the continuations that would finish
an id the table already has (or lead to a prefix with no unused completion left); the sampler
removes exactly those tokens before it draws. That only ever removes tokens, so every proof about
the grammar (shape, length) still holds, and an unused id is always reachable. Servers get the
combined grammar alone: there uniqueness, like id consistency, is left to the validator.

Free text (table cells, story text) may be any Unicode text except control characters, line
breaks and the few characters the structure needs (``|``, ``<``, ``>`` in cells; ``<`` in the
story), so names like "José" or "Łucja" and non-English stories keep their letters. Free text
never starts or ends with whitespace where the parser would strip it (a cell's ends, a segment's
ends), so what is written is what parses and renders back.

Lengths are capped so that the worst case fits ``max_tokens``: every token adds at least one byte
(llama.cpp's grammar refuses empty pieces), so the caps count the bytes a text can take, not its
characters. A printable ASCII character is one byte and costs one unit; any other character costs
``NON_ASCII_UNITS`` (4), because llama.cpp decodes byte tokens without refusing every overlong
form: "é" is two bytes, but written byte by byte as ``F0 80 83 A9`` it takes four tokens (overlong
ASCII is refused, so its one unit holds). A strict run therefore always ends with a complete story.
Short budgets give terse cells and fewer rows; the caps relax as the budget grows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from desktop_app.errors import StorytellerError
from desktop_app.story import trained_layout as layout
from desktop_app.story.ids import OBJECT_TABLE_KINDS, EntityKind, entity_kind
from desktop_app.story.model import SpanKind

SETTING_ELEMENTS = layout.SETTING_ELEMENTS
NARRATIVE_PHASES = layout.NARRATIVE_PHASES
# Ids: a kind prefix and a number without leading zeros of at most ID_DIGITS digits (0..999):
# stories number entities globally ("bg26"), so any number must be possible, and the bound keeps
# the length proof finite.
ID_DIGITS = 3
# Free text comes in two classes whose length costs differ (see the module docstring): printable
# ASCII, one unit, and every other character, NON_ASCII_UNITS. Cells exclude the table bar and
# tag brackets; story text excludes "<" (tags are the grammar's own). The *_FIRST classes leave
# out whitespace: they start (and end) texts the parser would otherwise strip.
CELL_CHAR = "[\\x20-\\x3B\\x3D\\x3F-\\x7B\\x7D\\x7E]"
CELL_FIRST_CHAR = "[\\x21-\\x3B\\x3D\\x3F-\\x7B\\x7D\\x7E]"
TEXT_CHAR = "[\\x20-\\x3B\\x3D-\\x7E]"
TEXT_FIRST_CHAR = "[\\x21-\\x3B\\x3D-\\x7E]"
# Beyond ASCII: no C1 controls (U+0080-U+009F, NEL among them), no line or paragraph separator
# (U+2028, U+2029), no surrogates. Positive ranges that end at U+10FFFF, not a negated class: a
# negated class would also match the "code points" llama.cpp decodes from the invalid bytes
# F5-FF, which Python then turns into U+FFFD.
NON_ASCII_CHAR = "[\\u00A0-\\u2027\\u202A-\\uD7FF\\uE000-\\U0010FFFF]"
# The same without the characters Python's str.isspace() counts as whitespace.
NON_ASCII_FIRST_CHAR = (
    "[\\u00A1-\\u167F\\u1681-\\u1FFF\\u200B-\\u2027\\u202A-\\u202E\\u2030-\\u205E"
    "\\u2060-\\u2FFF\\u3001-\\uD7FF\\uE000-\\U0010FFFF]"
)
# The whitespace NON_ASCII_CHAR allows (NON_ASCII_CHAR minus NON_ASCII_FIRST_CHAR).
NON_ASCII_SPACE = "[\\u00A0\\u1680\\u2000-\\u200A\\u202F\\u205F\\u3000]"
# Length units (worst-case tokens) one character of the NON_ASCII classes may take.
NON_ASCII_UNITS = 4
# Box cut points: x1 lies before a cut and x2 at or after it, which forces x1 < x2.
BOX_CUTS = 6


@dataclass(frozen=True)
class ThinkCaps:
    cell: int  # length units per table cell (see NON_ASCII_UNITS)
    characters: int  # rows per Characters table (0 or more)
    objects: int  # rows per Objects table: objects, background regions and landmarks
    settings: int  # rows per Setting table (0 or more)
    phases: int  # rows of the Narrative Structure table (>= 1)


@dataclass(frozen=True)
class StoryCaps:
    text: int  # length units of plain text between tags
    tags: int  # tags per segment
    tag_text: int  # length units inside a tag


# From roomy to terse; the first that fits the budget is used. A real story has up to about ten
# characters and fifteen objects and places per frame: the top rungs allow that.
THINK_LADDER = (
    ThinkCaps(100, 12, 18, 4, 5),
    ThinkCaps(64, 10, 15, 4, 5),
    ThinkCaps(40, 10, 15, 3, 5),
    ThinkCaps(40, 6, 8, 3, 5),
    ThinkCaps(24, 4, 5, 2, 4),
    ThinkCaps(24, 3, 3, 2, 3),
    ThinkCaps(12, 2, 2, 1, 2),
    ThinkCaps(12, 1, 1, 1, 2),
    ThinkCaps(4, 1, 1, 1, 1),
    ThinkCaps(1, 0, 0, 0, 1),
)
STORY_LADDER = (
    StoryCaps(240, 10, 40),
    StoryCaps(120, 6, 30),
    StoryCaps(80, 4, 24),
    StoryCaps(40, 3, 16),
    StoryCaps(20, 2, 12),
    StoryCaps(10, 1, 8),
    StoryCaps(4, 0, 1),
)
_TAG_KINDS = (SpanKind.ENTITY, SpanKind.ACTION, SpanKind.LOCATION)
_LONGEST_PREFIX = max(len(kind.value) for kind in EntityKind)


def longest_id() -> int:
    """The longest id the grammar allows ("char" and ``ID_DIGITS`` digits)."""
    return _LONGEST_PREFIX + ID_DIGITS


def literal(text: str) -> str:
    """A GBNF string literal for ``text``."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _same_length_range(low: str, high: str) -> str:
    """GBNF for the decimal numbers from ``low`` to ``high`` (same number of digits)."""
    if low == high:
        return literal(low)
    if len(low) == 1:
        return f"[{low}-{high}]"
    if low[0] == high[0]:
        return f"{literal(low[0])} {_same_length_range(low[1:], high[1:])}"
    rest = len(low) - 1
    options = [f"{literal(low[0])} ({_same_length_range(low[1:], '9' * rest)})"]
    first, last = int(low[0]) + 1, int(high[0]) - 1
    if first <= last:
        options.append(f"[{first}-{last}]" + " [0-9]" * rest)
    options.append(f"{literal(high[0])} ({_same_length_range('0' * rest, high[1:])})")
    return "(" + " | ".join(options) + ")"


def integer_range(low: int, high: int) -> str:
    """GBNF for the integers ``low..high`` written without leading zeros."""
    if low > high:
        raise ValueError(f"empty range {low}..{high}")
    options = []
    start = low
    while start <= high:
        digits = len(str(start))
        end = min(high, 10**digits - 1)
        options.append(_same_length_range(str(start), str(end)))
        start = end + 1
    return options[0] if len(options) == 1 else "(" + " | ".join(options) + ")"


def _cuts(size: int) -> list[int]:
    cuts = sorted({max(1, min(size, round(size * k / BOX_CUTS))) for k in range(1, BOX_CUTS)})
    return cuts or [1]


def box_length(width: int, height: int) -> int:
    """The longest box text inside ``width`` x ``height``."""
    return 2 * len(str(width)) + 2 * len(str(height)) + 3 * len(layout.BOX_SEPARATOR)


def box_rule(width: int, height: int) -> tuple[str, int]:
    """GBNF for ``x1,y1,x2,y2`` inside ``width`` x ``height`` with x1 < x2, y1 < y2; max length."""
    comma = literal(layout.BOX_SEPARATOR)
    options = []
    for cx in _cuts(width):
        for cy in _cuts(height):
            options.append(
                f"{integer_range(0, cx - 1)} {comma} {integer_range(0, cy - 1)} {comma} "
                f"{integer_range(cx, width)} {comma} {integer_range(cy, height)}"
            )
    return "(" + " | ".join(options) + ")", box_length(width, height)


def _choice(words: Iterable[str]) -> str:
    return "(" + " | ".join(literal(word) for word in words) + ")"


def length_rules(name: str, ascii_class: str, budget: int) -> list[str]:
    """Rules ``name1`` .. ``name{budget}``: ``nameB`` is any text of at most B length units.

    An ASCII character (``ascii_class``) costs one unit, any other (NON_ASCII_CHAR) costs
    NON_ASCII_UNITS; each rule is optional, so the text may stop anywhere.
    """
    rules = []
    for units in range(1, budget + 1):
        options = [ascii_class + (f" {name}{units - 1}" if units > 1 else "")]
        if units >= NON_ASCII_UNITS:
            rest = units - NON_ASCII_UNITS
            options.append(NON_ASCII_CHAR + (f" {name}{rest}" if rest else ""))
        rules.append(f"{name}{units} ::= ( " + " | ".join(options) + " )?")
    return rules


def trimmed_length_rules(name: str, ascii_solid: str, budget: int) -> list[str]:
    """Rules ``name1`` .. ``name{budget}``: text of at most B units that is empty or ends in a
    character that is not whitespace (the parser strips trailing whitespace).

    ``nameB`` is optional; ``nameBx`` is the same text, not empty. ``ascii_solid`` is the ASCII
    class without the space; the space is the only ASCII whitespace the text classes allow.
    """
    rules = []
    for units in range(1, budget + 1):

        def tail(rule: str, rest: int) -> str:
            return f" {rule}{rest}" if rest else ""

        options = [ascii_solid + tail(name, units - 1)]
        if units > 1:
            options.append(f'" " {name}{units - 1}x')
        if units >= NON_ASCII_UNITS:
            rest = units - NON_ASCII_UNITS
            options.append(NON_ASCII_FIRST_CHAR + tail(name, rest))
            if rest:
                options.append(f"{NON_ASCII_SPACE} {name}{rest}x")
        rules.append(f"{name}{units}x ::= " + " | ".join(options))
        rules.append(f"{name}{units} ::= {name}{units}x?")
    return rules


def bounded_text(first_ascii: str, first_other: str, rest: str, budget: int) -> str:
    """GBNF for non-empty text of at most ``budget`` units, its tail from ``rest`` rules."""
    options = [first_ascii + (f" {rest}{budget - 1}" if budget > 1 else "")]
    if budget >= NON_ASCII_UNITS:
        tail = budget - NON_ASCII_UNITS
        options.append(first_other + (f" {rest}{tail}" if tail else ""))
    return "( " + " | ".join(options) + " )"


def id_rules() -> list[str]:
    """``idnum``, ``charid``, ``objid`` (objects, background regions, landmarks), ``placeid``."""
    digits = f"[1-9] [0-9]{{0,{ID_DIGITS - 1}}}" if ID_DIGITS > 1 else "[1-9]"
    places = [kind.value for kind in EntityKind if kind.is_place]
    return [
        f'idnum ::= "0" | {digits}',
        f"charid ::= {literal(EntityKind.CHARACTER.value)} idnum",
        f"objid ::= {_choice(kind.value for kind in OBJECT_TABLE_KINDS)} idnum",
        f"placeid ::= {_choice(places)} idnum",
    ]


class StrictFormat:
    """The two grammars of one strict run: analysis first, then the story."""

    def __init__(self, image_sizes: Sequence[tuple[int, int]], max_tokens: int) -> None:
        self.image_sizes = list(image_sizes)
        self.max_tokens = max_tokens
        n = len(self.image_sizes)
        story_reserve = self.story_worst_length([[]] * n, STORY_LADDER[-1])
        for caps in THINK_LADDER:
            if self.think_worst_length(caps) + story_reserve <= max_tokens:
                self.think_caps = caps
                break
        else:
            needed = self.think_worst_length(THINK_LADDER[-1]) + story_reserve
            raise StorytellerError(
                f"--strict-format needs --max-tokens of at least {needed} for {n} photo(s)"
            )

    # -- analysis -------------------------------------------------------------------------------

    def think_worst_length(self, caps: ThinkCaps) -> int:
        """The longest analysis this grammar allows, in length units (at least its tokens)."""
        n = len(self.image_sizes)
        cell = caps.cell
        sep = len(layout.CELL_SEPARATOR)
        row_ends = len(layout.CELL_OPEN) + len(layout.ROW_CLOSE)
        id_length = longest_id()
        total = len(layout.THINK_OPEN) + len(layout.NARRATIVE_OPEN) + len(layout.THINK_CLOSE)
        for index, (width, height) in enumerate(self.image_sizes, start=1):
            box = box_length(width, height)
            total += len(layout.frame_heading(index)) + len(layout.CHARACTERS_OPEN)
            total += caps.characters * (row_ends + id_length + 5 * (sep + cell) + sep + box)
            total += len(layout.OBJECTS_OPEN)
            total += caps.objects * (row_ends + id_length + 4 * (sep + cell) + sep + box)
            total += len(layout.SETTING_OPEN)
            longest_element = max(map(len, SETTING_ELEMENTS))
            total += caps.settings * (row_ends + longest_element + 4 * (sep + cell))
            total += len(layout.FRAME_CLOSE)
        images_cell = n * len(str(n)) + (n - 1) * len(", ")
        longest_phase = max(map(len, NARRATIVE_PHASES))
        total += caps.phases * (row_ends + longest_phase + 2 * (sep + cell) + sep + images_cell)
        return total

    def think_grammar(self, caps: ThinkCaps | None = None) -> str:
        """GBNF of the analysis block (root rule ``root``), by default with ``think_caps``."""
        caps = caps or self.think_caps
        n = len(self.image_sizes)
        open_row, sep, close_row = (
            literal(layout.CELL_OPEN),
            "sep",
            literal(layout.ROW_CLOSE),
        )
        rules = [
            "root ::= "
            + literal(layout.THINK_OPEN)
            + " "
            + " ".join(f"frame{k}" for k in range(1, n + 1))
            + " narrative "
            + literal(layout.THINK_CLOSE),
            "cell ::= "
            + bounded_text(CELL_FIRST_CHAR, NON_ASCII_FIRST_CHAR, "cellrest", caps.cell),
            *trimmed_length_rules("cellrest", CELL_FIRST_CHAR, caps.cell - 1),
            f"sep ::= {literal(layout.CELL_SEPARATOR)}",
            *id_rules(),
            "element ::= " + _choice(SETTING_ELEMENTS),
            "phase ::= " + _choice(NARRATIVE_PHASES),
            "imagenum ::= " + integer_range(1, n),
            f"images ::= imagenum ({literal(', ')} imagenum){{0,{max(0, n - 1)}}}",
            f"setrow ::= {open_row} element {sep} cell {sep} cell {sep} cell {sep} cell "
            + close_row,
            f"narrow ::= {open_row} phase {sep} cell {sep} cell {sep} images {close_row}",
            f"narrative ::= {literal(layout.NARRATIVE_OPEN)} narrow{{1,{caps.phases}}}",
        ]
        for k, (width, height) in enumerate(self.image_sizes, start=1):
            box, _ = box_rule(width, height)
            rules.append(f"box{k} ::= {box}")
            rules.append(
                f"crow{k} ::= {open_row} charid" + f" {sep} cell" * 5 + f" {sep} box{k} {close_row}"
            )
            rules.append(
                f"orow{k} ::= {open_row} objid" + f" {sep} cell" * 4 + f" {sep} box{k} {close_row}"
            )
            rules.append(
                f"frame{k} ::= "
                + literal(layout.frame_heading(k) + layout.CHARACTERS_OPEN)
                + f" crow{k}{{0,{caps.characters}}} "
                + literal(layout.OBJECTS_OPEN)
                + f" orow{k}{{0,{caps.objects}}} "
                + literal(layout.SETTING_OPEN)
                + f" setrow{{0,{caps.settings}}} "
                + literal(layout.FRAME_CLOSE)
            )
        return "\n".join(rules) + "\n"

    # -- story ----------------------------------------------------------------------------------

    @staticmethod
    def story_worst_length(frame_ids: Sequence[Sequence[str]], caps: StoryCaps) -> int:
        """The longest story this grammar allows, in length units (at least its tokens)."""
        total = len(layout.SEGMENT_SEPARATOR) * max(0, len(frame_ids) - 1)
        for k, ids in enumerate(frame_ids, start=1):
            longest_id = max((len(i) for i in ids), default=0)
            tags = caps.tags if ids else 0
            tag = len("<gdo >") + 2 * longest_id + 1 + caps.tag_text + len("</gdo>")
            total += len(layout.segment_open(k)) + caps.text + tags * (tag + caps.text)
            total += len(layout.SEGMENT_CLOSE)
        return total

    def story_grammar(self, think_text: str, remaining_tokens: int) -> str:
        """GBNF of the story, given the analysis written (its ids) and the tokens left."""
        frames = [sorted(ids) for ids in defined_ids(think_text, len(self.image_sizes))]
        return "\n".join(self._story_rules(frames, remaining_tokens)) + "\n"

    def _story_rules(self, frames: Sequence[Sequence[str]], budget: int) -> list[str]:
        """Story rules; a frame's ids may be ``["*"]``: any id of the right kind (no analysis)."""
        lengths = [[("x" * longest_id() if i == "*" else i) for i in ids] for ids in frames]
        caps = STORY_LADDER[-1]
        for candidate in STORY_LADDER:
            if self.story_worst_length(lengths, candidate) <= budget:
                caps = candidate
                break
        segments = [f"seg{k}" for k in range(1, len(frames) + 1)]
        rules = [
            "root ::= " + f" {literal(layout.SEGMENT_SEPARATOR)} ".join(segments),
            # Text that starts a segment, follows a tag or fills one; the "end" variants are the
            # last piece of a segment and end in a non-space (the parser strips what follows).
            "text ::= " + bounded_text(TEXT_FIRST_CHAR, NON_ASCII_FIRST_CHAR, "tany", caps.text),
            "textend ::= "
            + bounded_text(TEXT_FIRST_CHAR, NON_ASCII_FIRST_CHAR, "tsolid", caps.text),
            "after ::= " + bounded_text(TEXT_CHAR, NON_ASCII_CHAR, "tany", caps.text),
            "afterend ::= " + bounded_text(TEXT_CHAR, NON_ASCII_CHAR, "tsolid", caps.text),
            "inner ::= " + bounded_text(TEXT_CHAR, NON_ASCII_CHAR, "tany", caps.tag_text),
            "innerend ::= " + bounded_text(TEXT_CHAR, NON_ASCII_CHAR, "tsolid", caps.tag_text),
            *length_rules("tany", TEXT_CHAR, max(caps.text, caps.tag_text) - 1),
            *trimmed_length_rules("tsolid", TEXT_FIRST_CHAR, max(caps.text, caps.tag_text) - 1),
            *id_rules(),
        ]
        for k, ids in enumerate(frames, start=1):
            tags, tags_end = [], []
            for kind in _TAG_KINDS:
                rule = f"{layout.tag_close(kind)[2:5]}{k}ids"
                if ids == ["*"]:
                    # No analysis to read ids from: any id of the right kind, one or two.
                    one = {
                        SpanKind.ENTITY: "( charid | objid )",
                        SpanKind.ACTION: "charid",
                        SpanKind.LOCATION: "placeid",
                    }[kind]
                    rules.append(f"{rule} ::= {one} ({literal(' ')} {one})?")
                else:
                    allowed = [i for i in ids if _tag_may_name(kind, i)]
                    if not allowed:
                        continue
                    rules.extend(_distinct_ids_rules(rule, allowed))
                opening = literal(layout.tag_open(kind, ["@"]).split("@")[0]) + f" {rule} "
                opening += literal(">")
                tags.append(f"{opening} inner {literal(layout.tag_close(kind))}")
                tags_end.append(f"{opening} innerend {literal(layout.tag_close(kind))}")
            body = "textend"
            if tags and caps.tags:
                rules.append(f"tag{k} ::= " + " | ".join(f"( {t} )" for t in tags))
                rules.append(f"tagend{k} ::= " + " | ".join(f"( {t} )" for t in tags_end))
                # The last tag either ends the segment (its text ending in a non-space) or is
                # followed by text that does.
                last = f"( tagend{k} | tag{k} afterend )"
                middle = f"( tag{k} after? ){{0,{caps.tags - 1}}} " if caps.tags > 1 else ""
                # A segment may start with a tag ("<gdo char1>Maya</gdo> waves"), as in training.
                body = f"( textend | text? {middle}{last} )"
            rules.append(
                f"seg{k} ::= {literal(layout.segment_open(k))} {body} "
                + literal(layout.SEGMENT_CLOSE)
            )
        return rules

    def combined_grammar(self) -> str:
        """One grammar for both parts, for servers that cannot switch grammars mid-stream.

        The story may then name any id of the right kind in each frame, defined or not: the
        shape is guaranteed, id consistency (and uniqueness within a table) is left to the
        validator.
        """
        # The story's share must be reserved up front: take the roomiest analysis that leaves
        # the story a middle rung of its ladder (or the analysis caps alone, if none does).
        wildcard = [["x" * longest_id()]] * len(self.image_sizes)
        story_share = self.story_worst_length(wildcard, STORY_LADDER[len(STORY_LADDER) // 2])
        caps = next(
            (
                c
                for c in THINK_LADDER
                if self.think_worst_length(c) + story_share <= self.max_tokens
            ),
            self.think_caps,
        )
        reserve = self.max_tokens - self.think_worst_length(caps)
        think = self.think_grammar(caps).replace("root ::=", "think ::=", 1)
        story_rules = self._story_rules([["*"]] * len(self.image_sizes), reserve)
        # The id rules are in both parts: keep one copy.
        shared = set(id_rules())
        story = [rule for rule in story_rules if rule not in shared]
        story[0] = story[0].replace("root ::=", "story ::=", 1)
        return "root ::= think story\n" + think + "\n".join(story) + "\n"


def _tag_may_name(tag: SpanKind, entity_id: str) -> bool:
    """``<gdo>`` names anything, ``<gda>`` a character, ``<gdl>`` a place (bg or lm)."""
    kind = entity_kind(entity_id)
    if kind is None:
        return False
    if tag is SpanKind.ACTION:
        return kind is EntityKind.CHARACTER
    if tag is SpanKind.LOCATION:
        return kind.is_place
    return True


def _distinct_ids_rules(rule: str, allowed: Sequence[str]) -> list[str]:
    """``rule``: one id of ``allowed``, or two different ones separated by a space.

    Two different ids, not any two: the parser reads ``<gdo char1 char1>`` as naming char1 once,
    which would not render back to the same bytes. One tail rule per first id keeps it at
    len(allowed) squared literals.
    """
    if len(allowed) == 1:
        return [f"{rule} ::= {literal(allowed[0])}"]
    rules = [
        f"{rule} ::= "
        + " | ".join(f"{literal(first)} {rule}t{i}" for i, first in enumerate(allowed))
    ]
    for i, first in enumerate(allowed):
        others = [other for other in allowed if other != first]
        rules.append(f"{rule}t{i} ::= ({literal(' ')} {_choice(others)})?")
    return rules


_FRAME_HEADING = re.compile(r"^## Image (\d+)\s*$", re.MULTILINE)
ROW_ID = re.compile(r"^\|\s*((?:char|obj|bg|lm)[0-9]+)\s*\|", re.MULTILINE)


def defined_ids(think_text: str, n_frames: int) -> list[set[str]]:
    """The ids each frame's tables define (frame 1 first), read from an analysis block."""
    frames: list[set[str]] = [set() for _ in range(n_frames)]
    headings = list(_FRAME_HEADING.finditer(think_text))
    narrative = think_text.find("## Narrative Structure")
    for position, heading in enumerate(headings):
        index = int(heading.group(1)) - 1
        end = headings[position + 1].start() if position + 1 < len(headings) else narrative
        section = think_text[heading.end() : end if end >= 0 else None]
        if 0 <= index < n_frames:
            frames[index].update(ROW_ID.findall(section))
    return frames
