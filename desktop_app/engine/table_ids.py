"""Unique ids within a table: strict format's rule that a grammar cannot hold.

A context-free grammar would have to track every subset of ids a table already used, so the
engine enforces uniqueness instead (``engine/grammar.py``'s docstring says why): ``TableIds``
follows the analysis as it streams and names the continuations that would repeat an id, and
the sampler's guard (``llama_sampling.IdTokens``) removes those tokens before each draw.
"""

from __future__ import annotations

import re

from desktop_app.engine import grammar
from desktop_app.story.ids import EntityKind

# A row from its start: "| ", a kind prefix, digits, and whatever follows (which, when there is
# anything, finishes the id).
_ID_CELL = re.compile(r"\| ?([a-z]{0,4})([0-9]*)(.*)", re.DOTALL)
_ID_TABLES = frozenset({"### Characters", "### Objects"})
_KIND_PREFIXES = frozenset(kind.value for kind in EntityKind)


class TableIds:
    """Follows an analysis as it is written and says which continuations would repeat an id.

    ``feed`` the text as it streams. While ``active`` (a Characters or Objects row of a table
    that already has ids is at its id cell), ``forbids(piece)`` is True when writing ``piece``
    next would finish an id the table already has, or leave an id prefix none of whose
    completions (within ``grammar.ID_DIGITS`` digits) is unused; ``id_is_taken()`` is True
    when the digits so far spell a used id, so any piece that does not go on with a digit
    finishes it.
    Together they never forbid every way on: an unused id always stays reachable.
    """

    def __init__(self) -> None:
        self._line = ""
        self._table = False  # inside a Characters or Objects table
        self._in_rows = False  # ... and past its separator row
        self._used: set[str] = set()

    def feed(self, text: str) -> None:
        """Add written text."""
        while text:
            newline = text.find("\n")
            if newline < 0:
                self._line += text
                return
            self._end_line(self._line + text[:newline])
            self._line = ""
            text = text[newline + 1 :]

    def _end_line(self, line: str) -> None:
        if line.startswith("#"):
            self._table = line.strip() in _ID_TABLES
            self._in_rows = False
            self._used = set()
        elif self._table and line.startswith("|-"):
            self._in_rows = True
        elif self._in_rows:
            match = grammar.ROW_ID.match(line + "\n")
            if match is not None:
                self._used.add(match.group(1))

    @property
    def used(self) -> frozenset[str]:
        """The ids the current table has so far."""
        return frozenset(self._used)

    @property
    def active(self) -> bool:
        """True while an id is being written in a table that already has ids."""
        if not (self._in_rows and self._used):
            return False
        match = _ID_CELL.fullmatch(self._line)
        return not self._line or (match is not None and not match.group(3))

    def forbids(self, piece: str) -> bool:
        """True when writing ``piece`` next would repeat an id (or make that unavoidable)."""
        if not self.active:
            return False
        match = _ID_CELL.fullmatch(self._line + piece)
        if match is None:
            return False  # not a row
        prefix, digits, after = match.groups()
        if prefix not in _KIND_PREFIXES or not digits:
            return False
        if after:
            return prefix + digits in self._used  # the id is finished
        return not self._has_unused_completion(prefix + digits)

    def id_is_taken(self) -> bool:
        """True when the id written so far, if it ended here, is one the table already has."""
        match = _ID_CELL.fullmatch(self._line)
        if match is None:
            return False
        prefix, digits, after = match.groups()
        return not after and bool(digits) and prefix + digits in self._used

    def _has_unused_completion(self, partial: str) -> bool:
        digits = partial.lstrip("abcdefghijklmnopqrstuvwxyz")
        # Ids have no leading zeros: "0" is complete; any other digits may grow to ID_DIGITS.
        room = (
            1
            if digits.startswith("0")
            else sum(10**j for j in range(grammar.ID_DIGITS - len(digits) + 1))
        )
        taken = sum(1 for used in self._used if used.startswith(partial))
        return taken < room
