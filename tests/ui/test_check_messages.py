"""The Checks panel's words for the validator's issues: sentences without markup or CLI flags,
on every issue the golden outputs raise (the validator's own messages stay as they are)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desktop_app.story.model import Issue
from desktop_app.ui.check_messages import gui_message

GOLDEN = Path(__file__).parents[1] / "story" / "golden" / "expected"


def _golden_issues() -> list[Issue]:
    issues = []
    for path in sorted(GOLDEN.glob("*.json")):
        for item in json.loads(path.read_text(encoding="utf-8")).get("issues", []):
            issues.append(
                Issue(item["code"], item["severity"], item["message"], frame=item["frame"])
            )
    return issues


@pytest.mark.parametrize("issue", _golden_issues(), ids=lambda i: i.code)
def test_every_golden_issue_reads_as_a_sentence_without_markup(issue: Issue) -> None:
    text = gui_message(issue)
    assert text[0].isupper() and text.endswith("."), text
    for word in ("<", "</", "##", "--", "tokens"):
        assert word not in text, text


def test_the_truncation_advice_points_at_the_story_length_setting() -> None:
    issue = Issue.for_code(
        "truncated",
        "the output stops inside an unfinished story segment; the model probably ran out of tokens",
    )
    assert "Story length in Settings" in gui_message(issue)
    assert "ran out of tokens" in issue.message  # the CLI's and the JSON's words are kept
