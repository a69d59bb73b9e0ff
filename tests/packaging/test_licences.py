"""Licences a release can ship: every bundled distribution brings its licence text, none is GPL.

The build itself (storyteller.spec) refuses to bundle a distribution that ``licences.problems``
names; these tests check the rules on made-up distributions and on what this environment
installs for the app (every runtime dependency of ``storyteller``, which is what the bundle
draws from).
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement


def runtime_closure(root: str = "storyteller") -> dict[str, metadata.Distribution]:
    """``root`` and every distribution it needs at run time (no extras), as installed here."""
    found: dict[str, metadata.Distribution] = {}
    pending = [root]
    while pending:
        name = re.sub(r"[-_.]+", "-", pending.pop()).lower()
        if name in found:
            continue
        dist = metadata.distribution(name)
        found[name] = dist
        for line in dist.requires or ():
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    del found[root]
    return found


def fake_distribution(
    site: Path, name: str, *, headers: str = "", licence_files: dict[str, str] | None = None
) -> metadata.Distribution:
    """An installed distribution in ``site``: METADATA, a module, licence files, a RECORD."""
    info = site / f"{name}-1.0.dist-info"
    (info / "licenses").mkdir(parents=True)
    (site / f"{name}.py").write_text("", encoding="utf-8")
    listed = "".join(f"License-File: {file}\n" for file in licence_files or {})
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.4\nName: {name}\nVersion: 1.0\n{headers}{listed}", encoding="utf-8"
    )
    records = [f"{name}.py,,", f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    for file, text in (licence_files or {}).items():
        (info / "licenses" / file).write_text(text, encoding="utf-8")
        records.append(f"{info.name}/licenses/{file},,")
    (info / "RECORD").write_text("\n".join(records) + "\n", encoding="utf-8")
    return metadata.PathDistribution(info)


MIT = "MIT License\n\nPermission is hereby granted, free of charge...\n"


def test_every_runtime_dependency_ships_a_licence_and_none_is_gpl(licences: ModuleType) -> None:
    closure = runtime_closure()
    # The ones the question is about are really there, and the GPL wheel is not a dependency.
    assert {"pyside6-essentials", "shiboken6", "llama-cpp-python", "pi-heif"} <= set(closure)
    assert "pillow-heif" not in closure
    described = [licences.describe(dist) for dist in closure.values()]
    assert licences.problems(described) == []


def test_a_wheel_that_says_it_is_gpl_is_refused(licences: ModuleType, tmp_path: Path) -> None:
    """pillow-heif's case: BSD code, but its binary wheels are GPLv2 because of x265."""
    dist = fake_distribution(
        tmp_path,
        "heifish",
        headers="License: BSD-3-Clause\n",
        licence_files={
            "LICENSE.txt": "BSD 3-Clause License\n",
            "LICENSES_bundled.txt": 'License for "heifish" binary wheels: GPLv2, due to x265.\n\n'
            "Name: x265\nLicense: GPLv2\n",
        },
    )
    found = licences.problems([licences.describe(dist)])
    assert len(found) == 1
    assert "heifish 1.0 says in LICENSES_bundled.txt" in found[0] and "GPLv2" in found[0]


@pytest.mark.parametrize(
    ("headers", "gpl"),
    [
        ("License-Expression: GPL-3.0-only\n", True),
        ("License-Expression: MIT AND GPL-2.0-or-later\n", True),
        ("License: AGPL-3.0\n", True),
        ("Classifier: License :: OSI Approved :: GNU General Public License v3 (GPLv3)\n", True),
        # PySide6: a choice that includes the LGPL is fine
        ("License-Expression: LGPL-3.0-only OR GPL-2.0-only OR GPL-3.0-only\n", False),
        ("Classifier: License :: OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)\n", False),
        ("License-Expression: GPL-3.0-or-later WITH GCC-exception-3.1\n", False),
        ("License-Expression: MIT\n", False),
    ],
)  # fmt: skip
def test_gpl_declarations_are_refused_and_lgpl_or_choices_are_not(
    licences: ModuleType, tmp_path: Path, headers: str, gpl: bool
) -> None:
    dist = fake_distribution(tmp_path, "lib", headers=headers, licence_files={"LICENSE": MIT})
    found = licences.problems([licences.describe(dist)])
    assert bool(found) == gpl, found
    if gpl:
        assert "a GPL library makes the whole app GPL" in found[0]


def test_a_gcc_runtime_exception_in_a_licence_text_is_not_gpl(
    licences: ModuleType, tmp_path: Path
) -> None:
    """numpy's wheel bundles libgfortran and says so; the runtime exception allows it."""
    text = "Name: GCC runtime library\nLicense: GPL-3.0-or-later WITH GCC-exception-3.1\n"
    dist = fake_distribution(tmp_path, "numpyish", licence_files={"LICENSE.txt": text})
    assert licences.problems([licences.describe(dist)]) == []


def test_a_distribution_without_licence_text_is_refused(
    licences: ModuleType, tmp_path: Path
) -> None:
    dist = fake_distribution(tmp_path, "bare", headers="License-Expression: MIT\n")
    found = licences.problems([licences.describe(dist)])
    assert found == [
        "bare 1.0 has no licence text in its metadata: add one to packaging/licenses/ and "
        "name it in licences.SUPPLEMENTS"
    ]


def test_qt_and_llama_cpp_get_the_texts_their_wheels_lack(licences: ModuleType) -> None:
    """PySide6's wheels carry no licence file; llama-cpp-python's covers only the bindings."""
    qt = licences.describe(metadata.distribution("pyside6-essentials"))
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in qt.texts["LGPL-3.0.txt"]
    assert "GNU GENERAL PUBLIC LICENSE" in qt.texts["GPL-3.0.txt"]
    llama = licences.describe(metadata.distribution("llama-cpp-python"))
    assert "The ggml authors" in llama.texts["llama.cpp-MIT.txt"]
    assert "Andrei Betlen" in llama.texts["LICENSE.md"]  # its own, from the metadata
    heif = licences.describe(metadata.distribution("pi-heif"))
    assert "LGPLv3" in heif.texts["LICENSES_bundled.txt"] and "LGPL-3.0.txt" in heif.texts


def test_collected_files_are_traced_to_their_distributions(licences: ModuleType) -> None:
    import numpy
    import pi_heif
    from PIL import Image

    heif_libs = [
        Path(metadata.distribution("pi-heif").locate_file(f))
        for f in metadata.distribution("pi-heif").files or ()
        if ".libs" in str(f) or ".dylibs" in str(f)
    ]
    paths = [numpy.__file__, Image.__file__, os.__file__, *heif_libs[:1]]
    if not heif_libs:  # a wheel without vendored libraries: its extension module then
        paths.append(pi_heif.__file__)
    owners = licences.distributions_owning(paths)
    assert [d.key for d in owners] == ["numpy", "pi-heif", "pillow"]  # os: the stdlib, no owner


def test_notices_list_each_distribution_and_where_the_lgpl_sources_are(
    licences: ModuleType, tmp_path: Path
) -> None:
    bundled = [
        licences.describe(metadata.distribution(name))
        for name in ("pyside6-essentials", "pi-heif", "llama-cpp-python")
    ]
    target = tmp_path / "THIRD-PARTY-NOTICES"
    target.mkdir()
    (target / "stale.txt").write_text("from an older build", encoding="utf-8")
    written = licences.write_notices(target, bundled, app_version="9.9")
    assert not (target / "stale.txt").exists()
    assert set(written) == {p for p in target.rglob("*") if p.is_file()}
    index = (target / "README.txt").read_text(encoding="utf-8")
    assert "Storyteller 9.9" in index
    for dist in bundled:
        assert f"-> {dist.folder}/" in index
        assert all((target / dist.folder / name).is_file() for name in dist.texts)
    qt_version = metadata.version("pyside6-essentials")
    assert f"https://download.qt.io/official_releases/qt/{qt_version.rsplit('.', 1)[0]}/" in index
    import pi_heif

    libheif = pi_heif.libheif_info()["libheif"]
    assert f"https://github.com/strukturag/libheif/tree/v{libheif}" in index
    assert "(unknown)" not in index
    assert (target / "python" / "LICENSE.txt").read_text(encoding="utf-8").strip()


def test_pyinstaller_runtime_is_allowed_by_its_exception_and_the_app_is_not_third_party(
    licences: ModuleType, tmp_path: Path
) -> None:
    """Every frozen app carries PyInstaller's bootloader and run-time modules; its GPL has an
    exception for them, which the notices name."""
    dist = fake_distribution(
        tmp_path,
        "pyinstaller",
        headers="Classifier: License :: OSI Approved :: GNU General Public License v2 (GPLv2)\n",
        licence_files={"COPYING.txt": "GPL with the bootloader exception\n"},
    )
    described = licences.describe(dist)
    assert licences.problems([described]) == []
    index = licences.index_text([described], app_version="1")
    assert "exception for the bootloader" in index
    import desktop_app

    owners = licences.distributions_owning([desktop_app.__file__])
    assert owners == []  # the app's own code: its licence heads the notices
