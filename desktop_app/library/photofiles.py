"""Reading facts about photo files: content sniffing, content hash, EXIF date and orientation.

Only ever reads the user's files. A file counts as a photo when Pillow recognises its content,
whatever its name says.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from desktop_app.fileio import sha256_file
from desktop_app.imaging import TOO_LARGE_PROBLEM, heif_support, looks_like_heif, upright_size
from desktop_app.library.errors import NotAnImageError, PhotoUnreadableError

# EXIF tags (Exif 2.32): dates and their UTC offsets in the Exif sub-IFD.
_IFD_EXIF = 0x8769
_TAG_DATETIME_ORIGINAL = 0x9003
_TAG_DATETIME_DIGITIZED = 0x9004
_TAG_OFFSET_ORIGINAL = 0x9011
_TAG_OFFSET_DIGITIZED = 0x9012

_EXIF_DATE = re.compile(r"^\s*(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"^\s*([+-])(\d{2}):(\d{2})\s*$")


@dataclass(frozen=True)
class PhotoFacts:
    """What the library records about a photo file."""

    path: Path
    size: int
    mtime: float
    sha256: str
    width: int
    height: int
    captured_at: str | None


def _exif_datetime(value: object, offset: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return None
    match = _EXIF_DATE.match(value)
    if not match:
        return None
    try:
        moment = dt.datetime(*(int(part) for part in match.groups()))
    except ValueError:  # cameras write "0000:00:00 00:00:00" when the clock was never set
        return None
    text = moment.isoformat()
    if isinstance(offset, bytes):
        offset = offset.decode("ascii", "replace")
    if isinstance(offset, str) and (off := _EXIF_OFFSET.match(offset)):
        text += f"{off.group(1)}{off.group(2)}:{off.group(3)}"
    return text


def _unreadable_message(path: Path, err: OSError) -> str:
    if isinstance(err, PermissionError):
        return f"{path.name} cannot be read: permission denied (check the file's permissions)"
    if isinstance(err, FileNotFoundError):
        return f"{path.name} was not found at {path.parent}: check the path"
    reason = err.strerror or str(err) or type(err).__name__
    return f"{path.name} cannot be read ({reason}): check the file or copy it again"


class _Damaged(Exception):
    """The header reads but the pixels do not decode (a truncated or corrupt file)."""


# Decoding a photo at an eighth of its size still reads every byte of a JPEG's data (the DCT
# scaling happens after entropy decoding), so a file cut short is caught at import, not at
# Generate, for about a tenth of a full decode's time.
_CHECK_SCALE = 8


def _decode_whole(image: Image.Image) -> None:
    """Decode ``image``'s pixels (reduced where the format allows); raise ``_Damaged`` when the
    data is truncated or corrupt."""
    width, height = image.size
    image.draft("RGB", (max(1, width // _CHECK_SCALE), max(1, height // _CHECK_SCALE)))
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as err:
        raise _Damaged from err


def read_photo_facts(path: Path) -> PhotoFacts:
    """Identify ``path`` as an image by its content, check that its pixels decode, and read its
    facts.

    Raises ``NotAnImageError`` when the content is not an image Pillow reads and
    ``PhotoUnreadableError`` when the file cannot be read or is damaged (cut short, corrupt);
    both name the file.
    """
    heif_support()
    try:
        stat = path.stat()
        with Image.open(path) as image:
            width, height = upright_size(image)
            exif = image.getexif()
            _decode_whole(image)
        sha256 = sha256_file(path)
    except UnidentifiedImageError:
        if looks_like_heif(path):
            raise NotAnImageError(
                path,
                f"{path.name} is a HEIC/HEIF photo: install pi-heif "
                "(pip install pi-heif) or convert it to JPEG",
            ) from None
        raise NotAnImageError(path, f"{path.name} is not an image Storyteller can read") from None
    except Image.DecompressionBombError:
        raise PhotoUnreadableError(path, f"{path.name} {TOO_LARGE_PROBLEM}") from None
    except _Damaged as damaged:
        raise PhotoUnreadableError(
            path,
            f"{path.name} is damaged or truncated and cannot be decoded ({damaged.__cause__}): "
            "copy it again from where it came from, or open it in an image viewer to check it",
        ) from damaged.__cause__
    except OSError as err:
        raise PhotoUnreadableError(path, _unreadable_message(path, err)) from err
    except (SyntaxError, ValueError) as err:  # Pillow plugins raise these for corrupt headers
        raise PhotoUnreadableError(
            path, f"{path.name} is damaged ({err}): open it in an image viewer to check it"
        ) from err
    captured_at = None
    with contextlib.suppress(Exception):  # malformed EXIF only costs the date, never the photo
        exif_ifd = exif.get_ifd(_IFD_EXIF)
        captured_at = _exif_datetime(
            exif_ifd.get(_TAG_DATETIME_ORIGINAL), exif_ifd.get(_TAG_OFFSET_ORIGINAL)
        ) or _exif_datetime(
            exif_ifd.get(_TAG_DATETIME_DIGITIZED), exif_ifd.get(_TAG_OFFSET_DIGITIZED)
        )
    return PhotoFacts(
        path=path,
        size=stat.st_size,
        mtime=stat.st_mtime,
        sha256=sha256,
        width=width,
        height=height,
        captured_at=captured_at,
    )


def walk_files(folder: Path) -> Iterator[Path]:
    """Every regular file under ``folder``, recursively, in name order; hidden entries skipped."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                candidate = Path(root) / name
                if candidate.is_file():
                    yield candidate


def expand_paths(paths: Iterable[Path]) -> Iterator[tuple[Path, bool]]:
    """Files to import: each ``(absolute path, named explicitly)``; folders are walked."""
    for given in paths:
        path = Path(os.path.abspath(Path(given).expanduser()))
        if path.is_dir():
            for found in walk_files(path):
                yield found, False
        else:
            yield path, True
