"""Album order stays exactly what the user made it through any mix of edits (property test)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from library_helpers import distinct_photos

from desktop_app.library import Library

_ALBUM_NUMBERS = itertools.count()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Library, list[Path]]]:
    """One library and six photos for every example (each example makes its own album)."""
    folder = tmp_path_factory.mktemp("order")
    library = Library.open(folder / "library", thumbnails_dir=folder / "thumbnails")
    yield library, distinct_photos(folder / "photos", 6)
    library.close()


edits = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(st.integers(0, 5), max_size=3)),
        st.tuples(st.just("remove"), st.integers(0, 5)),
        st.tuples(st.just("reorder"), st.randoms(use_true_random=False)),
    ),
    max_size=8,
)


@settings(max_examples=40, deadline=None)
@given(edits)
def test_album_order_matches_a_plain_list_model(
    shared: tuple[Library, list[Path]], operations: list[tuple[str, object]]
) -> None:
    library, photos_on_disk = shared
    album = library.create_album(f"album {next(_ALBUM_NUMBERS)}")
    expected: list[Path] = []  # what the user should see, in order
    for kind, argument in operations:
        if kind == "add":
            chosen = [photos_on_disk[i] for i in argument]  # type: ignore[union-attr]
            library.add_photos(album, chosen)
            for path in chosen:
                if path not in expected:  # duplicates are never added twice
                    expected.append(path)
        elif kind == "remove" and expected:
            index = int(argument) % len(expected)  # type: ignore[call-overload]
            photo = library.photos(album)[index]
            library.remove_photos(album, [photo.id])
            del expected[index]
        elif kind == "reorder":
            shuffled = library.photos(album)
            argument.shuffle(shuffled)  # type: ignore[union-attr]
            library.reorder(album, [photo.id for photo in shuffled])
            expected = [photo.path for photo in shuffled]
        assert [photo.path for photo in library.photos(album)] == expected
    assert library.album(album.id).photo_count == len(expected)
