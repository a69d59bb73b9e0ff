"""Benchmark: import 2,000 small generated photos into a fresh library and time each step.

usage: python bench/library_import.py [--count N] [--size WxH]

Prints a table: generating the photos (not the library's work), the first import (sniff, hash,
EXIF, insert), listing the album, re-importing the same folder (all duplicates; unchanged files
are not re-hashed), sorting by capture date, and thumbnails for the first 100 photos.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image

from desktop_app.library import Library


def _generate(folder: Path, count: int, size: tuple[int, int]) -> None:
    for index in range(count):
        exif = Image.Exif()
        day = 1 + index % 28
        exif.get_ifd(0x8769)[0x9003] = f"2024:03:{day:02d} {index % 24:02d}:{index % 60:02d}:00"
        color = (index % 256, (index // 256) % 256, (index * 7) % 256)
        sub = folder / f"day{day:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, color).save(sub / f"IMG_{index:05d}.jpg", exif=exif.tobytes())


def _timed(
    rows: list[tuple[str, float, str]],
    label: str,
    work: Callable[[], Any],
    note: Callable[[Any], str] = lambda _result: "",
) -> Any:
    """Run ``work``, add a row with its time and ``note(result)``, and return the result."""
    started = time.perf_counter()
    result = work()
    rows.append((label, time.perf_counter() - started, note(result)))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--size", default="160x120", help="generated photo size, WxH")
    args = parser.parse_args()
    width, height = (int(part) for part in args.size.split("x"))
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        photos = root / "photos"
        _timed(
            rows,
            f"generate {args.count} JPEGs {width}x{height}",
            lambda: _generate(photos, args.count, (width, height)),
        )
        library = Library.open(root / "library", thumbnails_dir=root / "thumbs")
        library.create_album("Bench")
        _timed(
            rows,
            "import folder (first time)",
            lambda: library.add_photos("Bench", [photos]),
            lambda report: f"{len(report.added)} added",
        )
        listed = _timed(
            rows,
            "list album (with missing check)",
            lambda: library.photos("Bench"),
            lambda album_photos: f"{len(album_photos)} photos",
        )
        _timed(
            rows,
            "import same folder again",
            lambda: library.add_photos("Bench", [photos]),
            lambda report: f"{len(report.duplicates)} duplicates",
        )
        _timed(rows, "sort by capture date", lambda: library.sort_by_capture_date("Bench"))
        first = listed[:100]
        _timed(
            rows,
            f"thumbnails 256 px x{len(first)}",
            lambda: [library.thumbnail_path(photo, 256) for photo in first],
        )
        library.close()
    import_s = rows[1][1]
    print(f"{'step':<40} {'seconds':>9}  note")
    print(f"{'-' * 40} {'-' * 9}  {'-' * 20}")
    for label, seconds, note in rows:
        print(f"{label:<40} {seconds:>9.3f}  {note}")
    print(f"\nimport rate: {args.count / import_s:,.0f} photos/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
