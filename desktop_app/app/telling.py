"""Telling an album's story: the one job the GUI and the CLI both run.

``tell`` takes the album's photos (refusing missing ones), asks the backend, writes the output
to a new run while the model streams it (throttled by the library, so readers see it grow and a
crash leaves an interruptible run), and yields every event on the way: ``RunStarted``, the
backend's phases and tokens, its ``ResultEvent``, and ``RunEnded`` with the stored run and its
story, parsed once. The GUI's worker and ``storyteller album tell`` only relay these events.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from desktop_app.app.backends import backend_model_identity
from desktop_app.app.settings import Settings
from desktop_app.app.stored_story import FrameGeometry, StoredStory
from desktop_app.engine.events import (
    DEFAULT_INSTRUCTION,
    Detail,
    KnownPhoto,
    PhaseEvent,
    Preset,
    ResultEvent,
    RunResult,
    SamplingParams,
    ShouldStop,
    StoryBackend,
    StoryRequest,
    TokenEvent,
)
from desktop_app.errors import StorytellerError
from desktop_app.library.errors import LibraryError, PhotoMissingError
from desktop_app.library.records import Album, Photo, RunOutcome, RunSpec, SeenPhoto, StoryRun
from desktop_app.library.store import AlbumRef, Library

logger = logging.getLogger(__name__)


def _never_stop() -> bool:
    return False


@dataclass(frozen=True)
class TellOptions:
    """How to tell a story, whichever photos it is about: detail, sampling, format, instruction.

    ``preset`` is the name the sampling came from (recorded with the run), when there was one.
    """

    detail: Detail = Detail.NORMAL
    sampling: SamplingParams = field(default_factory=SamplingParams)
    strict_format: bool = False
    instruction: str = DEFAULT_INSTRUCTION
    preset: Preset | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        temperature: float | None = None,
        top_p: float | None = None,
        instruction: str | None = None,
    ) -> TellOptions:
        """The options ``settings`` describe (preset, detail, seed, max tokens, strict format);
        ``temperature``/``top_p`` replace the preset's values when given."""
        base = settings.preset.sampling(max_tokens=settings.max_tokens, seed=settings.seed)
        sampling = SamplingParams(
            temperature=base.temperature if temperature is None else temperature,
            top_p=base.top_p if top_p is None else top_p,
            max_tokens=base.max_tokens,
            seed=base.seed,
        )
        return cls(
            detail=settings.detail,
            sampling=sampling,
            strict_format=settings.strict_format,
            instruction=DEFAULT_INSTRUCTION if instruction is None else instruction,
            preset=settings.preset,
        )

    def request(
        self, photos: Sequence[Path], known: Sequence[KnownPhoto | None] = ()
    ) -> StoryRequest:
        """The backend request for ``photos`` (album order), with what the library knows."""
        return StoryRequest(
            photos=tuple(Path(photo) for photo in photos),
            detail=self.detail,
            sampling=self.sampling,
            strict_format=self.strict_format,
            instruction=self.instruction,
            known=tuple(known),
        )

    def parameters(self) -> dict[str, Any]:
        """How the run was asked for, in the one shape runs store (``RunParameters`` reads it)."""
        return {
            "preset": self.preset.value if self.preset is not None else None,
            "detail": self.detail.value,
            "token_budget": self.detail.token_budget,
            "sampling": self.sampling.to_dict(),
            "strict_format": self.strict_format,
            "instruction": self.instruction,
        }


@dataclass(frozen=True)
class RunStarted:
    """The run is recorded (``running``) and about to be asked of the backend."""

    run_id: int
    album: Album
    photos: tuple[Photo, ...]  # frame 1 first
    request: StoryRequest


@dataclass(frozen=True)
class RunEnded:
    """The run is stored as ended; ``story`` is its output, parsed and checked once.

    ``result`` is the backend's (None when it ended without one: the run is then ``failed``).
    """

    run: StoryRun
    story: StoredStory
    result: RunResult | None


TellEvent = Union[RunStarted, PhaseEvent, TokenEvent, ResultEvent, RunEnded]  # noqa: UP007
TellEventCallback = Callable[[TellEvent], None]


def photos_to_tell(library: Library, album: AlbumRef) -> list[Photo]:
    """The album's photos in album order, once it is sure every one can be told.

    An album with a missing photo is refused (GUI and CLI alike) with a message naming the
    photos and what to do: a story of fewer photos than the album shows is not what was asked.
    """
    target = library.album(album)
    photos = library.photos(target)
    if not photos:
        raise LibraryError(f"album {target.name!r} has no photos: add some before telling a story")
    missing = [photo for photo in photos if photo.missing]
    if missing:
        names = ", ".join(photo.name for photo in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise PhotoMissingError(
            f"{len(missing)} photo(s) of album {target.name!r} are missing ({names}{more}): "
            "relink the album to the folder they moved to, or remove them from the album"
        )
    return photos


def known_photo(photo: Photo) -> KnownPhoto | None:
    """The library's facts about ``photo`` if its file is unchanged since they were recorded."""
    try:
        stat = os.stat(photo.path)
    except OSError:
        return None
    if stat.st_size != photo.size or stat.st_mtime != photo.mtime:
        return None  # changed behind the library's back: let the engine hash it afresh
    return KnownPhoto(photo.sha256, (photo.width, photo.height))


def _frames(photos: Sequence[Photo], result: RunResult) -> list[FrameGeometry]:
    frames = []
    for index, photo in enumerate(photos, start=1):
        seen = result.photos[index - 1] if index <= len(result.photos) else None
        frames.append(
            FrameGeometry(
                index,
                photo.path,
                seen.original_size if seen else None,
                seen.prepared_size if seen else None,
            )
        )
    return frames


def outcome_of(result: RunResult, story: StoredStory | None = None) -> RunOutcome:
    """The backend's result as the library keeps it (with the story JSON when parsed)."""
    return RunOutcome(
        raw_output=result.raw_output,
        stopped=result.cancelled,
        photos=tuple(
            SeenPhoto(info.original_size, info.prepared_size, info.tokens) for info in result.photos
        ),
        backend=result.backend,
        model_name=result.model,
        timings=result.timings.to_dict(),
        story=story.to_json() if story is not None and result.raw_output.strip() else None,
    )


def tell(
    library: Library,
    album: AlbumRef,
    backend: StoryBackend,
    options: TellOptions,
    *,
    should_stop: ShouldStop = _never_stop,
    model: Mapping[str, Any] | None = None,
) -> Iterator[TellEvent]:
    """Tell the story of ``album``'s photos (in album order) into a new run, yielding events.

    ``model`` is the model's identity to record (default: the files the backend loads). Ends
    with ``RunEnded``: ``complete``, or ``stopped`` when ``should_stop`` ended it. A backend error
    is recorded as a ``failed`` run with its partial output and then raised; Ctrl-C, or closing
    the generator early, records a ``stopped`` run. An exception thrown in (``throw``) by the
    consumer is recorded as the failure and raised again.
    """
    target = library.album(album)
    photos = photos_to_tell(library, target)
    request = options.request(
        [photo.path for photo in photos], [known_photo(photo) for photo in photos]
    )
    spec = RunSpec(
        photo_ids=tuple(photo.id for photo in photos),
        parameters=options.parameters(),
        backend=backend.description,
        model=dict(model) if model is not None else backend_model_identity(backend),
    )
    run_id = library.start_run(target, spec)
    result: RunResult | None = None
    try:
        yield RunStarted(run_id, target, tuple(photos), request)
        with contextlib.closing(backend.generate(request, should_stop=should_stop)) as stream:
            for event in stream:
                if isinstance(event, TokenEvent):
                    library.append_output(run_id, event.text)
                elif isinstance(event, ResultEvent):
                    result = event.result
                yield event
    except (GeneratorExit, KeyboardInterrupt):
        library.stop_run(run_id)  # the user (or the consumer) ended it: keep what was written
        raise
    except StorytellerError as err:
        library.fail_run(run_id, str(err))
        raise
    except Exception as err:
        library.fail_run(run_id, f"{type(err).__name__}: {err}")
        raise
    if result is None:
        run = library.fail_run(run_id, "the backend ended without a result: try again")
        yield RunEnded(run, StoredStory.of_run(run), None)
        return
    story = StoredStory.parse(result.raw_output, _frames(photos, result))
    run = library.finish_run(run_id, outcome_of(result, story))
    yield RunEnded(run, story, result)


def tell_album(
    library: Library,
    album: AlbumRef,
    backend: StoryBackend,
    options: TellOptions,
    *,
    should_stop: ShouldStop = _never_stop,
    on_event: TellEventCallback | None = None,
    model: Mapping[str, Any] | None = None,
) -> RunEnded:
    """Run ``tell`` to its end, passing every event to ``on_event``; returns the ``RunEnded``.

    An exception raised by ``on_event`` (or Ctrl-C while it runs) ends the run the same way
    an error of the backend would, and is raised again.
    """
    events = tell(library, album, backend, options, should_stop=should_stop, model=model)
    ended: RunEnded | None = None
    for event in events:
        if isinstance(event, RunEnded):
            ended = event
        if on_event is not None:
            try:
                on_event(event)
            except BaseException as err:
                if ended is not None:
                    raise
                events.throw(err)  # records the run as failed (stopped for Ctrl-C), re-raises
    if ended is None:  # tell always ends with RunEnded unless it raised
        raise StorytellerError(f"{backend.description} ended without a result: try again")
    return ended
