"""Which entity of a new version is the one the user named in an earlier version of the album.

The model's ids change from run to run (``char3`` today may be ``char1`` tomorrow), so entities are
matched by where they are, not by id:

- boxes are compared on the original photo, as fractions of its upright size (versions told at
  different detail saw the photos at different prepared sizes);
- photos are identified by their library identity (content hash), not by frame number, so
  reordered and added photos do not matter;
- only entities of the same kind are compared (characters with characters, objects with objects,
  places with places);
- a pair matches when its boxes overlap with IoU >= 0.5 in more than half of the photos where
  both appear, and in at least one;
- assignment is one to one: the pair with the highest mean IoU (over the photos both appear in)
  is taken first, then the next pair whose two sides are both still free.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from desktop_app.story.ids import EntityKind, entity_kind

MATCH_IOU = 0.5

NormalisedBox = tuple[float, float, float, float]  # x1, y1, x2, y2 as fractions of the photo


@dataclass(frozen=True)
class Sighting:
    """An entity (or a cast member) and its box in each photo it appears in."""

    key: str  # the entity id, or the cast member's id as text
    kind: str  # "character", "object" or "place"
    boxes: Mapping[str, NormalisedBox]  # photo identity (sha256) -> box


@dataclass(frozen=True)
class Match:
    """``named`` (a cast member) is ``entity`` of the new version, with this mean IoU."""

    named: str
    entity: str
    mean_iou: float
    photos: int  # how many photos both appear in


def match_kind(entity_id: str) -> str | None:
    """The group an id is matched within: character, object or place."""
    kind = entity_kind(entity_id)
    if kind is None:
        return None
    if kind is EntityKind.CHARACTER:
        return "character"
    return "place" if kind.is_place else "object"


def iou(a: NormalisedBox, b: NormalisedBox) -> float:
    """Intersection over union of two boxes; 0 for boxes of no area."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _pair(named: Sighting, entity: Sighting) -> Match | None:
    shared = [photo for photo in named.boxes if photo in entity.boxes]
    if not shared or named.kind != entity.kind:
        return None
    overlaps = [iou(named.boxes[photo], entity.boxes[photo]) for photo in shared]
    hits = sum(1 for value in overlaps if value >= MATCH_IOU)
    if hits < 1 or hits * 2 <= len(shared):
        return None
    return Match(named.key, entity.key, sum(overlaps) / len(overlaps), len(shared))


def match_entities(
    named: Iterable[Sighting],
    entities: Iterable[Sighting],
    *,
    excluded: Collection[tuple[str, str]] = (),
) -> list[Match]:
    """The one-to-one matches between ``named`` (cast members) and a new version's
    ``entities`` (see the module), best first; ``excluded`` pairs ``(named, entity)`` are never
    matched (the user undid them)."""
    entities = list(entities)
    candidates = [
        found
        for member in named
        for entity in entities
        if (member.key, entity.key) not in excluded and (found := _pair(member, entity)) is not None
    ]
    candidates.sort(key=lambda m: (-m.mean_iou, -m.photos, m.named, m.entity))
    taken_named: set[str] = set()
    taken_entities: set[str] = set()
    chosen = []
    for candidate in candidates:
        if candidate.named in taken_named or candidate.entity in taken_entities:
            continue
        taken_named.add(candidate.named)
        taken_entities.add(candidate.entity)
        chosen.append(candidate)
    return chosen
