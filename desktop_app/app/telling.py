"""Telling a story: the one job the GUI and every command run, with the rules they share.

``tell_photos`` tells the story of some photos, without a library: it is the app's one caller
of ``StoryBackend.generate`` (``storyteller tell``, ``eval --generate``, ``doctor``, the
self-test and ``tell`` all go through it). It yields the backend's events and ends with
``PhotosTold``: the result, its story parsed once, and the real token count.

``tell`` tells an album's story: it takes the album's photos (refusing missing ones), writes the
output to a new run while the model streams it (throttled by the library, so readers see it grow
and a crash leaves an interruptible run), and yields every event on the way: ``RunStarted``, the
backend's phases and tokens, its ``ResultEvent``, and ``RunEnded`` with the stored run and its
story. The GUI's worker and ``storyteller album tell`` only relay these events.

The zero-token rule (``discard_reason``): a run that was stopped or failed before the model
wrote a single token is not kept as a version. ``tell`` then deletes it and yields
``RunDiscarded`` (the last event of a stopped run; before the error is raised for a failed one);
the GUI says why in its status bar, the CLI prints why and exits 1 (failed) or 130 (stopped). A
run with at least one token is kept as stopped or failed, with its text.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from desktop_app.app.album_cast import offer_names
from desktop_app.app.backends import backend_model_identity
from desktop_app.app.settings import Settings
from desktop_app.app.stored_story import FrameGeometry, StoredStory
from desktop_app.engine.api import (
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
from desktop_app.errors import StorytellerError, low_space_warning
from desktop_app.library.errors import LibraryError, PhotoMissingError
from desktop_app.library.records import (
    Album,
    Photo,
    RunOutcome,
    RunParameters,
    RunSpec,
    RunStatus,
    SeenPhoto,
    StoryRun,
)
from desktop_app.library.store import AlbumRef, Library
from desktop_app.words import counted

logger = logging.getLogger(__name__)


def _never_stop() -> bool:
    return False


@dataclass(frozen=True)
class TellOptions:
    """How to tell a story, whichever photos it is about: detail, sampling, format, instruction.

    ``preset`` is the name the sampling came from (recorded with the run), when there was one.
    """

    detail: Detail = Detail.AS_TRAINED
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
        """How the run was asked for, in the one shape runs store and the CLI prints
        (``RunParameters.to_dict``)."""
        return RunParameters(
            preset=self.preset.value if self.preset is not None else None,
            detail=self.detail.value,
            token_budget=self.detail.token_budget,
            temperature=self.sampling.temperature,
            top_p=self.sampling.top_p,
            max_tokens=self.sampling.max_tokens,
            seed=self.sampling.seed,
            strict_format=self.strict_format,
            instruction=self.instruction,
        ).to_dict()


@dataclass(frozen=True)
class RunStarted:
    """The run is recorded (``running``) and about to be asked of the backend."""

    run_id: int
    album: Album
    photos: tuple[Photo, ...]  # frame 1 first
    request: StoryRequest


@dataclass(frozen=True)
class RunEnded:
    """The run is stored as ended (complete or stopped); ``story`` is its output, parsed and
    checked once; ``result`` is the backend's."""

    run: StoryRun
    story: StoredStory
    result: RunResult


@dataclass(frozen=True)
class RunDiscarded:
    """The run was stopped or failed before the model wrote a token: it is deleted, not kept as
    a version (the zero-token rule). ``status`` is how it ended (``STOPPED`` or ``FAILED``) and
    ``reason`` says why in words for the user.

    For a stopped run it is the last event (there is no ``RunEnded``); for a failed run the
    error is raised right after it.
    """

    run_id: int
    album: Album
    status: RunStatus
    reason: str


@dataclass(frozen=True)
class PhotosTold:
    """The end of ``tell_photos``: the backend's ``result``, its ``story`` parsed and checked
    once, and ``tokens``, the real number of tokens written."""

    request: StoryRequest
    result: RunResult
    story: StoredStory
    tokens: int

    @property
    def discarded(self) -> str:
        """Why this run is not kept (``discard_reason``); "" when it is."""
        status = RunStatus.STOPPED if self.result.cancelled else RunStatus.COMPLETE
        return discard_reason(status, self.tokens)


TellEvent = Union[  # noqa: UP007
    RunStarted, PhaseEvent, TokenEvent, ResultEvent, RunEnded, RunDiscarded
]
TellEventCallback = Callable[[TellEvent], None]
PhotosEvent = Union[PhaseEvent, TokenEvent, ResultEvent, PhotosTold]  # noqa: UP007

# What a story takes per token at most, about (JSON and HTML markup included): the expected
# output of the free-space check before a run.
STORY_BYTES_PER_TOKEN = 8


def low_space_before_run(
    folder: str | os.PathLike[str], options: TellOptions, extra_bytes: int = 0
) -> str:
    """A warning when ``folder`` (where the story goes: the library, ``--out``) has less than
    twice what the story may take free, else "". ``extra_bytes``: photos an HTML page embeds."""
    expected = options.sampling.max_tokens * STORY_BYTES_PER_TOKEN + extra_bytes
    return low_space_warning(folder, expected, what="the story")


STOPPED_BEFORE_WRITING = "stopped before the model wrote anything"
FAILED_BEFORE_WRITING = "failed before the model wrote anything"


def discard_reason(status: RunStatus, tokens: int, error: str = "") -> str:
    """Why a run that ended ``status`` after writing ``tokens`` tokens is not kept as a version,
    or "" when it is kept: the zero-token rule, shared by the GUI and the CLI.

    A stopped or failed run that wrote no token is not kept; one with at least one token is kept
    as stopped or failed with its text; a complete run is always kept. ``error`` (a failure's
    message) ends the reason.
    """
    if tokens > 0 or status not in (RunStatus.STOPPED, RunStatus.FAILED):
        return ""
    if status is RunStatus.STOPPED:
        return STOPPED_BEFORE_WRITING
    return f"{FAILED_BEFORE_WRITING}: {error}" if error else FAILED_BEFORE_WRITING


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
            f"{counted(len(missing), 'photo')} of album {target.name!r} "
            f"{'is' if len(missing) == 1 else 'are'} missing ({names}{more}): "
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


def frames_told(photos: Sequence[Path], result: RunResult) -> list[FrameGeometry]:
    """Each frame's photo and the sizes the run saw it at (None where the result has none)."""
    frames = []
    for index, path in enumerate(photos, start=1):
        seen = result.photos[index - 1] if index <= len(result.photos) else None
        frames.append(
            FrameGeometry(
                index,
                Path(path),
                seen.original_size if seen else None,
                seen.prepared_size if seen else None,
            )
        )
    return frames


def tell_photos(
    backend: StoryBackend,
    options: TellOptions,
    photos: Sequence[Path],
    *,
    should_stop: ShouldStop = _never_stop,
    known: Sequence[KnownPhoto | None] = (),
) -> Iterator[PhotosEvent]:
    """Tell the story of ``photos`` (in that order) on ``backend``, without a library.

    Yields the backend's phases, tokens and ``ResultEvent``, then ``PhotosTold`` (its
    ``discarded`` applies the zero-token rule). ``known`` is what a library knows of each photo.
    The backend's errors are raised; a backend that ends without a result raises
    ``StorytellerError``. Closing the generator closes the backend's stream (it stops at once).
    """
    request = options.request(photos, known)
    result: RunResult | None = None
    tokens = 0
    with contextlib.closing(backend.generate(request, should_stop=should_stop)) as stream:
        for event in stream:
            if isinstance(event, TokenEvent):
                tokens += event.tokens
            elif isinstance(event, ResultEvent):
                result = event.result
            yield event
    if result is None:
        raise StorytellerError(f"{backend.description} ended without a result: try again")
    # Tokens that never became text (half a character when stopped) count too.
    tokens = max(tokens, result.timings.generated_tokens)
    story = StoredStory.parse(result.raw_output, frames_told(request.photos, result))
    yield PhotosTold(request, result, story, tokens)


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


def _discard(library: Library, run_id: int, status: RunStatus, reason: str) -> None:
    """End the run as ``status`` (releasing it) and forget it: it wrote nothing."""
    if status is RunStatus.STOPPED:
        library.stop_run(run_id)
    else:
        library.fail_run(run_id, reason)
    library.delete_run(run_id)


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

    The zero-token rule: a run stopped or failed before its first token is deleted instead, and
    ``RunDiscarded`` says so (the last event when stopped; followed by the error when failed).
    Only when the consumer closes the generator, or Ctrl-C aborts, can nothing be yielded: the
    run is then deleted silently.
    """
    target = library.album(album)
    photos = photos_to_tell(library, target)
    paths = [photo.path for photo in photos]
    known = [known_photo(photo) for photo in photos]
    spec = RunSpec(
        photo_ids=tuple(photo.id for photo in photos),
        parameters=options.parameters(),
        backend=backend.description,
        model=dict(model) if model is not None else backend_model_identity(backend),
    )
    run_id = library.start_run(target, spec)
    told: PhotosTold | None = None
    tokens = 0
    try:
        yield RunStarted(run_id, target, tuple(photos), options.request(paths, known))
        stream = tell_photos(backend, options, paths, should_stop=should_stop, known=known)
        with contextlib.closing(stream):
            for event in stream:
                if isinstance(event, PhotosTold):
                    told = event
                    continue
                if isinstance(event, TokenEvent):
                    library.append_output(run_id, event.text)
                    tokens += event.tokens
                yield event
    except (GeneratorExit, KeyboardInterrupt):
        # The user (or the consumer) ended it: keep what was written, if anything was.
        if discard_reason(RunStatus.STOPPED, tokens):
            _discard(library, run_id, RunStatus.STOPPED, STOPPED_BEFORE_WRITING)
        else:
            library.stop_run(run_id)
        raise
    except Exception as err:
        message = str(err) if isinstance(err, StorytellerError) else f"{type(err).__name__}: {err}"
        reason = discard_reason(RunStatus.FAILED, tokens, message)
        if not reason:
            library.fail_run(run_id, message)
            raise
        _discard(library, run_id, RunStatus.FAILED, reason)
        yield RunDiscarded(run_id, target, RunStatus.FAILED, reason)
        raise
    assert told is not None  # tell_photos ends with PhotosTold unless it raised
    if told.discarded:
        _discard(library, run_id, RunStatus.STOPPED, told.discarded)
        yield RunDiscarded(run_id, target, RunStatus.STOPPED, told.discarded)
        return
    story = told.story
    run = library.finish_run(run_id, outcome_of(told.result, story))
    try:  # names that stay: the album's cast is offered to the new version
        offer_names(library, run.id)
    except LibraryError as err:
        logger.warning("the album's names were not offered to story %s: %s", run.id, err)
    yield RunEnded(run, story, told.result)


def tell_album(
    library: Library,
    album: AlbumRef,
    backend: StoryBackend,
    options: TellOptions,
    *,
    should_stop: ShouldStop = _never_stop,
    on_event: TellEventCallback | None = None,
    model: Mapping[str, Any] | None = None,
) -> RunEnded | RunDiscarded:
    """Run ``tell`` to its end, passing every event to ``on_event``; returns its last event:
    ``RunEnded``, or ``RunDiscarded`` for a run stopped before its first token.

    An exception raised by ``on_event`` (or Ctrl-C while it runs) ends the run the same way
    an error of the backend would, and is raised again.
    """
    events = tell(library, album, backend, options, should_stop=should_stop, model=model)
    last: RunEnded | RunDiscarded | None = None
    for event in events:
        if isinstance(event, (RunEnded, RunDiscarded)):
            last = event
        if on_event is not None:
            try:
                on_event(event)
            except BaseException as err:
                if last is not None:
                    raise
                events.throw(err)  # records the run as failed (stopped for Ctrl-C), re-raises
    if last is None:  # tell always ends with RunEnded or RunDiscarded unless it raised
        raise StorytellerError(f"{backend.description} ended without a result: try again")
    return last
