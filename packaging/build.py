"""Build the double-click Storyteller app for the platform this runs on.

    python packaging/build.py                  # dist/Storyteller/ (dist/Storyteller.app on macOS)
    python packaging/build.py --archive        # + the tar.gz and .deb / .dmg / Inno Setup installer
    python packaging/build.py --self-test      # + run the bundle's self-test and report its time
    python packaging/build.py --self-test --model TEXT.gguf --mmproj MMPROJ.gguf
    python packaging/build.py --dry-run OUT --target macos-arm64   # any OS: what that build uses


Run it with the Python of a virtual environment that has the project and the `packaging` extra
installed (`pip install -e '.[packaging]'`). The bundle contains whatever llama-cpp-python that
environment has: a portable CPU build by default, a CUDA/Metal/Vulkan one if you installed such a
wheel (packaging/gpu/README.md). Models are never bundled.

This is a developer tool, not part of the app: it prints and exits freely.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import platform
import plistlib
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

PACKAGING_DIR = Path(__file__).resolve().parent
ROOT = PACKAGING_DIR.parent
sys.path.insert(0, str(PACKAGING_DIR))
sys.path.insert(1, str(PACKAGING_DIR / "icons"))
import make_icons  # noqa: E402
import release_targets  # noqa: E402
from release_targets import Target  # noqa: E402

APP_NAME = release_targets.APP_NAME
# The desktop entry and icon name on Linux: the GUI calls setDesktopFileName("storyteller"), which
# is the Wayland app id, and a compositor matches it to <id>.desktop for the window's icon.
DESKTOP_ID = "storyteller"
ICON_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
# The PNG icons are package data of the GUI (it sets them as its window icon); the menu entry's
# hicolor icons are copied from there (packaging/icons/make_icons.py writes them).
APP_ICON_DIR = ROOT / "desktop_app" / "ui" / "icons"


def project_version() -> str:
    """The version the bundle carries: ``desktop_app.__version__``."""
    sys.path.insert(0, str(ROOT))
    import desktop_app

    return desktop_app.__version__


def platform_tag() -> str:
    """``linux-x86_64``, ``macos-arm64``, ``windows-x86_64``: the archive name's platform part."""
    return Target.current().tag


def app_path(dist: Path, target: Target | None = None) -> Path:
    """The built app: the one-folder bundle, or the .app on macOS."""
    return release_targets.app_path(dist, target or Target.current())


def executable_path(dist: Path, target: Target | None = None) -> Path:
    """The executable that runs the command line (and the self-test)."""
    return release_targets.executable_path(dist, target or Target.current())


def run_pyinstaller(dist: Path, work: Path, *, clean: bool) -> None:
    """Run PyInstaller on packaging/storyteller.spec."""
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist),
        "--workpath",
        str(work),
        str(PACKAGING_DIR / "storyteller.spec"),
    ]
    if clean:
        command.insert(3, "--clean")
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def link_duplicate_libraries(lib_dir: Path) -> int:
    """Replace ``libX.so`` by a symlink to an identical ``libX.so.N``; return the bytes saved.

    llama-cpp-python's wheel stores each SONAME link as a full copy. ctypes opens ``libX.so`` while
    the libraries link each other as ``libX.so.N``; as two files they load as two copies of ggml
    (two backend registries) and cost twice the disk. As a link, the loader sees one file.
    """
    saved = 0
    if not lib_dir.is_dir():
        return saved
    for plain in sorted(lib_dir.glob("lib*.so")):
        if plain.is_symlink():
            continue
        versioned = sorted(
            (p for p in lib_dir.glob(plain.name + ".*") if not p.is_symlink()),
            key=lambda p: len(p.name),
        )
        for candidate in versioned:
            if filecmp.cmp(plain, candidate, shallow=False):
                saved += plain.stat().st_size
                plain.unlink()
                plain.symlink_to(candidate.name)
                break
    return saved


def strip_python_runtime(internal: Path) -> int:
    """Strip debug symbols from the Python runtime copied from the build machine; bytes saved.

    PyInstaller's own ``strip`` option strips every library and breaks wheels repaired by
    auditwheel (numpy's OpenBLAS fails with "ELF load command address/offset not page-aligned"),
    so only libpython and the standard library's extension modules are stripped here.
    """
    strip = shutil.which("strip")
    if strip is None:
        return 0
    targets = [p for p in internal.glob("libpython3*.so*") if not p.is_symlink()]
    targets += sorted(internal.glob("python3*/lib-dynload/*.so"))
    before = sum(p.stat().st_size for p in targets)
    if targets:
        subprocess.run([strip, "--strip-unneeded", *map(str, targets)], check=True)
    return before - sum(p.stat().st_size for p in targets)


def add_linux_desktop_files(bundle: Path) -> None:
    """The .desktop entry, hicolor icons and install/uninstall script next to the executable."""
    applications = bundle / "share" / "applications"
    applications.mkdir(parents=True, exist_ok=True)
    shutil.copy2(PACKAGING_DIR / "linux" / f"{DESKTOP_ID}.desktop", applications)
    for size in ICON_SIZES:
        target = bundle / "share" / "icons" / "hicolor" / f"{size}x{size}" / "apps"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(APP_ICON_DIR / f"storyteller-{size}.png", target / f"{DESKTOP_ID}.png")
    for script in ("install.sh",):
        shutil.copy2(PACKAGING_DIR / "linux" / script, bundle / script)
        (bundle / script).chmod(0o755)
    shutil.copy2(PACKAGING_DIR / "linux" / "README.txt", bundle / "README.txt")


def place_notices(bundle: Path) -> Path:
    """Move THIRD-PARTY-NOTICES from ``_internal`` (where PyInstaller puts data) to the top of
    the one-folder bundle, next to the executable, where users look. Not on macOS: there it
    stays in the signed Contents/Resources."""
    inside = bundle / "_internal" / release_targets.NOTICES_DIR
    target = bundle / release_targets.NOTICES_DIR
    if not inside.is_dir():
        raise SystemExit(f"{inside} is missing: the spec writes it (packaging/licences.py)")
    if target.exists():
        shutil.rmtree(target)
    inside.rename(target)
    return target


def dry_run(out: Path, target: Target, version: str, identity: str | None) -> dict:
    """Write what a build for ``target`` would use into ``out`` and return the plan.

    Runs on any OS: the metadata, icons and layout of a macOS or Windows build are produced and
    checked on Linux; only a build on that platform shows that its tools accept them.
    """
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    files: list[str] = []
    if target.system == "macos":
        with open(out / "Info.plist", "wb") as handle:
            plistlib.dump(release_targets.macos_info_plist(version), handle)
        make_icons.write_icns(out / release_targets.ICNS_NAME)
        shutil.copy2(PACKAGING_DIR / "macos" / "entitlements.plist", out)
        files = ["Info.plist", release_targets.ICNS_NAME, "entitlements.plist"]
    elif target.system == "windows":
        (out / "version_info.txt").write_text(
            release_targets.windows_version_info(version), encoding="utf-8"
        )
        shutil.copy2(PACKAGING_DIR / "icons" / "storyteller.ico", out)
        shutil.copy2(PACKAGING_DIR / "windows" / "storyteller.iss", out)
        files = ["version_info.txt", "storyteller.ico", "storyteller.iss"]
    else:
        shutil.copy2(PACKAGING_DIR / "linux" / f"{DESKTOP_ID}.desktop", out)
        files = [f"{DESKTOP_ID}.desktop"]
    dist = Path("dist")
    plan = {
        "target": target.tag,
        "version": version,
        "files": files,
        "layout": release_targets.layout(target),
        "archives": release_targets.archive_names(target, version),
        "signing": release_targets.signing_plan(target, identity),
        "self_test": [executable_path(dist, target).as_posix(), "--self-test"],
        "notices": release_targets.notices_path(dist, target).as_posix(),
    }
    (out / "plan.json").write_text(json.dumps(plan, indent=2) + "\n", encoding="utf-8")
    return plan


def check_layout(dist: Path, target: Target) -> list[str]:
    """The paths of ``release_targets.layout`` missing from a real build in ``dist``."""
    return [path for path in release_targets.layout(target) if not (dist / path).exists()]


def tree_size(path: Path) -> int:
    """Bytes on disk of a folder, counting symlinks as links (as an archive stores them)."""
    total = 0
    for entry in path.rglob("*"):
        if entry.is_symlink():
            continue
        if entry.is_file():
            total += entry.stat().st_size
    return total


def largest_parts(bundle: Path, count: int = 8) -> list[tuple[str, int]]:
    """The biggest top-level entries of the bundle's ``_internal`` folder, with their bytes."""
    internal = bundle / "_internal" if (bundle / "_internal").is_dir() else bundle
    sizes = []
    for child in internal.iterdir():
        size = (
            tree_size(child)
            if child.is_dir()
            else (0 if child.is_symlink() else child.stat().st_size)
        )
        sizes.append((child.name, size))
    return sorted(sizes, key=lambda item: item[1], reverse=True)[:count]


def make_tarball(bundle: Path, version: str) -> Path:
    """``Storyteller-<version>-<platform>.tar.gz`` of the one-folder bundle, written atomically."""
    archive = bundle.parent / f"{APP_NAME}-{version}-{platform_tag()}.tar.gz"
    partial = archive.with_name(archive.name + ".part")
    with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
        tar.add(bundle, arcname=APP_NAME)  # symlinks stay symlinks
    partial.replace(archive)
    return archive


def make_zip(bundle: Path, version: str) -> Path:
    """``Storyteller-<version>-<platform>.zip`` of the one-folder bundle (Windows' download
    without an installer), written atomically."""
    archive = bundle.parent / f"{APP_NAME}-{version}-{platform_tag()}.zip"
    partial = archive.with_name(archive.name + ".part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zipped:
        for path in sorted(bundle.rglob("*")):
            zipped.write(path, Path(APP_NAME) / path.relative_to(bundle))
    partial.replace(archive)
    return archive


def make_deb(bundle: Path, version: str) -> Path:
    """``storyteller_<version>_<arch>.deb``: the bundle in /opt/storyteller, with a menu entry,
    icons, a ``storyteller`` command, and the system libraries it needs as dependencies.

    Built with ``dpkg-deb`` (Debian/Ubuntu build machines have it); installs with a double-click
    in the desktop's software installer or ``sudo apt install ./storyteller_*.deb``.
    """
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    root = bundle.parent / "deb-root"
    if root.exists():
        shutil.rmtree(root)
    app_dir = root / "opt" / "storyteller"
    app_dir.parent.mkdir(parents=True)
    shutil.copytree(bundle, app_dir, symlinks=True)
    for loose in ("install.sh", "README.txt", "share"):  # the tarball's self-install kit
        target = app_dir / loose
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
    share = root / "usr" / "share"
    (share / "applications").mkdir(parents=True)
    entry = (PACKAGING_DIR / "linux" / f"{DESKTOP_ID}.desktop").read_text(encoding="utf-8")
    entry = entry.replace("Exec=Storyteller", "Exec=/opt/storyteller/Storyteller")
    entry = entry.replace("TryExec=Storyteller", "TryExec=/opt/storyteller/Storyteller")
    (share / "applications" / f"{DESKTOP_ID}.desktop").write_text(entry, encoding="utf-8")
    for size in ICON_SIZES:
        icons = share / "icons" / "hicolor" / f"{size}x{size}" / "apps"
        icons.mkdir(parents=True)
        shutil.copy2(APP_ICON_DIR / f"storyteller-{size}.png", icons / f"{DESKTOP_ID}.png")
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "storyteller").symlink_to("/opt/storyteller/Storyteller")
    control = (PACKAGING_DIR / "linux" / "control.in").read_text(encoding="utf-8")
    control = (
        control.replace("@VERSION@", version)
        .replace("@ARCH@", arch)
        .replace("@INSTALLED_KB@", str(tree_size(root) // 1024))
    )
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN" / "control").write_text(control, encoding="utf-8")
    for path in [root, *root.rglob("*")]:  # dpkg wants 0755 folders whatever the umask was
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    deb = bundle.parent / f"storyteller_{version}_{arch}.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    shutil.rmtree(root)
    return deb


def make_dmg(app: Path, version: str) -> Path:
    """A compressed disk image of the .app (macOS only: hdiutil)."""
    dmg = app.parent / f"{APP_NAME}-{version}-{platform_tag()}.dmg"
    subprocess.run(
        [
            "hdiutil",
            "create",
            "-volname",
            APP_NAME,
            "-srcfolder",
            str(app),
            "-ov",
            "-format",
            "UDZO",
            str(dmg),
        ],
        check=True,
    )
    return dmg


def codesign(app: Path, identity: str) -> None:
    """Sign the .app with the hardened runtime and our entitlements (macOS only)."""
    entitlements = PACKAGING_DIR / "macos" / "entitlements.plist"
    subprocess.run(
        [
            "codesign", "--deep", "--force", "--options", "runtime", "--timestamp",
            "--entitlements", str(entitlements), "--sign", identity, str(app),
        ],
        check=True,
    )  # fmt: skip


def make_windows_installer(dist: Path, version: str) -> Path | None:
    """Compile packaging/windows/storyteller.iss with Inno Setup; None when iscc is missing."""
    iscc = shutil.which("iscc") or shutil.which("ISCC")
    default = (
        Path(os.environ.get("PROGRAMFILES(X86)", r"C:\Program Files (x86)"))
        / "Inno Setup 6"
        / "ISCC.exe"
    )
    if iscc is None and default.is_file():
        iscc = str(default)
    if iscc is None:
        print("Inno Setup (iscc) not found: no installer; install Inno Setup 6 to make one")
        return None
    subprocess.run(
        [
            iscc,
            f"/DAppVersion={version}",
            f"/DDistDir={dist / APP_NAME}",
            f"/DOutputDir={dist}",
            f"/DIconFile={PACKAGING_DIR / 'icons' / 'storyteller.ico'}",
            str(PACKAGING_DIR / "windows" / "storyteller.iss"),
        ],
        check=True,
    )
    return dist / f"{APP_NAME}-{version}-setup.exe"


def run_bundle_self_test(
    dist: Path, *, model: Path | None, mmproj: Path | None, screenshot: Path | None
) -> tuple[int, float]:
    """Run ``Storyteller --self-test`` from the bundle; return (exit code, seconds)."""
    command = [str(executable_path(dist)), "--self-test"]
    if model is not None:
        command += ["--model", str(model)]
    if mmproj is not None:
        command += ["--mmproj", str(mmproj)]
    if screenshot is not None:
        command += ["--screenshot", str(screenshot)]
    env = dict(os.environ)
    # The bundle must not find the developer's Python packages or Qt.
    for name in ("PYTHONPATH", "PYTHONHOME", "QT_PLUGIN_PATH", "LD_LIBRARY_PATH"):
        env.pop(name, None)
    print("+", " ".join(command), flush=True)
    started = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=dist, check=False)
    return result.returncode, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder (dist/)")
    parser.add_argument(
        "--work",
        type=Path,
        default=ROOT / "build" / "pyinstaller",
        help="PyInstaller's work folder",
    )
    parser.add_argument("--clean", action="store_true", help="discard PyInstaller's cache first")
    parser.add_argument("--skip-build", action="store_true", help="reuse the bundle in --dist")
    parser.add_argument(
        "--archive", action="store_true", help="make the tar.gz and .deb / .dmg / installer"
    )
    parser.add_argument("--sign-identity", help="macOS: codesign the .app with this identity")
    parser.add_argument("--self-test", action="store_true", help="run the bundle's self-test")
    parser.add_argument("--model", type=Path, help="text GGUF for the self-test's story check")
    parser.add_argument("--mmproj", type=Path, help="mmproj GGUF for the self-test's story check")
    parser.add_argument("--screenshot", type=Path, help="self-test: save the Qt test widget here")
    parser.add_argument(
        "--dry-run",
        type=Path,
        metavar="OUT",
        help="build nothing: write the metadata, icons and plan.json of --target's build to OUT",
    )
    parser.add_argument(
        "--target",
        default=Target.current().tag,
        help=f"with --dry-run: {', '.join(release_targets.RELEASE_TARGETS)} (default: this OS)",
    )
    args = parser.parse_args(argv)

    version = project_version()
    if args.dry_run is not None:
        try:
            target = Target.parse(args.target)
        except ValueError as err:
            parser.error(str(err))
        plan = dry_run(args.dry_run.resolve(), target, version, args.sign_identity)
        print(json.dumps(plan, indent=2))
        print(f"dry run for {target.tag}: wrote {', '.join(plan['files'])} and plan.json")
        return 0
    dist = args.dist.resolve()
    started = time.perf_counter()
    if not args.skip_build:
        run_pyinstaller(dist, args.work.resolve(), clean=args.clean)
        if sys.platform.startswith("linux"):
            saved = link_duplicate_libraries(dist / APP_NAME / "_internal" / "llama_cpp" / "lib")
            print(f"linked duplicate llama.cpp libraries: {saved / 1e6:.1f} MB saved")
            saved = strip_python_runtime(dist / APP_NAME / "_internal")
            print(f"stripped the Python runtime: {saved / 1e6:.1f} MB saved")
            add_linux_desktop_files(dist / APP_NAME)
        if sys.platform != "darwin":
            place_notices(dist / APP_NAME)
        if sys.platform == "darwin" and args.sign_identity:
            codesign(app_path(dist), args.sign_identity)
        print(f"built {app_path(dist)} in {time.perf_counter() - started:.0f} s")
        missing = check_layout(dist, Target.current())
        if missing:
            print(f"the bundle lacks {', '.join(missing)}", file=sys.stderr)
            return 1

    bundle = app_path(dist)
    if not bundle.exists():
        print(f"no bundle at {bundle}: build it first (without --skip-build)", file=sys.stderr)
        return 1
    print(f"bundle size: {tree_size(bundle) / 1e6:.0f} MB on disk")
    for name, size in largest_parts(bundle):
        print(f"  {size / 1e6:7.1f} MB  {name}")

    if args.archive:
        if sys.platform == "darwin":
            archive: Path | None = make_dmg(bundle, version)
        elif sys.platform == "win32":
            archive = make_zip(bundle, version)
            print(f"archive: {archive} ({archive.stat().st_size / 1e6:.0f} MB)")
            archive = make_windows_installer(dist, version)
        else:
            archive = make_tarball(bundle, version)
        if archive is not None:
            print(f"archive: {archive} ({archive.stat().st_size / 1e6:.0f} MB)")
        if sys.platform.startswith("linux") and shutil.which("dpkg-deb"):
            deb = make_deb(bundle, version)
            print(f"package: {deb} ({deb.stat().st_size / 1e6:.0f} MB)")

    if args.self_test:
        code, seconds = run_bundle_self_test(
            dist, model=args.model, mmproj=args.mmproj, screenshot=args.screenshot
        )
        print(f"bundle self-test: exit {code} in {seconds:.2f} s (wall, including start-up)")
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
