"""Entity ids as QwenStoryteller writes them (docs/model-contract.md section 4): what kind of thing an id names.

Characters are ``charK``; the Objects table holds objects ``objK``, background regions ``bgK``
and landmarks ``lmK``. Ids are global across a story (re-identified entities keep their id), so
K is any number: a story may start at ``char2`` and ``bg26`` occurs. Background regions and
landmarks are places: ``<gdl>`` names them.
"""

from __future__ import annotations

import enum
import re


class EntityKind(str, enum.Enum):
    """What an id names; a ``str`` enum whose value is the id's prefix."""

    CHARACTER = "char"
    OBJECT = "obj"
    BACKGROUND = "bg"
    LANDMARK = "lm"

    @property
    def is_place(self) -> bool:
        """Background regions and landmarks are places (``<gdl>``)."""
        return self in (EntityKind.BACKGROUND, EntityKind.LANDMARK)

    @property
    def noun(self) -> str:
        """A word for the kind, for people."""
        return _NOUNS[self]


_NOUNS = {
    EntityKind.CHARACTER: "character",
    EntityKind.OBJECT: "object",
    EntityKind.BACKGROUND: "place",
    EntityKind.LANDMARK: "landmark",
}

# The kinds a row of the Objects table may hold.
OBJECT_TABLE_KINDS = (EntityKind.OBJECT, EntityKind.BACKGROUND, EntityKind.LANDMARK)

# "char" before anything else is not needed (no prefix is a prefix of another), but "obj" must
# not be read as "o" + "bj".
_ID_RE = re.compile(r"^(char|obj|bg|lm)\s*(\d+)$", re.IGNORECASE)


def entity_kind(entity_id: str) -> EntityKind | None:
    """The kind of ``entity_id`` ("char3", "bg26", "lm2"), or None if it is not an id."""
    match = _ID_RE.match(entity_id.strip())
    return EntityKind(match.group(1).lower()) if match is not None else None


def is_entity_id(text: str) -> bool:
    """True when ``text`` reads as an id of any kind (case and a space before K tolerated)."""
    return _ID_RE.match(text.strip()) is not None
