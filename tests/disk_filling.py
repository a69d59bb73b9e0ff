"""A replayed story that fills its disk after the first token: a disk that fills up mid-story,
for the full-disk tests of the CLI and the GUI."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from desktop_app.engine.api import Event, ShouldStop, StoryRequest, TokenEvent
from desktop_app.engine.replay_backend import ReplayBackend


class FillsTheDiskAfterItsFirstToken(ReplayBackend):
    """Replays ``output``; once its first token is out, ``disk.fill()`` (the ``small_disk``
    fixture) takes every free byte."""

    def __init__(self, output: str, disk: Any, **replay: Any) -> None:
        super().__init__(output, **replay)
        self.disk = disk

    def generate(self, request: StoryRequest, *, should_stop: ShouldStop) -> Iterator[Event]:
        filled = False
        for event in super().generate(request, should_stop=should_stop):
            yield event
            if isinstance(event, TokenEvent) and not filled:
                filled = True
                self.disk.fill()
