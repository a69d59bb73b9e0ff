"""Benchmark: preparing photos for a run with and without the library's facts (``KnownPhoto``).

A run over library photos passes each file's recorded sha256 and upright size to the engine, so
preparing a photo does not hash its bytes again. This prints, per photo size, the median time of
``prepare_image`` with and without those facts, and the time of hashing alone.

    python bench/photo_facts.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from desktop_app.engine.api import KnownPhoto
from desktop_app.engine.images import prepare_image

SIZES = ((1600, 1200), (4032, 3024), (6000, 4000))
TOKEN_BUDGET = 512  # "normal" detail


def _median_s(job: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        job()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'photo':>11} {'file MB':>8} {'hash ms':>8} {'prepare ms':>11} {'with facts ms':>14}")
    with tempfile.TemporaryDirectory() as folder:
        for width, height in SIZES:
            path = Path(folder) / f"{width}x{height}.jpg"
            noise = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
            Image.fromarray(noise).save(path, quality=90)  # noise: a worst-case, large JPEG
            data = path.read_bytes()
            known = KnownPhoto(hashlib.sha256(data).hexdigest(), (width, height))
            hash_s = _median_s(lambda data=data: hashlib.sha256(data).hexdigest(), args.repeat)
            plain_s = _median_s(lambda p=path: prepare_image(p, TOKEN_BUDGET), args.repeat)
            known_s = _median_s(
                lambda p=path, k=known: prepare_image(p, TOKEN_BUDGET, k), args.repeat
            )
            print(
                f"{width:>5}x{height:<5} {len(data) / 1e6:>8.1f} {hash_s * 1e3:>8.1f} "
                f"{plain_s * 1e3:>11.1f} {known_s * 1e3:>14.1f}"
            )


if __name__ == "__main__":
    main()
