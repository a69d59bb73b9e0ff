"""Photo preparation: what the model sees, and boxes mapped back onto the photo."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from desktop_app import imaging
from desktop_app.engine.images import (
    MAX_IMAGE_TOKENS,
    MIN_IMAGE_TOKENS,
    PhotoError,
    UnusablePhotosError,
    estimate_tokens,
    heif_support,
    map_box_to_original,
    map_box_to_prepared,
    prepare_image,
    prepare_photos,
    prepared_size_for,
)

HEIC_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "kite.heic"  # 336x252
EXIF_ORIENTATION = 0x0112


def save_rotated_jpeg(path: Path, stored_size: tuple[int, int], orientation: int = 6) -> Path:
    """A JPEG stored sideways whose EXIF says how to turn it upright; left half red."""
    image = Image.new("RGB", stored_size, (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, stored_size[0] // 2, stored_size[1]))
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    image.save(path, format="JPEG", exif=exif, quality=95)
    return path


@given(
    width=st.integers(1, 9000),
    height=st.integers(1, 9000),
    budget=st.sampled_from([8, 64, 256, 512, 1024, 4096, 10_000]),
)
def test_prepared_size_is_aligned_and_within_the_budget(
    width: int, height: int, budget: int
) -> None:
    prepared = prepared_size_for((width, height), budget)
    assert prepared[0] % 28 == 0 and prepared[1] % 28 == 0
    tokens = (prepared[0] // 28) * (prepared[1] // 28)
    assert MIN_IMAGE_TOKENS <= tokens <= min(budget, MAX_IMAGE_TOKENS)


@pytest.mark.parametrize(
    ("size", "budget", "expected"),
    [
        ((1024, 768), 4096, (1036, 756)),  # llama.cpp's own rounding, no budget pressure
        ((4032, 3024), 512, (728, 532)),  # 12 MP phone photo at normal detail: 494 tokens
        ((3024, 4032), 256, (364, 504)),  # portrait at low detail: 234 tokens
        ((56, 56), 512, (84, 84)),  # too small: enlarged to the 8-token minimum (9 tokens)
        ((112, 84), 512, (112, 84)),  # already aligned: unchanged
    ],
)
def test_prepared_size_examples(
    size: tuple[int, int], budget: int, expected: tuple[int, int]
) -> None:
    assert prepared_size_for(size, budget) == expected


def test_estimate_tokens_matches_preparation(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.new("RGB", (1280, 720), "white").save(path)
    assert prepare_image(path, 256).tokens == estimate_tokens((1280, 720), 256)


def test_exif_orientation_is_applied_before_sizing(tmp_path: Path) -> None:
    path = save_rotated_jpeg(tmp_path / "sideways.jpg", (168, 112), orientation=6)
    prepared = prepare_image(path, 512)
    assert prepared.original_size == (112, 168)  # upright: portrait
    assert prepared.prepared_size == (112, 168)
    # Orientation 6 = rotate 90° clockwise: the stored left (red) half becomes the top.
    top = prepared.image.getpixel((56, 10))
    bottom = prepared.image.getpixel((56, 158))
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


def test_transparency_is_flattened_on_white(tmp_path: Path) -> None:
    path = tmp_path / "clear.png"
    Image.new("RGBA", (112, 112), (0, 0, 0, 0)).save(path)
    prepared = prepare_image(path, 512)
    assert prepared.image.mode == "RGB"
    assert prepared.image.getpixel((50, 50)) == (255, 255, 255)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"])
def test_common_formats_are_read(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"photo.{fmt.lower()}"
    Image.new("RGB", (140, 84), (10, 120, 200)).save(path, format=fmt)
    prepared = prepare_image(path, 512)
    assert prepared.prepared_size == (140, 84)
    assert prepared.image.mode == "RGB"
    assert len(prepared.rgb_bytes()) == 140 * 84 * 3


def test_gif_uses_its_first_frame(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (84, 84), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    red, _green, blue = prepare_image(path, 512).image.getpixel((40, 40))
    assert red > 200 and blue < 60


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("empty.jpg", b"", "empty"),
        ("notes.jpg", b"this is a text file, not a photo", "not a photo"),
        ("cut.png", None, "damaged or truncated"),
    ],
)
def test_bad_files_name_the_file(
    tmp_path: Path, name: str, content: bytes | None, words: str
) -> None:
    path = tmp_path / name
    if content is None:
        full = tmp_path / "full.png"
        Image.effect_noise((200, 200), 60).convert("RGB").save(full)
        content = full.read_bytes()[: full.stat().st_size // 2]
    path.write_bytes(content)
    with pytest.raises(PhotoError) as caught:
        prepare_image(path, 512)
    assert name in str(caught.value) and words in str(caught.value)


def test_missing_file_is_a_photo_error(tmp_path: Path) -> None:
    with pytest.raises(PhotoError, match=r"gone\.jpg does not exist"):
        prepare_image(tmp_path / "gone.jpg", 512)


def test_heic_without_pi_heif_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imaging, "_heif_registered", False)  # as if pi-heif were missing
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)
    with pytest.raises(PhotoError, match=r"IMG_0001\.HEIC cannot be read: install pi-heif"):
        prepare_image(path, 512)


def test_heic_is_read_with_pi_heif() -> None:
    """pi-heif is a dependency (decode-only): an iPhone-style HEIC prepares like any photo."""
    assert heif_support()
    prepared = prepare_image(HEIC_FIXTURE, 512)
    assert prepared.original_size == (336, 252) and prepared.prepared_size == (336, 252)


def test_pi_heif_cannot_write_heic(tmp_path: Path) -> None:
    """The decode-only build is the one installed (pillow-heif's encoder makes its wheels GPL):
    if this starts passing a save, the licence the bundle ships has changed."""
    assert heif_support()
    with pytest.raises(KeyError):
        Image.new("RGB", (8, 8)).save(tmp_path / "out.heic", format="HEIF")


def test_prepare_photos_reports_every_bad_file_and_keeps_the_good(tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    Image.new("RGB", (84, 84)).save(good)
    original = good.read_bytes()
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "b.jpg").write_bytes(b"nope")
    prepared: list = []
    events = []
    with pytest.raises(UnusablePhotosError) as caught:
        for event in prepare_photos([tmp_path / "a.jpg", good, tmp_path / "b.jpg"], 512, prepared):
            events.append(event.describe())
    assert events == ["preparing photo 1/3", "preparing photo 2/3", "preparing photo 3/3"]
    assert "2 photos cannot be used" in str(caught.value)
    assert "a.jpg" in str(caught.value) and "b.jpg" in str(caught.value)
    assert [p.path for p in prepared] == [good]
    assert good.read_bytes() == original  # originals untouched
    assert (tmp_path / "b.jpg").read_bytes() == b"nope"


def test_boxes_map_both_ways_and_clamp() -> None:
    prepared, original = (448, 336), (4032, 3024)
    box = (44.8, 33.6, 224.0, 336.0)
    mapped = map_box_to_original(box, prepared, original)
    assert mapped == pytest.approx((403.2, 302.4, 2016.0, 3024.0))
    assert map_box_to_prepared(mapped, original, prepared) == pytest.approx(box)
    # A box the model drew past the edge is clamped to the photo.
    assert map_box_to_original((-10, 0, 500, 400), prepared, original) == pytest.approx(
        (0.0, 0.0, 4032.0, 3024.0)
    )


def test_the_scripted_backend_reports_a_sideways_photo_upright(tmp_path: Path) -> None:
    from desktop_app.engine.api import ResultEvent, StoryRequest
    from desktop_app.engine.replay_backend import ReplayBackend

    photo = save_rotated_jpeg(tmp_path / "sideways.jpg", (120, 80))
    events = ReplayBackend("story").generate(StoryRequest((photo,)), should_stop=lambda: False)
    result = next(e for e in events if isinstance(e, ResultEvent)).result
    # Same as the real backends: the size boxes are mapped onto is the upright photo's.
    assert result.photos[0].original_size == prepare_image(photo, 512).original_size == (80, 120)


def test_what_the_library_knows_is_not_worked_out_again(tmp_path: Path) -> None:
    from desktop_app.engine.api import KnownPhoto

    path = tmp_path / "wide.png"
    Image.new("RGB", (560, 280), (10, 20, 30)).save(path)
    known = KnownPhoto("ab" * 32, (560, 280))
    prepared = prepare_image(path, 512, known)
    assert prepared.content_hash == known.sha256  # the library's hash keys the embedding cache
    assert prepared.original_size == (560, 280)
    assert prepare_image(path, 512).content_hash != known.sha256  # without it: hashed here
