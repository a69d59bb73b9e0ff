"""``storyteller parse``: read a saved QwenStoryteller output and print it parsed and checked.

    storyteller parse FILE|- [--frames N] [--format json|text|md|html]

JSON (the default) is the public story contract documented in the README; text, Markdown and
HTML are the same renderings the app exports. Validation issues are part of the JSON; for the
other formats they are summarised on stderr so that the rendering on stdout stays clean.
"""

from __future__ import annotations

import argparse
import os
import sys

from desktop_app.app.exports import render_export
from desktop_app.errors import StorytellerError
from desktop_app.story.parser import parse_story
from desktop_app.story.validate import validate

FORMATS = ("json", "text", "md", "html")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``storyteller parse`` to the command line."""
    parser = subparsers.add_parser(
        "parse",
        help="parse a saved model output and print it as JSON, text, Markdown or HTML",
        description="Parse a QwenStoryteller output (the raw text with <think> analysis and "
        "<gdi> story), check it, and print the result. Issues are in the JSON; with another "
        "format they are listed on stderr.",
    )
    parser.add_argument("file", metavar="FILE", help="the output text file, or - for stdin")
    parser.add_argument(
        "--frames",
        type=_frame_count,
        metavar="N",
        help="number of photos in the album: enables the missing-frame/extra-frame checks",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="json", help="what to print (default: json)"
    )
    parser.set_defaults(func=run)


def _frame_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError("the number of frames must be between 1 and 1000")
    return value


def read_output(path: str) -> str:
    """The text of ``path`` (``-`` reads stdin); bytes that are not UTF-8 become U+FFFD."""
    if path == "-":
        return sys.stdin.buffer.read().decode("utf-8", errors="replace")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise StorytellerError(f"{path} does not exist: give the path of a saved output") from None
    except IsADirectoryError:
        raise StorytellerError(f"{path} is a folder: give the path of a saved output") from None
    except OSError as err:
        raise StorytellerError(
            f"{path} cannot be read ({err.strerror or err}): check its permissions"
        ) from None
    return data.decode("utf-8", errors="replace")


def run(args: argparse.Namespace) -> int:
    """Parse, validate and print; exit status 0 whatever the issues (they are reported)."""
    text = read_output(args.file)
    story = parse_story(text)
    issues = validate(story, frame_count=args.frames)
    title = "Story" if args.file == "-" else f"Story: {os.path.basename(args.file)}"
    kind = {"md": "markdown"}.get(args.format, args.format)
    _write_utf8(render_export(kind, story, issues, title=title))
    if args.format != "json":
        for issue in issues:
            where = ", ".join(
                part
                for part in (
                    f"line {issue.line}" if issue.line is not None else "",
                    f"image {issue.frame}" if issue.frame is not None else "",
                )
                if part
            )
            suffix = f" ({where})" if where else ""
            print(f"{issue.severity.value}: {issue.code}: {issue.message}{suffix}", file=sys.stderr)
    return 0


def _write_utf8(text: str) -> None:
    """Print as UTF-8 whatever the terminal's locale (names and stories are often not ASCII)."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        sys.stdout.write(text)
        return
    sys.stdout.flush()
    buffer.write(text.encode("utf-8"))
    buffer.flush()
