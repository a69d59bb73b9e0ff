"""The session alone: the state the window's parts share, and its signals."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from desktop_app.app.settings import Settings, load_settings
from desktop_app.engine.api import Preset
from desktop_app.ui.session import EngineSlot, RunChoices


class _Backend:
    description = "counting test backend"

    def __init__(self, made: list[Any]) -> None:
        self.closed = False
        made.append(self)

    def close(self) -> None:
        self.closed = True


def test_the_engine_is_made_once_and_made_again_after_a_settings_change() -> None:
    made: list[Any] = []
    slot = EngineSlot(lambda _settings: _Backend(made))
    first = slot.get(Settings())
    assert slot.get(Settings()) is first and len(made) == 1
    slot.replace(busy=True)  # the settings changed while a run uses it: it stays for that run
    assert not first.closed and slot.existing() is first
    second = slot.get(Settings())  # the next run gets one from the new settings
    assert second is not first and first.closed
    slot.replace()
    assert second.closed and slot.existing() is None


def test_a_new_album_gets_a_free_name_and_opens_with_its_photos(session: Any) -> None:
    opened: list[Any] = []
    session.album_opened.connect(opened.append)
    assert session.unique_album_name() == "New album"
    first = session.create_album(session.unique_album_name())
    assert session.unique_album_name() == "New album 2"
    assert [album.id for album in opened] == [first.id] and session.album_id == first.id
    assert session.photo_model.rowCount() == 0


def test_nothing_is_cached_before_the_engine_exists_or_while_a_run_uses_it(
    session: Any, sample_photos: list[Any]
) -> None:
    from ui_helpers import session_album

    session_album(session, sample_photos[:1])
    assert session.cached(session.photo_model.photos()).describe(1) == ""


def test_choices_are_remembered_only_for_a_session_started_from_saved_settings(
    make_session: Any,
) -> None:
    unsaved = make_session()  # tests and tools: no settings file is written
    unsaved.set_choices(RunChoices(Preset.FAITHFUL, unsaved.choices.detail, 5, ""))
    unsaved.remember_choices()
    assert unsaved.settings.seed == 5
    assert load_settings().seed is None
    saved = make_session(settings=Settings())
    saved.set_choices(RunChoices(Preset.FAITHFUL, saved.choices.detail, 9, ""))
    saved.remember_choices()
    assert load_settings().seed == 9 and load_settings().preset is Preset.FAITHFUL
    assert saved.tell_options().sampling.seed == 9


def test_a_question_offers_the_verb_of_its_action_and_cancel_by_default(
    qtbot: Any, library: Any
) -> None:
    from desktop_app.ui.session import Session

    session = Session(library, lambda _settings: None)  # the real dialog, no test answer
    seen: list[tuple[list[str], str]] = []

    def answer() -> None:
        box = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox))
        seen.append(([b.text() for b in box.buttons()], box.defaultButton().text()))
        next(b for b in box.buttons() if b.text() == "Stop and quit").click()

    QTimer.singleShot(0, answer)
    assert session.ask("Stop writing?", "Stop it and quit?", action="Stop and quit")
    ((buttons, default),) = seen
    assert sorted(buttons) == ["Cancel", "Stop and quit"]  # no Yes/No
    assert default == "Cancel"
    session.close()
