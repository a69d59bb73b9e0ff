"""Photos the tests write themselves (importable from every test folder)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def huge_png(path: Path, side: int = 20_000) -> Path:
    """A ``side`` x ``side`` 1-bit PNG (400 megapixels by default) of a few tens of KB."""
    row = b"\0" + b"\0" * ((side + 7) // 8)  # filter byte, then the row's bits
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row * 1000) for _ in range(side // 1000))
    data += packer.compress(row * (side % 1000)) + packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data)
    path.write_bytes(png + chunk(b"IEND", b""))
    return path
