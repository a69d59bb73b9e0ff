"""A JPEG's metadata segments, read and rewritten without touching its pixels.

Copies of photos that leave the app (captioned copies, sidecar folders, album bundles) are the
original's bytes with their metadata segments replaced: the picture is never decoded and
re-encoded, so a copy looks exactly like its original. What is replaced (JPEG's segment layout:
ITU-T T.81 B.1.1; XMP in APP1: XMP Specification Part 3, 1.1.3; EXIF in APP1: CIPA DC-008 4.5.4):

- the XMP packet (APP1 ``http://ns.adobe.com/xap/1.0/``) by the one given; an extended XMP's
  segments (``http://ns.adobe.com/xmp/extension/``) go with it;
- without ``keep_location``: an EXIF segment with a GPS directory is rebuilt without it (Pillow
  writes IFD0 and the Exif directory back; the thumbnail directory is left out; one without GPS
  is copied as it is), and the IPTC-IIM block
  (APP13 ``Photoshop 3.0``), which can name a city and country, is dropped.

The originals are only ever read.
"""

from __future__ import annotations

import struct
from pathlib import Path

from PIL import Image

from desktop_app.errors import StorytellerError

XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
EXTENDED_XMP_HEADER = b"http://ns.adobe.com/xmp/extension/\x00"
EXIF_HEADER = b"Exif\x00\x00"
PHOTOSHOP_HEADER = b"Photoshop 3.0\x00"
GPS_IFD_TAG = 0x8825
EXIF_IFD_TAG = 0x8769
_MAX_SEGMENT_PAYLOAD = 65533  # a segment's length field counts itself: 65535 - 2
_SOI, _SOS, _EOI = 0xD8, 0xDA, 0xD9
_APP1, _APP13 = 0xE1, 0xED
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # markers without a length


class JpegMetadataError(StorytellerError):
    """A JPEG whose metadata cannot be rewritten; the message names it and says what to do."""


def is_jpeg(data: bytes) -> bool:
    return data[:2] == b"\xff\xd8"


def _segments(data: bytes, name: str) -> tuple[list[tuple[int, bytes]], bytes]:
    """(marker, payload) for every segment before the scan, and the rest (scan onwards)."""
    if not is_jpeg(data):
        raise JpegMetadataError(f"{name} is not a JPEG: convert it to JPEG to embed a caption")
    segments: list[tuple[int, bytes]] = []
    pos = 2
    while pos < len(data):
        if data[pos] != 0xFF:
            raise JpegMetadataError(f"{name} is damaged (no marker at byte {pos}): check the file")
        while pos < len(data) and data[pos] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos >= len(data):
            break
        marker = data[pos]
        pos += 1
        if marker in _STANDALONE:
            segments.append((marker, b""))
            continue
        if marker in (_SOS, _EOI):
            return segments, data[pos - 2 :]
        if pos + 2 > len(data):
            break
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        segments.append((marker, data[pos + 2 : pos + length]))
        pos += length
    raise JpegMetadataError(f"{name} ends before its picture: check the file")


def read_xmp(path: Path) -> bytes | None:
    """The XMP packet embedded in the JPEG at ``path``, or None (also for other formats)."""
    data = path.read_bytes()
    if not is_jpeg(data):
        return None
    segments, _ = _segments(data, path.name)
    for marker, payload in segments:
        if marker == _APP1 and payload.startswith(XMP_HEADER):
            return payload[len(XMP_HEADER) :]
    return None


def exif_without_location(payload: bytes) -> bytes | None:
    """An EXIF APP1 payload without its GPS directory: ``payload`` itself when it has none,
    None when nothing is left worth keeping."""
    exif = Image.Exif()
    exif.load(payload)
    if GPS_IFD_TAG not in exif:
        return payload
    exif.get_ifd(EXIF_IFD_TAG)  # read now, so that tobytes writes it back
    del exif[GPS_IFD_TAG]
    if not len(exif):
        return None
    data = exif.tobytes()
    return data if data.startswith(EXIF_HEADER) else EXIF_HEADER + data


def _segment(marker: int, payload: bytes, name: str) -> bytes:
    if len(payload) > _MAX_SEGMENT_PAYLOAD:
        raise JpegMetadataError(
            f"the metadata for {name} is too large for one JPEG segment ({len(payload)} bytes): "
            "shorten the story's text for this photo"
        )
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def with_metadata(data: bytes, xmp: bytes | None, *, keep_location: bool, name: str) -> bytes:
    """The JPEG ``data`` with its XMP replaced by ``xmp`` (None: the XMP it has is kept) and,
    unless ``keep_location``, its GPS and IPTC location left out. The picture is untouched."""
    segments, rest = _segments(data, name)
    out = [b"\xff\xd8"]
    inserted = xmp is None
    for marker, payload in segments:
        if marker == _APP1 and payload.startswith((XMP_HEADER, EXTENDED_XMP_HEADER)):
            if xmp is not None:
                continue
        elif marker == _APP1 and payload.startswith(EXIF_HEADER) and not keep_location:
            try:
                rebuilt = exif_without_location(payload)
            except (OSError, ValueError, struct.error, SyntaxError):
                rebuilt = None  # an EXIF block Pillow cannot read is dropped, never copied
            if rebuilt is None:
                continue
            payload = rebuilt
        elif marker == _APP13 and payload.startswith(PHOTOSHOP_HEADER) and not keep_location:
            continue
        if not inserted and not (0xE0 <= marker <= 0xE1):  # after APP0 (JFIF) and EXIF
            out.append(_segment(_APP1, XMP_HEADER + (xmp or b""), name))
            inserted = True
        out.append(
            bytes((0xFF, marker)) if marker in _STANDALONE else _segment(marker, payload, name)
        )
    if not inserted:
        out.append(_segment(_APP1, XMP_HEADER + (xmp or b""), name))
    return b"".join(out) + rest
