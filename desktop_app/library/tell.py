"""Telling an album's story into the library: the run is written as the model streams it."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from desktop_app.engine.events import (
    Event,
    ResultEvent,
    RunResult,
    ShouldStop,
    StoryBackend,
    StoryRequest,
    TokenEvent,
)
from desktop_app.errors import StorytellerError
from desktop_app.library.errors import LibraryError, PhotoMissingError
from desktop_app.library.records import RunSpec, StoryRun
from desktop_app.library.store import AlbumRef, Library

logger = logging.getLogger(__name__)

RequestFactory = Callable[[tuple[Path, ...]], StoryRequest]
EventCallback = Callable[[Event], None]
# Runs a request to its result, passing every event to the callback (e.g. the CLI's
# ``tell_cmd.run_story``, which adds progress bars); the default iterates ``generate`` itself.
Runner = Callable[[StoryBackend, StoryRequest, ShouldStop, EventCallback], RunResult]


def _never_stop() -> bool:
    return False


def request_parameters(request: StoryRequest) -> dict[str, Any]:
    """How a run was asked for, as stored with the run (photos are stored separately)."""
    return {
        "detail": request.detail.value,
        "token_budget": request.detail.token_budget,
        "sampling": request.sampling.to_dict(),
        "strict_format": request.strict_format,
        "instruction": request.instruction,
    }


def _file_identity(path: Path, manifest_entry: dict[str, Any] | None) -> dict[str, Any]:
    identity: dict[str, Any] = {"file": path.name, "size": None, "sha256": None}
    with contextlib.suppress(OSError):
        identity["size"] = path.stat().st_size
    if manifest_entry and manifest_entry.get("file") == path.name:
        identity["sha256"] = manifest_entry.get("sha256")
        if identity["size"] is None:
            identity["size"] = manifest_entry.get("size")
    return identity


def model_identity(text_path: Path, mmproj_path: Path | None = None) -> dict[str, Any]:
    """File names, sizes and (from a ``manifest.json`` beside them, when there) sha256.

    Never hashes the model files themselves: they are gigabytes.
    """
    manifest: dict[str, Any] = {}
    manifest_path = text_path.parent / "manifest.json"
    try:
        loaded = json.loads(manifest_path.read_text(encoding="utf-8"))
        if isinstance(loaded, dict):
            manifest = loaded
    except (OSError, ValueError):
        pass
    files = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
    identity: dict[str, Any] = {"text": _file_identity(text_path, files.get("text"))}
    if mmproj_path is not None:
        identity["mmproj"] = _file_identity(mmproj_path, files.get("mmproj"))
    if manifest.get("name"):
        identity["name"] = manifest["name"]
    return identity


def tell_album(
    library: Library,
    album: AlbumRef,
    backend: StoryBackend,
    request_factory: RequestFactory,
    *,
    should_stop: ShouldStop = _never_stop,
    on_event: EventCallback | None = None,
    on_started: Callable[[int], None] | None = None,
    model: dict[str, Any] | None = None,
    runner: Runner | None = None,
) -> StoryRun:
    """Tell the story of ``album``'s photos (in album order) and keep it as a new run.

    The output is written to the run while it streams (throttled by the library), so readers
    see it grow and a crash leaves an interruptible run. ``request_factory`` turns the photo
    paths into the request (detail, sampling...); ``on_event`` sees every backend event (for
    progress); ``on_started`` gets the new run id; ``runner`` replaces the plain loop over
    ``backend.generate`` (it must pass every event on). Returns the finished run: ``complete``, or
    ``stopped`` when ``should_stop`` ended it. A backend error is recorded as a ``failed`` run
    with its partial output and then raised; Ctrl-C records a ``stopped`` run and re-raises.
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
    request = request_factory(tuple(photo.path for photo in photos))
    spec = RunSpec(
        photo_ids=tuple(photo.id for photo in photos),
        parameters=request_parameters(request),
        backend=backend.description,
        model=model or {},
    )
    run_id = library.start_run(target, spec)
    result: RunResult | None = None

    def record(event: Event) -> None:
        nonlocal result
        if isinstance(event, TokenEvent):
            library.append_output(run_id, event.text)
        elif isinstance(event, ResultEvent):
            result = event.result
        if on_event is not None:
            on_event(event)

    try:
        if on_started is not None:  # inside the try: if it fails, the run is recorded failed
            on_started(run_id)
        if runner is None:
            for event in backend.generate(request, should_stop=should_stop):
                record(event)
        else:
            result = runner(backend, request, should_stop, record)
    except KeyboardInterrupt:
        library.stop_run(run_id)
        raise
    except StorytellerError as err:
        library.fail_run(run_id, str(err))
        raise
    except Exception as err:
        library.fail_run(run_id, f"{type(err).__name__}: {err}")
        raise
    if result is None:
        return library.fail_run(run_id, "the backend ended without a result: try again")
    return library.finish_run(run_id, result)
