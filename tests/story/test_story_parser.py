"""The parser on small, targeted inputs: boxes, table variants, tags, and where things are."""

from __future__ import annotations

import pytest

from desktop_app.story import Box, SpanKind, ThinkState, parse_story
from desktop_app.story.table_reader import parse_box, parse_image_list

CHAR_HEADER = (
    "| Character ID | Name | Description | Emotions | Actions | Narrative Function "
    "| Bounding Box |\n|---|---|---|---|---|---|---|\n"
)


def _analysis(rows: str, header: str = CHAR_HEADER) -> str:
    return f"<think>\n## Image 1\n### Characters\n{header}{rows}</think>\n"


@pytest.mark.parametrize(
    ("cell", "box"),
    [
        ("40, 88, 210, 400", Box(40, 88, 210, 400)),
        ("[40, 88, 210, 400]", Box(40, 88, 210, 400)),
        ("(40,88,210,400)", Box(40, 88, 210, 400)),
        ("40 88 210 400", Box(40, 88, 210, 400)),
        ("[12.5, 30.25, 200.75, 310]", Box(12.5, 30.25, 200.75, 310)),
        ("x1=5, y1=6, x2=50, y2=60", Box(5, 6, 50, 60)),
        ("[40, 88], [210, 400]", Box(40, 88, 210, 400)),
        ("-3, 4, 10, 20", Box(-3, 4, 10, 20)),
        ("(x1, y1, x2, y2)", None),
        ("N/A", None),
        ("", None),
        ("1, 2, 3", None),
        ("1, 2, 3, 4, 5", None),
    ],
)
def test_box_cells_parse_when_they_hold_four_numbers(cell: str, box: Box | None) -> None:
    assert parse_box(cell) == box


def test_box_keeps_the_cell_text_as_written() -> None:
    story = parse_story(
        _analysis("| char1 | Maya | girl | calm | sits | hero | [40.0, 88, 210, 400] |\n")
    )
    character = story.frames[0].characters[0]
    assert character.box == Box(40, 88, 210, 400)
    assert character.box_text == "[40.0, 88, 210, 400]"
    assert character.box.as_list() == [40, 88, 210, 400]


@pytest.mark.parametrize(
    ("cell", "images"),
    [("1", (1,)), ("1, 2", (1, 2)), ("Images 1 and 3", (1, 3)), ("2-4", (2, 3, 4)), ("", ())],
)
def test_narrative_images_cell(cell: str, images: tuple[int, ...]) -> None:
    assert parse_image_list(cell) == images


def test_header_variants_map_to_the_same_fields() -> None:
    header = (
        "|  character id |NAME|description| **Emotions** | Actions |narrative   function| bbox |\n"
        "|:--|:-:|--|--|--|--|--:|\n"
    )
    story = parse_story(
        _analysis("| char1 | Maya | girl | calm | sits | hero | 1, 2, 3, 4 |\n", header)
    )
    character = story.frames[0].characters[0]
    assert (character.name, character.emotions, character.narrative_function) == (
        "Maya",
        "calm",
        "hero",
    )
    assert character.box == Box(1, 2, 3, 4)


def test_columns_follow_the_header_order() -> None:
    header = "| Name | Bounding Box | Character ID |\n|---|---|---|\n"
    story = parse_story(_analysis("| Maya | 1, 2, 3, 4 | char1 |\n", header))
    character = story.frames[0].characters[0]
    assert (character.id, character.name, character.box) == ("char1", "Maya", Box(1, 2, 3, 4))


def test_rows_with_missing_cells_keep_what_is_there() -> None:
    story = parse_story(_analysis("| char1 | Maya |\n| char2 |  |  | happy |\n"))
    first, second = story.frames[0].characters
    assert (first.id, first.name, first.box, first.box_text) == ("char1", "Maya", None, "")
    assert (second.name, second.emotions) == ("", "happy")


def test_tables_without_heading_or_header_are_recognised_by_their_ids() -> None:
    text = "<think>\n## Image 2\n| char1 | Maya | girl | calm | sits | hero | 1, 2, 3, 4 |\n| bg1 | beach | ground | - | stage | 0, 0, 9, 9 |\n</think>"
    frame = parse_story(text).frames[0]
    assert frame.index == 2
    assert [c.id for c in frame.characters] == ["char1"]
    assert [(o.id, o.description, o.box) for o in frame.objects] == [
        ("bg1", "beach", Box(0, 0, 9, 9))
    ]


def test_setting_and_narrative_tables() -> None:
    text = (
        "<think>\n## Image 1\n### Setting\n| Setting Element | Description | Mood | Time | Narrative Function |\n"
        "|---|---|---|---|---|\n| Weather | Rain | Quiet | Dusk | Tone |\n"
        "## Narrative Structure\n| Narrative Phase | Description | Key Events | Images |\n"
        "|---|---|---|---|\n| Introduction | Start | Boat | 1, 2 |\n</think>\n"
    )
    story = parse_story(text)
    setting = story.frames[0].settings[0]
    assert (setting.element, setting.mood, setting.time) == ("Weather", "Quiet", "Dusk")
    phase = story.narrative[0]
    assert (phase.phase, phase.key_events, phase.images) == ("Introduction", "Boat", (1, 2))


def test_unicode_names_and_escaped_pipes_in_cells() -> None:
    story = parse_story(_analysis("| char1 | 美咲 | a \\| b | 😊 | – | – | 1,2,3,4 |\n"))
    character = story.frames[0].characters[0]
    assert (character.name, character.description, character.emotions) == ("美咲", "a | b", "😊")


def test_lines_are_one_based_lines_of_the_raw_text() -> None:
    story = parse_story(
        _analysis("| char1 | Maya | g | c | s | h | 1,2,3,4 |\n")
        + "<gdi image1>\nhi <gdo char1>Maya</gdo>\n</gdi>"
    )
    assert story.frames[0].line == 2
    assert story.frames[0].characters[0].line == 6
    assert story.segments[0].line == 8
    assert story.segments[0].spans[1].line == 9


def test_spans_multi_id_nested_and_case_insensitive_tags() -> None:
    story = parse_story(
        "<gdi image1><gdo char1 char2>They</gdo> <gda char1,char2>ran</gda>. "
        "<GDO char1>Maya <gda char1>waved</gda></GDO></gdi>"
    )
    spans = story.segments[0].spans
    assert (spans[0].kind, spans[0].ids) == (SpanKind.ENTITY, ("char1", "char2"))
    assert (spans[2].kind, spans[2].ids, spans[2].text) == (
        SpanKind.ACTION,
        ("char1", "char2"),
        "ran",
    )
    assert [(s.kind, s.text) for s in spans[4:]] == [
        (SpanKind.ENTITY, "Maya "),
        (SpanKind.ACTION, "waved"),
    ]


def test_gdi_blocks_out_of_order_and_text_outside_them() -> None:
    story = parse_story("</think>\nTitle\n<gdi image2>two</gdi>\n<gdi image1>one</gdi>\nThe end")
    assert [(s.image, s.text) for s in story.segments] == [
        (None, "Title"),
        (2, "two"),
        (1, "one"),
        (None, "The end"),
    ]
    assert story.segment(1).text == "one"


def test_a_new_gdi_closes_an_unclosed_one() -> None:
    story = parse_story("<gdi image1>one <gdo char1>Maya\n<gdi image2>two</gdi>")
    first, second = story.segments
    assert (first.image, first.closed, first.text) == (1, False, "one Maya")
    assert (second.image, second.closed) == (2, True)
    assert [i.code for i in story.parse_issues] == ["unclosed-tag", "unclosed-tag"]


def test_missing_think_close_and_missing_think() -> None:
    with_open = parse_story("<think>\n## Image 1\n<gdi image1>text</gdi>")
    assert with_open.think is ThinkState.OPEN and with_open.segments[0].text == "text"
    assert not with_open.complete
    without = parse_story("<gdi image1>text</gdi>")
    assert without.think is ThinkState.ABSENT and without.segments[0].text == "text"
    assert not without.complete


def test_complete_needs_closed_analysis_and_a_closed_block() -> None:
    assert parse_story("<think>\n</think>\n<gdi image1>a</gdi>").complete
    assert not parse_story("<think>\n</think>\n").complete
    assert not parse_story("<think>\n</think>\n<gdi image1>a").complete
    assert not parse_story("<think>\n</think>\n<gdi image1>a</gdi><gd").complete
    assert parse_story("<think>\n</think>\n<gdi image1>a</gdi>\n<gdi image2>b</gdi>\n").complete


def test_literal_angle_brackets_stay_text() -> None:
    story = parse_story("<gdi image1>3 < 4 and <b>bold</b> and <gdx a>.</gdi>")
    assert story.segments[0].text == "3 < 4 and <b>bold</b> and <gdx a>."


def test_empty_and_blank_outputs() -> None:
    assert parse_story("").empty
    assert parse_story(" \n\n").empty
    story = parse_story("hello")
    assert not story.empty and story.segments[0].text == "hello"


def test_story_lookups() -> None:
    text = (
        _analysis("| char1 | Maya | g | c | s | h | 1,2,3,4 |\n").replace("</think>\n", "")
        + "## Image 2\n### Characters\n| char1 | Maya | g | c | s | h | 5,6,7,8 |\n"
        "### Objects\n| obj1 | boat | toy | - | - | bad |\n</think>\n"
    )
    story = parse_story(text)
    assert story.entity("char1") is story.frames[0].characters[0]
    assert story.entity("obj1").description == "boat"
    assert story.entity("char9") is None
    assert story.boxes_for("char1") == {1: Box(1, 2, 3, 4), 2: Box(5, 6, 7, 8)}
    assert story.boxes_for("obj1") == {}
    assert story.frames_of("char1") == (1, 2)
    assert [c.id for c in story.cast()] == ["char1"]
    assert story.defined_ids() == {"char1", "obj1"}


def test_frame_headings_in_other_shapes() -> None:
    text = "<think>\nImage 1\n| char1 | A |\n**Image 2**\n| char2 | B |\n### Image 3: the end\n| char3 | C |\n</think>"
    frames = parse_story(text).frames
    assert [(f.index, [c.id for c in f.characters]) for f in frames] == [
        (1, ["char1"]),
        (2, ["char2"]),
        (3, ["char3"]),
    ]


def test_chatter_before_think_is_kept_as_stray_text() -> None:
    story = parse_story("Sure! <think>\n## Image 1\n| char1 | A |\n</think>\n<gdi image1>a</gdi>")
    assert story.think is ThinkState.CLOSED
    assert [(s.image, s.text) for s in story.segments] == [(None, "Sure!"), (1, "a")]
    assert story.frames[0].characters[0].id == "char1"
    assert story.complete
