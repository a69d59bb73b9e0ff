"""Draw Storyteller's app icon with Pillow and write every size the three platforms want.

The icon is drawn once at 1024 px from simple shapes (a night-blue tile, a photo with a mountain and
a sun, an open book in front of it) and scaled down, so it is the same picture at every size and
needs no design tool. Run from the repository root:

    python packaging/icons/make_icons.py            # rewrite the committed PNGs and the .ico
    python packaging/icons/make_icons.py --icns DIR # also write DIR/storyteller.icns (macOS build)

The PNGs are package data of the app (desktop_app/ui/icons/): the GUI sets them as its window icon,
so a pip install shows the right icon too, and the packages' hicolor icons are copied from there.
The Windows .ico is only for the installer and the .exe, so it stays here in packaging/icons/.

The output is deterministic: running it twice gives identical files, and a test checks that the
committed files are what this script draws.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

ICON_DIR = Path(__file__).resolve().parent
# One copy of each PNG, inside the app package (pyproject's package-data ships "*.png").
APP_ICON_DIR = ICON_DIR.parents[1] / "desktop_app" / "ui" / "icons"
MASTER_SIZE = 1024
# freedesktop hicolor sizes; 16..256 also go into the Windows .ico; 512 is the largest committed
# PNG (macOS 1024 is drawn at build time into the .icns).
PNG_SIZES: tuple[int, ...] = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES: tuple[int, ...] = (16, 24, 32, 48, 64, 128, 256)

_TILE_TOP = (38, 52, 120)  # night blue
_TILE_BOTTOM = (22, 118, 140)  # teal
_SUN = (255, 196, 64)
_PAPER = (250, 247, 240)
_PAPER_SHADE = (222, 214, 198)
_MOUNTAIN = (70, 130, 110)
_MOUNTAIN_FAR = (120, 170, 150)
_SKY = (170, 215, 235)
_SPINE = (150, 70, 40)


def _vertical_gradient(
    size: int, top: tuple[int, int, int], bottom: tuple[int, int, int]
) -> Image.Image:
    column = Image.new("RGB", (1, size))
    for y in range(size):
        t = y / (size - 1)
        column.putpixel(
            (0, y), tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        )
    return column.resize((size, size), Image.Resampling.NEAREST)


def _rounded_mask(size: int, radius: int, inset: int = 0) -> Image.Image:
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).rounded_rectangle(
        (inset, inset, size - 1 - inset, size - 1 - inset), radius=radius, fill=255
    )
    return mask


def draw_master() -> Image.Image:
    """The icon at ``MASTER_SIZE`` pixels, RGBA with a transparent margin."""
    s = MASTER_SIZE
    icon = Image.new("RGBA", (s, s), (0, 0, 0, 0))

    # The tile: a gradient square with rounded corners and a small margin (macOS/GNOME style).
    margin = s // 16
    tile = _vertical_gradient(s, _TILE_TOP, _TILE_BOTTOM).convert("RGBA")
    icon.paste(tile, (0, 0), _rounded_mask(s, radius=s // 5, inset=margin))

    # The photo, tilted behind the book: a white card with sky, sun and mountains.
    photo_w, photo_h = int(s * 0.56), int(s * 0.44)
    photo = Image.new("RGBA", (photo_w, photo_h), (*_PAPER, 255))
    pd = ImageDraw.Draw(photo)
    border = photo_w // 18
    inner = (border, border, photo_w - border, photo_h - border)
    pd.rectangle(inner, fill=_SKY)
    sun_r = photo_h // 8
    sun_c = (int(photo_w * 0.72), int(photo_h * 0.32))
    pd.ellipse((sun_c[0] - sun_r, sun_c[1] - sun_r, sun_c[0] + sun_r, sun_c[1] + sun_r), fill=_SUN)
    base = photo_h - border
    pd.polygon(
        [(border, base), (int(photo_w * 0.62), int(photo_h * 0.38)), (photo_w - border, base)],
        fill=_MOUNTAIN_FAR,
    )
    pd.polygon(
        [(border, base), (int(photo_w * 0.33), int(photo_h * 0.30)), (int(photo_w * 0.70), base)],
        fill=_MOUNTAIN,
    )
    photo = photo.rotate(8, resample=Image.Resampling.BICUBIC, expand=True)
    shadow = Image.new("RGBA", photo.size, (0, 0, 0, 0))
    shadow.putalpha(photo.getchannel("A").point(lambda a: a * 0.35))
    shadow = shadow.filter(ImageFilter.GaussianBlur(s // 100))
    photo_pos = ((s - photo.width) // 2 + s // 40, int(s * 0.15))
    icon.alpha_composite(shadow, (photo_pos[0] + s // 80, photo_pos[1] + s // 60))
    icon.alpha_composite(photo, photo_pos)

    # The open book in front: two pages meeting at a spine, with a few lines of "text".
    draw = ImageDraw.Draw(icon)
    cx = s // 2
    top, bottom = int(s * 0.56), int(s * 0.84)
    half = int(s * 0.33)
    sag = s // 28  # pages dip towards the spine
    left_page = [(cx - half, top), (cx, top + sag), (cx, bottom + sag), (cx - half, bottom)]
    right_page = [(cx + half, top), (cx, top + sag), (cx, bottom + sag), (cx + half, bottom)]
    cover = [
        (cx - half - s // 40, top + s // 40),
        (cx, top + sag + s // 40),
        (cx + half + s // 40, top + s // 40),
        (cx + half + s // 40, bottom + s // 30),
        (cx, bottom + sag + s // 30),
        (cx - half - s // 40, bottom + s // 30),
    ]
    draw.polygon(cover, fill=_SPINE)
    draw.polygon(left_page, fill=_PAPER)
    draw.polygon(right_page, fill=_PAPER_SHADE)
    line_w = max(2, s // 64)
    for i in range(4):
        y = top + int((bottom - top) * (0.22 + 0.18 * i))
        dip = int(sag * 0.9)
        draw.line([(cx - half + s // 18, y), (cx - s // 22, y + dip)], fill=_TILE_TOP, width=line_w)
        if i < 3:
            draw.line(
                [(cx + s // 22, y + dip), (cx + half - s // 18, y)], fill=_TILE_TOP, width=line_w
            )
    draw.line([(cx, top + sag), (cx, bottom + sag)], fill=_SPINE, width=line_w)
    return icon


def render(size: int, master: Image.Image | None = None) -> Image.Image:
    """The icon scaled to ``size`` x ``size`` pixels."""
    master = master or draw_master()
    if size == master.width:
        return master.copy()
    return master.resize((size, size), Image.Resampling.LANCZOS)


def png_bytes(image: Image.Image) -> bytes:
    """PNG encoding without timestamps or other varying chunks (so output is reproducible)."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def png_name(size: int) -> str:
    """The file name of the ``size`` px PNG (in ``APP_ICON_DIR``)."""
    return f"storyteller-{size}.png"


def expected_files() -> dict[Path, bytes]:
    """Committed path -> content of every icon file: the PNGs in ``APP_ICON_DIR``, the .ico in
    ``ICON_DIR``."""
    master = draw_master()
    files = {APP_ICON_DIR / png_name(size): png_bytes(render(size, master)) for size in PNG_SIZES}
    ico = io.BytesIO()
    render(256, master).save(ico, "ICO", sizes=[(n, n) for n in ICO_SIZES])
    files[ICON_DIR / "storyteller.ico"] = ico.getvalue()
    return files


def write_icns(path: Path) -> Path:
    """Write a macOS .icns with every size from 16 to 1024 px."""
    master = draw_master()
    extra = [render(n, master) for n in (16, 32, 64, 128, 256, 512)]
    path.parent.mkdir(parents=True, exist_ok=True)
    master.save(path, "ICNS", append_images=extra)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--outdir", type=Path, help="write every icon file into this folder instead of its place"
    )
    parser.add_argument("--icns", type=Path, metavar="DIR", help="also write DIR/storyteller.icns")
    args = parser.parse_args(argv)
    for path, content in expected_files().items():
        target = args.outdir / path.name if args.outdir else path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    if args.icns:
        write_icns(args.icns / "storyteller.icns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
