"""Huge pages under llama.cpp's weights on Linux: decoding reads every weight once per token.

With 4 KiB pages, streaming 4.4 GB of weights per token (the 7B at Q4_K_M) walks over a million
page-table entries; 2 MiB pages cut that 512-fold. Measured on the 7B shape, 2 cores
(bench/decode_ceiling.py): 6.0 to 7.4 tokens/s, 0.75 to about 0.9 of the bandwidth ceiling.
Most distributions set transparent huge pages to ``madvise``: a process gets them only where it
asks, and llama.cpp does not ask for its heap. So once a model is loaded, the large anonymous
regions that appeared while loading and are fully resident are asked for huge pages
(``MADV_HUGEPAGE``) and collapsed into them at once (``MADV_COLLAPSE``, Linux 6.1+; about 0.1 s
per 500 MB). Only resident memory is collapsed, so no page is added. The data is unchanged;
where the kernel refuses (older kernels, THP ``never``, no free huge page) nothing happens.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

HUGE_PAGE = 2 * 1024 * 1024
PAGE = 4096
MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25
MIN_REGION_BYTES = 32 * 1024 * 1024  # weights, the KV cache, compute buffers: not small heaps
RESIDENT_SHARE = 0.95  # collapsing a partly touched range would fill in the rest
THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")
MAPS = Path("/proc/self/maps")
SMAPS_ROLLUP = Path("/proc/self/smaps_rollup")


Span = tuple[int, int]  # [start, end) of an address range


def supported() -> bool:
    """Linux with transparent huge pages available to a process that asks for them."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        setting = THP_SETTING.read_text()
    except OSError:
        return False
    return "[never]" not in setting


def anonymous_regions() -> list[Span]:
    """This process's anonymous private writable mappings ([] if unknown)."""
    if not supported():
        return []
    try:
        text = MAPS.read_text()
    except OSError:
        return []
    spans = []
    for line in text.splitlines():
        # "start-end perms offset dev inode [path]": anonymous when there is no path.
        fields = line.split()
        if len(fields) == 5 and fields[1].startswith("rw") and fields[1].endswith("p"):
            low, high = (int(part, 16) for part in fields[0].split("-"))
            spans.append((low, high))
    return spans


def new_spans(before: list[Span], now: list[Span]) -> list[Span]:
    """The parts of ``now`` that no span of ``before`` covered (the kernel merges a new
    mapping into an adjacent old one, so whole mappings cannot be compared)."""
    found = []
    old = sorted(before)
    for low, high in sorted(now):
        cursor = low
        for old_low, old_high in old:
            if old_high <= cursor or old_low >= high:
                continue
            if old_low > cursor:
                found.append((cursor, old_low))
            cursor = max(cursor, old_high)
        if cursor < high:
            found.append((cursor, high))
    return found


def huge_page_bytes() -> int:
    """Bytes of this process's anonymous memory now in huge pages (0 if unknown)."""
    try:
        for line in SMAPS_ROLLUP.read_text().splitlines():
            if line.startswith("AnonHugePages:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _resident_share(libc: ctypes.CDLL, start: int, end: int) -> float:
    pages = (end - start) // PAGE
    vector = (ctypes.c_ubyte * pages)()
    if libc.mincore(start, end - start, vector) != 0:
        return 0.0
    return sum(byte & 1 for byte in bytes(vector)) / pages


def collapse_new(before: list[Span], min_bytes: int = MIN_REGION_BYTES) -> int:
    """Put the large, resident anonymous memory that appeared since ``before`` (an
    ``anonymous_regions()`` snapshot) on huge pages; the bytes this added to huge pages."""
    if not supported():
        return 0
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        madvise, mincore = libc.madvise, libc.mincore
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    already = huge_page_bytes()
    for low, high in new_spans(before, anonymous_regions()):
        start = -(-low // HUGE_PAGE) * HUGE_PAGE
        end = high // HUGE_PAGE * HUGE_PAGE
        if end - start < min_bytes or _resident_share(libc, start, end) < RESIDENT_SHARE:
            continue
        for advice in (MADV_HUGEPAGE, MADV_COLLAPSE):
            if madvise(start, end - start, advice) != 0:
                logger.debug(
                    "madvise(%d) refused on %d MiB: errno %d",
                    advice,
                    (end - start) >> 20,
                    ctypes.get_errno(),
                )
                break
    return max(0, huge_page_bytes() - already)
