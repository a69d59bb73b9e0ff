"""What the bundle keeps and drops (packaging/bundle_rules.py) and build.py's post-processing."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("dest", "kept"),
    [
        # Linux wheels: PySide6/Qt/plugins/<type>/lib<name>.so
        ("PySide6/Qt/plugins/platforms/libqoffscreen.so", True),
        ("PySide6/Qt/plugins/platforms/libqxcb.so", True),
        ("PySide6/Qt/plugins/platforms/libqwayland.so", True),
        ("PySide6/Qt/plugins/platforms/libqvnc.so", False),
        ("PySide6/Qt/plugins/platforms/libqeglfs.so", False),
        ("PySide6/Qt/plugins/imageformats/libqjpeg.so", True),
        ("PySide6/Qt/plugins/imageformats/libqwebp.so", True),
        ("PySide6/Qt/plugins/imageformats/libqtiff.so", True),
        ("PySide6/Qt/plugins/imageformats/libqgif.so", True),
        ("PySide6/Qt/plugins/imageformats/libqsvg.so", True),
        ("PySide6/Qt/plugins/imageformats/libqpdf.so", False),  # would drag in QtPdf
        ("PySide6/Qt/plugins/iconengines/libqsvgicon.so", True),
        ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", False),  # would drag in GTK
        ("PySide6/Qt/plugins/platformthemes/libqxdgdesktopportal.so", True),
        ("PySide6/Qt/plugins/xcbglintegrations/libqxcb-egl-integration.so", True),
        ("PySide6/Qt/plugins/wayland-shell-integration/libxdg-shell.so", True),
        ("PySide6/Qt/plugins/wayland-shell-integration/libivi-shell.so", False),
        ("PySide6/Qt/plugins/platforminputcontexts/libcomposeplatforminputcontextplugin.so", True),
        ("PySide6/Qt/plugins/platforminputcontexts/libqtvirtualkeyboardplugin.so", False),
        ("PySide6/Qt/plugins/sqldrivers/libqsqlite.so", False),
        ("PySide6/Qt/plugins/tls/libqopensslbackend.so", False),
        ("PySide6/Qt/plugins/qmltooling/libqmldbg_debugger.so", False),
        # Windows and macOS layouts
        ("PySide6\\plugins\\platforms\\qwindows.dll", True),
        ("PySide6\\plugins\\imageformats\\qjpeg.dll", True),
        ("PySide6\\plugins\\styles\\qmodernwindowsstyle.dll", True),
        ("PySide6\\plugins\\imageformats\\qpdf.dll", False),
        ("PySide6/Qt/plugins/platforms/libqcocoa.dylib", True),
        ("PySide6/Qt/plugins/styles/libqmacstyle.dylib", True),
        # Qt libraries of unused modules; the used ones stay
        ("PySide6/Qt/lib/libQt6Pdf.so.6", False),
        ("PySide6/Qt/lib/libQt6Qml.so.6", False),
        ("PySide6/Qt/lib/libQt6QuickControls2.so.6", False),
        ("PySide6/Qt/lib/libQt6WebEngineCore.so.6", False),
        ("PySide6/Qt6Quick.dll", False),
        ("PySide6/Qt/lib/QtQml.framework/Versions/A/QtQml", False),
        ("PySide6/Qt/lib/libQt6Core.so.6", True),
        ("PySide6/Qt/lib/libQt6Gui.so.6", True),
        ("PySide6/Qt/lib/libQt6Widgets.so.6", True),
        ("PySide6/Qt/lib/libQt6Svg.so.6", True),
        ("PySide6/Qt/lib/libQt6XcbQpa.so.6", True),
        ("PySide6/Qt/lib/libQt6WaylandClient.so.6", True),
        ("PySide6/Qt/lib/libQt6PrintSupport.so.6", True),
        ("PySide6/Qt/lib/libicudata.so.73", True),
        # translations: Qt's own dialogs only
        ("PySide6/Qt/translations/qtbase_de.qm", True),
        ("PySide6/Qt/translations/qtdeclarative_de.qm", False),
        ("PySide6/Qt/translations/designer_de.qm", False),
        # llama.cpp: the ctypes name and the SONAME stay, the fully versioned copy goes
        ("llama_cpp/lib/libllama.so", True),
        ("llama_cpp/lib/libllama.so.0", True),
        ("llama_cpp/lib/libllama.so.0.5.0", False),
        ("llama_cpp/lib/libmtmd.so.0", True),
        ("llama_cpp/lib/libggml-cuda.so", True),
        ("llama_cpp/lib/llama.dll", True),
        # GPU driver libraries come from the user's system
        ("libcuda.so.1", False),
        ("libnvidia-ml.so.1", False),
        ("libvulkan.so.1", False),
        ("libcudart.so.12", True),
        ("numpy.libs/libscipy_openblas64_-32a4b2a6.so", True),
    ],
)
def test_bundle_keeps_what_the_app_needs(bundle_rules: ModuleType, dest: str, kept: bool) -> None:
    assert bundle_rules.keep_entry(dest) is kept


def test_every_kept_plugin_name_exists_in_the_installed_qt(bundle_rules: ModuleType) -> None:
    """A plugin renamed by a Qt upgrade would silently vanish from the bundle; catch it here."""
    import PySide6
    from PySide6.QtCore import QLibraryInfo

    if not sys.platform.startswith("linux"):
        pytest.skip("the expected plugin set below is Linux's")
    plugins_dir = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))
    bundle_root = (
        Path(PySide6.__file__).resolve().parent.parent
    )  # paths inside the bundle start at PySide6/
    kept = set()
    for path in plugins_dir.glob("*/*"):
        dest = path.resolve().relative_to(bundle_root).as_posix()
        if bundle_rules.keep_entry(dest):
            kept.add(bundle_rules.qt_plugin_of(dest))
    expected = {
        ("platforms", "offscreen"),
        ("platforms", "xcb"),
        ("platforms", "wayland"),
        ("imageformats", "jpeg"),
        ("imageformats", "gif"),
        ("imageformats", "webp"),
        ("imageformats", "tiff"),
        ("imageformats", "svg"),
        ("iconengines", "svgicon"),
        ("xcbglintegrations", "xcb-egl-integration"),
        ("wayland-shell-integration", "xdg-shell"),
    }
    assert expected <= kept


def test_the_app_imports_no_module_the_bundle_excludes(bundle_rules: ModuleType) -> None:
    """If the GUI starts using, say, QtPdf, the bundle's exclusion list must change with it."""
    assert bundle_rules.check_app_imports(REPO_ROOT, ["desktop_app", "convert"]) == []


def test_a_newly_used_excluded_module_is_reported(bundle_rules: ModuleType, tmp_path: Path) -> None:
    package = tmp_path / "app"
    package.mkdir()
    (package / "viewer.py").write_text(
        "from PySide6.QtWidgets import QWidget\nfrom PySide6 import QtPdf\nimport PySide6.QtQml\n"
    )
    (package / "cli.py").write_text("import rich.console\nfrom . import viewer\nimport json\n")
    problems = bundle_rules.check_app_imports(tmp_path, ["app"])
    assert len(problems) == 3
    assert any("app/cli.py imports rich.console" in problem for problem in problems)
    assert any("PySide6.QtPdf" in problem and "app/viewer.py" in problem for problem in problems)
    assert any("PySide6.QtQml" in problem for problem in problems)


def test_excluded_modules_leave_the_app_and_its_runtime_in(bundle_rules: ModuleType) -> None:
    excluded = set(bundle_rules.excluded_modules())
    for needed in (
        "PySide6.QtCore",
        "PySide6.QtGui",
        "PySide6.QtWidgets",
        "PySide6.QtSvg",
        "llama_cpp",
        "numpy",
        "PIL",
        "sqlite3",
        "json",
        # the first-run guide's Download and convert (convert/hub.py)
        "huggingface_hub",
        "httpx2",
        "tqdm",
    ):
        assert needed not in excluded
    assert {"tkinter", "pytest", "PySide6.QtWebEngineCore", "PySide6.QtQml"} <= excluded
    # The eval extra stays out of the bundle (storyteller eval then says to install it).
    assert {"pyarrow", "nltk", "rouge_score"} <= excluded
    # huggingface_hub's Xet client: the download uses the plain resolve URL
    assert "hf_xet" in excluded


def test_duplicate_llama_libraries_become_links(build_script: ModuleType, tmp_path: Path) -> None:
    content = b"\x7fELF" + bytes(range(200)) * 50
    (tmp_path / "libllama.so").write_bytes(content)
    (tmp_path / "libllama.so.0").write_bytes(content)
    (tmp_path / "libggml.so").write_bytes(b"\x7fELF one")
    (tmp_path / "libggml.so.0").write_bytes(b"\x7fELF two")  # differs: must stay a file
    saved = build_script.link_duplicate_libraries(tmp_path)
    assert saved == len(content)
    assert (tmp_path / "libllama.so").is_symlink()
    assert (
        os.readlink(tmp_path / "libllama.so") == "libllama.so.0"
    )  # relative: survives the tarball
    assert (tmp_path / "libllama.so").read_bytes() == content
    assert not (tmp_path / "libggml.so").is_symlink()
    assert build_script.link_duplicate_libraries(tmp_path) == 0  # idempotent


def test_bundle_size_counts_links_once(build_script: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "libx.so.0").write_bytes(b"x" * 1000)
    (tmp_path / "lib" / "libx.so").symlink_to("libx.so.0")
    assert build_script.tree_size(tmp_path) == 1000


def test_tarball_keeps_links_and_the_top_folder(build_script: ModuleType, tmp_path: Path) -> None:
    bundle = tmp_path / "Storyteller"
    (bundle / "_internal").mkdir(parents=True)
    (bundle / "Storyteller").write_text("#!/bin/sh\n")
    (bundle / "_internal" / "libx.so.0").write_bytes(b"x")
    (bundle / "_internal" / "libx.so").symlink_to("libx.so.0")
    archive = build_script.make_tarball(bundle, "9.9.9")
    import tarfile

    with tarfile.open(archive) as tar:
        members = {member.name: member for member in tar.getmembers()}
    assert archive.name.startswith("Storyteller-9.9.9-")
    assert members["Storyteller/_internal/libx.so"].issym()
    assert "Storyteller/Storyteller" in members


def test_qt_translations_ship_only_when_the_app_loads_them(
    bundle_rules: ModuleType, tmp_path: Path
) -> None:
    german = "PySide6/Qt/translations/qtbase_de.qm"
    assert not bundle_rules.keep_entry(german, qt_translations=False)
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text("from PySide6.QtCore import QCoreApplication\n")
    assert not bundle_rules.uses_qt_translations(tmp_path, ["app"])
    (app / "i18n.py").write_text("from PySide6.QtCore import QTranslator\n")
    assert bundle_rules.uses_qt_translations(tmp_path, ["app"])
