"""Photo preparation: what the model sees, and how its boxes map back to the photo.

The engine never lets llama.cpp resize a photo. Each photo is decoded here, turned upright
(EXIF orientation), flattened to RGB, and resized (aspect ratio kept) to sides that are multiples
of 28 px whose vision-token cost ``(W/28)·(H/28)`` fits the per-image budget. llama.cpp then takes
the pixels as they are, so a box the model writes in prepared-image pixels maps back to the photo
exactly (docs/model-contract.md 5.2 and 5.4).
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from desktop_app.engine.api import KnownPhoto, Phase, PhaseEvent
from desktop_app.errors import StorytellerError
from desktop_app.imaging import (
    TOO_LARGE_PROBLEM,
    PhotoUnreadableError,
    heif_support,
    looks_like_heif,
    to_rgb,
    upright_size,
)

logger = logging.getLogger(__name__)

# One vision token of Qwen2.5-VL covers a 28x28 patch (14 px patches merged 2x2).
PATCH_PX = 28
# llama.cpp's clamp for the Qwen2.5-VL projector; outside it llama.cpp would resize the image.
MIN_IMAGE_TOKENS = 8
MAX_IMAGE_TOKENS = 4096
# Bump when the preparation changes, so cached embeddings of the old pixels are not reused.
PREPARATION_VERSION = 1


class PhotoError(PhotoUnreadableError):
    """A photo cannot be used; the message names the file and says what to do."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(path, f"{path.name} {problem}")
        self.problem = problem


@dataclass(frozen=True)
class PreparedImage:
    """A photo as the model will see it.

    ``original_size`` is the upright size (after EXIF orientation) of the photo on disk, the frame
    boxes are mapped back to; ``prepared_size`` is the size of ``image``; both are (width, height).
    ``content_hash`` is the sha256 of the file's bytes.
    """

    path: Path
    image: Image.Image
    original_size: tuple[int, int]
    prepared_size: tuple[int, int]
    tokens: int
    content_hash: str

    def rgb_bytes(self) -> bytes:
        """Raw interleaved RGB pixels, row by row (what ``mtmd_bitmap_init`` takes)."""
        return self.image.tobytes()

    def encoded(self, fmt: str = "PNG") -> bytes:
        """The prepared pixels as a PNG (lossless, default) or JPEG file, for server backends."""
        buffer = io.BytesIO()
        if fmt.upper() == "JPEG":
            self.image.save(buffer, format="JPEG", quality=92)
        else:
            self.image.save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()


def prepared_size_for(size: tuple[int, int], token_budget: int) -> tuple[int, int]:
    """The (width, height) a photo of upright ``size`` is resized to for ``token_budget`` tokens.

    Both sides are multiples of 28, the aspect ratio is kept as well as that allows, the token
    cost is at most ``token_budget`` (clamped to llama.cpp's 8..4096) and at least 8. Photos are
    not enlarged beyond rounding except to reach the 8-token minimum.
    """
    width, height = size
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {size}")
    budget = max(MIN_IMAGE_TOKENS, min(MAX_IMAGE_TOKENS, int(token_budget)))
    cols = max(1, round(width / PATCH_PX))
    rows = max(1, round(height / PATCH_PX))
    if cols * rows > budget:
        scale = math.sqrt(width * height / (budget * PATCH_PX * PATCH_PX))
        cols = max(1, math.floor(width / scale / PATCH_PX))
        rows = max(1, math.floor(height / scale / PATCH_PX))
    elif cols * rows < MIN_IMAGE_TOKENS:
        scale = math.sqrt(MIN_IMAGE_TOKENS * PATCH_PX * PATCH_PX / (width * height))
        cols = max(1, math.ceil(width * scale / PATCH_PX))
        rows = max(1, math.ceil(height * scale / PATCH_PX))
    # Extreme aspect ratios: one side was clamped to one patch; trim the long side to the budget.
    while cols * rows > budget:
        if cols >= rows:
            cols -= 1
        else:
            rows -= 1
    if cols * rows < MIN_IMAGE_TOKENS:
        cols, rows = _closest_grid(width / height, budget)
    return cols * PATCH_PX, rows * PATCH_PX


def _closest_grid(aspect: float, budget: int) -> tuple[int, int]:
    """The grid of 8..budget patches whose aspect ratio is closest to ``aspect`` (tiny or thin
    photos only), preferring fewer patches."""
    best: tuple[float, int, int, int] | None = None
    for cols in range(1, budget + 1):
        low = -(-MIN_IMAGE_TOKENS // cols)
        high = budget // cols
        if low > high:
            continue
        rows = min(max(round(cols / aspect), low), high)
        score = (abs(math.log(cols / rows / aspect)), cols * rows, cols, rows)
        if best is None or score < best:
            best = score
    assert best is not None  # budget >= MIN_IMAGE_TOKENS always has a grid
    return best[2], best[3]


def tokens_for_size(prepared_size: tuple[int, int]) -> int:
    """Vision tokens of an image already prepared to ``prepared_size``."""
    return (prepared_size[0] // PATCH_PX) * (prepared_size[1] // PATCH_PX)


def estimate_tokens(size: tuple[int, int], token_budget: int) -> int:
    """Vision tokens a photo of upright ``size`` will cost (without the 2 marker tokens)."""
    return tokens_for_size(prepared_size_for(size, token_budget))


def _scale(value: float, src: int, dst: int) -> float:
    return value * dst / src


def _clamp(value: float, upper: int) -> float:
    return min(max(value, 0.0), float(upper))


def map_box_to_original(
    box_xyxy: tuple[float, float, float, float],
    prepared_size: tuple[int, int],
    original_size: tuple[int, int],
) -> tuple[float, float, float, float]:
    """Map a box in prepared-image pixels onto the upright original photo, clamped to it."""
    x1, y1, x2, y2 = box_xyxy
    pw, ph = prepared_size
    ow, oh = original_size
    return (
        _clamp(_scale(x1, pw, ow), ow),
        _clamp(_scale(y1, ph, oh), oh),
        _clamp(_scale(x2, pw, ow), ow),
        _clamp(_scale(y2, ph, oh), oh),
    )


def map_box_to_prepared(
    box_xyxy: tuple[float, float, float, float],
    original_size: tuple[int, int],
    prepared_size: tuple[int, int],
) -> tuple[float, float, float, float]:
    """Map a box on the upright original photo into prepared-image pixels, clamped to them."""
    return map_box_to_original(box_xyxy, original_size, prepared_size)


def _photo_bytes(path: Path) -> bytes:
    """The bytes of the photo file ``path``; ``PhotoError`` saying what is wrong otherwise."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PhotoError(path, "does not exist: check the path") from None
    except IsADirectoryError:
        raise PhotoError(path, "is a folder, not a photo") from None
    except OSError as err:
        raise PhotoError(path, f"cannot be read ({err.strerror or err})") from err
    if not data:
        raise PhotoError(path, "is empty (0 bytes): it is not a photo")
    if looks_like_heif(path, data[:16]) and not heif_support():
        raise PhotoError(path, "cannot be read: install pi-heif or convert it to JPEG")
    return data


def photo_identity(
    path: str | Path, token_budget: int, known: KnownPhoto | None = None
) -> tuple[str, tuple[int, int]]:
    """The content hash and prepared size ``prepare_image`` would give this photo, without
    decoding its pixels (``known``: nothing is read). ``PhotoError`` when it cannot be read."""
    if known is not None:
        return known.sha256, prepared_size_for(known.upright_size, token_budget)
    path = Path(path)
    data = _photo_bytes(path)
    try:
        with Image.open(io.BytesIO(data)) as image:
            size = upright_size(image)
    except Image.DecompressionBombError:
        raise PhotoError(path, TOO_LARGE_PROBLEM) from None
    except (OSError, SyntaxError, ValueError) as err:
        raise PhotoError(path, f"cannot be decoded ({err})") from err
    return hashlib.sha256(data).hexdigest(), prepared_size_for(size, token_budget)


def prepare_image(
    path: str | Path, token_budget: int, known: KnownPhoto | None = None
) -> PreparedImage:
    """Decode, turn upright, flatten and resize one photo for a ``token_budget``-token budget.

    ``known`` is what the library recorded about the unchanged file: its sha256 is used as the
    content hash instead of hashing the bytes again. Raises ``PhotoError`` naming the file when
    it is missing, empty, truncated, corrupt, not an image, or HEIC without pi-heif. The file
    is only read, never modified.
    """
    path = Path(path)
    data = _photo_bytes(path)
    content_hash = known.sha256 if known else hashlib.sha256(data).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as image:
            original_size = known.upright_size if known else upright_size(image)
            prepared_size = prepared_size_for(original_size, token_budget)
            image.seek(0)  # first frame of animations (GIF, WebP, TIFF pages)
            if image.format == "JPEG":
                # Decode big JPEGs at a reduced scale (still >= the target): much faster.
                raw_target = (
                    (prepared_size[1], prepared_size[0])
                    if original_size != image.size
                    else prepared_size
                )
                image.draft("RGB", raw_target)
            upright = ImageOps.exif_transpose(image)
            rgb = to_rgb(upright)
            if rgb.size != prepared_size:
                rgb = rgb.resize(prepared_size, Image.Resampling.BICUBIC, reducing_gap=3.0)
            rgb.load()
    except UnidentifiedImageError:
        raise PhotoError(
            path, "is not a photo Storyteller can read (JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC)"
        ) from None
    except Image.DecompressionBombError:
        raise PhotoError(path, TOO_LARGE_PROBLEM) from None
    except (OSError, SyntaxError, ValueError) as err:
        raise PhotoError(path, f"is damaged or truncated and cannot be decoded ({err})") from err
    tokens = tokens_for_size(prepared_size)
    logger.debug("prepared %s: %s -> %s (%d tokens)", path, original_size, prepared_size, tokens)
    return PreparedImage(path, rgb, original_size, prepared_size, tokens, content_hash)


class UnusablePhotosError(StorytellerError):
    """One or more photos of a run cannot be used; ``errors`` has one ``PhotoError`` per file."""

    def __init__(self, errors: list[PhotoError]) -> None:
        if len(errors) == 1:
            message = str(errors[0])
        else:
            details = "; ".join(str(error) for error in errors)
            message = f"{len(errors)} photos cannot be used: {details}"
        super().__init__(message)
        self.errors = tuple(errors)


def prepare_photos(
    photo_paths: Sequence[Path],
    token_budget: int,
    into: list[PreparedImage],
    known: Sequence[KnownPhoto | None] = (),
) -> Iterator[PhaseEvent]:
    """Prepare every photo of a run in order, yielding a phase event per photo.

    Appends to ``into``; ``known`` (aligned with ``photo_paths``, may be shorter) holds what the
    library knows of each file. Every photo is tried, so one error message names every bad file; it is
    raised (``UnusablePhotosError``) only after all were tried, before any model work starts.
    """
    errors: list[PhotoError] = []
    total = len(photo_paths)
    for index, path in enumerate(photo_paths, start=1):
        yield PhaseEvent(Phase.PREPARING_PHOTO, index, total)
        try:
            facts = known[index - 1] if index <= len(known) else None
            into.append(prepare_image(path, token_budget, facts))
        except PhotoError as err:
            errors.append(err)
    if errors:
        raise UnusablePhotosError(errors)
    if not into:
        raise StorytellerError("no photos given: a story needs at least one photo")
