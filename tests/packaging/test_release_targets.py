"""The macOS and Windows builds' metadata, icons, layout and signing, checked on Linux.

``build.py --dry-run OUT --target TAG`` writes what a build for TAG would use, from the same
functions the spec calls on that platform (packaging/release_targets.py). These tests run it for
each release target and check the result; that PyInstaller, codesign and Inno Setup accept it
only a run on macOS or Windows shows (.github/workflows/release.yml, never run here).
"""

from __future__ import annotations

import json
import plistlib
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from desktop_app import __version__


def read_version_file(path: Path) -> dict:
    """A PyInstaller version file read as PyInstaller reads it (an expression evaluated with its
    classes in scope; their module imports Windows-only code, so plain records stand in)."""

    def record(kind: str):
        return lambda *args, **kwargs: {"kind": kind, "args": args, **kwargs}

    names = ("VSVersionInfo", "FixedFileInfo", "StringFileInfo", "StringTable", "StringStruct")
    scope = {name: record(name) for name in (*names, "VarFileInfo", "VarStruct")}
    return eval(path.read_text(encoding="utf-8"), {"__builtins__": {}}, scope)


def dry_run(build_script: ModuleType, tmp_path: Path, tag: str, *extra: str) -> dict:
    out = tmp_path / tag
    assert build_script.main(["--dry-run", str(out), "--target", tag, *extra]) == 0
    plan = json.loads((out / "plan.json").read_text(encoding="utf-8"))
    assert sorted(plan["files"]) == sorted(p.name for p in out.iterdir() if p.name != "plan.json")
    return plan


def test_macos_arm64_app_metadata_icon_and_ad_hoc_signing(
    build_script: ModuleType, release_targets: ModuleType, tmp_path: Path
) -> None:
    plan = dry_run(build_script, tmp_path, "macos-arm64")
    info = plistlib.loads((tmp_path / "macos-arm64" / "Info.plist").read_bytes())
    assert info["CFBundleIdentifier"] == "io.github.storyteller.Storyteller"
    assert info["CFBundleExecutable"] == "Storyteller" == info["CFBundleName"]
    assert info["CFBundlePackageType"] == "APPL"
    assert info["CFBundleShortVersionString"] == __version__ == info["CFBundleVersion"]
    assert info["NSHighResolutionCapable"] is True
    # Qt 6.8+ needs macOS 12; an .app that claims less would start and crash on 11.
    assert tuple(int(n) for n in info["LSMinimumSystemVersion"].split(".")) >= (12, 0)
    assert info["CFBundleIconFile"] == "storyteller.icns"
    # The app reads files the user picks: no privacy prompts, no document types yet.
    assert not [key for key in info if key.endswith("UsageDescription")]
    assert "CFBundleDocumentTypes" not in info
    with Image.open(tmp_path / "macos-arm64" / "storyteller.icns") as icns:
        assert icns.format == "ICNS" and icns.size == (1024, 1024)
    entitlements = plistlib.loads((tmp_path / "macos-arm64" / "entitlements.plist").read_bytes())
    assert entitlements["com.apple.security.cs.allow-unsigned-executable-memory"] is True
    # No identity: PyInstaller signs the assembled .app ad hoc, which arm64 needs to run at all.
    assert plan["signing"] == {
        "by": "PyInstaller BUNDLE",
        "identity": "-",
        "hardened_runtime": False,
    }
    assert "Storyteller.app/Contents/_CodeSignature/CodeResources" in plan["layout"]
    assert "Storyteller.app/Contents/Resources/storyteller.icns" in plan["layout"]
    assert plan["notices"] == "dist/Storyteller.app/Contents/Resources/THIRD-PARTY-NOTICES"
    assert plan["self_test"] == ["dist/Storyteller.app/Contents/MacOS/Storyteller", "--self-test"]
    assert plan["archives"] == [f"Storyteller-{__version__}-macos-arm64.dmg"]


def test_macos_signing_with_an_identity_uses_the_hardened_runtime(
    build_script: ModuleType, tmp_path: Path
) -> None:
    identity = "Developer ID Application: Someone (TEAMID)"
    plan = dry_run(build_script, tmp_path, "macos-arm64", "--sign-identity", identity)
    assert plan["signing"]["identity"] == identity and plan["signing"]["hardened_runtime"]
    assert plan["signing"]["entitlements"] == "packaging/macos/entitlements.plist"


def test_windows_version_resource_icon_and_layout(build_script: ModuleType, tmp_path: Path) -> None:
    plan = dry_run(build_script, tmp_path, "windows-x86_64")
    info = read_version_file(tmp_path / "windows-x86_64" / "version_info.txt")
    assert info["kind"] == "VSVersionInfo"
    numbers = tuple(int(n) for n in __version__.split("."))
    assert info["ffi"]["filevers"] == (*numbers, 0) == info["ffi"]["prodvers"]
    string_file_info, var_file_info = info["kids"]
    table = string_file_info["args"][0][0]
    assert table["args"][0] == "040904B0"  # U.S. English, Unicode: what Explorer shows
    strings = dict(s["args"] for s in table["args"][1])
    assert var_file_info["args"][0][0]["args"] == ("Translation", [1033, 1200])
    assert (
        strings["ProductName"] == "Storyteller" and strings["OriginalFilename"] == "Storyteller.exe"
    )
    assert strings["FileVersion"] == __version__ == strings["ProductVersion"]
    assert strings["CompanyName"] and strings["FileDescription"] and strings["LegalCopyright"]
    with Image.open(tmp_path / "windows-x86_64" / "storyteller.ico") as ico:
        assert {(16, 16), (32, 32), (48, 48), (256, 256)} <= set(ico.info["sizes"])
    assert plan["layout"] == [
        "Storyteller/Storyteller.exe",
        "Storyteller/storyteller-cli.exe",
        "Storyteller/_internal",
        "Storyteller/THIRD-PARTY-NOTICES/README.txt",
    ]
    assert plan["self_test"] == ["dist/Storyteller/storyteller-cli.exe", "--self-test"]
    assert plan["archives"] == [
        f"Storyteller-{__version__}-windows-x86_64.zip",
        f"Storyteller-{__version__}-setup.exe",
    ]


def test_the_linux_plan_is_what_a_real_build_is_checked_against(
    build_script: ModuleType, release_targets: ModuleType, tmp_path: Path
) -> None:
    plan = dry_run(build_script, tmp_path, "linux-x86_64")
    target = release_targets.Target.parse("linux-x86_64")
    dist = tmp_path / "dist"
    assert build_script.check_layout(dist, target) == plan["layout"]  # nothing built: all missing
    for path in plan["layout"]:
        (dist / path).parent.mkdir(parents=True, exist_ok=True)
        (dist / path).touch()
    assert build_script.check_layout(dist, target) == []
    assert plan["archives"] == [
        f"Storyteller-{__version__}-linux-x86_64.tar.gz",
        f"storyteller_{__version__}_amd64.deb",
    ]


def test_an_unknown_target_is_refused_with_the_known_ones(
    build_script: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_script.main(["--dry-run", str(tmp_path), "--target", "macos-ppc"])
    assert exited.value.code == 2
    assert "linux-x86_64, macos-arm64, windows-x86_64" in capsys.readouterr().err


def test_the_spec_takes_its_metadata_from_release_targets(packaging_dir: Path) -> None:
    """The dry run checks these functions; the real build must use the same ones."""
    spec = (packaging_dir / "storyteller.spec").read_text(encoding="utf-8")
    assert "info_plist = release_targets.macos_info_plist(VERSION)" in spec
    assert "release_targets.windows_version_info(VERSION)" in spec
    assert spec.count("version=version_file") == 2  # Storyteller.exe and storyteller-cli.exe
    assert "licences.write_notices(" in spec


def test_notices_move_next_to_the_executable(build_script: ModuleType, tmp_path: Path) -> None:
    bundle = tmp_path / "Storyteller"
    (bundle / "_internal" / "THIRD-PARTY-NOTICES").mkdir(parents=True)
    (bundle / "_internal" / "THIRD-PARTY-NOTICES" / "README.txt").write_text("x")
    assert build_script.place_notices(bundle) == bundle / "THIRD-PARTY-NOTICES"
    assert (bundle / "THIRD-PARTY-NOTICES" / "README.txt").read_text() == "x"
    assert not (bundle / "_internal" / "THIRD-PARTY-NOTICES").exists()


def test_the_windows_zip_holds_the_folder(build_script: ModuleType, tmp_path: Path) -> None:
    bundle = tmp_path / "Storyteller"
    (bundle / "_internal").mkdir(parents=True)
    (bundle / "Storyteller.exe").write_bytes(b"MZ")
    (bundle / "_internal" / "lib.dll").write_bytes(b"dll")
    archive = build_script.make_zip(bundle, "1.2.3")
    with zipfile.ZipFile(archive) as zipped:
        assert zipped.read("Storyteller/Storyteller.exe") == b"MZ"
        assert zipped.read("Storyteller/_internal/lib.dll") == b"dll"
    assert not list(tmp_path.glob("*.part"))
