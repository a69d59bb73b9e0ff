"""``storyteller --self-test``: check this installation and say what works.

It runs ``desktop_app.selftest`` and prints its report; the exit code is 0 when every check
passed and 1 otherwise. It is a top-level flag so the bundled app (whose default is the GUI) can
be checked with ``Storyteller --self-test`` in CI, by the first-run guide, and by users reporting
a problem. ``storyteller doctor`` (desktop_app.cli.doctor_cmd) is the fuller report on versions,
devices and installed models.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from desktop_app.cli.exit_codes import EXIT_FAILED, EXIT_OK

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
    # Qt and llama.cpp load only when asked.
    from desktop_app.selftest import run_self_test
    from desktop_app.ui.selftest_qt import check_qt

    report = run_self_test(
        model=args.model, mmproj=args.mmproj, screenshot=args.screenshot, qt_check=check_qt
    )
    print(report.format(), flush=True)
    return EXIT_OK if report.ok else EXIT_FAILED


def wants_self_test(argv: Sequence[str]) -> bool:
    """True for ``storyteller [-v] --self-test ...``; a subcommand's own ``--self-test`` (as in
    ``storyteller doctor --self-test``) belongs to that subcommand."""
    if "--self-test" not in argv:
        return False
    return all(arg.startswith("-") for arg in argv[: list(argv).index("--self-test")])


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


if __name__ == "__main__":
    sys.exit(run_self_test_command(sys.argv[1:]))
