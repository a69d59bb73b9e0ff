"""``storyteller --self-test`` and ``storyteller doctor``: check this installation and say what works.

Both run ``desktop_app.selftest`` and print its report; the exit code is 0 when every check
passed and 1 otherwise. ``--self-test`` is a top-level flag so the bundled app (whose default is
the GUI) can be checked with ``Storyteller --self-test`` in CI and by users reporting a problem.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1

SELF_TEST_HELP = (
    "check that Qt, llama.cpp and photo loading work (offscreen when there is no display) and "
    "exit; add --model TEXT.gguf --mmproj MMPROJ.gguf to also tell a one-photo story"
)


def add_self_test_options(parser: argparse.ArgumentParser) -> None:
    """The options of the self-test: a model to try and where to save the Qt screenshot."""
    parser.add_argument("--model", type=Path, metavar="GGUF", help="text GGUF for the story check")
    parser.add_argument(
        "--mmproj", type=Path, metavar="GGUF", help="vision (mmproj) GGUF for the story check"
    )
    parser.add_argument(
        "--screenshot", type=Path, metavar="PNG", help="save the test widget's picture here"
    )


def _run(args: argparse.Namespace) -> int:
    from desktop_app.selftest import run_self_test  # Qt and llama.cpp load only when asked

    report = run_self_test(model=args.model, mmproj=args.mmproj, screenshot=args.screenshot)
    print(report.format(), flush=True)
    return EXIT_OK if report.ok else EXIT_FAILED


def run_self_test_command(argv: Sequence[str]) -> int:
    """Handle ``storyteller --self-test [--model GGUF --mmproj GGUF] [--screenshot PNG] [-v]``."""
    parser = argparse.ArgumentParser(prog="storyteller --self-test", description=SELF_TEST_HELP)
    parser.add_argument("--self-test", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    add_self_test_options(parser)
    args = parser.parse_args(list(argv))
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    return _run(args)


def register(subparsers: argparse._SubParsersAction) -> None:
    """``storyteller doctor``: the same checks as ``--self-test``, as a subcommand."""
    if "doctor" in subparsers.choices:
        return  # the engine's fuller doctor (desktop_app.cli.doctor_cmd) is registered
    parser = subparsers.add_parser(
        "doctor", help="check this installation", description=SELF_TEST_HELP
    )
    add_self_test_options(parser)
    parser.set_defaults(func=_run)


if __name__ == "__main__":
    sys.exit(run_self_test_command(sys.argv[1:]))
