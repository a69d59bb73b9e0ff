"""``storyteller album ...``: albums, photos and stories in the library, for scripts and tests.

Every command opens the library (``--library DIR``, else the ``library_dir`` setting, else the
user data folder; ``STORYTELLER_HOME`` moves the latter), first marking runs whose process died
as interrupted. ``list`` and ``stories`` take ``--json`` for machine-readable output.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desktop_app.app.sharing import SHARE_NAMES, size_text
from desktop_app.cli.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from desktop_app.cli.options import (
    FORMATS,
    JSON_FORMAT,
    StopOnCtrlC,
    add_parallel_option,
    add_tell_options,
)
from desktop_app.errors import StorytellerError
from desktop_app.library import Album, ImportReport, Library, Photo, RunStatus, StoryRun

if TYPE_CHECKING:
    from desktop_app.app.album_cast import CastEntry

Handler = Callable[[argparse.Namespace, Library], int]


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _print_json(data: Mapping[str, Any]) -> None:
    """``data`` as JSON on stdout, under ``"format": 2`` (runs' parameters in the one shape)."""
    print(json.dumps({"format": JSON_FORMAT, **data}, ensure_ascii=False, indent=2))


def _library_location(args: argparse.Namespace) -> Path | None:
    if args.library is not None:
        return Path(args.library)
    from desktop_app.app.settings import load_settings

    return load_settings().library_dir


def _open_library(args: argparse.Namespace) -> Library:
    library = Library.open(_library_location(args))
    for run_id in library.recover_interrupted():
        run = library.run(run_id)
        album = library.album(run.album_id)
        _err(
            f"note: story {run_id} of album {album.name!r} was interrupted; its partial output "
            "is kept"
        )
    return library


def _photo_json(position: int, photo: Photo) -> dict[str, Any]:
    return {"position": position, **photo.to_dict()}


def _positions_to_ids(photos: Sequence[Photo], positions: Sequence[int]) -> list[int]:
    count = len(photos)
    bad = [p for p in positions if not 1 <= p <= count]
    if bad:
        raise StorytellerError(
            f"no photo at position {bad[0]}: the album has {count} photos (1 to {count})"
        )
    return [photos[p - 1].id for p in positions]


def _parse_positions(values: Sequence[str]) -> list[int]:
    positions: list[int] = []
    for value in values:
        for part in value.replace(",", " ").split():
            try:
                positions.append(int(part))
            except ValueError:
                raise StorytellerError(
                    f"{part!r} is not a photo position: use numbers as `album list` shows them"
                ) from None
    return positions


# -- handlers --------------------------------------------------------------------------------


def _new(args: argparse.Namespace, library: Library) -> int:
    album = library.create_album(args.name, notes=args.notes or "")
    print(f"created album {album.name!r}")
    return EXIT_OK


def _report_import(report: ImportReport, album: Album) -> None:
    print(f"added {len(report.added)} photo(s) to {album.name!r} ({album.photo_count} in all)")
    for duplicate in report.duplicates:
        _err(
            f"skipped {duplicate.path}: same content as {duplicate.existing.path}, "
            "already in the album"
        )
    for failed in report.failed:
        _err(f"failed: {failed.message}")
    if report.skipped:
        _err(f"ignored {len(report.skipped)} file(s) that are not images")


def _add(args: argparse.Namespace, library: Library) -> int:
    library.album(args.name)  # an unknown album is reported before any file is read
    # Ctrl-C stops after the file being read; the photos read so far are still added.
    with StopOnCtrlC() as interrupt:
        report = library.add_photos(args.name, args.paths, should_stop=interrupt)
    _report_import(report, library.album(args.name))
    if report.stopped:
        _err(
            f"stopped by Ctrl-C: kept the {len(report.added)} photo(s) added before the stop; "
            "run the same command again to add the rest (photos already in the album are "
            "skipped)"
        )
        return EXIT_INTERRUPTED
    return EXIT_FAILED if report.failed else EXIT_OK


def _list(args: argparse.Namespace, library: Library) -> int:
    if args.name is None:
        albums = library.albums()
        if args.json:
            _print_json({"albums": [album.to_dict() for album in albums]})
        elif not albums:
            print("no albums yet: create one with `storyteller album new NAME`")
        else:
            width = max(len(album.name) for album in albums)
            for album in albums:
                print(
                    f"{album.name:<{width}}  {album.photo_count:>4} photo(s)  "
                    f"{album.run_count:>3} story(ies)  created {album.created}"
                )
        return EXIT_OK
    album = library.album(args.name)
    photos = library.photos(album)
    if args.json:
        _print_json(
            {
                "album": album.to_dict(),
                "photos": [_photo_json(i, photo) for i, photo in enumerate(photos, 1)],
            }
        )
        return EXIT_OK
    print(f"{album.name} ({len(photos)} photos)")
    for position, photo in enumerate(photos, 1):
        date = photo.captured_at or "-"
        flag = "  MISSING" if photo.missing else ""
        print(f"{position:>4}  {date:<25}  {size_text(photo.size):>8}  {photo.path}{flag}")
    missing = sum(photo.missing for photo in photos)
    if missing:
        _err(
            f"{missing} photo(s) are missing: `storyteller album relink {album.name!r} FOLDER` "
            "finds them by content"
        )
    return EXIT_OK


def _order(args: argparse.Namespace, library: Library) -> int:
    photos = library.photos(args.name)
    positions = _parse_positions(args.positions)
    if sorted(positions) != list(range(1, len(photos) + 1)):
        raise StorytellerError(
            f"name every position from 1 to {len(photos)} exactly once, in the new order "
            "(e.g. 3,1,2)"
        )
    library.reorder(args.name, _positions_to_ids(photos, positions))
    print(f"reordered {len(photos)} photo(s)")
    return EXIT_OK


def _remove(args: argparse.Namespace, library: Library) -> int:
    photos = library.photos(args.name)
    ids = _positions_to_ids(photos, _parse_positions(args.positions))
    removed = library.remove_photos(args.name, ids)
    print(f"removed {removed} photo(s) from the album (the files are untouched)")
    return EXIT_OK


def _sort(args: argparse.Namespace, library: Library) -> int:
    photos = library.sort_by_capture_date(args.name)
    print(f"sorted {len(photos)} photo(s) by capture date")
    return EXIT_OK


def _rename(args: argparse.Namespace, library: Library) -> int:
    album = library.rename_album(args.name, args.new_name)
    print(f"renamed to {album.name!r}")
    return EXIT_OK


def _delete(args: argparse.Namespace, library: Library) -> int:
    album = library.album(args.name)
    library.delete_album(album)
    print(
        f"deleted album {album.name!r} and its {album.run_count} story(ies); "
        "the photo files are untouched"
    )
    return EXIT_OK


def _relink(args: argparse.Namespace, library: Library) -> int:
    report = library.relink(args.name, args.folder)
    for item in report.relinked:
        print(f"found {item.old_path.name} at {item.new_path}")
    for skipped in report.unreadable:
        _err(f"skipped: {skipped.message}")
    for photo in report.still_missing:
        _err(f"still missing: {photo.path}")
    print(f"relinked {len(report.relinked)} photo(s); {len(report.still_missing)} still missing")
    return EXIT_FAILED if report.still_missing else EXIT_OK


def _story_line(run: StoryRun) -> str:
    rate = run.timings.get("tokens_per_s") or 0.0
    tokens = run.timings.get("generated_tokens") or 0
    line = (
        f"{run.id:>5}  {run.status.value:<11}  {run.created}  {len(run.raw_output):>6} chars  "
        f"{tokens:>5} tokens  {rate:6.1f} tok/s  {run.backend}"
    )
    return f"{line}  ({run.error})" if run.error else line


def _stories(args: argparse.Namespace, library: Library) -> int:
    album = library.album(args.name)
    runs = library.runs(album)
    if args.json:
        _print_json({"album": album.to_dict(), "stories": [run.summary_dict() for run in runs]})
    elif not runs:
        print(f"album {album.name!r} has no stories yet: `storyteller album tell {album.name!r}`")
    else:
        for run in runs:
            print(_story_line(run))
    return EXIT_OK


def _chosen_story(library: Library, album: Album, story: int | None) -> StoryRun:
    """The album's story ``story`` (refused if it is another album's), or its latest."""
    if story is not None:
        run = library.run(story)
        if run.album_id != album.id:
            raise StorytellerError(f"story {story} is not one of album {album.name!r}'s")
        return run
    runs = library.runs(album)
    if not runs:
        raise StorytellerError(f"album {album.name!r} has no stories yet: tell one first")
    return runs[-1]


def _story(args: argparse.Namespace, library: Library) -> int:
    album = library.album(args.name)
    run = _chosen_story(library, album, args.story)
    if args.raw:
        sys.stdout.write(run.raw_output)
        return EXIT_OK
    if args.json:
        _print_json({**run.summary_dict(), "story": run.story})
        return EXIT_OK
    from desktop_app.app.exports import write_export
    from desktop_app.app.stored_story import StoredStory

    stored = StoredStory.of_run(run, library.display_names(run.id))
    print(write_export("text", stored.display()))
    return EXIT_OK


def _cast(args: argparse.Namespace, library: Library) -> int:
    library.set_display_name(args.story, args.entity, args.display_name)
    names = library.display_names(args.story)
    shown = names.get(args.entity)
    print(f"{args.entity} is now shown as {shown!r}" if shown else f"{args.entity} keeps its name")
    return EXIT_OK


def _names_line(entry: CastEntry) -> str:
    if entry.origin == "matched":
        where = f"from story {entry.from_run}" if entry.from_run else "from an imported album"
        return f"{entry.entity_id:<8} {entry.name}  ({where}, mean IoU {entry.mean_iou:.2f})"
    if entry.origin == "undone":
        return f"{entry.entity_id:<8} (not {entry.name}: match undone)"
    return f"{entry.entity_id:<8} {entry.name}  (named here)"


def _names(args: argparse.Namespace, library: Library) -> int:
    from desktop_app.app.album_cast import cast_entries, offer_names, undo_match

    album = library.album(args.name)
    run = _chosen_story(library, album, args.story)
    if args.undo:
        undo_match(library, run.id, args.undo)
        print(f"{args.undo} of story {run.id} no longer takes a name from the album's cast")
    else:
        offer_names(library, run.id)
    entries = cast_entries(library, run.id)
    if args.json:
        _print_json(
            {
                "album": album.name,
                "story": run.id,
                "cast": [dict(vars(entry)) for entry in entries],
                "members": [
                    {"id": m.id, "name": m.name, "kind": m.kind, "named_in": m.run_id}
                    for m in library.cast(album)
                ],
            }
        )
    elif not entries:
        print(f"no one in story {run.id} has a name of yours yet: `storyteller album cast`")
    else:
        print(f"names in story {run.id} of {album.name!r}:")
        for entry in entries:
            print("  " + _names_line(entry))
    return EXIT_OK


def _export(args: argparse.Namespace, library: Library) -> int:
    from desktop_app.app.exports import export_album

    target = export_album(
        library,
        args.name,
        args.dest,
        run_id=args.story,
        warn=lambda text: _err(f"warning: {text}"),
        keep_location=args.keep_location,
    )
    print(f"exported to {target}")
    return EXIT_OK


def _share(args: argparse.Namespace, library: Library) -> int:
    from desktop_app.app import sharing
    from desktop_app.app.captions import SidecarNaming

    naming = SidecarNaming(args.sidecar_name)
    if args.beside_originals:
        if args.kind != "sidecars" or args.dest is not None:
            raise StorytellerError(
                "--beside-originals writes sidecars next to the photos: use it with "
                "--as sidecars and no DEST"
            )
        report = sharing.share_beside_originals(
            library, args.name, run_id=args.story, naming=naming
        )
        print(f"wrote {len(report.written)} sidecars beside the original photos")
        return EXIT_OK
    if args.dest is None:
        where = "a folder" if args.kind in ("sidecars", "captioned-copies") else "a file"
        hint = " (or --beside-originals)" if args.kind == "sidecars" else ""
        raise StorytellerError(f"give DEST, {where} to write{hint}")
    if args.kind not in sharing.SHARE_FORMATS:
        from desktop_app.ui import exporting  # noqa: F401  (adds the formats Qt writes: PDF)
    shared = sharing.share_story(
        library,
        args.name,
        args.dest,
        args.kind,
        run_id=args.story,
        keep_location=args.keep_location,
        sidecar_naming=naming,
    )
    print(f"shared story {shared.run_id} as {args.kind}: {shared.path} ({size_text(shared.size)})")
    return EXIT_OK


def _import(args: argparse.Namespace, library: Library) -> int:
    from desktop_app.app.exports import import_bundle

    imported = import_bundle(library, args.bundle, name=args.name)
    print(
        f"imported album {imported.album.name!r} ({imported.album.photo_count} photos, "
        f"copied to {imported.photos_folder})"
    )
    return EXIT_OK


def _tell(args: argparse.Namespace, library: Library) -> int:
    names = [album.name for album in library.albums()] if args.all else args.names
    if args.all and args.names:
        raise StorytellerError("give album names or --all, not both")
    if not names:
        raise StorytellerError(
            "name the album(s) to tell, or --all"
            if args.all is False
            else "the library has no albums yet: create one with `storyteller album new NAME`"
        )
    if len(names) == 1 and not args.all:
        args.name = names[0]
        return _tell_one(args, library)
    return _tell_many(args, library, names)


def _tell_many(args: argparse.Namespace, library: Library, names: Sequence[str]) -> int:
    """Tell each album's story, ``--parallel`` at a time on a server, one line per album.

    Worker threads run ``tell_album`` against a ``OneWriter``: every library call they make
    runs on this thread, one at a time, so the library has one writer however many stories
    are in flight. Ctrl-C stops the stories in flight (each kept as *stopped* with its text,
    by the zero-token rule) and starts no other.
    """
    import threading
    from concurrent.futures import Future

    from desktop_app.app.one_writer import OneWriter
    from desktop_app.app.telling import RunDiscarded, tell_album
    from desktop_app.cli import options as shared

    options = shared.options_from_args(args)
    for name in names:
        library.album(name)  # an unknown album is reported before any model loads
    parallel = shared.parallel_from_args(args)
    backend = shared.backend_from_args(args)
    writer = OneWriter(library)
    told: dict[str, Future[Any]] = {name: Future() for name in names}
    waiting = list(names)
    lock = threading.Lock()

    def work(interrupt: Callable[[], bool]) -> None:
        while not interrupt():
            with lock:
                if not waiting:
                    return
                name = waiting.pop(0)
            future = told[name]
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(
                    tell_album(writer, name, backend, options, should_stop=interrupt)  # type: ignore[arg-type]
                )
            except BaseException as err:
                future.set_exception(err)

    try:
        with shared.StopOnCtrlC() as interrupt:
            workers = [
                threading.Thread(target=work, args=(interrupt,), daemon=True)
                for _ in range(min(parallel, len(names)))
            ]
            for worker in workers:
                worker.start()

            def stop_the_rest() -> None:
                if interrupt():
                    for future in told.values():
                        future.cancel()  # only those not started

            writer.serve(list(told.values()), on_idle=stop_the_rest)
    finally:
        backend.close()
    stopped = failed = False
    for name, future in told.items():
        if future.cancelled():
            _err(f"album {name!r}: not told (stopped)")
            stopped = True
            continue
        error = future.exception()
        if error is not None:
            _err(f"album {name!r}: failed: {error}")
            failed = True
            continue
        ended = future.result()
        if isinstance(ended, RunDiscarded):
            _err(f"album {name!r}: story {ended.run_id} {ended.reason}: it is not kept")
            stopped = True
            continue
        run = ended.run
        tokens = run.timings.get("generated_tokens") or 0
        print(
            f"album {name!r}: story {run.id} saved ({run.status.value}, "
            f"{len(run.raw_output)} chars, {tokens} tokens)"
        )
        stopped = stopped or run.status is RunStatus.STOPPED
    return EXIT_INTERRUPTED if stopped else EXIT_FAILED if failed else EXIT_OK


def _tell_one(args: argparse.Namespace, library: Library) -> int:
    from desktop_app.app.estimates import plan_request
    from desktop_app.app.telling import (
        RunDiscarded,
        RunStarted,
        low_space_before_run,
        tell_album,
    )
    from desktop_app.cli import options as shared
    from desktop_app.library import RunNotStoredError

    show_progress = not args.quiet
    options = shared.options_from_args(args)
    library.album(args.name)  # an unknown album is reported before any model loads
    settings = shared.settings_from_args(args)
    backend = shared.backend_from_args(args)
    progress = shared.Progress(show_progress, options.sampling.max_tokens)

    def relay(event: object) -> None:
        if isinstance(event, RunStarted) and show_progress:
            shared.say(f"writing story {event.run_id} of album {args.name!r}")
            # The backend has not started yet: asking what it has cached is safe.
            plan = plan_request(event.request, settings, backend)
            progress.set_plan(plan)
            shared.announce(plan)
        elif isinstance(event, RunDiscarded):
            progress.close()
            # A failed run's error follows (main prints it): say only what became of the run.
            why = (
                event.reason
                if event.status is RunStatus.STOPPED
                else "failed before the model wrote anything"
            )
            shared.say(f"story {event.run_id} {why}: it is not kept")
        progress.event(event)

    warning = low_space_before_run(library.root, options)
    if warning and show_progress:
        shared.say(f"warning: {warning}")
    try:
        with shared.StopOnCtrlC() as interrupt:  # Ctrl-C stops and keeps the partial story
            ended = tell_album(
                library, args.name, backend, options, should_stop=interrupt, on_event=relay
            )
    except RunNotStoredError as err:
        # The library's disk filled up: the story is in a file the next start brings back in,
        # or (no disk could take it) on stdout.
        if err.saved_to is None:
            shared.write_stdout(err.raw_output)
        shared.say(str(err))
        return EXIT_FAILED
    finally:
        progress.close()
        backend.close()
    if isinstance(ended, RunDiscarded):
        return EXIT_INTERRUPTED  # a failed run raised its error instead
    run = ended.run
    details = shared.run_json(ended.result, run.asked.to_dict())
    # Names the album's cast gave the new story (app.album_cast.offer_names) show at once.
    story = ended.story.with_names(library.display_names(run.id))
    shared.write_stdout(shared.render_output(story, args.format, details))
    if show_progress:
        _err(f"storyteller: story {run.id} saved ({run.status.value}, {len(run.raw_output)} chars)")
    return EXIT_INTERRUPTED if run.status is RunStatus.STOPPED else EXIT_OK


# -- parser ----------------------------------------------------------------------------------


def _with_library(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        library = _open_library(args)
        try:
            return handler(args, library)
        finally:
            library.close()

    return run


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``storyteller album`` and its subcommands."""
    album = subparsers.add_parser(
        "album",
        help="albums, photos and stories in the library",
        description="Manage the album library: photos are only ever read, never changed.",
    )
    album.add_argument(
        "--library",
        type=Path,
        metavar="DIR",
        help="library folder (default: the library_dir setting, else the user data folder)",
    )
    commands = album.add_subparsers(dest="album_command", metavar="ACTION", required=True)

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text, description=help_text)
        parser.set_defaults(func=_with_library(handler))
        return parser

    p = add("new", _new, "create an empty album")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--notes", help="a note kept with the album")

    p = add("add", _add, "add photos and folders (recursively; only images) to an album")
    p.add_argument("name", metavar="NAME")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH")

    p = add("list", _list, "list albums, or one album's photos in order")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = add("order", _order, "reorder an album: new order as current positions, e.g. 3,1,2")
    p.add_argument("name", metavar="NAME")
    p.add_argument("positions", nargs="+", metavar="POSITIONS")

    p = add("remove", _remove, "remove photos (by position) from an album, never from disk")
    p.add_argument("name", metavar="NAME")
    p.add_argument("positions", nargs="+", metavar="POSITION")

    p = add("sort", _sort, "order an album by capture date (EXIF), else file time")
    p.add_argument("name", metavar="NAME")

    p = add("rename", _rename, "rename an album")
    p.add_argument("name", metavar="NAME")
    p.add_argument("new_name", metavar="NEW_NAME")

    p = add("delete", _delete, "delete an album and its stories (photo files are untouched)")
    p.add_argument("name", metavar="NAME")

    p = add("relink", _relink, "find an album's moved photos in FOLDER by content")
    p.add_argument("name", metavar="NAME")
    p.add_argument("folder", type=Path, metavar="FOLDER")

    p = add("tell", _tell, "tell the album's story (photos in album order) and keep it")
    p.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="the album; with several (or --all) one line per album is printed",
    )
    p.add_argument("--all", action="store_true", help="tell every album of the library")
    add_tell_options(p)
    add_parallel_option(p)
    p.add_argument("--format", choices=FORMATS, default="text", help="what to print (default text)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")

    p = add("stories", _stories, "list an album's stories")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = add("story", _story, "print a story of the album (default: the latest)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--story", type=int, metavar="ID", help="story id (see `album stories`)")
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--raw", action="store_true", help="the model's raw output")
    shape.add_argument("--json", action="store_true", help="the story JSON and its run")

    p = add("cast", _cast, "show a character or object under your own name in one story")
    p.add_argument("story", type=int, metavar="STORY_ID")
    p.add_argument("entity", metavar="ENTITY_ID", help="e.g. char1, obj2")
    p.add_argument("display_name", metavar="NAME", help='the name to show ("" restores it)')

    p = add(
        "names",
        _names,
        "list the names in a story and where each came from (the album's cast); undo a match",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--story", type=int, metavar="ID", help="story id (default: the latest)")
    p.add_argument(
        "--undo", metavar="ENTITY_ID", help="take back a name the album's cast gave, e.g. char2"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = add("export", _export, "export an album with a story: folder, or a .zip")
    p.add_argument("name", metavar="NAME")
    p.add_argument("dest", type=Path, metavar="DEST")
    p.add_argument("--story", type=int, metavar="ID", help="story id (default: latest complete)")
    p.add_argument(
        "--keep-location",
        action="store_true",
        help="keep the photos' GPS and place metadata (left out by default)",
    )

    p = add(
        "share",
        _share,
        "share a story with other people (a slideshow, a page, a PDF) or with photo managers "
        "(XMP sidecars, captioned copies)",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "dest",
        type=Path,
        nargs="?",
        metavar="DEST",
        help="the file to write; a new folder for sidecars and captioned-copies",
    )
    p.add_argument(
        "--as",
        dest="kind",
        choices=SHARE_NAMES,
        required=True,
        help="what to write: " + ", ".join(SHARE_NAMES),
    )
    p.add_argument("--story", type=int, metavar="ID", help="story id (default: latest complete)")
    p.add_argument(
        "--beside-originals",
        action="store_true",
        help="sidecars: write them next to the original photos (an existing one is merged into)",
    )
    p.add_argument(
        "--sidecar-name",
        choices=("photo.jpg.xmp", "photo.xmp"),
        default="photo.jpg.xmp",
        help="how sidecars are named (default photo.jpg.xmp)",
    )
    p.add_argument(
        "--keep-location",
        action="store_true",
        help="copies of photos keep their GPS and place metadata (left out by default)",
    )

    p = add("import", _import, "import an exported album (folder or .zip) into the library")
    p.add_argument("bundle", type=Path, metavar="BUNDLE")
    p.add_argument("--name", help="name of the new album (default: the exported one)")
