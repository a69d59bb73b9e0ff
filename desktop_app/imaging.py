"""Pillow work shared by the library and the engine: HEIF support, upright sizes, RGB, JPEG.

Photos are only ever read. "Upright" means turned by the photo's EXIF orientation, as photo
viewers show it; transparency is flattened onto white everywhere (thumbnails, exports and what
the model sees), so a photo looks the same in each.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from desktop_app.errors import StorytellerError

# EXIF orientation (IFD0); orientations 5-8 store the image transposed relative to its display.
ORIENTATION_TAG = 0x0112
SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})

HEIF_SUFFIXES = frozenset({".heic", ".heif", ".hif", ".avif"})
HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif"}
)

# Transparent pixels become white: transformers' ``convert_to_rgb`` (the Qwen2-VL image processor
# the model was trained through) composites RGBA on white, and that is how photo viewers show it.
FLATTEN_BACKGROUND = (255, 255, 255)

# Pillow refuses to decode an image of more than twice ``Image.MAX_IMAGE_PIXELS`` (about 89.5
# million) pixels, a "decompression bomb": a 48 KB PNG can claim 400 megapixels. Every reader of
# photo files says so with these words.
TOO_LARGE_PROBLEM = "is too large to open safely: resize it below 90 megapixels"

_heif_registered: bool | None = None


class PhotoUnreadableError(StorytellerError):
    """A photo file cannot be read or decoded; ``path`` names it, the message says what to do."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


def heif_support() -> bool:
    """Whether HEIC/HEIF photos can be read (pi-heif installed); registers it once.

    pi-heif is a dependency; the check stays for a platform without its wheel.
    """
    global _heif_registered
    if _heif_registered is None:
        try:
            import pi_heif  # type: ignore[import-not-found]

            pi_heif.register_heif_opener()
            _heif_registered = True
        except ImportError:
            _heif_registered = False
    return _heif_registered


def looks_like_heif(path: Path, head: bytes | None = None) -> bool:
    """Whether ``path`` is a HEIF container, by its name or its first bytes (read if not given)."""
    if head is None:
        head = b""
        with contextlib.suppress(OSError), open(path, "rb") as handle:
            head = handle.read(12)
    return path.suffix.lower() in HEIF_SUFFIXES or (
        len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS
    )


def upright_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) of an opened photo once turned upright by its EXIF orientation."""
    orientation = image.getexif().get(ORIENTATION_TAG, 1)
    width, height = image.size
    return (height, width) if orientation in SWAPPING_ORIENTATIONS else (width, height)


def photo_size(path: Path) -> tuple[int, int]:
    """The upright (width, height) of the photo file ``path``, read from its header only.

    The one way the app reads a photo's size outside the engine and the library's import: a file
    too large to open safely, unreadable or not an image raises ``PhotoUnreadableError`` naming it.
    """
    heif_support()
    try:
        with Image.open(path) as image:
            return upright_size(image)
    except Image.DecompressionBombError:
        raise PhotoUnreadableError(path, f"{path.name} {TOO_LARGE_PROBLEM}") from None
    except UnidentifiedImageError:
        raise PhotoUnreadableError(
            path, f"{path.name} is not an image Storyteller can read"
        ) from None
    except (OSError, SyntaxError, ValueError) as err:
        raise PhotoUnreadableError(
            path, f"{path.name} cannot be read ({err}): check the file"
        ) from err


def to_rgb(image: Image.Image) -> Image.Image:
    """Flatten any mode to 8-bit RGB; transparency goes onto ``FLATTEN_BACKGROUND``."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: PIL's convert would clip, so scale to 8 bits first.
        extrema = image.getextrema()
        high = max(1, int(extrema[1]) if isinstance(extrema[1], (int, float)) else 65535)
        image = image.point(lambda value: value * (255.0 / high)).convert("L")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*FLATTEN_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


@dataclass(frozen=True)
class FittedPhoto:
    """A photo decoded for showing: upright RGB fitting the size asked for, and the size of the
    whole upright photo (boxes are placed in those pixels)."""

    image: Image.Image
    full_size: tuple[int, int]


def fitted_image(source: Path, max_side: int, *, purpose: str = "") -> FittedPhoto:
    """The one photo decoder for display and export: ``source`` upright (EXIF orientation),
    fitting ``max_side`` pixels both ways, flattened to RGB; HEIC too when pi-heif is there.

    Raises ``PhotoUnreadableError`` naming the file when it cannot be decoded; ``purpose`` (e.g.
    "for its thumbnail") says in that message what the image was read for.
    """
    heif_support()
    try:
        with Image.open(source) as image:
            full = upright_size(image)
            image.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale, faster
            upright = ImageOps.exif_transpose(image)
            upright.thumbnail((max_side, max_side))
            fitted = to_rgb(upright)
            fitted.load()
    except Image.DecompressionBombError:
        raise PhotoUnreadableError(source, f"{source.name} {TOO_LARGE_PROBLEM}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        what = f" {purpose}" if purpose else ""
        raise PhotoUnreadableError(
            source, f"{source.name} cannot be read{what} ({err}): check the file"
        ) from err
    return FittedPhoto(fitted, full)


def fitted_jpeg(source: Path, max_side: int, *, purpose: str = "") -> bytes:
    """``source`` as JPEG bytes, decoded by ``fitted_image``."""
    buffer = io.BytesIO()
    fitted_image(source, max_side, purpose=purpose).image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def stored_layout(path: Path) -> tuple[int, tuple[int, int]]:
    """The EXIF orientation (1 when none) and the (width, height) of the pixels as stored.

    Region metadata is given in the stored grid (before the orientation is applied), so the
    XMP writer needs both; raises ``PhotoUnreadableError`` naming the file.
    """
    heif_support()
    try:
        with Image.open(path) as image:
            orientation = int(image.getexif().get(ORIENTATION_TAG, 1) or 1)
            return (orientation if 1 <= orientation <= 8 else 1), image.size
    except Image.DecompressionBombError:
        raise PhotoUnreadableError(path, f"{path.name} {TOO_LARGE_PROBLEM}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise PhotoUnreadableError(
            path, f"{path.name} cannot be read ({err}): check the file"
        ) from err


def upright_to_stored(
    box: tuple[float, float, float, float], orientation: int, stored_size: tuple[int, int]
) -> tuple[float, float, float, float]:
    """A box ``(x1, y1, x2, y2)`` on the upright photo, on the pixels as stored instead.

    The inverse of what the reader does for EXIF orientation ``orientation`` (1-8, as the EXIF
    standard defines them: 6 is "0th row at the visual right, 0th column at the visual top").
    """
    sw, sh = stored_size

    def point(u: float, v: float) -> tuple[float, float]:
        return {
            1: (u, v),
            2: (sw - u, v),
            3: (sw - u, sh - v),
            4: (u, sh - v),
            5: (v, u),
            6: (v, sh - u),
            7: (sw - v, sh - u),
            8: (sw - v, u),
        }.get(orientation, (u, v))

    ax, ay = point(box[0], box[1])
    bx, by = point(box[2], box[3])
    return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)
