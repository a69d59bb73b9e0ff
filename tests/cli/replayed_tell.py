"""Run as a script by the CLI's signal and full-disk tests: ``storyteller ARGS...`` with the
story replayed (no model), one token every ``TOKEN_DELAY_S`` seconds.

usage: python replayed_tell.py ARGS...   (e.g. ``tell a.png --out x.txt`` or ``album ... tell A``)

"replayed: first token" is printed on stderr at the first token, so a test knows when to send its signal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

from library_helpers import STORY_TEXT

from desktop_app.cli import console_main
from desktop_app.cli import options as cli_options
from desktop_app.engine.api import Event, ShouldStop, StoryRequest, TokenEvent
from desktop_app.engine.replay_backend import ReplayBackend


class AnnouncedReplay(ReplayBackend):
    def generate(self, request: StoryRequest, *, should_stop: ShouldStop) -> Iterator[Event]:
        announced = False
        for event in super().generate(request, should_stop=should_stop):
            if isinstance(event, TokenEvent) and not announced:
                announced = True
                print("replayed: first token", file=sys.stderr, flush=True)
            yield event


if __name__ == "__main__":
    delay = float(os.environ.get("TOKEN_DELAY_S", "0.02"))
    cli_options.backend_from_args = lambda args: AnnouncedReplay(STORY_TEXT, token_delay_s=delay)
    sys.argv = ["storyteller", *sys.argv[1:]]
    console_main()
