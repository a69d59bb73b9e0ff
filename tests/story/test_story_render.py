"""Renderers: the JSON contract's exact shape, display names, escaping, and grounding in HTML."""

from __future__ import annotations

import json
import re

from desktop_app.story import (
    parse_story,
    render_html,
    render_markdown,
    render_text,
    story_to_dict,
    validate,
)

OUTPUT = (
    "<think>\n## Image 1\n### Characters\n"
    "| Character ID | Name | Description | Emotions | Actions | Narrative Function | Bounding Box |\n"
    "|---|---|---|---|---|---|---|\n"
    "| char1 | Maya Lopez | Girl & <kid> | Curious | Kneels | Hero | 40, 88, 210.5, 400 |\n"
    "### Objects\n"
    "| Object ID | Description | Function | Interaction | Narrative Function | Bounding Box |\n"
    "|---|---|---|---|---|---|\n"
    "| bg1 | Puddle | Water | - | Stage | n/a |\n"
    "### Setting\n"
    "| Setting Element | Description | Mood | Time | Narrative Function |\n"
    "|---|---|---|---|---|\n"
    "| Weather | Rain | Quiet | Noon | Tone |\n"
    "## Narrative Structure\n"
    "| Narrative Phase | Description | Key Events | Images |\n"
    "|---|---|---|---|\n"
    "| Introduction | Start | Boat | 1 |\n"
    "</think>\n"
    "<gdi image1>\n<gdo char1>Maya</gdo> <gda char1>knelt</gda> by <gdl bg1>the   puddle</gdl>;\n"
    "<gdo char1>she</gdo> smiled at <gdo char9><script>x</script></gdo>. <gdo char1>Maya's</gdo> boat.\n</gdi>\n"
)


def test_json_contract_has_exactly_the_documented_keys() -> None:
    story = parse_story(OUTPUT)
    data = story_to_dict(story, validate(story, frame_count=1))
    json.dumps(data)  # serialisable as is
    assert set(data) == {"complete", "frames", "narrative", "story", "issues"}
    frame = data["frames"][0]
    assert set(frame) == {"index", "characters", "objects", "settings"}
    assert set(frame["characters"][0]) == {
        "id",
        "name",
        "description",
        "emotions",
        "actions",
        "narrative_function",
        "box",
        "box_text",
    }
    assert set(frame["objects"][0]) == {
        "id",
        "description",
        "function",
        "interaction",
        "narrative_function",
        "box",
        "box_text",
    }
    assert set(frame["settings"][0]) == {
        "element",
        "description",
        "mood",
        "time",
        "narrative_function",
    }
    assert data["narrative"] == [
        {"phase": "Introduction", "description": "Start", "key_events": "Boat", "images": [1]}
    ]
    assert frame["characters"][0]["box"] == [40, 88, 210.5, 400]
    assert frame["objects"][0]["box"] is None and frame["objects"][0]["box_text"] == "n/a"
    segment = data["story"][0]
    assert segment["image"] == 1
    assert segment["spans"][0] == {"text": "Maya", "kind": "entity", "ids": ["char1"]}
    assert {span["kind"] for span in segment["spans"]} == {"text", "entity", "action", "location"}
    issue = next(i for i in data["issues"] if i["code"] == "unknown-id")
    assert issue == {
        "code": "unknown-id",
        "severity": "warning",
        "message": issue["message"],
        "frame": 1,
        "id": "char9",
        "line": 22,
    }


def test_text_is_one_paragraph_per_frame_without_tags() -> None:
    story = parse_story(OUTPUT + "<gdi image2>\nNext\n day.\n</gdi>")
    text = render_text(story)
    assert text == (
        "Maya knelt by the puddle; she smiled at <script>x</script>. Maya's boat.\n\nNext day.\n"
    )


def test_display_names_replace_the_models_name_but_not_other_mentions() -> None:
    story = parse_story(OUTPUT)
    text = render_text(story, names={"char1": "Grandma", "bg1": "Lake"})
    assert text.startswith("Grandma knelt by the puddle; she smiled")
    assert "Grandma's boat" in text
    markdown = render_markdown(story, names={"char1": "Grandma"})
    assert "| char1 | Grandma | Girl & \\<kid\\>" in markdown
    page = render_html(story, [], names={"char1": "Grandma"})
    assert 'Grandma <span class="model-name">(model: Maya Lopez)</span>' in page


def test_markdown_has_the_story_cast_and_analysis() -> None:
    markdown = render_markdown(parse_story(OUTPUT))
    assert markdown.startswith("# Story\n\n## Frame 1\n\nMaya knelt by the puddle;")
    assert "\\<script\\>" in markdown  # model text cannot inject markup
    for heading in (
        "## Cast",
        "## Analysis",
        "### Image 1",
        "**Objects**",
        "### Narrative structure",
    ):
        assert heading in markdown


def test_html_escapes_model_text_and_user_names() -> None:
    story = parse_story(OUTPUT)
    page = render_html(
        story,
        validate(story),
        names={"char1": '<img src=x onerror="alert(1)">'},
        images={1: 'data:image/png;base64,AAA" onload="x'},
        title="<Trip>",
    )
    assert "<script>x" not in page and page.count("<script>") == 1  # only the page's own
    assert "<img src=x" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page
    assert "<title>&lt;Trip&gt;</title>" in page
    assert 'src="data:image/png;base64,AAA&quot; onload=&quot;x"' in page
    assert "Girl &amp; &lt;kid&gt;" in page
    assert "http" not in page.replace("http-equiv", "")  # self-contained: nothing to fetch


def test_html_grounding_is_readable_without_colour() -> None:
    story = parse_story(OUTPUT)
    page = render_html(story, validate(story))
    spans = re.findall(r'<span class="g (\w+)[^"]*" data-ids="([^"]*)"[^>]*>', page)
    assert ("entity", "char1") in spans and ("action", "char1") in spans
    assert ("location", "bg1") in spans
    # Every kind has its own underline style; the ids are in the tooltip, not in the text.
    for kind, style in (("entity", "solid"), ("action", "wavy"), ("location", "double")):
        assert re.search(rf"\.g\.{kind} {{[^}}]*text-decoration-style: {style}", page)
    assert re.search(r'title="action: char1 · Maya Lopez" [^>]*>knelt</span>', page)
    assert "<sup>" not in page
    # Each id gets its own colour.
    colours = dict(re.findall(r'data-ids="(\w+)"[^>]*text-decoration-color: (#\w+)', page))
    assert len({colours["char1"], colours["bg1"], colours["char9"]}) == 3
    assert "Problems found" in page and "unknown-id" in page
    assert "<h2>Cast</h2>" in page and "<h2>Analysis</h2>" in page


def test_html_shows_each_frames_image_when_given() -> None:
    page = render_html(parse_story(OUTPUT), [], images={1: "data:image/png;base64,AAAA"})
    assert '<img src="data:image/png;base64,AAAA" alt="Frame 1">' in page
    assert "<img" not in render_html(parse_story(OUTPUT), [])


def test_html_draws_each_box_over_its_frames_photo_hidden_until_its_word_is_pointed_at() -> None:
    story = parse_story(OUTPUT)
    boxes = {1: {"char1": (0.1, 0.2, 0.35, 0.9)}}
    page = render_html(story, [], images={1: "data:image/png;base64,AAAA"}, boxes=boxes)
    figure = re.search(r'<figure class="photo">(.*?)</figure>', page)
    assert figure is not None
    assert figure.group(1).startswith('<img src="data:image/png;base64,AAAA"')
    box = re.findall(r'<div class="box" data-id="(\w+)" style="([^"]*)" hidden>', figure.group(1))
    assert len(box) == 1 and box[0][0] == "char1"
    assert "left: 10.000%; top: 20.000%; width: 25.000%; height: 70.000%" in box[0][1]
    assert ">Maya Lopez</span></div>" in figure.group(1)  # the box is labelled with the name
    # Words with a box on the photo take the keyboard focus (focus shows the box too).
    assert re.search(r'data-ids="char1"[^>]*tabindex="0">Maya</span>', page)
    assert not re.search(r'data-ids="bg1"[^>]*tabindex', page)  # the puddle has no box
    # Without the photo there is nothing to draw on.
    assert 'class="box"' not in render_html(story, [], boxes=boxes)


def test_renderers_handle_an_empty_story() -> None:
    story = parse_story("")
    assert render_text(story) == ""
    assert render_markdown(story) == "# Story\n"
    assert "<main>" in render_html(story, validate(story))
    assert story_to_dict(story, []) == {
        "complete": False,
        "frames": [],
        "narrative": [],
        "story": [],
        "issues": [],
    }


def test_the_markdown_export_is_titled_with_the_album() -> None:
    from desktop_app.app.exports import render_export

    story = parse_story(OUTPUT)
    assert render_export("markdown", story, [], title="Kite day").startswith("# Kite day\n")
    assert render_export("markdown", story, [], title="A*B").startswith("# A\\*B\n")
    assert render_markdown(story).startswith("# Story\n")  # no title: as before


def _contrast_on_white(colour: str) -> float:
    """WCAG contrast ratio of ``colour`` (#rrggbb) against white."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return 1.05 / (luminance + 0.05)


def test_every_entity_colour_reads_as_text_on_white() -> None:
    from desktop_app.story.names import ENTITY_PALETTE

    low = {
        c: round(_contrast_on_white(c), 2) for c in ENTITY_PALETTE if _contrast_on_white(c) < 4.5
    }
    assert low == {}  # WCAG AA for body text: names and tagged words are read in these colours
