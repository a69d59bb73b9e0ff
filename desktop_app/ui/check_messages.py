"""The validator's issues in the words of the Checks panel.

The validator's messages are part of the story JSON contract and of the command line: lower
case, naming the markup (``<gdi image3>``, ``<think>``) and the CLI's ``--max-tokens``. The
window translates them here, at its edge, instead of teaching the story package two voices:
each issue keeps its code, severity, frame and id, and gets a sentence a reader of the app
understands. A version the user stopped (or that the app's closing interrupted) gets one line
saying so, instead of the errors that only repeat that it stops early.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from desktop_app.library.records import RunStatus
from desktop_app.story.model import Issue, Severity, Story

# Codes whose message is all markup: one sentence each (the panel adds the frame and the id).
_SENTENCES = {
    "empty-output": "The model wrote nothing.",
    "missing-think": "The model wrote no analysis, so the names and boxes are unknown.",
    "unclosed-think": "The analysis never ends.",
    "no-story": "The analysis is there but no story follows it.",
    "empty-analysis": "The analysis has no table for any photo, so names and boxes are unknown.",
    "unclosed-tag": "A highlighted part of the story is never closed.",
    "mismatched-tag": "A highlighted part of the story is closed by the wrong tag.",
    "stray-tag": "The story holds a stray tag.",
    "bad-tag": "A part of the story names no photo.",
    "stray-text": "Some story text belongs to no photo.",
}
# Markup and CLI words in the other messages, and what the window says instead.
_WORDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\s*\(<gdi image\d+>\)"), ""),
    (re.compile(r"\s*\(## Image \d+\)"), ""),
    (re.compile(r"has no story segment"), "has no story text"),
    (re.compile(r"a second story segment"), "its story text twice"),
    (
        re.compile(r"the story segment for image (\d+) is empty"),
        r"the story text of photo \1 is empty",
    ),
    (re.compile(r"\bimage (\d+)"), r"photo \1"),
    (
        re.compile(r"; the model probably ran out of tokens"),
        ": the story may need more room (raise Story length in Settings)",
    ),
    (re.compile(r"\bfewer --max-tokens\b"), "a shorter Story length in Settings"),
)
# Issues that only repeat, for a stopped version, that it stops early.
_STOP_CONSEQUENCES = frozenset(
    {"truncated", "unclosed-think", "no-story", "missing-frame", "missing-analysis"}
)


def gui_message(issue: Issue) -> str:
    """``issue``'s message as the window says it: a sentence, without markup or CLI flags."""
    text = _SENTENCES.get(issue.code)
    if text is None:
        text = issue.message
        for pattern, words in _WORDS:
            text = pattern.sub(words, text)
        text = text[:1].upper() + text[1:]
        if not text.endswith((".", "?", "!")):
            text += "."
    return text


def checks_for(
    issues: Sequence[Issue], story: Story, status: RunStatus, frame_count: int | None
) -> list[Issue]:
    """What the Checks panel lists for a version with ``status``: ``issues`` reworded, and for
    a stopped or interrupted version one line saying where it stopped in place of the errors
    that only say it stops early."""
    shown = [replace(issue, message=gui_message(issue)) for issue in issues]
    if status not in (RunStatus.STOPPED, RunStatus.INTERRUPTED):
        return shown
    who = "Stopped by you" if status is RunStatus.STOPPED else "Interrupted when the app closed"
    total = f" of {frame_count}" if frame_count else ""
    written = sorted({s.image for s in story.segments if s.image is not None})
    if written:
        where = f"{who} after frame {written[-1]}{total}."
    elif story.frames:
        where = f"{who} while analysing frame {len(story.frames)}{total}, before the story."
    else:
        where = f"{who} before the model wrote anything."
    last = written[-1] if written else 0
    kept = [
        issue
        for issue in shown
        if issue.code not in _STOP_CONSEQUENCES
        or (issue.code == "missing-frame" and issue.frame is not None and issue.frame < last)
    ]
    return [Issue("stopped", Severity.WARNING, where), *kept]
