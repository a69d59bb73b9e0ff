"""The ``storyteller`` command: the GUI by default, headless subcommands for scripting.

Each subcommand lives in its own module of this package and exposes
``register(subparsers) -> None``; the parser it adds sets ``func`` to a callable taking the parsed
``argparse.Namespace`` and returning an exit code. Only this package and ``desktop_app.ui`` talk to
the user: library code raises ``StorytellerError`` and this shell turns it into a message.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from desktop_app import __version__
from desktop_app.cli import selftest_cmd
from desktop_app.cli.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from desktop_app.errors import StorytellerError

# Subcommand modules, in the order `storyteller --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "desktop_app.cli.tell_cmd",
    "desktop_app.cli.album_cmd",
    "desktop_app.cli.doctor_cmd",
    "desktop_app.cli.parse_cmd",
    "desktop_app.cli.eval_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="storyteller",
        description="Turn a photo album into a grounded story, offline. "
        "Without a subcommand, the desktop app starts.",
    )
    parser.add_argument("--version", action="version", version=f"storyteller {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    parser.add_argument("--self-test", action="store_true", help=selftest_cmd.SELF_TEST_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _run_gui(argv: Sequence[str]) -> int:
    from desktop_app.ui.startup import run_app  # Qt is imported only when the GUI is wanted

    return run_app(list(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``storyteller`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if selftest_cmd.wants_self_test(args_list):  # before parsing: its --model is no subcommand
        return selftest_cmd.run_self_test_command(args_list)
    parser = build_parser()
    args, unknown = parser.parse_known_args(args_list)
    _configure_logging(args.verbose)
    if args.command is None:
        return _run_gui(unknown)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    from desktop_app.cli.options import terminate_as_interrupt

    try:
        with terminate_as_interrupt():  # SIGTERM ends a command as Ctrl-C (the GUI: its own)
            return int(args.func(args))
    except StorytellerError as err:
        print(f"storyteller: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("storyteller: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


def console_main() -> NoReturn:
    """The ``storyteller`` program: ``main``, then the process ends."""
    code = main()
    from desktop_app.engine.photo_encoder import still_encoding

    if still_encoding():
        # A run stopped while a photo was in the vision encoder, which llama.cpp cannot
        # interrupt: shutting down normally would tear llama.cpp's libraries down under it
        # (a segmentation fault). Everything is written by now, so end here.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    console_main()
