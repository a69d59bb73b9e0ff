"""Each validator code fires on the problem it names, with its severity and location."""

from __future__ import annotations

import re
from pathlib import Path

from desktop_app.story import ISSUE_CODES, Issue, Severity, parse_story, validate

HEADER = (
    "| Character ID | Name | Description | Emotions | Actions | Narrative Function "
    "| Bounding Box |\n|---|---|---|---|---|---|---|\n"
)


def _output(
    rows: str = "| char1 | Maya | g | c | s | h | 10, 10, 50, 50 |\n", story: str = ""
) -> str:
    story = story or "<gdi image1><gdo char1>Maya</gdo> waves.</gdi>\n"
    return f"<think>\n## Image 1\n### Characters\n{HEADER}{rows}</think>\n{story}"


def _issues(text: str, **kwargs: object) -> list[Issue]:
    return validate(parse_story(text), **kwargs)  # type: ignore[arg-type]


def _codes(text: str, **kwargs: object) -> list[str]:
    return [issue.code for issue in _issues(text, **kwargs)]


def test_a_clean_output_has_no_issue() -> None:
    assert _issues(_output(), frame_count=1, image_sizes={1: (100, 100)}) == []


def test_every_code_has_a_severity_and_a_meaning() -> None:
    for code, (severity, meaning) in ISSUE_CODES.items():
        assert isinstance(severity, Severity) and meaning, code


def test_the_readme_lists_every_code_with_its_severity() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    documented = dict(re.findall(r"^\| `([a-z-]+)` \| (error|warning) \|", readme, re.MULTILINE))
    assert documented == {code: severity.value for code, (severity, _) in ISSUE_CODES.items()}


def test_empty_output() -> None:
    assert _codes("   \n") == ["empty-output"]


def test_missing_and_unclosed_think() -> None:
    assert "missing-think" in _codes("<gdi image1>Maya waves.</gdi>")
    codes = _codes("<think>\n## Image 1\n| char1 | Maya |")
    assert {"unclosed-think", "truncated"} <= set(codes)


def test_unknown_id_names_the_id_the_frame_and_the_line() -> None:
    text = _output(
        story="<gdi image1>\n<gdo char1>Maya</gdo> and\n<gdo char7 obj2>them</gdo></gdi>"
    )
    unknown = [i for i in _issues(text) if i.code == "unknown-id"]
    assert [(i.id, i.frame, i.line, i.severity) for i in unknown] == [
        ("char7", 1, 10, Severity.WARNING),
        ("obj2", 1, 10, Severity.WARNING),
    ]
    assert "char7" in unknown[0].message


def test_missing_and_extra_frames_need_the_frame_count() -> None:
    text = _output(story="<gdi image1>a</gdi><gdi image3>c</gdi>")
    assert "missing-frame" not in _codes(text)
    issues = _issues(text, frame_count=2)
    assert [(i.code, i.frame) for i in issues if i.code in ("missing-frame", "extra-frame")] == [
        ("extra-frame", 3),
        ("missing-frame", 2),
    ]
    missing = next(i for i in issues if i.code == "missing-frame")
    assert missing.severity is Severity.ERROR


def test_bad_boxes() -> None:
    rows = (
        "| char1 | A | g | c | s | h | 10, 10, 50, 50 |\n"
        "| char2 | B | g | c | s | h | nowhere |\n"
        "| char3 | C | g | c | s | h | 50, 10, 10, 50 |\n"
        "| char4 | D | g | c | s | h | 10, 10, 500, 50 |\n"
        "| char5 | E | g | c | s | h | |\n"
    )
    bad = [i for i in _issues(_output(rows), image_sizes={1: (100, 100)}) if i.code == "bad-box"]
    assert [(i.id, i.line) for i in bad] == [
        ("char2", 7),
        ("char3", 8),
        ("char4", 9),
        ("char5", 10),
    ]
    assert "outside the 100x100 image" in bad[2].message
    # Without the image size, a box beyond it cannot be judged.
    assert "char4" not in {i.id for i in _issues(_output(rows)) if i.code == "bad-box"}


def test_unclosed_tags_and_truncation() -> None:
    issues = _issues(_output(story="<gdi image1><gdo char1>Maya waves"))
    codes = [i.code for i in issues]
    assert codes.count("unclosed-tag") == 2
    assert "truncated" in codes
    gdo = next(i for i in issues if i.code == "unclosed-tag" and i.id == "char1")
    assert (gdo.frame, gdo.line) == (1, 8)


def test_truncated_mid_tag() -> None:
    issues = _issues(_output(story="<gdi image1>Maya</gdi>\n<gdi ima"))
    truncated = [i for i in issues if i.code == "truncated"]
    assert len(truncated) == 1 and "middle of a tag" in truncated[0].message


def test_story_structure_warnings() -> None:
    text = _output(
        story="<gdi image2>b</gdi>\n<gdi image1>a</gdi>\n<gdi image1>again</gdi>\n"
        "<gdi image3></gdi>\nstray\n</gdi>\n<gdi>x</gdi>"
    )
    codes = _codes(text, frame_count=3)
    for code in (
        "out-of-order",
        "duplicate-frame",
        "empty-segment",
        "stray-text",
        "stray-tag",
        "bad-tag",
    ):
        assert code in codes, code


def test_no_story_after_the_analysis() -> None:
    assert "no-story" in _codes(_output(story="\n"))


def test_empty_analysis_and_missing_analysis() -> None:
    assert "empty-analysis" in _codes("<think>\nhmm\n</think>\n<gdi image1>a</gdi>")
    assert "missing-analysis" in _codes(
        _output(story="<gdi image1>a</gdi><gdi image2>b</gdi>"), frame_count=2
    )


def test_issues_are_ordered_by_line() -> None:
    lines = [
        i.line
        for i in _issues(_output(story="<gdi image1><gdo x>a</gdo>\n</gdi>\nz"), frame_count=2)
    ]
    numbered = [line for line in lines if line is not None]
    assert numbered == sorted(numbered)
    assert lines[-1] is None  # missing-frame has no line


def test_readme_documents_every_issue_code_with_its_severity() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- section: story-json -->")[1].split(
        "<!-- /section: story-json -->"
    )[0]
    for code, (severity, _) in ISSUE_CODES.items():
        assert f"| `{code}` | {severity.value} |" in section, code


def test_severity_and_kind_compare_equal_to_their_json_strings() -> None:
    issues = _issues("<gdi image1><gdo char1>x</gdo></gdi>", frame_count=2)
    assert "error" in [issue.severity for issue in issues]
    assert parse_story("<gdi image1><gdo c>x</gdo></gdi>").segments[0].spans[0].kind == "entity"


def test_a_box_with_no_area_is_a_bad_box_and_one_pixel_is_enough() -> None:
    """Zero-area boxes (x2 == x1 or y2 == y1) and boxes under a pixel draw nothing: bad-box."""
    rows = (
        "| char1 | A | g | c | s | h | 10, 10, 10, 50 |\n"  # x2 == x1
        "| char2 | B | g | c | s | h | 10, 10, 50, 10 |\n"  # y2 == y1
        "| char3 | C | g | c | s | h | 10, 10, 10.5, 50 |\n"  # half a pixel wide
        "| char4 | D | g | c | s | h | 10, 10, 11, 11 |\n"  # one pixel: fine
    )
    bad = [i for i in _issues(_output(rows), image_sizes={1: (100, 100)}) if i.code == "bad-box"]
    assert [i.id for i in bad] == ["char1", "char2", "char3"]
    assert all("empty" in i.message and i.severity is Severity.WARNING for i in bad)
