"""Checks a parsed story against the output format and the album, with stable issue codes.

The codes are a public contract (README, "The story JSON contract"): tools and the GUI match on
them, so a code never changes meaning; new checks get new codes.
"""

from __future__ import annotations

from collections.abc import Mapping

from desktop_app.story.model import (
    ISSUE_CODES,
    Character,
    Issue,
    Segment,
    SpanKind,
    Story,
    StoryObject,
    ThinkState,
)

__all__ = ["ISSUE_CODES", "validate"]


def validate(
    story: Story,
    *,
    frame_count: int | None = None,
    image_sizes: Mapping[int, tuple[int, int]] | None = None,
) -> list[Issue]:
    """Every problem of ``story``, ordered by line (issues without a line last).

    ``frame_count`` (photos in the album) enables missing-/extra-frame checks; ``image_sizes``
    (frame index -> (width, height) of the image as the model saw it) enables the
    box-inside-image check. Parse issues found by the parser are included.
    """
    if story.empty:
        return [Issue.for_code("empty-output", "the output is empty: the model wrote nothing")]
    issues: list[Issue] = list(story.parse_issues)
    issues.extend(_structure_issues(story))
    issues.extend(_segment_issues(story, frame_count))
    issues.extend(_table_issues(story, frame_count, image_sizes or {}))
    return sorted(issues, key=lambda i: (i.line is None, i.line or 0))


def _structure_issues(story: Story) -> list[Issue]:
    issues: list[Issue] = []
    if story.think is ThinkState.ABSENT:
        detail = (
            "the analysis tables are not inside <think>...</think>"
            if story.frames
            else "boxes and names of the story's characters are unknown"
        )
        issues.append(
            Issue.for_code("missing-think", f"the output has no <think> analysis block: {detail}")
        )
    elif story.think is ThinkState.OPEN:
        issues.append(Issue.for_code("unclosed-think", "the analysis is never closed by </think>"))
    if story.truncated:
        last = story.segments[-1] if story.segments else None
        if story.ends_mid_tag:
            where = "in the middle of a tag"
        elif story.think is ThinkState.OPEN and not story.segments:
            where = "inside the analysis, before the story"
        else:
            where = "inside an unfinished story segment"
        issues.append(
            Issue.for_code(
                "truncated",
                f"the output stops {where}; the model probably ran out of tokens",
                frame=last.image if last is not None and not story.ends_mid_tag else None,
                line=story.end_line,
            )
        )
    if story.think is ThinkState.CLOSED and not story.segments:
        issues.append(Issue.for_code("no-story", "the analysis is there but no story follows it"))
    if story.think is not ThinkState.ABSENT and not story.frames and not story.truncated:
        issues.append(
            Issue.for_code(
                "empty-analysis",
                "the <think> block has no '## Image N' tables: "
                "boxes and names of the story's characters are unknown",
            )
        )
    return issues


def _segment_issues(story: Story, frame_count: int | None) -> list[Issue]:
    issues: list[Issue] = []
    # Without any analysis every id is unknown; missing-think or empty-analysis says why.
    defined = story.defined_ids() if story.frames else None
    seen_images: set[int] = set()
    last_image = 0
    for segment in story.segments:
        if defined is not None:
            issues.extend(_unknown_ids(segment, defined))
        if segment.image is None:
            continue
        if segment.image in seen_images:
            issues.append(
                Issue.for_code(
                    "duplicate-frame",
                    f"image {segment.image} has a second story segment",
                    frame=segment.image,
                    line=segment.line,
                )
            )
        elif segment.image < last_image:
            issues.append(
                Issue.for_code(
                    "out-of-order",
                    f"the segment for image {segment.image} comes after image {last_image}",
                    frame=segment.image,
                    line=segment.line,
                )
            )
        seen_images.add(segment.image)
        last_image = max(last_image, segment.image)
        if segment.closed and not segment.text.strip():
            issues.append(
                Issue.for_code(
                    "empty-segment",
                    f"the story segment for image {segment.image} is empty",
                    frame=segment.image,
                    line=segment.line,
                )
            )
        if frame_count is not None and not 1 <= segment.image <= frame_count:
            issues.append(
                Issue.for_code(
                    "extra-frame",
                    f"the story has a segment for image {segment.image} "
                    f"but the album has {frame_count} photo{'s' if frame_count != 1 else ''}",
                    frame=segment.image,
                    line=segment.line,
                )
            )
    if frame_count is not None:
        for index in range(1, frame_count + 1):
            if index not in seen_images:
                issues.append(
                    Issue.for_code(
                        "missing-frame",
                        f"image {index} has no story segment (<gdi image{index}>)",
                        frame=index,
                    )
                )
    return issues


def _unknown_ids(segment: Segment, defined: frozenset[str]) -> list[Issue]:
    issues: list[Issue] = []
    reported: set[str] = set()
    for span in segment.spans:
        if span.kind is SpanKind.TEXT:
            continue
        for entity_id in span.ids:
            if entity_id in defined or entity_id in reported:
                continue
            reported.add(entity_id)
            where = f"image {segment.image}" if segment.image is not None else "the story"
            issues.append(
                Issue.for_code(
                    "unknown-id",
                    f"{entity_id} is tagged in {where} but no analysis table defines it",
                    frame=segment.image,
                    entity_id=entity_id,
                    line=span.line,
                )
            )
    return issues


def _table_issues(
    story: Story, frame_count: int | None, image_sizes: Mapping[int, tuple[int, int]]
) -> list[Issue]:
    issues: list[Issue] = []
    seen: set[int] = set()
    for frame in story.frames:
        if frame.index in seen:
            issues.append(
                Issue.for_code(
                    "duplicate-frame",
                    f"image {frame.index} is analysed twice",
                    frame=frame.index,
                    line=frame.line,
                )
            )
        seen.add(frame.index)
        if frame_count is not None and not 1 <= frame.index <= frame_count:
            issues.append(
                Issue.for_code(
                    "extra-frame",
                    f"the analysis describes image {frame.index} "
                    f"but the album has {frame_count} photo{'s' if frame_count != 1 else ''}",
                    frame=frame.index,
                    line=frame.line,
                )
            )
        size = image_sizes.get(frame.index)
        for row in (*frame.characters, *frame.objects):
            if not row.id:
                issues.append(
                    Issue.for_code(
                        "missing-id",
                        f"a row of image {frame.index}'s analysis has no id",
                        frame=frame.index,
                        line=row.line,
                    )
                )
            problem = _box_problem(row, size)
            if problem is not None:
                issues.append(
                    Issue.for_code(
                        "bad-box",
                        f"the box of {row.id or 'a row'} in image {frame.index} {problem}",
                        frame=frame.index,
                        entity_id=row.id or None,
                        line=row.line,
                    )
                )
    if frame_count is not None and story.think is not ThinkState.ABSENT and not story.truncated:
        for index in range(1, frame_count + 1):
            if index not in seen:
                issues.append(
                    Issue.for_code(
                        "missing-analysis",
                        f"image {index} has no analysis (## Image {index})",
                        frame=index,
                    )
                )
    return issues


def _box_problem(row: Character | StoryObject, size: tuple[int, int] | None) -> str | None:
    box = row.box
    if box is None:
        if not row.box_text.strip():
            return "is missing"
        return f"does not parse: {row.box_text!r} (expected x1, y1, x2, y2)"
    # Under one pixel wide or high (zero-area included) the app draws nothing: as good as empty.
    if box.width < 1 or box.height < 1:
        return f"is empty or inverted: {row.box_text!r} (needs x2 > x1 and y2 > y1)"
    if box.x1 < 0 or box.y1 < 0:
        return f"has negative coordinates: {row.box_text!r}"
    if size is not None:
        width, height = size
        if box.x2 > width or box.y2 > height:
            return f"lies outside the {width}x{height} image: {row.box_text!r}"
    return None
