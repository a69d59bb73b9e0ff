"""Names that stay: the album keeps the names the user gives, and offers them to later versions.

A name the user gives an entity of one version (``Library.set_display_name``, from the story
panel or ``storyteller album cast``) becomes a member of the album's cast with that entity's boxes
on the original photos (``refresh_cast``). When a later version is told, ``offer_names`` finds
its entities that are the same as a member (``name_matching``: same place on the same photos) and
shows them under the member's name; ``undo_match`` takes such a name back, for good in that
version. ``cast_entries`` is what the cast gallery and ``storyteller album names`` list.
"""

from __future__ import annotations

from dataclasses import dataclass

from desktop_app.app.name_matching import Match, Sighting, match_entities, match_kind
from desktop_app.app.stored_story import box_on_photo, frames_of
from desktop_app.library.errors import LibraryError
from desktop_app.library.records import CastMember, RunStatus, StoryRun
from desktop_app.library.store import AlbumRef, Library
from desktop_app.library.storyjson import parse_and_validate
from desktop_app.story.model import Story


@dataclass(frozen=True)
class CastEntry:
    """One named entity of a version, and where its name came from.

    ``origin`` is ``"named"`` (given in this version), ``"matched"`` (offered from
    ``from_run``'s member, ``mean_iou``) or ``"undone"`` (a match the user took back).
    """

    entity_id: str
    name: str
    origin: str
    from_run: int | None = None
    mean_iou: float | None = None
    cast_id: int | None = None


def _story(run: StoryRun) -> Story:
    story, _ = parse_and_validate(run.raw_output, run.prepared_sizes())
    return story


def sightings(run: StoryRun, story: Story | None = None) -> dict[str, Sighting]:
    """Every entity of ``run`` with its boxes on the original photos, as fractions of each
    upright photo, by photo hash (a frame whose sizes were not recorded is left out)."""
    story = story if story is not None else _story(run)
    frames = {frame.index: frame for frame in frames_of(run)}
    hashes = {photo.index: photo.sha256 for photo in run.photos}
    found: dict[str, Sighting] = {}
    for entity_id in sorted(story.defined_ids()):
        kind = match_kind(entity_id)
        if kind is None:
            continue
        boxes = {}
        for index, box in story.boxes_for(entity_id).items():
            frame = frames.get(index)
            if frame is None or frame.original_size is None or not hashes.get(index):
                continue
            width, height = frame.original_size
            prepared = frame.prepared_size or frame.original_size
            x1, y1, x2, y2 = box_on_photo(box, prepared, frame.original_size)
            if x2 > x1 and y2 > y1 and width > 0 and height > 0:
                boxes[hashes[index]] = (x1 / width, y1 / height, x2 / width, y2 / height)
        found[entity_id] = Sighting(entity_id, kind, boxes)
    return found


def _finished(library: Library, album: AlbumRef) -> list[StoryRun]:
    return [run for run in library.runs(album) if run.status is not RunStatus.RUNNING]


def refresh_cast(library: Library, album: AlbumRef) -> list[CastMember]:
    """Make the album's cast agree with the names the user gave: a new name becomes a member
    (a renamed one renames it), a name cleared forgets the member. Returns the cast."""
    members = library.cast(album)
    by_place = {(m.run_id, m.entity_id): m for m in members if m.run_id is not None}
    by_id = {m.id: m for m in members}
    for run in _finished(library, album):
        names = library.display_names(run.id)
        matched = {
            m.entity_id: by_id.get(m.cast_id) for m in library.cast_matches(run.id) if not m.undone
        }
        seen: dict[str, Sighting] | None = None
        for entity_id, name in names.items():
            kind = match_kind(entity_id)
            given_by = matched.get(entity_id)
            if kind is None or (given_by is not None and given_by.name == name):
                continue
            member = by_place.get((run.id, entity_id))
            if member is not None and member.name == name:
                continue
            if seen is None:
                seen = sightings(run)
            boxes = seen[entity_id].boxes if entity_id in seen else {}
            library.save_cast_member(
                album, name=name, kind=kind, boxes=boxes, run_id=run.id, entity_id=entity_id
            )
        for (run_id, entity_id), member in by_place.items():
            if run_id == run.id and entity_id not in names:
                library.delete_cast_member(member.id)
    return library.cast(album)


def offer_names(library: Library, run_id: int) -> list[Match]:
    """Show the entities of version ``run_id`` that match a member of the album's cast named in
    an earlier version (or brought by an import) under that member's name. Entities the user
    named in this version keep their names; a match the user undid is not offered again.
    Returns the matches applied now."""
    run = library.run(run_id)
    if run.status is RunStatus.RUNNING:
        return []
    members = [
        m for m in refresh_cast(library, run.album_id) if m.run_id is None or m.run_id < run.id
    ]
    if not members:
        return []
    recorded = library.cast_matches(run.id)
    live = {m.cast_id for m in recorded if not m.undone}
    excluded = {(str(m.cast_id), m.entity_id) for m in recorded if m.undone}
    # Only entities without a name are offered one: a name the user gave here (also after
    # undoing a match) and a name a match gave are both kept.
    named = set(library.display_names(run.id))
    entities = [s for s in sightings(run).values() if s.key not in named]
    candidates = [Sighting(str(m.id), m.kind, m.boxes) for m in members if m.id not in live]
    matches = match_entities(candidates, entities, excluded=excluded)
    by_id = {str(m.id): m for m in members}
    for match in matches:
        member = by_id[match.named]
        library.apply_cast_match(run.id, match.entity, member.id, match.mean_iou, member.name)
    return matches


def undo_match(library: Library, run_id: int, entity_id: str) -> None:
    """Take back the name a match gave ``entity_id`` in version ``run_id``."""
    if not library.undo_cast_match(run_id, entity_id):
        raise LibraryError(
            f"{entity_id} of story {run_id} was not named by a match: "
            "list the names with 'storyteller album names ALBUM' to see which were"
        )


def cast_entries(library: Library, run_id: int) -> list[CastEntry]:
    """Every named entity of version ``run_id`` (and every match undone there), with where its
    name came from, by entity id."""
    run = library.run(run_id)
    members = {m.id: m for m in library.cast(run.album_id)}
    names = library.display_names(run_id)
    entries: dict[str, CastEntry] = {}
    for match in library.cast_matches(run_id):
        member = members.get(match.cast_id)
        if member is None:
            continue
        if match.undone and match.entity_id not in names:
            entries[match.entity_id] = CastEntry(
                match.entity_id, member.name, "undone", member.run_id, match.mean_iou, member.id
            )
        elif not match.undone and names.get(match.entity_id) == member.name:
            entries[match.entity_id] = CastEntry(
                match.entity_id, member.name, "matched", member.run_id, match.mean_iou, member.id
            )
    for entity_id, name in names.items():
        if entity_id not in entries:
            entries[entity_id] = CastEntry(entity_id, name, "named")
    return [entries[key] for key in sorted(entries)]
