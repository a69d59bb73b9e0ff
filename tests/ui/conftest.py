"""GUI test set-up: offscreen Qt, fail on Qt warnings and on threads left running.

Every test gets a fresh library in its own STORYTELLER_HOME (tests/conftest.py). A part is
tested alone: ``make_session`` builds a ``Session`` over that library whose story backend is
scripted (deterministic) unless the test passes another one, and the test builds the part it
is about with it. Only tests marked ``end_to_end`` may build the whole window (``make_window``,
``story_window``: one already showing the sample album's finished story). Sessions and windows
are closed at the end of the test; a worker thread still running after that fails the test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import ui_sample
from PySide6.QtCore import QtMsgType
from PySide6.QtWidgets import QApplication
from ui_helpers import album_with_photos, generate_and_wait
from ui_sample import scripted_backend

from desktop_app.app.settings import open_library
from desktop_app.ui import workers

# Messages the offscreen platform prints for any top-level window; they say nothing about us.
BENIGN_QT_MESSAGES = (
    "This plugin does not support propagateSizeHints()",
    "This plugin does not support raise()",
    "This plugin does not support grabbing the keyboard",
    "QFont::setPointSizeF: Point size <= 0",
)


@pytest.fixture(autouse=True)
def fail_on_qt_warnings_and_leaked_threads(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test when Qt logged a warning or a worker thread outlived the test."""
    threads_before = set(threading.enumerate())
    yield
    qtlog = request.node.stash.get(_QTLOG_KEY, None)
    app = QApplication.instance()
    if app is not None:
        app.processEvents()
    running = workers.live_threads()
    # A _DummyThread is Python's name tag for a QThread that ran Python code calling
    # threading.current_thread() (logging does); it never ends, and QThreads are checked above.
    leaked = [
        t
        for t in threading.enumerate()
        if t not in threads_before and t.is_alive() and not isinstance(t, threading._DummyThread)
    ]
    problems = []
    if running:
        problems.append(f"{len(running)} worker QThread(s) still running after the test")
    if leaked:
        problems.append(f"threads left running: {[t.name for t in leaked]}")
    if qtlog is not None:
        bad = [
            record.message
            for record in qtlog.records
            if record.type
            in (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg)
            and not any(text in record.message for text in BENIGN_QT_MESSAGES)
        ]
        if bad:
            problems.append(f"Qt warnings: {bad}")
    if problems:
        pytest.fail("; ".join(problems))


_QTLOG_KEY = pytest.StashKey[Any]()


@pytest.fixture(autouse=True)
def only_end_to_end_tests_build_the_window(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part is tested alone with a session: building the whole window (directly, through
    ``make_window`` or through start-up) fails unless the test is marked ``end_to_end``."""
    if request.node.get_closest_marker("end_to_end") is not None:
        return
    from desktop_app.ui.main_window import MainWindow

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        pytest.fail("only tests marked end_to_end build the main window: test the part alone")

    monkeypatch.setattr(MainWindow, "__init__", refuse)


@pytest.fixture(autouse=True)
def _capture_qtlog(request: pytest.FixtureRequest, qtlog: Any) -> None:
    request.node.stash[_QTLOG_KEY] = qtlog


@pytest.fixture(scope="session")
def sample_photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The four drawn sample photos, in story order."""
    return ui_sample.write_photos(tmp_path_factory.mktemp("sample-photos"))


@pytest.fixture
def story_output() -> str:
    return ui_sample.story_text()


@pytest.fixture
def library() -> Iterator[Any]:
    lib = open_library(None)
    yield lib
    lib.close()


@pytest.fixture
def make_session(library: Any, story_output: str) -> Iterator[Callable[..., Any]]:
    """``make_session(backend=None, settings=None, confirm=None)``: a session over the test's
    library (a scripted backend unless another is given; every question answered Yes)."""
    from desktop_app.ui.session import Session

    sessions: list[Any] = []

    def make(
        backend: Any = None,
        settings: Any = None,
        confirm: Callable[..., bool] | None = None,
        backend_factory: Callable[[Any], Any] | None = None,
    ) -> Any:
        chosen = backend if backend is not None else scripted_backend(story_output)
        session = Session(
            library,
            backend_factory or (lambda _settings: chosen),
            settings,
            confirm=confirm or (lambda *_args: True),
        )
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()
        QApplication.processEvents()


@pytest.fixture
def session(make_session: Callable[..., Any]) -> Any:
    """A session over the test's library with the scripted sample story."""
    return make_session()


@pytest.fixture
def host(qtbot: Any) -> Callable[[Any], Any]:
    """``host(widget)``: show ``widget`` as a top-level window of 1440x900 for the test (kept
    alive until the test ends, with the parts built inside it)."""
    kept: list[Any] = []

    def show(widget: Any) -> Any:
        kept.append(widget)
        qtbot.addWidget(widget)
        widget.resize(1440, 900)
        widget.show()
        qtbot.waitExposed(widget)
        return widget

    return show


@pytest.fixture
def make_window(
    request: pytest.FixtureRequest, qtbot: Any, library: Any, story_output: str
) -> Iterator[Callable[..., Any]]:
    """``make_window(backend=None)``: a shown main window over the test's library (tests
    marked ``end_to_end`` only: every part is tested alone)."""
    from desktop_app.ui.main_window import MainWindow

    if request.node.get_closest_marker("end_to_end") is None:
        pytest.fail("only tests marked end_to_end build the main window: test the part alone")

    windows: list[Any] = []

    def make(
        backend: Any = None,
        confirm: Callable[..., bool] | None = None,
        settings: Any = None,
        backend_factory: Callable[[Any], Any] | None = None,
    ) -> Any:
        chosen = backend if backend is not None else scripted_backend(story_output)
        window = MainWindow(
            library,
            backend_factory or (lambda _settings: chosen),
            settings=settings,
            confirm=confirm or (lambda *_args: True),
        )
        qtbot.addWidget(window)
        window.resize(1440, 900)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window

    yield make
    for window in windows:
        if window.generation.is_generating():
            window.generation.stop()
            qtbot.waitUntil(lambda w=window: not w.generation.is_generating(), timeout=10_000)
        window.close()
        window.workers.stop_all()
        QApplication.processEvents()


@pytest.fixture
def story_window(qtbot: Any, make_window: Callable[..., Any], sample_photos: list[Path]) -> Any:
    """A main window showing the sample album and its finished (scripted) story."""
    window = make_window()
    album_with_photos(qtbot, window, sample_photos)
    generate_and_wait(qtbot, window)
    return window


@pytest.fixture
def told_session(
    make_session: Callable[..., Any], sample_photos: list[Path], story_output: str
) -> Any:
    """A session with the sample album open and one finished (scripted) version in the
    library, not yet shown: build the part under test, then ``show_told(session)``."""
    from ui_helpers import session_album

    from desktop_app.app.telling import TellOptions, tell_album

    session = make_session()
    session_album(session, sample_photos)
    tell_album(session.library, session.album_id, scripted_backend(story_output), TellOptions())
    return session


@pytest.fixture
def story_tabs(told_session: Any, host: Callable[[Any], Any]) -> Any:
    """The story tabs alone, showing the sample album's finished story (``.session``)."""
    from ui_helpers import show_told

    from desktop_app.ui.story_tabs import StoryTabs

    tabs = host(StoryTabs(told_session))
    show_told(told_session)
    tabs.session = told_session
    return tabs
