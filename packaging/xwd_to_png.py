"""Convert an X window dump (``xwd -root -silent > screen.xwd``) to PNG, for Xvfb screenshots.

    python packaging/xwd_to_png.py screen.xwd screen.png

Only the format Xvfb produces at depth 24 (ZPixmap, 32 bits per pixel, true colour) is supported:
that is what CI's screenshots of the bundled app use, and ImageMagick is not installed there.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

from PIL import Image

_HEADER_FIELDS = 25
_ZPIXMAP = 2


def xwd_to_image(data: bytes) -> Image.Image:
    """Decode an XWD (version 7) true-colour dump into an RGB image."""
    fields = struct.unpack(">25I", data[: 4 * _HEADER_FIELDS])
    header_size, version, pixmap_format = fields[0], fields[1], fields[2]
    width, height = fields[4], fields[5]
    byte_order, bits_per_pixel, bytes_per_line = fields[7], fields[11], fields[12]
    ncolors = fields[19]
    if version != 7 or pixmap_format != _ZPIXMAP or bits_per_pixel != 32:
        raise ValueError(
            f"unsupported XWD (version {version}, format {pixmap_format}, {bits_per_pixel} bpp)"
        )
    start = header_size + 12 * ncolors
    pixels = data[start : start + bytes_per_line * height]
    raw_mode = "BGRX" if byte_order == 0 else "XRGB"
    return Image.frombuffer("RGB", (width, height), pixels, "raw", raw_mode, bytes_per_line, 1)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    xwd_to_image(Path(argv[0]).read_bytes()).save(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
