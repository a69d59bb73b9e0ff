"""The one base of every error Storyteller reports to its user.

Library code raises these; only ``desktop_app.cli`` and ``desktop_app.ui`` turn them into
messages. A message says what failed and what to do about it.
"""

from __future__ import annotations


class StorytellerError(Exception):
    """A problem the user can act on; ``str(err)`` is the message to show."""
