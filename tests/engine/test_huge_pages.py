"""Huge pages under freshly loaded memory: only new, large, fully resident anonymous regions.

Real mappings of this process (``posix_memalign``, as ggml allocates its CPU buffers), read back
from the kernel's own accounting in /proc/self/smaps.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator

import pytest

from desktop_app.engine import huge_pages

pytestmark = pytest.mark.skipif(
    not huge_pages.supported(), reason="needs Linux with transparent huge pages (madvise/always)"
)

MIB = 1024 * 1024


@pytest.fixture
def libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(None)
    lib.posix_memalign.argtypes = [
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.c_size_t,
        ctypes.c_size_t,
    ]
    lib.free.argtypes = [ctypes.c_void_p]
    return lib


@pytest.fixture
def allocate(libc: ctypes.CDLL) -> Iterator[object]:
    """``allocate(size, touched)``: a heap block of ``size`` bytes, its first ``touched`` written."""
    blocks: list[int] = []

    def make(size: int, touched: int) -> int:
        pointer = ctypes.c_void_p()
        assert libc.posix_memalign(ctypes.byref(pointer), 64, size) == 0
        ctypes.memset(pointer, 1, touched)
        blocks.append(pointer.value)
        return pointer.value

    yield make
    for block in blocks:
        libc.free(block)


def test_a_new_resident_block_is_collapsed_onto_huge_pages(allocate) -> None:
    before = huge_pages.anonymous_regions()
    allocate(96 * MIB, 96 * MIB)
    added = huge_pages.collapse_new(before)
    assert added >= 80 * MIB  # all of it but the unaligned 2 MiB ends
    assert huge_pages.collapse_new(huge_pages.anonymous_regions()) == 0  # nothing new since


def test_older_sparse_and_small_blocks_are_left_alone(allocate) -> None:
    allocate(64 * MIB, 64 * MIB)
    before = huge_pages.anonymous_regions()
    allocate(128 * MIB, 8 * MIB)  # collapsing it would make 120 MiB more resident
    allocate(8 * MIB, 8 * MIB)  # under the size worth it
    assert huge_pages.collapse_new(before) == 0


def test_new_spans_are_what_no_old_mapping_covered() -> None:
    # The kernel merged a new mapping into an old neighbour: only the new part counts.
    assert huge_pages.new_spans([(100, 200)], [(100, 500)]) == [(200, 500)]
    assert huge_pages.new_spans([(100, 200), (300, 400)], [(0, 500)]) == [
        (0, 100),
        (200, 300),
        (400, 500),
    ]
    assert huge_pages.new_spans([(0, 500)], [(100, 200)]) == []
