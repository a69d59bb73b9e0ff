"""Strict format: GBNF grammars that make the output a complete, valid grounded story.

Two grammars, one after the other (the sampler switches when ``</think>\\n`` has been written):

1. the analysis: ``<think>``, exactly one ``## Image K`` section per photo in order with the three
   tables of DESIGN.md 2.1 (ids numbered ``char1, char2, …`` / ``obj1, …`` / ``bg1, …`` per
   table, so none repeats), bounding boxes whose numbers lie inside that photo's prepared size
   with ``x1 < x2`` and ``y1 < y2``, the Narrative Structure table with image numbers 1..N,
   then ``</think>``;
2. the story: one ``<gdi imageK>`` segment per photo in order, whose ``<gdo>``/``<gda>``/``<gdl>``
   tags may only name ids that frame K's tables defined (characters act, background regions
   are places).

Free text (table cells, story text) may be any Unicode text except control characters, line
breaks and the few characters the structure needs (``|``, ``<``, ``>`` in cells; ``<`` in the
story), so names like "José" or "Łucja" and non-English stories keep their letters.

Lengths are capped so that the worst case fits ``max_tokens``: every token adds at least one byte
(llama.cpp's grammar refuses empty pieces), so the caps count the bytes a text can take, not its
characters. A printable ASCII character is one byte and costs one unit; any other character costs
``NON_ASCII_UNITS`` (4), because llama.cpp decodes byte tokens without refusing every overlong
form: "é" is two bytes, but written byte by byte as ``F0 80 83 A9`` it takes four tokens (overlong
ASCII is refused, so its one unit holds). A strict run therefore always ends with a complete story.
Short budgets give terse cells; the caps relax as the budget grows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from desktop_app.errors import StorytellerError

CHARACTER_HEADER = (
    "| Character ID | Name | Description | Emotions | Actions | Narrative Function "
    "| Bounding Box |\n|---|---|---|---|---|---|---|\n"
)
OBJECT_HEADER = (
    "| Object ID | Description | Function | Interaction | Narrative Function | Bounding Box |\n"
    "|---|---|---|---|---|---|\n"
)
SETTING_HEADER = (
    "| Setting Element | Description | Mood | Time | Narrative Function |\n|---|---|---|---|---|\n"
)
NARRATIVE_HEADER = "| Narrative Phase | Description | Key Events | Images |\n|---|---|---|---|\n"
SETTING_ELEMENTS = (
    "Location",
    "Environment",
    "Lighting",
    "Weather",
    "Time Period",
    "Architecture",
    "Interior Design",
    "Atmosphere",
    "Background",
)
NARRATIVE_PHASES = ("Introduction", "Development", "Conflict", "Turning Point", "Conclusion")
# Free text comes in two classes whose length costs differ (see the module docstring): printable
# ASCII, one unit, and every other character, NON_ASCII_UNITS. Cells exclude the table bar and
# tag brackets; story text excludes "<" (tags are the grammar's own). A first character is never
# whitespace (the parser strips it, and an all-blank cell or segment would read as empty).
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
# Length units (worst-case tokens) one character of the NON_ASCII classes may take.
NON_ASCII_UNITS = 4
# Box cut points: x1 lies before a cut and x2 at or after it, which forces x1 < x2.
BOX_CUTS = 6


@dataclass(frozen=True)
class ThinkCaps:
    cell: int  # length units per table cell (see NON_ASCII_UNITS)
    characters: int  # rows per Characters table
    objects: int  # obj rows per Objects table
    backgrounds: int  # bg rows per Objects table
    settings: int  # rows per Setting table (>= 1)
    phases: int  # rows of the Narrative Structure table (>= 1)


@dataclass(frozen=True)
class StoryCaps:
    text: int  # length units of plain text between tags
    tags: int  # tags per segment
    tag_text: int  # length units inside a tag


THINK_LADDER = (
    ThinkCaps(100, 5, 5, 3, 4, 5),
    ThinkCaps(64, 4, 4, 2, 3, 5),
    ThinkCaps(40, 3, 3, 2, 2, 4),
    ThinkCaps(24, 2, 2, 1, 2, 3),
    ThinkCaps(12, 1, 1, 1, 1, 2),
    ThinkCaps(4, 1, 1, 0, 1, 1),
    ThinkCaps(1, 0, 0, 0, 1, 1),
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


def box_rule(width: int, height: int) -> tuple[str, int]:
    """GBNF for ``x1, y1, x2, y2`` inside ``width`` x ``height`` with x1 < x2, y1 < y2; max length."""
    options = []
    for cx in _cuts(width):
        for cy in _cuts(height):
            options.append(
                f'{integer_range(0, cx - 1)} ", " {integer_range(0, cy - 1)} ", " '
                f'{integer_range(cx, width)} ", " {integer_range(cy, height)}'
            )
    max_len = 2 * len(str(width)) + 2 * len(str(height)) + 6
    return "(" + " | ".join(options) + ")", max_len


def _choice(words: Sequence[str]) -> str:
    return "(" + " | ".join(literal(word) for word in words) + ")"


def _nested_rows(names: Sequence[str]) -> str:
    """Rows that may stop after any one but come in order: ( r1 ( r2 ( r3 )? )? )?."""
    text = ""
    for name in reversed(names):
        text = f"( {name} {text} )?" if text else f"( {name} )?"
    return text


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


def bounded_text(first_ascii: str, first_other: str, rest: str, budget: int) -> str:
    """GBNF for non-empty text of at most ``budget`` units, its tail from ``length_rules(rest)``."""
    options = [first_ascii + (f" {rest}{budget - 1}" if budget > 1 else "")]
    if budget >= NON_ASCII_UNITS:
        tail = budget - NON_ASCII_UNITS
        options.append(first_other + (f" {rest}{tail}" if tail else ""))
    return "( " + " | ".join(options) + " )"


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

    def _box_lengths(self) -> list[int]:
        return [2 * len(str(w)) + 2 * len(str(h)) + 6 for w, h in self.image_sizes]

    def think_worst_length(self, caps: ThinkCaps) -> int:
        """The longest analysis this grammar allows, in length units (at least its tokens)."""
        n = len(self.image_sizes)
        cell = caps.cell
        total = len("<think>\n") + len("## Narrative Structure\n") + len(NARRATIVE_HEADER)
        total += len("</think>\n")
        for index, box in enumerate(self._box_lengths(), start=1):
            total += len(f"## Image {index}\n\n### Characters\n") + len(CHARACTER_HEADER)
            total += caps.characters * (len("| char | ") + 2 + 5 * (cell + 3) + box + 3)
            total += len("\n### Objects\n") + len(OBJECT_HEADER)
            total += (caps.objects + caps.backgrounds) * (
                len("| obj | ") + 2 + 4 * (cell + 3) + box + 3
            )
            total += len("\n### Setting\n") + len(SETTING_HEADER)
            total += caps.settings * (len("| Interior Design | ") + 4 * (cell + 3) + 1)
            total += 1
        images_cell = n * (len(str(n)) + 2)
        total += caps.phases * (len("| Turning Point | ") + 2 * (cell + 3) + images_cell + 3)
        return total

    def think_grammar(self) -> str:
        """GBNF of the analysis block (root rule ``root``)."""
        caps = self.think_caps
        n = len(self.image_sizes)
        rules = [
            "root ::= "
            + literal("<think>\n")
            + " "
            + " ".join(f"frame{k}" for k in range(1, n + 1))
            + " narrative "
            + literal("</think>\n"),
            "cell ::= "
            + bounded_text(CELL_FIRST_CHAR, NON_ASCII_FIRST_CHAR, "cellrest", caps.cell),
            *length_rules("cellrest", CELL_CHAR, caps.cell - 1),
            "sep ::= " + literal(" | "),
            "element ::= " + _choice(SETTING_ELEMENTS),
            "phase ::= " + _choice(NARRATIVE_PHASES),
            "imagenum ::= " + integer_range(1, n),
            f"images ::= imagenum ({literal(', ')} imagenum){{0,{max(0, n - 1)}}}",
            "setrow ::= "
            + literal("| ")
            + " element sep cell sep cell sep cell sep cell "
            + literal(" |\n"),
            "narrow ::= "
            + literal("| ")
            + " phase sep cell sep cell sep images "
            + literal(" |\n"),
            "narrative ::= "
            + literal("## Narrative Structure\n" + NARRATIVE_HEADER)
            + f" narrow{{1,{caps.phases}}}",
        ]
        for k, (width, height) in enumerate(self.image_sizes, start=1):
            box, _ = box_rule(width, height)
            rules.append(f"box{k} ::= {box}")
            char_rows = [f"c{k}x{i}" for i in range(1, caps.characters + 1)]
            obj_rows = [f"o{k}x{i}" for i in range(1, caps.objects + 1)]
            bg_rows = [f"b{k}x{i}" for i in range(1, caps.backgrounds + 1)]
            for i, name in enumerate(char_rows, start=1):
                rules.append(
                    f"{name} ::= "
                    + literal(f"| char{i} | ")
                    + f" cell sep cell sep cell sep cell sep cell sep box{k} "
                    + literal(" |\n")
                )
            for prefix, names in (("obj", obj_rows), ("bg", bg_rows)):
                for i, name in enumerate(names, start=1):
                    rules.append(
                        f"{name} ::= "
                        + literal(f"| {prefix}{i} | ")
                        + f" cell sep cell sep cell sep cell sep box{k} "
                        + literal(" |\n")
                    )
            rules.append(
                f"frame{k} ::= "
                + literal(f"## Image {k}\n\n### Characters\n" + CHARACTER_HEADER)
                + " "
                + (_nested_rows(char_rows) if char_rows else "")
                + " "
                + literal("\n### Objects\n" + OBJECT_HEADER)
                + " "
                + (_nested_rows(obj_rows) if obj_rows else "")
                + " "
                + (_nested_rows(bg_rows) if bg_rows else "")
                + " "
                + literal("\n### Setting\n" + SETTING_HEADER)
                + f" setrow{{1,{caps.settings}}} "
                + literal("\n")
            )
        return "\n".join(rules) + "\n"

    # -- story ----------------------------------------------------------------------------------

    @staticmethod
    def story_worst_length(frame_ids: Sequence[Sequence[str]], caps: StoryCaps) -> int:
        """The longest story this grammar allows, in length units (at least its tokens)."""
        total = 0
        for k, ids in enumerate(frame_ids, start=1):
            longest_id = max((len(i) for i in ids), default=0)
            tags = caps.tags if ids else 0
            tag = len("<gdo >") + 2 * longest_id + 1 + caps.tag_text + len("</gdo>")
            total += len(f"<gdi image{k}>\n") + caps.text + tags * (tag + caps.text)
            total += len("\n</gdi>\n")
        return total

    def story_grammar(self, think_text: str, remaining_tokens: int) -> str:
        """GBNF of the story, given the analysis written (its ids) and the tokens left."""
        frames = defined_ids(think_text, len(self.image_sizes))
        caps = STORY_LADDER[-1]
        for candidate in STORY_LADDER:
            if (
                self.story_worst_length([sorted(ids) for ids in frames], candidate)
                <= remaining_tokens
            ):
                caps = candidate
                break
        rules = [
            "root ::= " + " ".join(f"seg{k}" for k in range(1, len(frames) + 1)),
            "text ::= "
            + bounded_text(TEXT_FIRST_CHAR, NON_ASCII_FIRST_CHAR, "textrest", caps.text),
            # Text after a tag may start with a space ("<gdo char1>José</gdo> waves").
            "after ::= " + bounded_text(TEXT_CHAR, NON_ASCII_CHAR, "textrest", caps.text),
            "inner ::= " + bounded_text(TEXT_CHAR, NON_ASCII_CHAR, "textrest", caps.tag_text),
            *length_rules("textrest", TEXT_CHAR, max(caps.text, caps.tag_text) - 1),
        ]
        for k, ids in enumerate(frames, start=1):
            characters = sorted(i for i in ids if i.startswith("char"))
            backgrounds = sorted(i for i in ids if i.startswith("bg"))
            everything = sorted(ids)
            tags = []
            for tag, names in (("gdo", everything), ("gda", characters), ("gdl", backgrounds)):
                if names:
                    rules.append(f"{tag}{k}id ::= {_choice(names)}")
                    tags.append(
                        literal(f"<{tag} ")
                        + f" {tag}{k}id ({literal(' ')} {tag}{k}id)? "
                        + literal(">")
                        + " inner "
                        + literal(f"</{tag}>")
                    )
            body = "text"
            if tags and caps.tags:
                rules.append(f"tag{k} ::= " + " | ".join(f"( {t} )" for t in tags))
                body = f"text ( tag{k} after? ){{0,{caps.tags}}}"
            rules.append(
                f"seg{k} ::= " + literal(f"<gdi image{k}>\n") + f" {body} " + literal("\n</gdi>\n")
            )
        return "\n".join(rules) + "\n"

    def combined_grammar(self) -> str:
        """One grammar for both parts, for servers that cannot switch grammars mid-stream.

        The story may then name any id the caps allow in each frame, defined or not: the shape
        is guaranteed, id consistency is left to the validator.
        """
        caps = self.think_caps
        possible = (
            [f"char{i}" for i in range(1, caps.characters + 1)]
            + [f"obj{i}" for i in range(1, caps.objects + 1)]
            + [f"bg{i}" for i in range(1, caps.backgrounds + 1)]
        )
        fake_think = "".join(
            f"## Image {k}\n" + "".join(f"| {i} |\n" for i in possible)
            for k in range(1, len(self.image_sizes) + 1)
        )
        reserve = self.max_tokens - self.think_worst_length(caps)
        think = self.think_grammar().replace("root ::=", "think ::=", 1)
        story = self.story_grammar(fake_think, reserve).replace("root ::=", "story ::=", 1)
        return "root ::= think story\n" + think + story


_FRAME_HEADING = re.compile(r"^## Image (\d+)\s*$", re.MULTILINE)
_ROW_ID = re.compile(r"^\|\s*((?:char|obj|bg)\d+)\s*\|", re.MULTILINE)


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
            frames[index].update(_ROW_ID.findall(section))
    return frames
