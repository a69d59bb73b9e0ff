"""Copies of photos for other people: nothing about where they were taken unless asked.

Every photo that leaves the app as a file (album bundles, the sidecar folder, captioned copies)
is made here. A JPEG keeps its pixels byte for byte and loses its GPS directory, its IPTC block
and the location properties of its XMP (``desktop_app.jpeg_metadata``); any other format (PNG,
HEIC, WebP...) is written as an upright JPEG with no metadata at all, since the formats' own
metadata boxes are not rewritten here. ``keep_location`` copies a JPEG's metadata as it is.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from pathlib import Path

from desktop_app.imaging import PhotoUnreadableError, fitted_image, stored_layout
from desktop_app.jpeg_metadata import JpegMetadataError, is_jpeg, read_xmp, with_metadata
from desktop_app.story.xmp import XmpError, without_location

FULL_QUALITY = 95  # a non-JPEG photo re-encoded for sharing: indistinguishable at full size


@dataclass(frozen=True)
class SharedPhoto:
    """A photo ready to be written for sharing: its file name, bytes and stored layout."""

    name: str
    data: bytes
    orientation: int  # EXIF orientation of ``data`` (1 once re-encoded upright)
    stored_size: tuple[int, int]  # (width, height) of ``data``'s pixels as stored
    embedded_xmp: bytes | None = None  # the XMP packet ``data`` carries

    def with_xmp(self, packet: bytes) -> SharedPhoto:
        """The same photo with ``packet`` as its XMP (location is already gone if it must be)."""
        data = with_metadata(self.data, packet, keep_location=True, name=self.name)
        return replace(self, data=data, embedded_xmp=packet)


def shared_photo(path: Path, *, keep_location: bool = False) -> SharedPhoto:
    """``path`` as a copy to share (see the module). Raises ``PhotoUnreadableError`` naming the
    file when it cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise PhotoUnreadableError(
            path, f"{path.name} cannot be read ({err}): check the file"
        ) from err
    if not is_jpeg(data):
        full = fitted_image(path, 1 << 30, purpose="to share it")
        buffer = io.BytesIO()
        full.image.save(buffer, "JPEG", quality=FULL_QUALITY)
        return SharedPhoto(f"{path.stem}.jpg", buffer.getvalue(), 1, full.image.size)
    orientation, stored_size = stored_layout(path)
    try:
        xmp = read_xmp(path)
        if xmp is not None and not keep_location:
            xmp = without_location(xmp)
        copy = with_metadata(
            data, None if keep_location else xmp, keep_location=keep_location, name=path.name
        )
    except (JpegMetadataError, XmpError) as err:
        raise PhotoUnreadableError(path, f"{path.name}: {err}") from err
    return SharedPhoto(path.name, copy, orientation, stored_size, xmp)
