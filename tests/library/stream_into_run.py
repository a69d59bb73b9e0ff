"""Run as a script by the crash test: tell an album's story slowly, until the test kills it.

usage: python stream_into_run.py LIBRARY_DB ALBUM STORY_FILE
"""

from __future__ import annotations

import sys
from pathlib import Path

from desktop_app.app.telling import TellOptions, tell_album
from desktop_app.engine.replay_backend import ReplayBackend
from desktop_app.library import Library


def main(argv: list[str]) -> int:
    db, album, story_file = argv
    library = Library.open(db)
    library.flush_interval_s = 0.05
    backend = ReplayBackend(Path(story_file).read_text(encoding="utf-8"), token_delay_s=0.02)
    tell_album(library, album, backend, TellOptions())
    library.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
