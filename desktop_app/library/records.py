"""The records the library hands out: albums, photos, import reports and story runs."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Album:
    """An ordered set of photos with its stories; ``photo_count``/``run_count`` as of reading."""

    id: int
    name: str
    notes: str
    created: str  # ISO 8601, UTC
    photo_count: int = 0
    run_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "notes": self.notes,
            "created": self.created,
            "photos": self.photo_count,
            "stories": self.run_count,
        }


@dataclass(frozen=True)
class Photo:
    """A photo file the library knows, identified by its content hash.

    ``width``/``height`` are the pixel size as the photo is shown (EXIF orientation applied).
    ``captured_at`` is EXIF DateTimeOriginal as ISO 8601 (with its offset when the camera wrote
    one), or None. ``missing`` is True when no file was at ``path`` when the record was read.
    """

    id: int
    path: Path
    sha256: str
    size: int
    mtime: float
    width: int
    height: int
    captured_at: str | None
    missing: bool = False

    @property
    def name(self) -> str:
        return self.path.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": str(self.path),
            "sha256": self.sha256,
            "size": self.size,
            "width": self.width,
            "height": self.height,
            "captured_at": self.captured_at,
            "missing": self.missing,
        }


@dataclass(frozen=True)
class DuplicatePhoto:
    """A file not added because the album already holds a photo with the same content."""

    path: Path
    existing: Photo


@dataclass(frozen=True)
class FailedFile:
    """A file that could not be imported, and why (the message names the file)."""

    path: Path
    message: str


@dataclass(frozen=True)
class ImportReport:
    """What ``Library.add_photos`` did with every file it was given or found."""

    added: tuple[Photo, ...] = ()
    duplicates: tuple[DuplicatePhoto, ...] = ()
    failed: tuple[FailedFile, ...] = ()
    skipped: tuple[Path, ...] = ()  # non-image files found while walking folders
    stopped: bool = False  # asked to stop before every file was looked at; the rest were not

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": [photo.to_dict() for photo in self.added],
            "duplicates": [
                {"path": str(dup.path), "existing": str(dup.existing.path)}
                for dup in self.duplicates
            ],
            "failed": [{"path": str(f.path), "message": f.message} for f in self.failed],
            "skipped": [str(path) for path in self.skipped],
            "stopped": self.stopped,
        }


@dataclass(frozen=True)
class RelinkedPhoto:
    photo_id: int
    old_path: Path
    new_path: Path


@dataclass(frozen=True)
class RelinkReport:
    """Photos found again by content hash, those still missing, and files that were skipped."""

    relinked: tuple[RelinkedPhoto, ...] = ()
    still_missing: tuple[Photo, ...] = ()
    # Files in the searched folder that vanished or could not be read during the search.
    unreadable: tuple[FailedFile, ...] = ()
    stopped: bool = False  # asked to stop before the whole folder was searched


class RunStatus(enum.Enum):
    """Where a story run stands. Only ``RUNNING`` changes; the others are final."""

    RUNNING = "running"
    COMPLETE = "complete"  # the model finished (or reached max_tokens)
    STOPPED = "stopped"  # the user stopped it; the partial output is kept
    FAILED = "failed"  # an error ended it; ``error`` says which
    INTERRUPTED = "interrupted"  # the process died while writing; the partial output is kept


@dataclass(frozen=True)
class RunPhoto:
    """One photo of a run, in the order the model saw them (frame ``index`` from 1)."""

    index: int
    photo_id: int | None
    path: Path
    sha256: str
    original_size: tuple[int, int] | None = None
    prepared_size: tuple[int, int] | None = None
    tokens: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "photo_id": self.photo_id,
            "path": str(self.path),
            "sha256": self.sha256,
            "original_size": list(self.original_size) if self.original_size else None,
            "prepared_size": list(self.prepared_size) if self.prepared_size else None,
            "tokens": self.tokens,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunPhoto:
        def size(value: Any) -> tuple[int, int] | None:
            return (int(value[0]), int(value[1])) if value else None

        return cls(
            index=int(data["index"]),
            photo_id=data.get("photo_id"),
            path=Path(data["path"]),
            sha256=str(data.get("sha256", "")),
            original_size=size(data.get("original_size")),
            prepared_size=size(data.get("prepared_size")),
            tokens=data.get("tokens"),
        )


@dataclass(frozen=True)
class SeenPhoto:
    """A photo as the model saw it: its upright size, the size it was prepared to, its tokens."""

    original_size: tuple[int, int]
    prepared_size: tuple[int, int]
    tokens: int


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, as the library keeps it: the output, the photos as seen, who made it.

    ``story`` is the story JSON when the caller has parsed the output already (it then is not
    parsed again); ``stopped`` marks a run the user stopped (else it is complete).
    """

    raw_output: str
    stopped: bool = False
    photos: tuple[SeenPhoto, ...] = ()
    backend: str = ""
    model_name: str = ""
    timings: Mapping[str, Any] = field(default_factory=dict)
    story: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class RunParameters:
    """How a run was asked for: the one shape runs store and the CLI prints.

    ``to_dict`` gives ``{"preset", "detail", "token_budget", "sampling": {"temperature",
    "top_p", "max_tokens", "seed"}, "strict_format", "instruction"}``: what
    ``TellOptions.parameters()`` stores, and what ``album story --json``, ``album tell --format
    json`` and ``tell --format json`` print. ``from_stored`` reads that and the older shapes too:
    versions told by the GUI before it stored the sampling values at the top level. ``None``:
    not recorded.
    """

    preset: str | None = None
    detail: str | None = None
    token_budget: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    strict_format: bool | None = None
    instruction: str | None = None

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> RunParameters:
        """The parameters of a stored row, whichever shape it has (nested or flat)."""
        sampling = stored.get("sampling")
        values = {**stored, **sampling} if isinstance(sampling, Mapping) else dict(stored)
        return cls(**{name: values.get(name) for name in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        """The one shape (see the class): every key present, ``None`` where not recorded."""
        return {
            "preset": self.preset,
            "detail": self.detail,
            "token_budget": self.token_budget,
            "sampling": {
                "temperature": self.temperature,
                "top_p": self.top_p,
                "max_tokens": self.max_tokens,
                "seed": self.seed,
            },
            "strict_format": self.strict_format,
            "instruction": self.instruction,
        }


@dataclass(frozen=True)
class RunSpec:
    """What a story run is about to do: photos in the order used and how it is asked."""

    photo_ids: tuple[int, ...]
    parameters: Mapping[str, Any] = field(default_factory=dict)
    backend: str = ""
    model: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoryRun:
    """One story told for an album: the raw model output and everything needed to trust it.

    ``story`` is the parsed story JSON (desktop_app.story's public contract) or None while the run
    is still being written. User edits (display names) are a separate layer:
    ``Library.display_names(run.id)``.
    """

    id: int
    album_id: int
    status: RunStatus
    created: str
    finished: str | None
    photos: tuple[RunPhoto, ...]
    parameters: Mapping[str, Any]
    backend: str
    model: Mapping[str, Any]
    timings: Mapping[str, Any]
    raw_output: str
    story: Mapping[str, Any] | None
    error: str

    @property
    def asked(self) -> RunParameters:
        """The parameters the run was asked for, whichever shape they were stored in."""
        return RunParameters.from_stored(self.parameters)

    def prepared_sizes(self) -> list[tuple[int, int] | None]:
        """Each frame's prepared size (the pixels its boxes are in), in frame order."""
        return [photo.prepared_size for photo in self.photos]

    def summary_dict(self) -> dict[str, Any]:
        """The run without its text: what ``album stories --json`` prints."""
        return {
            "id": self.id,
            "album_id": self.album_id,
            "status": self.status.value,
            "created": self.created,
            "finished": self.finished,
            "photos": [photo.to_dict() for photo in self.photos],
            "parameters": self.asked.to_dict(),  # old rows too, in the one shape
            "backend": self.backend,
            "model": dict(self.model),
            "timings": dict(self.timings),
            "output_chars": len(self.raw_output),
            "error": self.error,
        }


@dataclass(frozen=True)
class CastMember:
    """A name the user gave an entity, kept by the album (see ``library.schema``, migration 3).

    ``boxes`` maps a photo's hash to the entity's box on it as fractions of the upright photo
    ``(x1, y1, x2, y2)``; ``run_id``/``entity_id`` say where it was named (``run_id`` is None
    once that version is deleted, or for a member an imported bundle brought).
    """

    id: int
    album_id: int
    name: str
    kind: str  # "character", "object" or "place"
    boxes: Mapping[str, tuple[float, float, float, float]]
    run_id: int | None
    entity_id: str | None
    created: str


@dataclass(frozen=True)
class CastMatch:
    """A cast member's name applied to ``entity_id`` of a later version (or undone there)."""

    run_id: int
    entity_id: str
    cast_id: int
    mean_iou: float
    undone: bool
