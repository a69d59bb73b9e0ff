"""Fixtures for the packaging tests: the scripts under packaging/, loaded by path.

``packaging/`` is not a Python package (its name belongs to the PyPI library that pip and
PyInstaller import), so its modules are loaded from their files.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

PACKAGING_DIR = Path(__file__).resolve().parents[2] / "packaging"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"storyteller_packaging_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and friends look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def packaging_dir() -> Path:
    return PACKAGING_DIR


@pytest.fixture(scope="session")
def bundle_rules() -> ModuleType:
    return _load("bundle_rules", PACKAGING_DIR / "bundle_rules.py")


@pytest.fixture(scope="session")
def build_script() -> ModuleType:
    return _load("build", PACKAGING_DIR / "build.py")


@pytest.fixture(scope="session")
def licences() -> ModuleType:
    return _load("licences", PACKAGING_DIR / "licences.py")


@pytest.fixture(scope="session")
def release_targets() -> ModuleType:
    return _load("release_targets", PACKAGING_DIR / "release_targets.py")


@pytest.fixture(scope="session")
def make_icons() -> ModuleType:
    return _load("make_icons", PACKAGING_DIR / "icons" / "make_icons.py")


@pytest.fixture(scope="session")
def xwd_to_png() -> ModuleType:
    return _load("xwd_to_png", PACKAGING_DIR / "xwd_to_png.py")
