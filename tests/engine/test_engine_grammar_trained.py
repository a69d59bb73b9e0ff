"""Strict format v2 speaks the trained layout: llama.cpp's own grammar sampler decides.

Outputs in the trained layout (the goldens of tests/story, written by us after docs/model-contract.md section 3)
are fed to ``llama_sampler_init_grammar`` through tests/engine/gbnf_probe.py, as the tokenizer
splits them and one byte per token. Then what the grammar must refuse, and the engine's guard
that keeps ids unique within a table.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from desktop_app.engine.grammar import ID_DIGITS, StrictFormat, defined_ids
from desktop_app.engine.table_ids import TableIds
from desktop_app.story import parse_story, render_trained, validate
from desktop_app.story.trained_layout import (
    CHARACTERS_OPEN,
    FRAME_CLOSE,
    NARRATIVE_OPEN,
    OBJECTS_OPEN,
    SETTING_OPEN,
    frame_heading,
)

if TYPE_CHECKING:
    from conftest import TinyModel

from test_engine_grammar_unicode import ACCEPTED, probe

GOLDEN = Path(__file__).parents[1] / "story" / "golden" / "raw"
# The prepared sizes the goldens' boxes were written for.
SIZE = (392, 252)


def golden(name: str) -> tuple[str, str]:
    """(analysis with </think>\\n, story) of a trained-layout golden, with numeric Images cells.

    The Images cell is free text in training ("Image 2" occurs); the grammar writes the usual
    comma-separated frame numbers.
    """
    text = (GOLDEN / f"{name}.txt").read_text(encoding="utf-8")
    frames, narrative = text.split("## Narrative Structure")
    text = frames + "## Narrative Structure" + re.sub(r"Image (\d+)", r"\1", narrative)
    think, story = text.split("</think>\n")
    return think + "</think>\n", story


def budget_for(text: str, frames: int) -> StrictFormat:
    """A strict format whose caps hold every cell and row of ``text``."""
    for max_tokens in (8000, 16000, 32000, 64000):
        strict = StrictFormat([SIZE] * frames, max_tokens)
        if strict.think_caps.cell >= 48 and strict.think_caps.characters >= 3:
            return strict
    raise AssertionError("no budget fits the golden")


def test_the_trained_goldens_are_what_the_grammars_allow(tiny_model: TinyModel) -> None:
    cases = []
    for name, frames in (("trained_global_ids", 3), ("trained_empty_tables", 2)):
        think, story = golden(name)
        whole = think + story
        assert render_trained(parse_story(whole)) == whole
        assert validate(parse_story(whole), frame_count=frames) == []
        strict = budget_for(think, frames)
        story_grammar = strict.story_grammar(think, strict.max_tokens - len(think.encode()))
        # One grammar for both parts reserves the story's share up front: a larger budget.
        combined = StrictFormat([SIZE] * frames, 100_000).combined_grammar()
        for bytewise in (False, True):
            cases.append({"grammar": strict.think_grammar(), "text": think, "bytewise": bytewise})
            cases.append({"grammar": story_grammar, "text": story, "bytewise": bytewise})
            cases.append({"grammar": combined, "text": whole, "bytewise": bytewise})
    assert probe(tiny_model.text_gguf, cases) == [ACCEPTED] * len(cases)


def test_a_later_frame_reuses_an_earlier_id_as_its_second_row() -> None:
    think, _ = golden("trained_global_ids")
    # Frame 3's Characters table: char5, then char3 from frame 1 (not renamed to char2).
    assert defined_ids(think, 3) == [
        {"char2", "char3", "obj4", "bg26", "lm1"},
        {"lm1", "bg26"},
        {"char5", "char3", "lm1"},
    ]
    grammar = budget_for(think, 3).story_grammar(think, 8000)
    assert 'gda3ids ::= "char3" gda3idst0 | "char5" gda3idst1' in grammar
    assert 'gdl2ids ::= "bg26" gdl2idst0 | "lm1" gdl2idst1' in grammar  # landmarks are places
    assert "gda2ids" not in grammar  # frame 2 has no character to act


def refused_at(model: Path, cases: list[tuple[str, str]]) -> list[int | None]:
    results = probe(model, [{"grammar": g, "text": t, "bytewise": True} for g, t in cases])
    return [r["rejected_at"] for r in results]


def test_what_the_trained_layout_does_not_have_is_refused(tiny_model: TinyModel) -> None:
    think, _ = golden("trained_global_ids")
    strict = budget_for(think, 3)
    think_grammar = strict.think_grammar()
    story_grammar = strict.story_grammar(think, 8000)
    start = "<think>\n" + frame_heading(1) + CHARACTERS_OPEN
    old_header = start.replace("|--------------|------|", "|---|---|")
    segment = "<gdi image1>\n"
    box = start + "| char2 | Ines | a | b | c | d | 40, 31, 193, 239 |"
    spaced = start + "| char2 | Ines  | a"
    twice = segment + "<gdo char2 char2>x</gdo>"
    cases = [
        (old_header, old_header.index("|---|") + 4),  # v1's separator row
        (box, box.index(", 31") + 1),  # a box with spaces
        (spaced, spaced.index("  |") + 2),  # a cell that ends in a space
        (start + "| obj1 | a", len(start) + 2),  # objects belong in the Objects table
        (start + "| char1000 | a", len(start) + 9),  # at most ID_DIGITS digits
        (start + "| char07 | a", len(start) + 7),  # no leading zeros
        (twice, twice.index("char2>") + 4),  # one id twice in a tag
        (segment + "<gda bg26>x</gda>", len(segment) + 5),  # a place does not act
        (segment + "<gdl char2>x</gdl>", len(segment) + 5),  # a character is not a place
        (segment + "<gdo char5>x</gdo>", len(segment) + 9),  # char5 is not in frame 1
        (segment + "Ines waits. \n</gdi>", len(segment) + 12),  # a segment ends in a space
    ]
    grammars = [think_grammar] * 6 + [story_grammar] * 5
    texts = [(g, t) for g, (t, _) in zip(grammars, cases, strict=True)]
    assert refused_at(tiny_model.text_gguf, texts) == [offset for _, offset in cases]
    assert ID_DIGITS == 3


def test_a_roomy_budget_allows_a_real_story_s_cast_and_still_ends_in_time(
    tiny_model: TinyModel,
) -> None:
    strict = StrictFormat([SIZE], 16000)
    caps = strict.think_caps
    assert caps.characters >= 10 and caps.objects >= 15
    assert strict.think_worst_length(caps) <= 16000
    characters = "".join(
        f"| char{k} | P{k} | a | b | c | d | {k},0,{k + 90},100 |\n" for k in range(2, 12)
    )
    kinds = ("obj", "bg", "lm")
    objects = "".join(
        f"| {kinds[k % 3]}{k * 7} | o | f | i | n | 0,{k},200,{k + 90} |\n" for k in range(15)
    )
    think = (
        "<think>\n"
        + frame_heading(1)
        + CHARACTERS_OPEN
        + characters
        + OBJECTS_OPEN
        + objects
        + SETTING_OPEN
        + FRAME_CLOSE
        + NARRATIVE_OPEN
        + "| Introduction | a | b | 1 |\n</think>\n"
    )
    assert probe(
        tiny_model.text_gguf, [{"grammar": strict.think_grammar(), "text": think, "bytewise": True}]
    ) == [ACCEPTED]


# ---- unique ids within a table ----------------------------------------------------------------


def fed(text: str) -> TableIds:
    ids = TableIds()
    ids.feed(text)
    return ids


TABLE = (
    "<think>\n" + frame_heading(1) + CHARACTERS_OPEN + "| char3 | Joe | a | b | c | d | 1,2,3,4 |\n"
)


def test_an_id_the_table_has_cannot_be_written_again() -> None:
    ids = fed(TABLE + "| char")
    assert ids.active and ids.used == {"char3"}
    assert not ids.forbids("3")  # char3... may still become char31
    ids.feed("3")
    assert ids.id_is_taken()  # so anything but a digit would finish a second char3
    assert ids.forbids(" |") and ids.forbids(" ")
    assert not ids.forbids("1")
    assert fed(TABLE + "| char").forbids("3 |")  # the same in one piece
    assert not fed(TABLE + "| char").forbids("4 |")


def test_ids_are_per_table_and_reusable_in_the_next_frame() -> None:
    objects = TABLE + OBJECTS_OPEN + "| "
    ids = fed(objects)
    assert not ids.active and not ids.forbids("char3 |")  # a new table: nothing used yet
    later = fed(TABLE + OBJECTS_OPEN + SETTING_OPEN + FRAME_CLOSE + frame_heading(2))
    later.feed(CHARACTERS_OPEN + "| ")
    assert not later.forbids("char3 |")  # frame 2 may reuse frame 1's char3
    assert not fed(TABLE + "| char3 | Joe").active  # past the id cell


def test_a_prefix_whose_every_completion_is_taken_is_refused() -> None:
    ids = fed("### Characters\n|--|\n| char0 | x | a | b | c | d | 1,2,3,4 |\n| char")
    assert ids.forbids("0")  # "char0" has no longer form (no leading zeros) and is taken
    full = "".join(f"| bg9{d}{e} |\n" for d in "0123456789" for e in ["", *"0123456789"])
    ids = fed("### Objects\n|--|\n" + full + "| bg9 |\n| bg")
    assert ids.forbids("9")  # bg9, bg90..bg99 and bg900..bg999 are all taken
    assert not ids.forbids("8")


def _tables_with_repeats(
    model: TinyModel, tmp_path: Path, seeds: range, *, speculation: bool
) -> list[tuple[int, int, list[str]]]:
    from PIL import Image

    from desktop_app.engine.api import ResultEvent, SamplingParams, StoryRequest
    from desktop_app.engine.llama_backend import LlamaCppBackend

    tmp_path.mkdir()
    image = tmp_path / "photo.png"
    Image.new("RGB", (392, 252), (90, 120, 200)).save(image)
    # Cold caches: both phases read the prompt afresh, so they draw from the same logits.
    backend = LlamaCppBackend(
        model.text_gguf,
        model.mmproj_gguf,
        cache_dir=tmp_path / "cache",
        prompt_cache_dir=tmp_path / "prompts",
        speculation=speculation,
    )
    repeats = []
    try:
        for seed in seeds:
            request = StoryRequest(
                photos=(image,),
                sampling=SamplingParams(max_tokens=1500, seed=seed, temperature=1.5),
                strict_format=True,
            )
            events = backend.generate(request, should_stop=lambda: False)
            result = next(e.result for e in events if isinstance(e, ResultEvent))
            story = parse_story(result.raw_output)
            assert story.complete
            for frame in story.frames:
                for table in (frame.characters, frame.objects):
                    table_ids = [row.id for row in table]
                    if len(table_ids) != len(set(table_ids)):
                        repeats.append((seed, frame.index, table_ids))
    finally:
        backend.close()
    return repeats


def test_the_engine_keeps_ids_unique_within_a_table(
    tiny_model: TinyModel, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With three ids per kind, the tiny model repeats ids by chance; the guard prevents it."""
    from desktop_app.engine import grammar, llama_sampling
    from desktop_app.engine.llama_backend import LlamaCppBackend

    few = [
        "idnum ::= [1-3]",
        'charid ::= "char" idnum',
        'objid ::= ("obj" | "bg" | "lm") idnum',
        'placeid ::= ("bg" | "lm") idnum',
    ]
    monkeypatch.setattr(grammar, "ID_DIGITS", 1)
    monkeypatch.setattr(grammar, "id_rules", lambda: few)
    # Never more rows than ids: three per table, short cells so rows are cheap.
    monkeypatch.setattr(grammar, "THINK_LADDER", (grammar.ThinkCaps(4, 3, 3, 1, 1),))
    seeds = range(3, 7)  # seed 6 repeats char3 without the guard
    for speculation in (False, True):  # drafts verified in a batch are guarded too
        # A seeded sampled run normally decodes token by token (reproducibility): force drafts.
        monkeypatch.setattr(LlamaCppBackend, "_speculates", lambda _self, _s, on=speculation: on)
        folder = tmp_path / f"guarded-{speculation}"
        assert _tables_with_repeats(tiny_model, folder, seeds, speculation=speculation) == []
    # The same runs without the guard repeat ids: it is the guard that keeps them unique. (One
    # token per evaluation: sampled drafts depend on timing, plain decoding does not.)
    monkeypatch.setattr(llama_sampling.IdTokens, "forbid_repeats", lambda *_args: None)
    monkeypatch.setattr(LlamaCppBackend, "_speculates", lambda _self, _s: False)
    unguarded = _tables_with_repeats(tiny_model, tmp_path / "unguarded", seeds, speculation=False)
    assert unguarded != []
