"""Desktop integration: icon files, the Linux menu entry and installer, macOS and Windows metadata."""

from __future__ import annotations

import io
import os
import plistlib
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from desktop_app import __version__

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_committed_icons_are_what_the_generator_draws(
    make_icons: ModuleType, packaging_dir: Path
) -> None:
    """Edit make_icons.py, then rerun it: the committed files must never drift from the script."""
    for committed, content in make_icons.expected_files().items():
        name = committed.relative_to(REPO_ROOT)
        assert committed.is_file(), f"{name} missing: run python packaging/icons/make_icons.py"
        assert committed.read_bytes() == content, f"{name} is stale: rerun make_icons.py"


def test_each_png_icon_is_committed_once_inside_the_app_package(
    make_icons: ModuleType, packaging_dir: Path
) -> None:
    """The GUI's window icon and the packages' hicolor icons are the same files: no second copy
    under packaging/ that could drift."""
    app_icons = REPO_ROOT / "desktop_app" / "ui" / "icons"
    assert app_icons == make_icons.APP_ICON_DIR
    assert sorted(p.name for p in app_icons.glob("*.png")) == sorted(
        make_icons.png_name(size) for size in make_icons.PNG_SIZES
    )
    assert list(packaging_dir.rglob("storyteller-*.png")) == []


def test_icons_are_square_at_every_size_and_transparent_in_the_corners(
    packaging_dir: Path, make_icons: ModuleType
) -> None:
    for size in make_icons.PNG_SIZES:
        with Image.open(make_icons.APP_ICON_DIR / make_icons.png_name(size)) as image:
            assert image.size == (size, size)
            assert image.mode == "RGBA"
            assert image.getpixel((0, 0))[3] == 0  # rounded tile: corners see through
            assert image.getpixel((size // 2, size // 2))[3] == 255
    with Image.open(packaging_dir / "icons" / "storyteller.ico") as ico:
        assert set(ico.info["sizes"]) >= {(16, 16), (32, 32), (48, 48), (256, 256)}


def test_icns_has_the_retina_sizes(make_icons: ModuleType, tmp_path: Path) -> None:
    icns = make_icons.write_icns(tmp_path / "storyteller.icns")
    with Image.open(icns) as image:
        sizes = set(image.info["sizes"])  # (points, points, scale)
    assert {(16, 16, 2), (128, 128, 1), (512, 512, 1), (512, 512, 2)} <= sizes


def test_desktop_entry_is_valid(packaging_dir: Path) -> None:
    entry = packaging_dir / "linux" / "storyteller.desktop"
    text = entry.read_text()
    assert "Icon=storyteller\n" in text
    if shutil.which("desktop-file-validate") is None:
        pytest.skip("desktop-file-validate (desktop-file-utils) is not installed")
    result = subprocess.run(
        ["desktop-file-validate", str(entry)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _fake_bundle(tmp_path: Path, build_script: ModuleType) -> Path:
    bundle = tmp_path / "unpacked here" / "Storyteller"  # a space in the path, as users have
    bundle.mkdir(parents=True)
    executable = bundle / "Storyteller"
    executable.write_text('#!/bin/sh\necho storyteller "$@"\n')
    executable.chmod(0o755)
    build_script.add_linux_desktop_files(bundle)
    return bundle


@pytest.mark.skipif(shutil.which("sh") is None or os.name != "posix", reason="needs a POSIX shell")
def test_install_script_adds_and_removes_the_menu_entry(
    tmp_path: Path, build_script: ModuleType
) -> None:
    bundle = _fake_bundle(tmp_path, build_script)
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    installed = subprocess.run(
        [str(bundle / "install.sh")], env=env, capture_output=True, text=True, check=False
    )
    assert installed.returncode == 0, installed.stderr

    desktop = home / ".local/share/applications/storyteller.desktop"
    text = desktop.read_text()
    assert f'Exec="{bundle}/Storyteller"' in text
    assert f"TryExec={bundle}/Storyteller" in text
    for size in (16, 48, 256, 512):
        installed = home / f".local/share/icons/hicolor/{size}x{size}/apps/storyteller.png"
        # the menu shows the same picture the running window sets (the app's package data)
        app_icon = REPO_ROOT / "desktop_app" / "ui" / "icons" / f"storyteller-{size}.png"
        assert installed.read_bytes() == app_icon.read_bytes()
    command = home / ".local/bin/storyteller"
    assert command.resolve() == (bundle / "Storyteller").resolve()
    assert subprocess.run(
        [str(command), "--version"], capture_output=True, text=True, check=True
    ).stdout.startswith("storyteller")
    if shutil.which("desktop-file-validate"):
        assert subprocess.run(["desktop-file-validate", str(desktop)], check=False).returncode == 0

    removed = subprocess.run(
        [str(bundle / "install.sh"), "--uninstall"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert removed.returncode == 0, removed.stderr
    assert not desktop.exists()
    assert not command.exists()
    assert not (home / ".local/share/icons/hicolor/48x48/apps/storyteller.png").exists()
    assert (bundle / "Storyteller").exists()  # the app itself is never removed


def test_macos_info_plist_and_entitlements_parse(packaging_dir: Path) -> None:
    info = plistlib.loads((packaging_dir / "macos" / "Info.plist").read_bytes())
    assert info["CFBundleName"] == "Storyteller"
    assert info["NSHighResolutionCapable"] is True
    entitlements = plistlib.loads((packaging_dir / "macos" / "entitlements.plist").read_bytes())
    # ctypes callbacks (llama.cpp's log and abort callbacks) crash the hardened runtime without it.
    assert entitlements["com.apple.security.cs.allow-unsigned-executable-memory"] is True


def test_windows_installer_installs_what_the_spec_builds(packaging_dir: Path) -> None:
    iss = (packaging_dir / "windows" / "storyteller.iss").read_text()
    spec = (packaging_dir / "storyteller.spec").read_text()
    assert "APP_NAME = release_targets.APP_NAME" in spec and 'name="storyteller-cli"' in spec
    assert 'Filename: "{app}\\Storyteller.exe"' in iss
    assert "PrivilegesRequired=lowest" in iss  # per-user: no administrator rights
    assert "OutputBaseFilename=Storyteller-{#AppVersion}-setup" in iss


def test_spec_version_comes_from_the_package(packaging_dir: Path) -> None:
    spec = (packaging_dir / "storyteller.spec").read_text()
    assert "VERSION = desktop_app.__version__" in spec
    assert __version__


def _xwd(width: int, height: int, pixels_bgrx: bytes) -> bytes:
    name = b"screen\x00\x00"
    header_size = 100 + len(name)
    fields = [header_size, 7, 2, 24, width, height, 0, 0, 32, 0, 32, 32, width * 4, 4,
              0xFF0000, 0xFF00, 0xFF, 8, 256, 0, width, height, 0, 0, 0]  # fmt: skip
    return struct.pack(">25I", *fields) + name + pixels_bgrx


def test_xwd_screenshots_convert_to_png(xwd_to_png: ModuleType) -> None:
    red, blue = bytes([0, 0, 255, 0]), bytes([255, 0, 0, 0])  # BGRX
    image = xwd_to_png.xwd_to_image(_xwd(2, 1, red + blue))
    assert image.size == (2, 1)
    assert image.getpixel((0, 0)) == (255, 0, 0)
    assert image.getpixel((1, 0)) == (0, 0, 255)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    assert buffer.getvalue().startswith(b"\x89PNG")


def test_xwd_with_an_unsupported_depth_is_refused(xwd_to_png: ModuleType) -> None:
    data = bytearray(_xwd(1, 1, bytes(4)))
    data[44:48] = struct.pack(">I", 16)  # bits per pixel
    with pytest.raises(ValueError, match="16 bpp"):
        xwd_to_png.xwd_to_image(bytes(data))


def test_desktop_entry_name_is_the_app_id_the_gui_announces(packaging_dir: Path) -> None:
    """On Wayland the compositor finds the window's icon through <app id>.desktop."""
    probe = (
        "from desktop_app.ui.startup import create_application\n"
        "print(create_application([]).desktopFileName())\n"
    )
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=60,
        check=True,
    )
    app_id = result.stdout.strip().splitlines()[-1]
    assert (packaging_dir / "linux" / f"{app_id}.desktop").is_file()
    assert f"Icon={app_id}\n" in (packaging_dir / "linux" / f"{app_id}.desktop").read_text()


@pytest.mark.skipif(
    shutil.which("dpkg-deb") is None, reason="dpkg-deb (Debian/Ubuntu) is not installed"
)
def test_deb_installs_the_app_in_opt_with_menu_entry_command_and_dependencies(
    tmp_path: Path, build_script: ModuleType
) -> None:
    bundle = _fake_bundle(tmp_path, build_script)
    (bundle / "_internal").mkdir()
    (bundle / "_internal" / "libx.so.0").write_bytes(b"x")
    (bundle / "_internal" / "libx.so").symlink_to("libx.so.0")
    deb = build_script.make_deb(bundle, "1.2.3")
    assert deb.name.startswith("storyteller_1.2.3_")
    assert not (bundle.parent / "deb-root").exists()  # the staging folder is cleaned up

    def field(name: str) -> str:
        return subprocess.run(
            ["dpkg-deb", "--field", str(deb), name], capture_output=True, text=True, check=True
        ).stdout.strip()

    assert field("Package") == "storyteller"
    assert field("Version") == "1.2.3"
    depends = field("Depends")
    for system_library in ("libgl1", "libegl1", "fonts-dejavu-core"):
        assert system_library in depends  # what a bare Debian 12 needed (README)

    unpacked = tmp_path / "unpacked"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
    assert (unpacked / "opt/storyteller/Storyteller").is_file()
    assert (unpacked / "opt/storyteller/_internal/libx.so").is_symlink()
    assert not (unpacked / "opt/storyteller/install.sh").exists()  # the package does that job
    assert os.readlink(unpacked / "usr/bin/storyteller") == "/opt/storyteller/Storyteller"
    entry = unpacked / "usr/share/applications/storyteller.desktop"
    assert "Exec=/opt/storyteller/Storyteller\n" in entry.read_text()
    assert (unpacked / "usr/share/icons/hicolor/256x256/apps/storyteller.png").is_file()
    if shutil.which("desktop-file-validate"):
        assert subprocess.run(["desktop-file-validate", str(entry)], check=False).returncode == 0
