"""``storyteller tell PHOTO...``: a grounded story from photos, without the GUI.

Progress goes to stderr (one bar per phase), the story to stdout or ``--out`` (written
atomically). Ctrl-C stops between tokens (or during prompt reading) and keeps the partial story;
a second Ctrl-C aborts at once. A run stopped or failed before the model wrote anything prints
why and no story (the zero-token rule of ``app.telling``). Exit codes: 0 done, 1 failed, 130
interrupted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from desktop_app.app.estimates import plan_request
from desktop_app.cli import options as shared
from desktop_app.cli.exit_codes import EXIT_INTERRUPTED, EXIT_OK


def _tell(args: argparse.Namespace) -> int:
    from desktop_app.fileio import atomic_write_text

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
        atomic_write_text(args.out, output)
        shared.say(f"story written to {args.out}")
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
