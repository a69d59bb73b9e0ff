"""The StoryReasoning metrics (docs/model-contract.md, section 6) on hand-made stories with hand-computed answers.

Frames are 100x100 unless a test says otherwise, so a box's pixels are its percentages.
"""

from __future__ import annotations

import pytest

from desktop_app.evaluation.metrics import (
    StoryPair,
    evaluate,
    grounding_boxes,
    iou,
    score_grounding,
    score_text,
    story_text,
    voc_average_precision,
)
from desktop_app.story.parser import parse_story

pytest.importorskip("nltk", reason="the eval extra is not installed")
pytest.importorskip("rouge_score", reason="the eval extra is not installed")

SQUARE = [(100, 100)]
CHAR_HEADER = (
    "| Character ID | Name | Description | Emotions | Actions | Narrative Function | Bounding Box |\n"
    "|---|---|---|---|---|---|---|\n"
)
OBJ_HEADER = (
    "| Object ID | Description | Function | Interaction | Narrative Function | Bounding Box |\n"
    "|---|---|---|---|---|---|\n"
)


def output(
    frames: dict[int, tuple[list[str], list[tuple[str, str]]]], story: str = "Maya waves."
) -> str:
    """A model output: per frame, character boxes and (description, box) object rows."""
    parts = ["<think>"]
    for index, (characters, objects) in frames.items():
        parts += [f"## Image {index}", "", "### Characters", CHAR_HEADER.rstrip("\n")]
        parts += [
            f"| char{k} | Maya | Girl | Calm | Waves | Hero | {box} |"
            for k, box in enumerate(characters, 1)
        ]
        parts += ["", "### Objects", OBJ_HEADER.rstrip("\n")]
        parts += [
            f"| obj{k} | {d} | Toy | Held | Prop | {box} |" for k, (d, box) in enumerate(objects, 1)
        ]
        parts += [""]
    parts += ["</think>", "<gdi image1>", story, "</gdi>"]
    return "\n".join(parts)


def grounding(candidate: str, reference: str, sizes=SQUARE, candidate_sizes=None):
    cand_sizes = candidate_sizes if candidate_sizes is not None else sizes
    return score_grounding(
        grounding_boxes(parse_story(candidate), cand_sizes),
        grounding_boxes(parse_story(reference), sizes),
    )


REFERENCE = output({1: (["0,0,40,40"], [("Red ball", "50,50,100,100")])})


def test_perfect_match_scores_one_everywhere() -> None:
    g = grounding(REFERENCE, REFERENCE)
    assert (g.characters.precision, g.characters.recall) == (1.0, 1.0)
    assert (g.objects.precision, g.objects.recall) == (1.0, 1.0)
    assert (g.total.precision, g.total.recall) == (1.0, 1.0)
    assert g.average_precision == 1.0


def test_a_box_shifted_13px_still_matches_and_14px_does_not() -> None:
    # 40x40 boxes shifted by d: IoU = (40 - d) / (40 + d): 27/53 = 0.509 for 13, 26/54 = 0.481 for 14.
    near = output({1: (["13,0,53,40"], [("Red ball", "50,50,100,100")])})
    far = output({1: (["14,0,54,40"], [("Red ball", "50,50,100,100")])})
    assert iou((13, 0, 53, 40), (0, 0, 40, 40)) == pytest.approx(27 / 53)
    assert grounding(near, REFERENCE).characters.recall == 1.0
    g = grounding(far, REFERENCE)
    assert (g.characters.precision, g.characters.recall) == (0.0, 0.0)
    assert (g.objects.precision, g.objects.recall) == (1.0, 1.0)
    assert (g.total.precision, g.total.recall) == (0.5, 0.5)
    # Ranked hits [miss, hit] over 2 references: precision 0.5 at recall 0.5, nothing beyond.
    assert g.average_precision == pytest.approx(6 * 0.5 / 11)


def test_iou_of_exactly_one_half_matches() -> None:
    half = output({1: (["0,0,40,20"], [])})  # half of the reference's 40x40 box
    assert grounding(half, output({1: (["0,0,40,40"], [])})).total.matched == 1


def test_a_character_never_matches_an_object_box_but_a_person_object_does() -> None:
    lamp = output({1: ([], [("Lamp on a table", "0,0,40,40")])})
    reference = output({1: (["0,0,40,40"], [])})
    g = grounding(lamp, reference)
    assert g.total.matched == 0
    assert (g.characters.precision, g.characters.recall) == (1.0, 0.0)  # no candidate characters
    assert (g.objects.precision, g.objects.recall) == (0.0, 1.0)  # no reference objects
    # The authors type an Objects row by its description's first word: "Person ..." is a person.
    bystander = output({1: ([], [("Person in the crowd", "0,0,40,40")])})
    assert grounding(bystander, reference).characters.recall == 1.0


def test_an_empty_candidate_has_precision_one_recall_zero_and_no_ap() -> None:
    g = grounding("", REFERENCE)
    assert (g.total.candidates, g.total.references) == (0, 2)
    assert (g.total.precision, g.total.recall) == (1.0, 0.0)
    assert g.average_precision == 0.0
    assert grounding("", "").average_precision == 1.0  # nothing to find and nothing found


def test_an_extra_frame_boxes_count_as_unmatched_candidates_in_table_order() -> None:
    # Frame 2 of a one-photo story: its box cannot be placed, so it matches nothing, even though
    # its coordinates equal the reference box (frame numbers are otherwise never compared).
    after = output({1: (["0,0,40,40"], []), 2: (["0,0,40,40"], [])})
    before = output({2: (["0,0,40,40"], []), 1: (["0,0,40,40"], [])})
    reference = output({1: (["0,0,40,40"], [])})
    g = grounding(after, reference)
    assert (g.total.candidates, g.total.matched) == (2, 1)
    assert (g.total.precision, g.total.recall) == (0.5, 1.0)
    assert g.average_precision == 1.0  # ranked [hit, miss]: precision 1 at recall 1
    # Frames are ranked by number, as the authors' parser reads them, whatever the written order.
    assert grounding(before, reference).average_precision == 1.0


def test_boxes_of_different_frames_match_when_they_overlap() -> None:
    two = [(100, 100), (100, 100)]
    moved = output({1: ([], []), 2: (["0,0,40,40"], [])})
    reference = output({1: (["0,0,40,40"], []), 2: ([], [])})
    assert grounding(moved, reference, sizes=two).total.matched == 1


def test_matching_is_one_to_one_highest_iou_first() -> None:
    two = output({1: (["0,0,40,30", "0,0,40,40"], [])})  # IoU 0.75, then 1.0
    g = grounding(two, output({1: (["0,0,40,40"], [])}))
    assert (g.total.precision, g.total.recall) == (0.5, 1.0)
    # The exact box took the reference, so the ranked hits are [miss, hit].
    assert g.average_precision == 0.5


def test_each_side_is_normalised_by_its_own_frame_size() -> None:
    # The model saw the frame at 250x100; the reference frame is 100x100: the same box.
    wide = output({1: (["0,0,100,40"], [])})
    reference = output({1: (["0,0,40,40"], [])})
    assert grounding(wide, reference, candidate_sizes=[(250, 100)]).total.matched == 1
    # Compared in raw pixels the boxes overlap 1600/4000 = 0.4: no match.
    raw = score_grounding(
        grounding_boxes(parse_story(wide)), grounding_boxes(parse_story(reference))
    )
    assert raw.total.matched == 0


def test_ap_uses_the_voc_recall_points_as_the_reference_code_computes_them() -> None:
    # Three hits of ten references reach recall 0.3 exactly, which is below the third point,
    # 3 * 0.1 = 0.30000000000000004: the points 0, 0.1 and 0.2 score 1, so AP = 3/11.
    assert voc_average_precision([True, True, True], 10) == pytest.approx(3 / 11)
    assert voc_average_precision([], 0) == 1.0
    assert voc_average_precision([False], 0) == 0.0


def test_scores_are_averaged_over_stories() -> None:
    far = output({1: (["14,0,54,40"], [("Red ball", "50,50,100,100")])})
    report = evaluate(
        [
            StoryPair("a", parse_story(REFERENCE), parse_story(REFERENCE), SQUARE, SQUARE),
            StoryPair("b", parse_story(far), parse_story(REFERENCE), SQUARE, SQUARE),
        ]
    )
    assert report.character_precision == 0.5  # 1.0 and 0.0
    assert report.object_recall == 1.0
    assert report.precision == 0.75  # 1.0 and 0.5
    assert report.mean_ap == pytest.approx((1.0 + 3 / 11) / 2)
    assert [row.story_id for row in report.stories] == ["a", "b"]


def test_text_metrics_read_the_story_without_tags_or_analysis() -> None:
    tagged = output({1: ([], [])}, "<gdo char1>Maya</gdo> <gda char1>sets the boat down</gda>.")
    assert story_text(parse_story(tagged)) == "Maya sets the boat down."
    scores = score_text([story_text(parse_story(tagged))], ["Maya sets the boat down."])
    assert scores.bleu == (1.0, 1.0, 1.0, 1.0)
    assert scores.rouge_l == 1.0
    assert scores.meteor == 1.0  # an exact copy: METEOR 1.5 gives it no fragmentation penalty


def test_meteor_uses_meteor_1_5_parameters_and_scores_the_corpus_sums() -> None:
    # "the boat sank" against "the small boat sank slowly": 3 matches in 2 chunks ("the",
    # "boat sank"), P = 1, R = 3/5; Fmean = P*R / (0.85 P + 0.15 R), penalty 0.6 * (2/3) ** 0.2.
    scores = score_text(["The boat sank."], ["The small boat sank slowly."])
    assert scores.meteor == pytest.approx(0.6 / (0.85 + 0.15 * 0.6) * (1 - 0.6 * (2 / 3) ** 0.2))
    # Two stories: the sums are 3 matches, 3 candidate and 7 reference words, 2 chunks.
    scores = score_text(["The boat sank.", ""], ["The small boat sank slowly.", "A dog."])
    recall = 3 / 7
    fmean = recall / (0.85 + 0.15 * recall)
    assert scores.meteor == pytest.approx(fmean * (1 - 0.6 * (2 / 3) ** 0.2))
    assert scores.story_meteor[1] == 0.0


def test_rouge_l_weighs_recall_by_1_2_and_an_empty_story_scores_zero() -> None:
    # LCS 3 of 3 candidate and 5 reference words: P = 1, R = 0.6,
    # F = (1 + 1.44) * 1 * 0.6 / (0.6 + 1.44 * 1) = 1.464 / 2.04.
    scores = score_text(["The boat sank.", ""], ["The small boat sank slowly.", "A dog."])
    assert scores.story_rouge_l[0] == pytest.approx(1.464 / 2.04)
    assert scores.story_rouge_l[1] == 0.0
    assert scores.story_meteor[1] == 0.0
    assert scores.rouge_l == pytest.approx(1.464 / 2.04 / 2)
    assert scores.meteor_name.startswith("METEOR 1.5 formula on nltk ")


def test_an_analysis_cut_off_by_the_token_limit_keeps_the_boxes_it_wrote() -> None:
    cut = REFERENCE[: REFERENCE.index("### Objects")]  # no Objects table, no </think>, no story
    g = grounding(cut, REFERENCE)
    assert (g.characters.candidates, g.characters.matched) == (1, 1)
    assert (g.total.precision, g.total.recall) == (1.0, 0.5)
    assert story_text(parse_story(cut)) == ""
