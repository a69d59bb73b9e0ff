"""``storyteller tell PHOTO...``: a grounded story from photos, without the GUI.

Progress goes to stderr (one bar per phase), the story to stdout or ``--out`` (written
atomically). A finished story is never lost to its ``--out``: if that cannot be written (a full
disk), it goes to a file in the user data folder, else the temporary folder, else stdout; stderr
says where and why, and the exit code is 1. Ctrl-C (or SIGTERM) stops between tokens (or during
prompt reading) and keeps the partial story; a second one aborts at once. A run stopped or failed before the model wrote anything prints
why and no story (the zero-token rule of ``app.telling``). Exit codes: 0 done, 1 failed, 130
interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
from pathlib import Path

from desktop_app import paths
from desktop_app.app.estimates import plan_request
from desktop_app.app.telling import low_space_before_run
from desktop_app.cli import options as shared
from desktop_app.cli.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from desktop_app.errors import disk_full_error, is_disk_full
from desktop_app.fileio import write_text_somewhere


def embedded_photo_bytes(args: argparse.Namespace) -> int:
    """About what the photos add to the story file: an HTML page embeds them (base64)."""
    if args.format != "html":
        return 0
    size = 0
    for photo in args.photos:
        with contextlib.suppress(OSError):
            size += Path(photo).stat().st_size * 4 // 3
    return size


def save_story(out: Path, output: str) -> bool:
    """Write the story to ``out``; if it cannot be, to a file in the user data folder, then the
    temporary folder, then stdout. Says where on stderr; False when ``out`` did not get it."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"story-{stamp}{out.suffix or '.txt'}"
    fallbacks = [folder / name for folder in paths.unsaved_stories_dirs()]
    saved_to, errors = write_text_somewhere(output, [out, *fallbacks])
    if saved_to == out:
        shared.say(f"story written to {out}")
        return True
    first = errors[0]
    if is_disk_full(first, out.parent):
        why = str(
            disk_full_error(
                out.parent,
                needed=len(output.encode("utf-8")),
                what=f"the story file {out.name}",
                kept="the story is not lost",
                then="move the story there",
            )
        )
    else:
        reason = first.strerror or first
        why = f"the story cannot be written to {out} ({reason}): the story is not lost"
    if saved_to is not None:
        shared.say(f"{why}: it was written to {saved_to} instead")
    else:
        shared.say(f"{why}: no other folder could take it either, so it follows on stdout")
        shared.write_stdout(output)
    return False


def _tell(args: argparse.Namespace) -> int:
    options = shared.options_from_args(args)
    settings = shared.settings_from_args(args)
    show_progress = not args.quiet
    backend = shared.backend_from_args(args)
    try:
        plan = None
        if show_progress:
            # Before the run: the backend's caches are its own once it runs.
            plan = plan_request(options.request(args.photos), settings, backend)
            shared.announce(plan)
        if args.out is not None:
            warning = low_space_before_run(args.out.parent, options, embedded_photo_bytes(args))
            if warning:
                shared.say(f"warning: {warning}")
        progress = shared.Progress(show_progress, options.sampling.max_tokens, plan)
        with shared.StopOnCtrlC() as interrupt:
            told = shared.tell_to_end(
                backend, options, args.photos, progress=progress, should_stop=interrupt
            )
    finally:
        backend.close()
    if told.discarded:
        shared.say(f"{told.discarded}: no story")
        return EXIT_INTERRUPTED
    result = told.result
    output = shared.render_output(
        told.story, args.format, shared.run_json(result, options.parameters())
    )
    if args.out is not None:
        if not save_story(args.out, output):
            return EXIT_FAILED
    else:
        shared.write_stdout(output)
    timings = result.timings
    if show_progress:
        shared.say(
            f"{result.finish_reason.value}; {told.tokens} tokens at "
            f"{timings.tokens_per_s:.1f}/s, first after {timings.first_token_s:.1f} s "
            f"({result.backend})"
        )
    return EXIT_INTERRUPTED if result.cancelled else EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``storyteller tell``."""
    parser = subparsers.add_parser(
        "tell",
        help="tell the story of some photos (headless)",
        description="Tell a grounded story of PHOTOs, in the order given.",
    )
    parser.add_argument("photos", nargs="+", type=Path, metavar="PHOTO")
    parser.add_argument("--format", choices=shared.FORMATS, default="text", help="default text")
    parser.add_argument("--out", type=Path, metavar="FILE", help="write here instead of stdout")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    shared.add_tell_options(parser)
    parser.set_defaults(func=_tell)
