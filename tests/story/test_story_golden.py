"""Golden files: outputs we wrote in the shape of docs/model-contract.md section 3, and what every renderer makes of them.

``golden/raw/NAME.txt`` is a model output (clean, messy or cut off); ``golden/expected/NAME.*``
holds its JSON contract (with validation issues), plain text, Markdown, HTML and the output
written back in the trained layout (``NAME.trained.txt``). After an
intended change of output, regenerate with ``STORYTELLER_REGEN_GOLDEN=1 pytest tests/story``
and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from desktop_app.story import (
    parse_story,
    render_html,
    render_markdown,
    render_text,
    story_to_dict,
    validate,
)
from desktop_app.story.trained_layout import render_trained

GOLDEN_DIR = Path(__file__).parent / "golden"
RAW_DIR = GOLDEN_DIR / "raw"
EXPECTED_DIR = GOLDEN_DIR / "expected"
REGENERATE = os.environ.get("STORYTELLER_REGEN_GOLDEN") == "1"

# Case -> photos in the album the output was written for.
FRAME_COUNTS = {
    "clean_5_frames": 5,
    "messy_boxes": 2,
    "messy_cells": 3,
    "multi_id_tags": 3,
    "stray_text": 2,
    "unicode_names": 2,
    "truncated_mid_row": 5,
    "truncated_mid_story": 5,
    "truncated_mid_tag": 5,
    "missing_think_close": 5,
    "no_think": 5,
    "no_gdi": 5,
    # Written by us in the trained layout, byte for byte (docs/model-contract.md, sections 3-4): global ids that
    # do not start at 1 and come back in later frames, landmarks, empty tables.
    "trained_global_ids": 3,
    "trained_empty_tables": 2,
}
# Prepared image sizes for cases whose boxes are checked against the image.
IMAGE_SIZES = {"messy_boxes": {1: (448, 448), 2: (448, 448)}}
# Display names the user chose, for cases that render with them.
DISPLAY_NAMES = {
    "clean_5_frames": {"char1": "Grandma Nora"},
    "unicode_names": {"char1": "Zoé", "char2": "Misaki"},
    "trained_global_ids": {"char3": "Uncle Tomás"},
}


def _render_all(name: str) -> dict[str, str]:
    text = (RAW_DIR / f"{name}.txt").read_text(encoding="utf-8")
    story = parse_story(text)
    issues = validate(story, frame_count=FRAME_COUNTS[name], image_sizes=IMAGE_SIZES.get(name))
    names = DISPLAY_NAMES.get(name)
    return {
        "json": json.dumps(story_to_dict(story, issues), indent=2, ensure_ascii=False) + "\n",
        "txt": render_text(story, names),
        "md": render_markdown(story, names),
        "html": render_html(story, issues, names=names, title=name),
        # The output written back in the trained layout (what JSON -> text export writes).
        "trained.txt": render_trained(story),
    }


def test_every_raw_output_has_a_case() -> None:
    assert sorted(p.stem for p in RAW_DIR.glob("*.txt")) == sorted(FRAME_COUNTS)


@pytest.mark.parametrize("name", sorted(FRAME_COUNTS))
def test_renderings_match_golden_files(name: str) -> None:
    for extension, produced in _render_all(name).items():
        expected_path = EXPECTED_DIR / f"{name}.{extension}"
        if REGENERATE:
            EXPECTED_DIR.mkdir(parents=True, exist_ok=True)
            expected_path.write_text(produced, encoding="utf-8")
            continue
        assert expected_path.exists(), (
            f"{expected_path} is missing: run with STORYTELLER_REGEN_GOLDEN=1 and review it"
        )
        assert produced == expected_path.read_text(encoding="utf-8"), (
            f"{name}.{extension} differs from the golden file; if the change is intended, "
            "regenerate with STORYTELLER_REGEN_GOLDEN=1 and review the diff"
        )


def _load(name: str) -> dict:
    return json.loads((EXPECTED_DIR / f"{name}.json").read_text(encoding="utf-8"))


def _codes(data: dict) -> set[str]:
    return {issue["code"] for issue in data["issues"]}


# The golden files above pin every detail; the tests below state, in words, what a reader of
# those files should see, so a regenerated golden file that breaks one of them fails here.


def test_clean_story_is_complete_and_has_no_issue() -> None:
    data = _load("clean_5_frames")
    assert data["complete"] is True
    assert data["issues"] == []
    assert [f["index"] for f in data["frames"]] == [1, 2, 3, 4, 5]
    assert [s["image"] for s in data["story"]] == [1, 2, 3, 4, 5]
    leo = data["frames"][0]["characters"][1]
    assert leo["name"] == "Leo" and leo["box"] == [330, 210, 420, 480]
    assert [p["phase"] for p in data["narrative"]][-1] == "Conclusion"


def test_clean_story_text_uses_the_display_name_only_where_the_model_wrote_the_name() -> None:
    text = (EXPECTED_DIR / "clean_5_frames.txt").read_text(encoding="utf-8")
    assert text.startswith("Grandma Nora pointed towards the sea while Leo raced ahead")
    assert "Grandma Nora did not hesitate. She waded" in text
    assert text.count("\n\n") == 4  # five paragraphs, one per photo


def test_messy_boxes_keep_their_text_and_parse_what_can_be_parsed() -> None:
    boxes = {
        (frame["index"], row["id"]): (row["box"], row["box_text"])
        for frame in _load("messy_boxes")["frames"]
        for row in frame["characters"] + frame["objects"]
    }
    assert boxes[(1, "char1")] == ([40, 88, 210, 400], "[40, 88, 210, 400]")
    assert boxes[(1, "char2")] == ([12.5, 30.25, 200.75, 310], "(12.5, 30.25, 200.75, 310)")
    assert boxes[(1, "char3")][0] == [5, 6, 50, 60]
    assert boxes[(1, "obj2")] == (None, "N/A")
    assert boxes[(1, "obj3")][0] is None
    assert boxes[(2, "obj1")][0] == [10, 20, 300, 40]  # a box split over four cells
    assert boxes[(2, "bg1")] == (None, "")
    bad = {(i["frame"], i["id"]) for i in _load("messy_boxes")["issues"] if i["code"] == "bad-box"}
    assert bad == {(1, "obj2"), (1, "obj3"), (1, "bg1"), (2, "bg1"), (2, "bg2")}


def test_messy_cells_keep_rows_with_empty_or_missing_cells() -> None:
    data = _load("messy_cells")
    first = data["frames"][0]
    assert [c["id"] for c in first["characters"]] == ["char1", "char2", "char3"]
    assert first["characters"][0]["emotions"] == ""
    assert first["characters"][1]["emotions"] == "Tired"
    assert first["characters"][1]["box"] is None
    assert first["characters"][2]["box"] == [300, 40, 380, 200]  # extra cells ignored
    assert first["objects"][0]["description"] == "Map with a | fold"
    assert data["frames"][1]["objects"][0]["id"] == "obj2"  # a table without its header row
    assert data["narrative"][1]["images"] == [2, 3]
    assert {"missing-id", "empty-segment", "missing-analysis"} <= _codes(data)


def test_multi_id_and_nested_tags_are_split_into_spans() -> None:
    data = _load("multi_id_tags")
    spans = data["story"][0]["spans"]
    assert spans[0] == {"text": "The two of them", "kind": "entity", "ids": ["char1", "char2"]}
    assert spans[2]["ids"] == ["char1", "char2"]
    assert {"text": "waved", "kind": "action", "ids": ["char1"]} in spans
    assert [s["image"] for s in data["story"]] == [1, 3, 2, 2]
    unknown = {i["id"] for i in data["issues"] if i["code"] == "unknown-id"}
    assert unknown == {"char9", "bg7"}
    assert {"out-of-order", "duplicate-frame", "mismatched-tag", "unclosed-tag"} <= _codes(data)


def test_stray_text_is_kept_as_unnumbered_segments() -> None:
    data = _load("stray_text")
    texts = [(s["image"], "".join(span["text"] for span in s["spans"])) for s in data["story"]]
    assert (None, "The End.") in texts
    assert (None, "Meanwhile, the city slept.") in texts
    assert (1, "Ada typed until 3 < 4 became a joke only she understood.") in texts
    assert {"stray-text", "stray-tag", "bad-tag"} <= _codes(data)


def test_unicode_names_survive_every_format() -> None:
    data = _load("unicode_names")
    assert [c["name"] for c in data["frames"][0]["characters"]] == [
        "Zoë Łukasiewicz",
        "美咲",
        "أحمد",
    ]
    text = (EXPECTED_DIR / "unicode_names.txt").read_text(encoding="utf-8")
    assert text.startswith("Zoé lit the last candle as Misaki stepped in")
    assert "Misaki's laugh" in text
    page = (EXPECTED_DIR / "unicode_names.html").read_text(encoding="utf-8")
    assert "&lt;em&gt;smiling&lt;/em&gt;" in page and "<em>smiling" not in page
    assert "&lt;b&gt;brass&lt;/b&gt;" in page


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("truncated_mid_row", "unclosed-think"),
        ("truncated_mid_story", "unclosed-tag"),
        ("truncated_mid_tag", "unclosed-tag"),
    ],
)
def test_truncated_outputs_are_incomplete_and_say_so(name: str, code: str) -> None:
    data = _load(name)
    assert data["complete"] is False
    assert {"truncated", code} <= _codes(data)


def test_a_story_cut_mid_span_shows_the_span_so_far() -> None:
    last = _load("truncated_mid_story")["story"][-1]
    assert last["image"] == 3
    assert last["spans"][-1] == {"text": "Le", "kind": "entity", "ids": ["char2"]}


def test_a_story_cut_mid_tag_hides_the_half_tag() -> None:
    text = (EXPECTED_DIR / "truncated_mid_tag.txt").read_text(encoding="utf-8")
    assert text.rstrip().endswith("Nora did not hesitate. She")
    assert "<gd" not in text


def test_analysis_cut_mid_row_shows_the_partial_row() -> None:
    second = _load("truncated_mid_row")["frames"][1]
    assert second["characters"][-1]["id"] == "char1"
    assert second["characters"][-1]["emotions"] == "Pati"


def test_missing_think_close_still_parses_the_story() -> None:
    data = _load("missing_think_close")
    assert data["complete"] is False
    assert len(data["story"]) == 5 and len(data["frames"]) == 5
    assert "unclosed-think" in _codes(data)


def test_story_without_think_or_without_gdi() -> None:
    no_think = _load("no_think")
    assert no_think["frames"] == [] and len(no_think["story"]) == 5
    assert "missing-think" in _codes(no_think)
    assert "unknown-id" not in _codes(no_think)  # missing-think already explains it
    no_gdi = _load("no_gdi")
    assert [s["image"] for s in no_gdi["story"]] == [None]
    assert {"stray-text", "missing-frame"} <= _codes(no_gdi)


def test_trained_layout_goldens_read_global_ids_and_landmarks_without_complaint() -> None:
    data = _load("trained_global_ids")
    assert data["complete"] is True and data["issues"] == []
    assert [o["id"] for o in data["frames"][0]["objects"]] == ["obj4", "bg26", "lm1"]
    assert data["frames"][1]["characters"] == []
    assert [c["id"] for c in data["frames"][2]["characters"]] == ["char5", "char3"]
    assert [p["images"] for p in data["narrative"]] == [[1], [2], [2, 3]]
    places = [s["ids"] for seg in data["story"] for s in seg["spans"] if s["kind"] == "location"]
    assert ["lm1"] in places and ["bg26"] in places
    text = (EXPECTED_DIR / "trained_global_ids.txt").read_text(encoding="utf-8")
    assert "Uncle Tomás sat down on the step" in text  # char3 renamed in frame 3 too
    page = (EXPECTED_DIR / "trained_global_ids.html").read_text(encoding="utf-8")
    assert 'data-ids="lm1"' in page and "place: lm1" in page


def test_the_trained_rendering_of_a_trained_golden_is_the_raw_text_itself() -> None:
    for name in ("trained_global_ids", "trained_empty_tables"):
        raw = (RAW_DIR / f"{name}.txt").read_text(encoding="utf-8")
        assert (EXPECTED_DIR / f"{name}.trained.txt").read_text(encoding="utf-8") == raw


def test_a_messy_output_written_back_in_the_trained_layout_has_trained_boxes() -> None:
    text = (EXPECTED_DIR / "messy_boxes.trained.txt").read_text(encoding="utf-8")
    assert "| 40,88,210,400 |" in text and "[40, 88" not in text
    assert "| N/A |" in text  # a box that does not parse stays as the model wrote it
