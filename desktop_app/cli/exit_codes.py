"""The exit status of every ``storyteller`` command."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # the message on stderr says what failed and what to do
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it); a partial story is kept
