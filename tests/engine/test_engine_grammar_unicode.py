"""Strict format keeps non-English names and stories: llama.cpp's own grammar sampler decides.

Hand-written outputs are fed to ``llama_sampler_init_grammar`` (the tiny model's vocabulary,
in a child process: tests/engine/gbnf_probe.py), both as the tokenizer splits them and one byte
per token, so multi-byte characters arrive cut mid-sequence as a model may write them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app.engine.grammar import NON_ASCII_CHAR, NON_ASCII_FIRST_CHAR, StrictFormat
from desktop_app.story.parser import parse_story
from desktop_app.story.trained_layout import (
    CHARACTERS_OPEN,
    FRAME_CLOSE,
    NARRATIVE_OPEN,
    OBJECTS_OPEN,
    SETTING_OPEN,
    frame_heading,
    render_trained,
)
from desktop_app.story.validate import validate

if TYPE_CHECKING:
    from conftest import TinyModel


PROBE = Path(__file__).with_name("gbnf_probe.py")
SIZES = [(84, 112), (112, 56)]


def analysis(names: tuple[str, str, str], cell: str = "calm") -> str:
    """An analysis in the trained layout (docs/model-contract.md 3.2)."""
    jose, zoe, lucja = names
    return (
        "<think>\n"
        + frame_heading(1)
        + CHARACTERS_OPEN
        + f"| char1 | {jose} | a man in a red coat | {cell} | waves | hero | 10,20,60,100 |\n"
        + f"| char2 | {zoe} | a girl | {cell} | laughs | friend | 0,0,84,112 |\n"
        + OBJECTS_OPEN
        + "| obj1 | a kite | toy | held | hope | 5,5,30,40 |\n"
        + "| bg1 | the beach | place | none | setting | 0,50,84,112 |\n"
        + SETTING_OPEN
        + "| Location | a beach | bright | noon | start |\n"
        + FRAME_CLOSE
        + frame_heading(2)
        + CHARACTERS_OPEN
        + f"| char1 | {lucja} | an aunt | {cell} | cooks | host | 1,1,111,55 |\n"
        + OBJECTS_OPEN
        + SETTING_OPEN
        + "| Interior Design | a kitchen | warm | evening | end |\n"
        + FRAME_CLOSE
        + NARRATIVE_OPEN
        + "| Introduction | a day out | they meet | 1, 2 |\n"
        + "</think>\n"
    )


def story(names: tuple[str, str, str], town: str) -> str:
    jose, zoe, lucja = names
    return (
        f"<gdi image1>\nOn the beach of {town}, <gdo char1>{jose}</gdo> waves at "
        f"<gdo char2>{zoe}</gdo> by <gdl bg1>the sea</gdl>.\n</gdi>\n\n"
        f"<gdi image2>\nLater <gda char1>{lucja}</gda> cooks for everyone.\n</gdi>"
    )


UNICODE = ("José", "Zoë", "Łucja")
ASCII = ("Jose", "Zoe", "Lucja")


def probe(model: Path, cases: list[dict[str, object]]) -> list[dict[str, object]]:
    """llama.cpp's verdict on each case (see gbnf_probe.py)."""
    done = subprocess.run(
        [sys.executable, str(PROBE), str(model)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


ACCEPTED = {"parsed": True, "rejected_at": None, "complete": True}


def test_names_and_stories_beyond_ascii_are_accepted_and_ascii_still_is(
    tiny_model: TinyModel,
) -> None:
    strict = StrictFormat(SIZES, 16000)
    think_grammar = strict.think_grammar()
    cases = []
    for names, town, feeling in ((UNICODE, "Gdańsk", "fröhlich, 嬉しい"), (ASCII, "Nice", "calm")):
        think = analysis(names, feeling)
        whole = think + story(names, town)
        sizes = dict(enumerate(SIZES, start=1))
        assert validate(parse_story(whole), frame_count=2, image_sizes=sizes) == []
        assert render_trained(parse_story(whole)) == whole  # the trained bytes
        story_grammar = strict.story_grammar(think, 16000 - len(think.encode()))
        for bytewise in (False, True):
            cases.append({"grammar": think_grammar, "text": think, "bytewise": bytewise})
            cases.append(
                {"grammar": story_grammar, "text": story(names, town), "bytewise": bytewise}
            )
            cases.append(
                {"grammar": strict.combined_grammar(), "text": whole, "bytewise": bytewise}
            )
    # As the ASCII-only grammar had to have it: no space right after a closing tag.
    think = analysis(ASCII)
    earlier = story(ASCII, "Nice").replace("> ", ">, ")
    story_grammar = strict.story_grammar(think, 16000 - len(think.encode()))
    cases.append({"grammar": story_grammar, "text": earlier, "bytewise": False})
    assert probe(tiny_model.text_gguf, cases) == [ACCEPTED] * len(cases)


def test_structure_and_length_caps_still_hold_for_unicode(tiny_model: TinyModel) -> None:
    tight_strict = StrictFormat(SIZES, 1800)
    assert tight_strict.think_caps.cell == 4  # four length units per cell
    tight = tight_strict.think_grammar()
    roomy_strict = StrictFormat(SIZES, 16000)
    roomy = roomy_strict.think_grammar()
    think = analysis(UNICODE)
    story_grammar = roomy_strict.story_grammar(think, 16000 - len(think.encode()))
    row = "<think>\n" + frame_heading(1) + CHARACTERS_OPEN + "| char1 | "
    cell = len(row.encode())  # where the Name cell starts
    segment = len("<gdi image1>\n")
    # (grammar, text, byte offset where llama.cpp refuses it or None), fed one byte per token
    expectations = [
        (tight, row + "Zoe | ", None),  # 3 units
        (tight, row + "Zoey | ", None),  # 4 units: the cap
        (tight, row + "Zoeys | ", cell + 4),  # 5 units
        (tight, row + "Ł | ", None),  # one non-ASCII letter: 4 units
        (tight, row + "Zoë | ", cell + 2),  # 6 units: "ë" does not fit after "Zo"
        (roomy, row + "Jo|sé | ", cell + 2),  # a bare bar cannot end a cell
        (roomy, row + "Jo<sé | ", cell + 2),  # no tag bracket in a cell
        (roomy, row + "\u3000José | ", cell + 2),  # no leading (ideographic) space
        (roomy, row + "Jo\u2028sé | ", cell + 4),  # no line separator
        (roomy, row + "José\n", cell + 5),  # no newline in a cell
        (story_grammar, "<gdi image1>\nJosé <gdo char3>x</gdo>", segment + 6 + 9),  # undefined
        (story_grammar, "<gdi image1>\nJosé 1 < 2", segment + 6 + 3),  # "<" only opens tags
        (story_grammar, "<gdi image1>\n\u00a0José", segment + 1),  # no leading no-break space
    ]
    cases: list[dict[str, object]] = [
        {"grammar": grammar, "text": text, "bytewise": True} for grammar, text, _ in expectations
    ]
    # An overlong "A" (C1 81) is refused: that is what keeps ASCII at one unit per token.
    cases.append({"grammar": roomy, "hex": row.encode().hex() + "c181", "bytewise": True})
    results = probe(tiny_model.text_gguf, cases)
    assert [r["rejected_at"] for r in results] == [e[2] for e in expectations] + [cell]


def test_the_first_character_classes_leave_out_exactly_whitespace_and_controls() -> None:
    def ranges(gbnf_class: str) -> list[tuple[int, int]]:
        body = gbnf_class[1:-1].encode().decode("unicode_escape")
        return [(ord(body[i]), ord(body[i + 2])) for i in range(0, len(body), 3)]

    def allowed(gbnf_class: str) -> set[int]:
        return {code for low, high in ranges(gbnf_class) for code in range(low, high + 1)}

    anywhere, first = allowed(NON_ASCII_CHAR), allowed(NON_ASCII_FIRST_CHAR)
    for code in range(0x80, 0x110000):
        bad = 0x80 <= code <= 0x9F or code in (0x2028, 0x2029) or 0xD800 <= code <= 0xDFFF
        assert (code in anywhere) == (not bad), hex(code)
        assert (code in first) == (not bad and not chr(code).isspace()), hex(code)
