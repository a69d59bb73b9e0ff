"""The trained layout (docs/model-contract.md, section 3): stories written back in exactly the trained bytes.

Round trips both ways: text already in the trained layout comes back byte for byte, and any
story (hand-written goldens, messy ones, random ones) keeps its content through the layout.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desktop_app.story import parse_story, validate
from desktop_app.story.model import (
    Box,
    Character,
    Frame,
    NarrativePhase,
    Segment,
    SettingRow,
    Span,
    SpanKind,
    Story,
    StoryObject,
)
from desktop_app.story.trained_layout import (
    CHARACTER_SEPARATOR,
    NARRATIVE_PHASES,
    OBJECT_SEPARATOR,
    SETTING_ELEMENTS,
    render_trained,
)

RAW_DIR = Path(__file__).parent / "golden" / "raw"
TRAINED = sorted(p.stem for p in RAW_DIR.glob("trained_*.txt"))


def content(story: Story) -> tuple[object, ...]:
    """What a reader sees of a story: tables, narrative and tagged text, without line numbers."""

    def bare(record: object) -> object:
        return dataclasses.replace(record, line=None)  # type: ignore[type-var]

    frames = tuple(
        (
            f.index,
            tuple(map(bare, f.characters)),
            tuple(map(bare, f.objects)),
            tuple(map(bare, f.settings)),
        )
        for f in story.frames
    )
    narrative = tuple((p.phase, p.description, p.key_events, p.images) for p in story.narrative)
    segments = tuple((s.image, tuple(map(bare, s.spans))) for s in story.segments)
    return frames, narrative, segments


def test_there_are_golden_outputs_in_the_trained_layout() -> None:
    assert {"trained_global_ids", "trained_empty_tables"} <= set(TRAINED)


@pytest.mark.parametrize("name", TRAINED)
def test_trained_text_comes_back_byte_for_byte(name: str) -> None:
    text = (RAW_DIR / f"{name}.txt").read_text(encoding="utf-8")
    story = parse_story(text)
    assert story.complete
    assert render_trained(story) == text
    assert parse_story(render_trained(story)) == story  # line numbers and all


def test_the_trained_golden_keeps_global_ids_landmarks_and_empty_tables() -> None:
    story = parse_story((RAW_DIR / "trained_global_ids.txt").read_text(encoding="utf-8"))
    first, second, third = story.frames
    assert [c.id for c in first.characters] == ["char2", "char3"]  # not numbered from 1
    assert [o.id for o in first.objects] == ["obj4", "bg26", "lm1"]
    assert second.characters == ()  # an empty Characters table, still written
    assert [c.id for c in third.characters] == ["char5", "char3"]  # char3 again, second row
    assert story.frames_of("char3") == (1, 3) and story.frames_of("lm1") == (1, 2, 3)
    assert first.objects[0].box == Box(90, 80, 170, 150)
    assert [p.images for p in story.narrative] == [(1,), (2,), (2, 3)]  # "Image 2, Image 3"
    assert validate(story, frame_count=3) == []


def test_every_golden_keeps_its_content_through_the_trained_layout() -> None:
    for path in sorted(RAW_DIR.glob("*.txt")):
        story = parse_story(path.read_text(encoding="utf-8"))
        if not story.complete or any(s.image is None for s in story.segments):
            # A cut-off output, or text outside any <gdi> block: the layout has no place for it.
            continue
        text = render_trained(story)
        again = parse_story(text)
        frames, narrative, segments = content(again)
        old_frames, old_narrative, old_segments = content(story)
        assert narrative == old_narrative, path.name
        assert [(s[0], [(x.kind, x.ids, x.text) for x in s[1]]) for s in segments] == [
            (s[0], [(x.kind, x.ids, x.text) for x in s[1]]) for s in old_segments
        ], path.name
        # Cells are normalised (one line, single spaces) and boxes written as trained.
        for new, old in zip(frames, old_frames, strict=True):
            assert new[0] == old[0]
            for new_rows, old_rows in zip(new[1:3], old[1:3], strict=True):
                assert [(r.id, r.box) for r in new_rows] == [(r.id, r.box) for r in old_rows]
        assert render_trained(again) == text, path.name  # already trained: a fixed point


def test_messy_rows_are_normalised_to_the_trained_form() -> None:
    messy = (
        "<think>\n## Image 1\n### Characters\n| char1 | Maya |  Girl in red | Calm | Waves "
        "| Hero | [40, 88, 210.5, 400] |\n### Objects\n| obj1 | Map with a \\| fold | Guide | - "
        "| Goal | N/A |\n## Narrative Structure\n| Introduction | Start | Boat | 1 |\n"
        "</think>\n<gdi image1>\n<gdo char1>Maya</gdo> waves.\n</gdi>\n"
    )
    text = render_trained(parse_story(messy))
    assert "| char1 | Maya | Girl in red | Calm | Waves | Hero | 40,88,210.5,400 |\n" in text
    assert "| obj1 | Map with a \\| fold | Guide | - | Goal | N/A |\n" in text
    assert CHARACTER_SEPARATOR in text and OBJECT_SEPARATOR in text
    assert "### Setting\n" in text  # written though the model left it out
    assert text.endswith("</think>\n<gdi image1>\n<gdo char1>Maya</gdo> waves.\n</gdi>")


# ---- random stories ---------------------------------------------------------------------------

# Words that no header cell uses, so a data row never reads as a header.
_WORD = st.text(alphabet="abcdefgklnpqrsuvwxyzé0123456789,.'-", min_size=1, max_size=8)
_CELL = st.lists(_WORD, min_size=1, max_size=4).map(" ".join)
_NUMBER = st.integers(0, 999)


def _id(kinds: tuple[str, ...]) -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(kinds), st.integers(0, 99)).map(lambda p: f"{p[0]}{p[1]}")


@st.composite
def _box(draw: st.DrawFn) -> Box:
    x1, y1 = draw(_NUMBER), draw(_NUMBER)
    return Box(x1, y1, x1 + draw(st.integers(1, 500)), y1 + draw(st.integers(1, 500)))


def _box_text(box: Box) -> str:
    return ",".join(str(int(v)) for v in (box.x1, box.y1, box.x2, box.y2))


@st.composite
def _character(draw: st.DrawFn) -> Character:
    box = draw(_box())
    cells = [draw(_CELL) for _ in range(5)]
    return Character(draw(_id(("char",))), *cells, box, _box_text(box))


@st.composite
def _object(draw: st.DrawFn) -> StoryObject:
    box = draw(_box())
    cells = [draw(_CELL) for _ in range(4)]
    return StoryObject(draw(_id(("obj", "bg", "lm"))), *cells, box, _box_text(box))


@st.composite
def _setting(draw: st.DrawFn) -> SettingRow:
    return SettingRow(draw(st.sampled_from(SETTING_ELEMENTS)), *[draw(_CELL) for _ in range(4)])


@st.composite
def _spans(draw: st.DrawFn) -> tuple[Span, ...]:
    spans: list[Span] = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(list(SpanKind)))
        text = draw(_CELL)
        if kind is SpanKind.TEXT:
            if spans and spans[-1].kind is SpanKind.TEXT:
                continue  # adjacent plain text is one span
            spans.append(Span(text if not spans else " " + text + " "))
        else:
            ids = tuple(dict.fromkeys(draw(st.lists(_id(("char", "obj", "bg", "lm")), max_size=2))))
            spans.append(Span(text, kind, ids))
    last = spans[-1]
    if last.kind is SpanKind.TEXT:
        spans[-1] = Span(last.text.rstrip())
    return tuple(spans)


@st.composite
def _stories(draw: st.DrawFn) -> Story:
    n = draw(st.integers(1, 3))
    frames = tuple(
        Frame(
            k,
            tuple(draw(st.lists(_character(), max_size=3))),
            tuple(draw(st.lists(_object(), max_size=3))),
            tuple(draw(st.lists(_setting(), max_size=2))),
        )
        for k in range(1, n + 1)
    )
    narrative = tuple(
        NarrativePhase(
            draw(st.sampled_from(NARRATIVE_PHASES)),
            draw(_CELL),
            draw(_CELL),
            images,
            ", ".join(map(str, images)),
        )
        for images in draw(
            st.lists(
                st.lists(st.integers(1, n), min_size=1, max_size=n, unique=True).map(tuple),
                min_size=1,
                max_size=3,
            )
        )
    )
    segments = tuple(Segment(k, draw(_spans())) for k in range(1, n + 1))
    return Story(frames=frames, narrative=narrative, segments=segments)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(story=_stories())
def test_random_stories_survive_the_trained_layout(story: Story) -> None:
    text = render_trained(story)
    parsed = parse_story(text)
    assert parsed.complete and not parsed.parse_issues
    assert content(parsed) == content(story)
    assert render_trained(parsed) == text


def test_every_golden_survives_the_json_contract_and_back() -> None:
    from desktop_app.story import story_to_dict
    from desktop_app.story.from_json import story_from_dict

    for path in sorted(RAW_DIR.glob("*.txt")):
        story = parse_story(path.read_text(encoding="utf-8"))
        again = story_from_dict(story_to_dict(story, []))
        assert content(again) == content(story), path.name
        assert again.complete == story.complete, path.name
