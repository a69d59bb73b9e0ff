"""The third-party licence texts and notices every Storyteller bundle carries.

``storyteller.spec`` calls this while PyInstaller builds (``packaging/build.py``): it finds the
installed distributions whose files the analysis collected (``distributions_owning``), refuses
to build when one has no licence text or declares the GPL (``problems``), and writes their
licence files with an index and the LGPL source notes into ``THIRD-PARTY-NOTICES/``
(``write_notices``), which the spec adds to the bundle *before* PyInstaller assembles (and, on
macOS, signs) it: a file added to a signed .app afterwards breaks its seal.

Texts come from each distribution's own metadata (``License-File`` entries and licence files in
its ``.dist-info``); ``SUPPLEMENTS`` adds what the metadata lacks (PySide6's wheels carry no
licence file; llama-cpp-python's covers the bindings, not llama.cpp) from ``packaging/licenses/``.

Standard library only (the spec imports it inside PyInstaller; tests load it by path).
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

NOTICES_DIR = "THIRD-PARTY-NOTICES"
SUPPLEMENT_DIR = Path(__file__).resolve().parent / "licenses"

# Files in a .dist-info folder that are licence texts or notices, whatever the metadata lists.
_LICENCE_FILE = re.compile(r"^(?:licen[cs]e|copying|notice|copyright|authors)", re.IGNORECASE)

# Licence texts from packaging/licenses/ that a distribution needs besides its own metadata.
# LGPLv3 is a set of permissions on top of the GPLv3, so both texts go with an LGPL library.
_LGPL = ("LGPL-3.0.txt", "GPL-3.0.txt")
SUPPLEMENTS: dict[str, tuple[str, ...]] = {
    "pyside6-essentials": _LGPL,  # Qt and Qt for Python, used under the LGPLv3
    "shiboken6": _LGPL,
    "pi-heif": _LGPL,  # libheif and libde265 inside its wheel
    "llama-cpp-python": ("llama.cpp-MIT.txt",),
}

# A licence line in a text that puts the distribution (or its binary wheel) under the GPL:
# "License: GPLv2", 'License for "pillow-heif" binary wheels: GPLv2'. A GCC runtime library
# under "GPL-3.0-or-later WITH GCC-exception-3.1" (numpy's libgfortran) is not one.
_GPL_LICENCE_LINE = re.compile(
    r"^\s*licen[cs]e\b[^:\n]{0,80}:\s*(?:GPL|GNU General Public)", re.IGNORECASE | re.MULTILINE
)
# The app itself (its own licence heads the notices), never a third party.
APP_DISTRIBUTION = "storyteller"
# GPL-licensed distributions whose licence makes an exception for what the bundle takes from
# them: PyInstaller's bootloader and run-time modules are in every app it builds, and its
# licence allows distributing such apps under any licence.
GPL_EXCEPTIONS: dict[str, str] = {
    "pyinstaller": "GPL-2.0-or-later with PyInstaller's exception for the bootloader and the "
    "run-time modules in built apps (https://pyinstaller.org/en/stable/license.html)",
}
_GPL_ID = re.compile(r"^(?:A?GPL)", re.IGNORECASE)  # GPL-2.0-only, AGPL-3.0; not LGPL


def normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them: ``PySide6_Essentials`` -> ``pyside6-essentials``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class BundledDistribution:
    """One installed distribution that the bundle carries, with what it says about its licence."""

    name: str
    version: str
    declared: str  # License-Expression, else the short License field, else the classifiers
    classifiers: tuple[str, ...] = ()
    texts: dict[str, str] = field(default_factory=dict)  # file name -> licence text

    @property
    def key(self) -> str:
        return normalise(self.name)

    @property
    def folder(self) -> str:
        return f"{self.key}-{self.version}"


def _declared(meta: metadata.PackageMetadata) -> tuple[str, tuple[str, ...]]:
    classifiers = tuple(
        c.removeprefix("License :: ").removeprefix("OSI Approved :: ")
        for c in meta.get_all("Classifier") or ()
        if c.startswith("License ::")
    )
    expression = meta.get("License-Expression") or ""
    short = (meta.get("License") or "").strip()
    if not expression and short and "\n" not in short and len(short) < 120:
        expression = short  # some put the whole text in License; that is no declaration
    if expression and classifiers and not any(c in expression for c in classifiers):
        # pi-heif: "BSD-3-Clause" for its code, classified LGPLv3 for its wheels' libraries
        expression += f" (classified: {'; '.join(classifiers)})"
    return expression or "; ".join(classifiers), classifiers


def _texts(dist: metadata.Distribution) -> dict[str, str]:
    """Licence files of ``dist``: its License-File entries and licence-like dist-info files."""
    listed = set(dist.metadata.get_all("License-File") or ())
    texts: dict[str, str] = {}
    for file in dist.files or ():
        parts = file.parts
        if not parts or not parts[0].endswith(".dist-info"):
            continue
        inside = "/".join(parts[1:])
        wanted = inside.removeprefix("licenses/") in listed or _LICENCE_FILE.match(parts[-1])
        if not wanted:
            continue
        path = Path(dist.locate_file(file))
        if path.is_file():
            texts[inside.removeprefix("licenses/")] = path.read_text(
                encoding="utf-8", errors="replace"
            )
    return texts


def describe(dist: metadata.Distribution) -> BundledDistribution:
    """What ``dist`` declares and the licence texts it ships, plus its ``SUPPLEMENTS``."""
    declared, classifiers = _declared(dist.metadata)
    result = BundledDistribution(
        name=dist.metadata["Name"],
        version=dist.version,
        declared=declared,
        classifiers=classifiers,
        texts=_texts(dist),
    )
    for supplement in SUPPLEMENTS.get(result.key, ()):
        result.texts[supplement] = (SUPPLEMENT_DIR / supplement).read_text(encoding="utf-8")
    return result


def _gpl_only(expression: str) -> bool:
    """Whether an SPDX-style expression leaves no choice but a GPL: every OR-alternative has a
    GPL term without an exception (``LGPL-3.0-only OR GPL-2.0-only`` is a choice, so no)."""
    alternatives = re.split(r"\s+OR\s+|/", expression.replace("(", " ").replace(")", " "))
    return all(
        any(
            _GPL_ID.match(term.strip()) and " WITH " not in term.upper()
            for term in re.split(r"\s+AND\s+", alternative)
        )
        for alternative in alternatives
        if alternative.strip()
    )


def gpl_reason(dist: BundledDistribution) -> str | None:
    """Why ``dist`` counts as GPL-licensed (a bundle cannot carry it), or None."""
    if dist.key in GPL_EXCEPTIONS:
        return None
    if dist.declared and _gpl_only(dist.declared):
        return f"declares {dist.declared}"
    for classifier in dist.classifiers:
        gpl = "GNU General Public License" in classifier and "Lesser" not in classifier
        if gpl and not any("Lesser" in c or "LGPL" in c for c in dist.classifiers):
            return f"is classified {classifier}"
    for name, text in dist.texts.items():
        if name in SUPPLEMENTS.get(dist.key, ()):
            continue  # our own supplements (the GPL text goes with the LGPL)
        for match in _GPL_LICENCE_LINE.finditer(text):
            line = text[match.start() : text.find("\n", match.start())].strip()
            if "exception" not in line.lower():
                return f"says in {name}: {line}"
    return None


def problems(distributions: Iterable[BundledDistribution]) -> list[str]:
    """What stops a release: a bundled distribution without licence text, or under the GPL."""
    found = []
    for dist in distributions:
        if not dist.texts:
            found.append(
                f"{dist.name} {dist.version} has no licence text in its metadata: add one to "
                "packaging/licenses/ and name it in licences.SUPPLEMENTS"
            )
        reason = gpl_reason(dist)
        if reason is not None:
            found.append(
                f"{dist.name} {dist.version} {reason}: a GPL library makes the whole app GPL; "
                "leave it out or use an alternative (as pi-heif replaced pillow-heif)"
            )
    return found


def distributions_owning(paths: Iterable[str | os.PathLike[str]]) -> list[BundledDistribution]:
    """The installed distributions that own any of ``paths`` (files PyInstaller collected)."""
    wanted = {os.path.realpath(p) for p in paths}
    owners = []
    for dist in metadata.distributions():
        files = dist.files or ()
        if any(os.path.realpath(dist.locate_file(f)) in wanted for f in files):
            owners.append(dist)
    unique = {normalise(d.metadata["Name"]): d for d in owners}
    unique.pop(APP_DISTRIBUTION, None)
    return [describe(unique[key]) for key in sorted(unique)]


def python_licence() -> str | None:
    """The licence of the Python runtime the bundle carries, from the build machine's Python."""
    base = Path(sys.base_prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (
        base / "LICENSE.txt",  # Windows
        base / "lib" / version / "LICENSE.txt",  # python.org macOS and Linux builds
        Path("/usr/lib") / version / "LICENSE.txt",  # Debian
    ):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8", errors="replace")
    return None


def _lgpl_sources(distributions: list[BundledDistribution]) -> list[str]:
    """Where the source of each bundled LGPL library is, in the versions bundled."""
    by_key = {d.key: d for d in distributions}
    notes = []
    qt = by_key.get("pyside6-essentials")
    if qt is not None:
        minor = ".".join(qt.version.split(".")[:2])
        notes.append(
            f"Qt {qt.version} and Qt for Python (PySide6, shiboken6) {qt.version}, LGPLv3:\n"
            f"  in the bundle: PySide6/ and shiboken6/ (Qt's libraries under PySide6/Qt/lib or\n"
            f"  PySide6/ on Windows, Qt*.framework on macOS), shared libraries you may replace\n"
            f"  with your own build of the same version.\n"
            f"  source: https://download.qt.io/official_releases/qt/{minor}/{qt.version}/src/\n"
            f"          https://download.qt.io/official_releases/QtForPython/pyside6/"
            f" (PySide6-{qt.version}-src)\n"
            f"          https://code.qt.io/cgit/pyside/pyside-setup.git/tag/?h=v{qt.version}"
        )
    heif = by_key.get("pi-heif")
    if heif is not None:
        libheif, libde265 = _heif_library_versions()
        notes.append(
            f"libheif {libheif} and libde265 {libde265} (inside pi-heif {heif.version}), LGPLv3:\n"
            "  in the bundle: pi_heif.libs/ (Linux), pi_heif/.dylibs/ (macOS), pi_heif/ (Windows),\n"
            "  shared libraries you may replace with your own build.\n"
            f"  source: https://github.com/strukturag/libheif/tree/v{libheif}\n"
            f"          https://github.com/strukturag/libde265/tree/v{libde265}\n"
            f"          https://github.com/bigcat88/pillow_heif/tree/v{heif.version} (pi-heif)"
        )
    return notes


def _heif_library_versions() -> tuple[str, str]:
    """The libheif and libde265 versions inside the installed pi-heif (it reports them)."""
    try:
        import pi_heif

        info = pi_heif.libheif_info()
    except Exception:  # not importable here: the index says "(unknown)" rather than guess
        return "(unknown)", "(unknown)"
    decoder = " ".join(info.get("decoders", {}).values())
    match = re.search(r"libde265\D*?(\d+\.\d+\.\d+)", decoder)
    return info.get("libheif", "(unknown)"), match.group(1) if match else "(unknown)"


def index_text(distributions: list[BundledDistribution], *, app_version: str) -> str:
    """README.txt of the notices folder: what is bundled, under which licence, and the sources."""
    width = max(len(f"{d.name} {d.version}") for d in distributions)
    rows = "\n".join(
        f"  {f'{d.name} {d.version}':<{width}}  "
        f"{GPL_EXCEPTIONS.get(d.key) or d.declared or '(see its folder)'}  -> {d.folder}/"
        for d in distributions
    )
    lgpl = "\n\n".join(_lgpl_sources(distributions)) or "  (none)"
    return f"""Storyteller {app_version}: third-party software in this app

Storyteller itself is licensed under the Apache License 2.0. It bundles the Python
distributions below; each folder here holds the licence texts and notices that distribution
ships (and, where it ships none or not all, the texts from Storyteller's packaging/licenses/).

{rows}

The Python runtime is in python/LICENSE.txt. The build machine's C/C++ runtime libraries
(libstdc++, libgcc_s, libgomp on Linux; the Visual C++ runtime on Windows) are bundled
as PyInstaller copies them: GCC's are under the GPLv3 with the GCC Runtime Library
Exception, which allows this; Microsoft's are redistributable. The executable's start-up
code is PyInstaller's bootloader, under the exception listed with pyinstaller above.

LGPL libraries: Storyteller links them dynamically and does not modify them. Their licence
is in LGPL-3.0.txt (with GPL-3.0.txt, which it builds on) in their folders; their source:

{lgpl}
"""


def write_notices(
    target: Path, distributions: list[BundledDistribution], *, app_version: str
) -> list[Path]:
    """Write the notices folder (replacing ``target``); returns the files written."""
    written: list[Path] = []

    def write(relative: str, text: str) -> None:
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)

    if target.exists():
        for old in sorted(target.rglob("*"), reverse=True):
            old.rmdir() if old.is_dir() else old.unlink()
    write("README.txt", index_text(distributions, app_version=app_version))
    for dist in distributions:
        for name, text in sorted(dist.texts.items()):
            write(f"{dist.folder}/{name}", text)
    python = python_licence()
    write(
        "python/LICENSE.txt",
        python
        or (
            f"Python {sys.version.split()[0]} is distributed under the PSF License Agreement: "
            "https://docs.python.org/3/license.html\n"
        ),
    )
    return written
