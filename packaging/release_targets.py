"""The three release targets and what each build uses: layout, metadata, icons, signing.

One place for the per-platform facts that ``storyteller.spec`` (the real build, on that
platform) and ``build.py --dry-run --target TAG`` (on any platform, Linux CI included) both use,
so that the metadata a macOS or Windows build would get is produced and checked where no Mac
or Windows machine exists. What the dry run cannot show (that PyInstaller, codesign, hdiutil and
Inno Setup accept it) only a run on that platform shows: ``.github/workflows/release.yml``.

Standard library only, like ``bundle_rules``.
"""

from __future__ import annotations

import platform
import plistlib
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

PACKAGING_DIR = Path(__file__).resolve().parent
APP_NAME = "Storyteller"
APP_ID = "io.github.storyteller.Storyteller"
COPYRIGHT = "Storyteller contributors, Apache-2.0"
DESCRIPTION = "Grounded stories about photo albums, offline"
NOTICES_DIR = "THIRD-PARTY-NOTICES"
ICNS_NAME = "storyteller.icns"
# The targets the release workflow builds. Others parse (a developer's Intel Mac), but the
# project makes no claim about them.
RELEASE_TARGETS = ("linux-x86_64", "macos-arm64", "windows-x86_64")


@dataclass(frozen=True)
class Target:
    """An operating system and CPU architecture: ``macos-arm64``, ``windows-x86_64``..."""

    system: str  # linux | macos | windows
    machine: str  # x86_64 | arm64

    @property
    def tag(self) -> str:
        return f"{self.system}-{self.machine}"

    @classmethod
    def parse(cls, tag: str) -> Target:
        system, _, machine = tag.partition("-")
        if system not in ("linux", "macos", "windows") or machine not in ("x86_64", "arm64"):
            raise ValueError(f"unknown target {tag!r}: use one of {', '.join(RELEASE_TARGETS)}")
        return cls(system, machine)

    @classmethod
    def current(cls) -> Target:
        system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(
            sys.platform, sys.platform
        )
        machine = platform.machine().lower()
        machine = {"amd64": "x86_64", "aarch64": "arm64"}.get(machine, machine)
        return cls(system, machine)


def app_path(dist: Path, target: Target) -> Path:
    """The built app: the one-folder bundle, or the .app on macOS."""
    return dist / (f"{APP_NAME}.app" if target.system == "macos" else APP_NAME)


def executable_path(dist: Path, target: Target) -> Path:
    """The executable that runs the command line (and the self-test)."""
    if target.system == "macos":
        return dist / f"{APP_NAME}.app" / "Contents" / "MacOS" / APP_NAME
    if target.system == "windows":
        return dist / APP_NAME / "storyteller-cli.exe"
    return dist / APP_NAME / APP_NAME


def notices_path(dist: Path, target: Target) -> Path:
    """Where the bundle keeps THIRD-PARTY-NOTICES: inside the signed Resources on macOS (the
    spec adds it before PyInstaller signs), at the top of the folder elsewhere (build.py moves
    it out of ``_internal`` so users find it)."""
    if target.system == "macos":
        return app_path(dist, target) / "Contents" / "Resources" / NOTICES_DIR
    return app_path(dist, target) / NOTICES_DIR


def layout(target: Target) -> list[str]:
    """Paths (relative to dist/) every build for ``target`` must contain."""
    if target.system == "macos":
        contents = PurePosixPath(f"{APP_NAME}.app", "Contents")
        return [
            str(contents / "Info.plist"),
            str(contents / "MacOS" / APP_NAME),
            str(contents / "Resources" / ICNS_NAME),
            str(contents / "Resources" / NOTICES_DIR / "README.txt"),
            str(contents / "Frameworks"),
            str(contents / "_CodeSignature" / "CodeResources"),  # signed, ad hoc at least
        ]
    folder = PurePosixPath(APP_NAME)
    if target.system == "windows":
        return [
            str(folder / f"{APP_NAME}.exe"),
            str(folder / "storyteller-cli.exe"),
            str(folder / "_internal"),
            str(folder / NOTICES_DIR / "README.txt"),
        ]
    return [
        str(folder / APP_NAME),
        str(folder / "_internal"),
        str(folder / NOTICES_DIR / "README.txt"),
        str(folder / "share" / "applications" / "storyteller.desktop"),
        str(folder / "install.sh"),
    ]


def archive_names(target: Target, version: str) -> list[str]:
    """What ``build.py --archive`` makes for ``target`` (in dist/)."""
    stem = f"{APP_NAME}-{version}-{target.tag}"
    if target.system == "macos":
        return [f"{stem}.dmg"]
    if target.system == "windows":
        # the zip always; the installer when Inno Setup is installed
        return [f"{stem}.zip", f"{APP_NAME}-{version}-setup.exe"]
    deb_arch = {"x86_64": "amd64", "arm64": "arm64"}[target.machine]
    return [f"{stem}.tar.gz", f"storyteller_{version}_{deb_arch}.deb"]


def macos_info_plist(version: str) -> dict[str, object]:
    """Storyteller.app's Info.plist: packaging/macos/Info.plist plus the keys the build sets.

    PyInstaller's BUNDLE writes its own defaults and then this dictionary over them, so what is
    here is what the app gets. No document types: files opened from Finder arrive as
    QFileOpenEvent, which the GUI does not handle yet. No usage descriptions
    (NSPhotoLibraryUsageDescription...): the app reads files the user picks, not the Photos
    library, camera or microphone.
    """
    with open(PACKAGING_DIR / "macos" / "Info.plist", "rb") as handle:
        info: dict[str, object] = plistlib.load(handle)
    info.update(
        CFBundleIdentifier=APP_ID,
        CFBundleExecutable=APP_NAME,
        CFBundlePackageType="APPL",
        CFBundleIconFile=ICNS_NAME,
        CFBundleInfoDictionaryVersion="6.0",
        CFBundleShortVersionString=version,
        CFBundleVersion=version,
    )
    return info


def signing_plan(target: Target, identity: str | None) -> dict[str, object]:
    """How the build for ``target`` is signed, as data (the dry run records it)."""
    if target.system == "macos":
        if identity:
            return {
                "by": "build.py --sign-identity (after PyInstaller)",
                "identity": identity,
                "hardened_runtime": True,
                "entitlements": "packaging/macos/entitlements.plist",
                "notarize": "xcrun notarytool submit ... --wait; xcrun stapler staple (workflow)",
            }
        # PyInstaller's BUNDLE signs the assembled .app itself: ad hoc ("-") without an
        # identity. Apple silicon refuses to run unsigned arm64 code, so this is the minimum.
        return {"by": "PyInstaller BUNDLE", "identity": "-", "hardened_runtime": False}
    if target.system == "windows":
        return {
            "by": "signtool in the workflow, only when a certificate secret exists",
            "identity": identity or None,
        }
    return {"by": "none (Linux packages are not signed)", "identity": None}


def _version_tuple(version: str) -> tuple[int, int, int, int]:
    numbers = [int("".join(ch for ch in part if ch.isdigit()) or 0) for part in version.split(".")]
    return tuple([*numbers, 0, 0, 0, 0][:4])  # type: ignore[return-value]


def windows_version_info(version: str) -> str:
    """The version resource of Storyteller.exe and storyteller-cli.exe, in PyInstaller's
    version-file format (EXE's ``version=``): what Explorer's Details tab and SmartScreen show."""
    numbers = _version_tuple(version)
    strings = {
        "CompanyName": "Storyteller contributors",
        "FileDescription": DESCRIPTION,
        "FileVersion": version,
        "InternalName": APP_NAME,
        "LegalCopyright": COPYRIGHT,
        "OriginalFilename": f"{APP_NAME}.exe",
        "ProductName": APP_NAME,
        "ProductVersion": version,
    }
    table = ",\n".join(f"          StringStruct({k!r}, {v!r})" for k, v in strings.items())
    return f"""# Written by packaging/release_targets.py; read by PyInstaller's EXE(version=...).
VSVersionInfo(
  ffi=FixedFileInfo(
    filevers={numbers},
    prodvers={numbers},
    mask=0x3f,
    flags=0x0,
    OS=0x40004,
    fileType=0x1,
    subtype=0x0,
    date=(0, 0)
  ),
  kids=[
    StringFileInfo([
      StringTable(
        '040904B0',
        [
{table}
        ])
    ]),
    VarFileInfo([VarStruct('Translation', [1033, 1200])])
  ]
)
"""
