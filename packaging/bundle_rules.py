"""What goes into the Storyteller bundle and what is left out (used by ``storyteller.spec``).

PyInstaller's Qt hooks collect every plugin of every plugin type a Qt module *might* use, and the
libraries those plugins link (the PDF image plugin alone drags in QtPdf, the QML tooling drags in
QtQml and QtQuick). The app needs far less, so the spec filters PyInstaller's file lists through
``keep_entry``. The rules are plain data below so a test can check them and a reader can see at
a glance what the bundle contains.

This module only uses the standard library: the spec imports it inside PyInstaller, and the tests
import it from ``packaging/`` by path (``packaging`` is not a Python package: the name belongs to
the PyPI library of the same name that pip and PyInstaller import).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

# Qt plugins the app uses, by plugin type. Anything else under Qt's plugins folder is dropped.
KEEP_QT_PLUGINS: dict[str, frozenset[str]] = {
    # offscreen: the self-test and CI; xcb: X11 and XWayland; wayland: native Wayland sessions;
    # cocoa/windows: the other two desktops; minimal is not needed.
    "platforms": frozenset({"offscreen", "xcb", "wayland", "cocoa", "windows", "direct2d"}),
    "xcbglintegrations": frozenset({"xcb-egl-integration", "xcb-glx-integration"}),
    "wayland-shell-integration": frozenset({"xdg-shell"}),
    "wayland-decoration-client": frozenset({"bradient", "adwaita"}),
    "wayland-graphics-integration-client": frozenset(
        {"qt-plugin-wayland-egl", "shm-emulation-server"}
    ),
    # Photos: JPEG, PNG (built into QtGui), GIF, WebP, TIFF; SVG for icons; ICO for Windows icons.
    "imageformats": frozenset({"jpeg", "gif", "webp", "tiff", "svg", "ico", "icns"}),
    "iconengines": frozenset({"svgicon"}),
    # Dead keys and input methods (accents, CJK) when the user renames a character.
    "platforminputcontexts": frozenset(
        {"composeplatforminputcontextplugin", "ibusplatforminputcontextplugin"}
    ),
    # Native file dialogs through the XDG portal (Flatpak/Snap/GNOME/KDE); gtk3 would drag in GTK.
    "platformthemes": frozenset({"xdgdesktopportal"}),
    # Native look on Windows 10/11 and macOS.
    "styles": frozenset({"modernwindowsstyle", "windowsvistastyle", "macstyle"}),
}

# Qt modules the app does not use. They are excluded from the analysis, and their libraries are
# removed if a plugin's dependency pulled them in anyway. ``check_app_imports`` fails the build if
# the app starts importing one of them, so the list cannot silently break a new feature.
EXCLUDED_QT_MODULES: tuple[str, ...] = (
    "Qt3DAnimation", "Qt3DCore", "Qt3DExtras", "Qt3DInput", "Qt3DLogic", "Qt3DRender",
    "QtBluetooth", "QtCharts", "QtDataVisualization", "QtDesigner", "QtGraphs",
    "QtGraphsWidgets", "QtHelp", "QtHttpServer", "QtLocation", "QtMultimedia",
    "QtMultimediaWidgets", "QtNetworkAuth", "QtNfc", "QtPdf", "QtPdfWidgets", "QtPositioning",
    "QtQml", "QtQuick", "QtQuick3D", "QtQuickControls2", "QtQuickWidgets", "QtRemoteObjects",
    "QtScxml", "QtSensors", "QtSerialBus", "QtSerialPort", "QtSpatialAudio", "QtSql",
    "QtStateMachine", "QtTest", "QtTextToSpeech", "QtUiTools", "QtWebChannel",
    "QtWebEngineCore", "QtWebEngineQuick", "QtWebEngineWidgets", "QtWebSockets", "QtWebView",
    "QtAxContainer",
)  # fmt: skip

# Library name stems (after "Qt6"/"Qt") of the excluded modules plus their private helpers.
_EXCLUDED_QT_LIB = re.compile(
    r"(?:^|/)(?:lib)?Qt6?(?:3D\w*|Bluetooth|Charts\w*|DataVisualization\w*|Designer\w*|Graphs\w*"
    r"|Help|HttpServer|Location|Multimedia\w*|NetworkAuth|Nfc|Pdf\w*|Positioning\w*|Qml\w*"
    r"|Quick\w*|RemoteObjects\w*|Scxml\w*|Sensors\w*|SerialBus|SerialPort|SpatialAudio|Sql"
    r"|StateMachine\w*|Test|TextToSpeech|UiTools|VirtualKeyboard\w*|WebChannel\w*|WebEngine\w*"
    r"|WebSockets|WebView\w*|ShaderTools|Labs\w*|Lottie\w*|EglFS\w*|EglFs\w*|WaylandCompositor\w*"
    r"|WaylandEglCompositor\w*)"
    r"(?:\.so[.\d]*|\.dll|\.framework(?:/.*)?|\.pyi?|\.abi3\.so|\.pyd)$"
)

# Qt translations: only qtbase's (standard dialogs and buttons in the user's language), and only
# when the app installs a QTranslator (``uses_qt_translations``): unused, they are 6 MB.
_QT_TRANSLATION = re.compile(r"(?:^|/)translations/(?P<name>[^/]+)\.qm$")

# Libraries that must come from the user's system, never from the build machine: the GPU driver's
# own libraries (a bundled libcuda would not match the user's kernel driver) and the Vulkan loader.
_SYSTEM_ONLY_LIBS = re.compile(
    r"(?:^|/)(?:libcuda\.so[.\d]*|libnvidia-[\w.-]+\.so[.\d]*|nvcuda\.dll|libvulkan\.so[.\d]*"
    r"|vulkan-1\.dll)$"
)

# llama-cpp-python's wheel stores every SONAME link as a full copy (libllama.so, .so.0,
# .so.0.5.0). ctypes loads libX.so and the libraries link libX.so.0; the fully versioned copy is
# used by nothing.
_FULLY_VERSIONED_LLAMA_LIB = re.compile(r"(?:^|/)llama_cpp/lib/lib[\w-]+\.so\.\d+\.\d+\.\d+$")

# Python packages that are build or test tools, never used by the app at run time.
EXCLUDED_PYTHON_MODULES: tuple[str, ...] = (
    "tkinter", "_tkinter", "turtle", "turtledemo", "idlelib", "lib2to3", "pydoc_data",
    "ensurepip", "venv", "distutils", "setuptools", "pkg_resources", "pip", "wheel",
    "pytest", "_pytest", "pytestqt", "hypothesis", "IPython", "matplotlib", "test",
    "PyInstaller", "ruff", "importlinter", "grimp", "torch", "transformers",
    "llama_cpp.server",
    # Terminal pretty-printers only reached through httpx's command line and pydantic's debug
    # helpers; the app's own progress output is tqdm.
    "rich", "pygments", "click", "markdown_it", "mdurl",
    # huggingface_hub's Xet transfer client (11 MB): convert/hub.py downloads through the plain
    # resolve URL (the Hub serves Xet-stored files there too), and without its metadata in the
    # bundle huggingface_hub counts it as not installed anyway.
    "hf_xet",
)  # fmt: skip

# The ``eval`` extra (README, "Measuring quality"): ``storyteller eval`` is for a source install.
# The app imports these only inside that command and says to install the extra when they are
# missing, so the bundle leaves them out rather than grow by pyarrow's 100+ MB.
OPTIONAL_EXTRA_MODULES: tuple[str, ...] = ("pyarrow", "nltk", "rouge_score", "absl")

# Plugin types whose files Qt names "q<name>" (qjpeg, qxcb, qsvgicon); the others have plain names.
_Q_PREFIXED_PLUGIN_TYPES = frozenset(
    {
        "platforms", "imageformats", "platformthemes", "styles", "xcbglintegrations",
        "iconengines", "tls", "networkinformation", "sqldrivers", "generic",
        "egldeviceintegrations", "vectorimageformats",
    }
)  # fmt: skip


def excluded_modules() -> list[str]:
    """Module names to pass to PyInstaller's ``excludes``."""
    return [
        *EXCLUDED_PYTHON_MODULES,
        *OPTIONAL_EXTRA_MODULES,
        *(f"PySide6.{name}" for name in EXCLUDED_QT_MODULES),
    ]


def _posix(dest: str) -> str:
    return dest.replace("\\", "/")


def qt_plugin_of(dest: str) -> tuple[str, str] | None:
    """(plugin type, plugin name) of a bundled Qt plugin file, or None if it is not one.

    ``PySide6/Qt/plugins/imageformats/libqjpeg.so`` -> ``("imageformats", "jpeg")``; the same for
    ``PySide6/plugins/imageformats/qjpeg.dll`` (Windows) and ``libqjpeg.dylib`` (macOS).
    """
    parts = PurePosixPath(_posix(dest)).parts
    if "PySide6" not in parts or "plugins" not in parts:
        return None
    index = parts.index("plugins")
    if len(parts) != index + 3:
        return None
    plugin_type, file_name = parts[index + 1], parts[index + 2]
    stem = file_name.split(".")[0]
    if stem.startswith("lib"):
        stem = stem[3:]
    if plugin_type in _Q_PREFIXED_PLUGIN_TYPES:
        stem = stem.removeprefix("q")
    return plugin_type, stem


def keep_entry(dest: str, *, qt_translations: bool = True) -> bool:
    """Whether a file PyInstaller collected (by its path inside the bundle) stays in the bundle.

    ``qt_translations``: keep Qt's own qtbase translations (when the app loads them).
    """
    path = _posix(dest)
    plugin = qt_plugin_of(path)
    if plugin is not None:
        plugin_type, name = plugin
        return name in KEEP_QT_PLUGINS.get(plugin_type, frozenset())
    if "/plugins/" in path and "PySide6/" in path:
        return False  # plugin support files of dropped plugin types (e.g. qmltooling folders)
    if _EXCLUDED_QT_LIB.search(path):
        return False
    if "PySide6/" in path and ("/qml/" in path or path.endswith("/qml")):
        return False
    translation = _QT_TRANSLATION.search(path)
    if translation is not None and "PySide6/" in path:
        return qt_translations and translation.group("name").startswith("qtbase_")
    if _SYSTEM_ONLY_LIBS.search(path):
        return False
    return not _FULLY_VERSIONED_LLAMA_LIB.search(path)


def filter_entries(
    entries: Iterable[tuple[str, str, str]], *, qt_translations: bool = True
) -> list[tuple[str, str, str]]:
    """PyInstaller TOC entries ``(dest, src, typecode)`` that ``keep_entry`` keeps."""
    return [entry for entry in entries if keep_entry(entry[0], qt_translations=qt_translations)]


def uses_qt_translations(source_root: Path, packages: Iterable[str]) -> bool:
    """Whether the app's code loads Qt translations (mentions ``QTranslator``)."""
    return any(
        "QTranslator" in path.read_text(encoding="utf-8")
        for package in packages
        for path in (source_root / package).rglob("*.py")
    )


def modules_imported_by(source_root: Path, packages: Iterable[str]) -> dict[str, set[str]]:
    """Imported module name -> the files of ``packages`` (under ``source_root``) importing it.

    ``from PySide6 import QtPdf`` counts as ``PySide6.QtPdf``; relative imports are skipped.
    """
    found: dict[str, set[str]] = {}
    for package in packages:
        for path in sorted((source_root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names = [node.module]
                    if node.module == "PySide6":
                        names = [f"PySide6.{alias.name}" for alias in node.names]
                for name in names:
                    found.setdefault(name, set()).add(path.relative_to(source_root).as_posix())
    return found


def _excluded_by(module: str) -> str | None:
    """The exclusion entry that removes ``module`` from the bundle, if any."""
    parts = module.split(".")
    if parts[0] == "PySide6" and len(parts) > 1 and parts[1] in EXCLUDED_QT_MODULES:
        return f"PySide6.{parts[1]} (EXCLUDED_QT_MODULES)"
    for excluded in EXCLUDED_PYTHON_MODULES:
        if module == excluded or module.startswith(excluded + "."):
            return f"{excluded} (EXCLUDED_PYTHON_MODULES)"
    return None


def check_app_imports(source_root: Path, packages: Iterable[str]) -> list[str]:
    """Problems: app files importing a module the bundle leaves out (empty when none)."""
    problems = []
    for module, files in sorted(modules_imported_by(source_root, packages).items()):
        excluded = _excluded_by(module)
        if excluded is not None:
            problems.append(
                f"{', '.join(sorted(files))} imports {module}, which the bundle excludes: "
                f"remove {excluded} from packaging/bundle_rules.py"
            )
    return problems
