"""Run as a script by the Ctrl-C test: ``storyteller album add`` with every file read slowly.

usage: python slow_album_add.py LIBRARY_DIR ALBUM PATH...

Each file read is announced on stderr ("reading NAME") so the test knows when to press Ctrl-C.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from desktop_app.cli import main
from desktop_app.library import photos
from desktop_app.library.photofiles import PhotoFacts

_read_photo_facts = photos.read_photo_facts


def _slow_read(path: Path) -> PhotoFacts:
    print(f"reading {path.name}", file=sys.stderr, flush=True)
    time.sleep(0.05)
    return _read_photo_facts(path)


if __name__ == "__main__":
    library_dir, album, *paths = sys.argv[1:]
    photos.read_photo_facts = _slow_read
    sys.exit(main(["album", "--library", library_dir, "add", album, *paths]))
