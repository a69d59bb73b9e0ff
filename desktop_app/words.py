"""How the app writes counts in its messages: "1 photo", "5 photos", never "photo(s)"."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun``, in the plural unless ``count`` is 1 ("1 error", "0 warnings").

    ``plural`` is for nouns that do not just take an "s" ("1 story", "2 stories").
    """
    return f"{count} {noun if count == 1 else (plural or noun + 's')}"
