"""Story runs: written while they stream, ended once, recovered when their writer died."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from desktop_app import paths
from desktop_app.errors import size_text
from desktop_app.fileio import write_text_somewhere
from desktop_app.library import storyjson
from desktop_app.library.albums import AlbumRef, AlbumStore
from desktop_app.library.database import now, to_json
from desktop_app.library.errors import (
    LibraryDiskFullError,
    LibraryError,
    RunNotFoundError,
    RunNotStoredError,
)
from desktop_app.library.records import RunOutcome, RunPhoto, RunSpec, RunStatus, StoryRun
from desktop_app.library.runlock import RunLock, is_held

logger = logging.getLogger(__name__)


@dataclass
class _OutputBuffer:
    """Streamed text not yet written to the database, and when it last was."""

    pending: list[str] = field(default_factory=list)
    pending_chars: int = 0
    last_flush: float = field(default_factory=time.monotonic)
    disk_full: bool = False  # said once in the log; the text waits here until there is room


UNSAVED_RUN_FORMAT = "storyteller-unsaved-run"


class RunStore(AlbumStore):
    """Story runs, their streamed output and the user's display names."""

    # A streaming run is written at most this often, or when this much text is waiting, so a
    # crash loses at most about half a second of output while a fast model costs few writes.
    flush_interval_s: float = 0.5
    flush_chars: int = 2000
    _buffers: dict[int, _OutputBuffer]
    _run_locks: dict[int, RunLock]

    def _lock_file(self, token: str) -> Path:
        return self.root / "run-locks" / f"{token}.lock"

    def _writer_alive(self, owner_token: str | None) -> bool:
        """Whether a live process (this one included) still writes the run with this token."""
        return bool(owner_token) and is_held(self._lock_file(owner_token))

    def start_run(self, ref: AlbumRef, spec: RunSpec) -> int:
        """Record a new run as ``running`` and return its id.

        This process holds the run's lock until ``finish_run``/``fail_run``; if the process
        dies first, ``recover_interrupted`` marks the run interrupted with its partial output.
        """
        album = self.album(ref)
        token = uuid.uuid4().hex
        run_lock = RunLock.try_acquire(self._lock_file(token))
        if run_lock is None:  # a fresh random name: only a broken file system gets here
            raise LibraryError(f"cannot lock {self._lock_file(token)}: check the library folder")
        try:
            with self._write() as conn:
                run_photos = []
                for index, photo_id in enumerate(spec.photo_ids, 1):
                    row = conn.execute(
                        "SELECT path, sha256 FROM photos WHERE id = ?", (photo_id,)
                    ).fetchone()
                    if row is None:
                        raise LibraryError(f"no photo with id {photo_id} in the library")
                    run_photos.append(
                        RunPhoto(index, photo_id, Path(row["path"]), row["sha256"]).to_dict()
                    )
                cursor = conn.execute(
                    """INSERT INTO runs (album_id, status, created, photos, parameters, backend,
                                         model, owner_token, owner_pid)
                       VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        album.id,
                        now(),
                        to_json(run_photos),
                        to_json(dict(spec.parameters)),
                        spec.backend,
                        to_json(dict(spec.model)),
                        token,
                        os.getpid(),
                    ),
                )
        except BaseException:
            run_lock.release()
            raise
        run_id = int(cursor.lastrowid or 0)
        with self._lock:
            self._run_locks[run_id] = run_lock
            self._buffers[run_id] = _OutputBuffer()
        return run_id

    def append_output(self, run_id: int, text: str) -> None:
        """Add streamed text to a running run; written at most every ``flush_interval_s``."""
        with self._lock:
            buffer = self._buffers.setdefault(run_id, _OutputBuffer())
            buffer.pending.append(text)
            buffer.pending_chars += len(text)
            due = time.monotonic() - buffer.last_flush >= self.flush_interval_s
            if due or buffer.pending_chars >= self.flush_chars:
                try:
                    self.flush_output(run_id)
                except LibraryDiskFullError as err:
                    # The story goes on: its text waits in memory, is tried again at the next
                    # interval, and is saved elsewhere at its end if the disk is still full.
                    buffer.last_flush = time.monotonic()
                    if not buffer.disk_full:
                        buffer.disk_full = True
                        logger.warning("story run %s is kept in memory for now: %s", run_id, err)

    def flush_output(self, run_id: int) -> None:
        """Write the run's buffered text now."""
        with self._lock:
            buffer = self._buffers.get(run_id)
            if buffer is None:
                return
            if buffer.pending:
                text = "".join(buffer.pending)
                with self._write() as conn:
                    conn.execute(
                        "UPDATE runs SET raw_output = raw_output || ? "
                        "WHERE id = ? AND status = 'running'",
                        (text, run_id),
                    )
                buffer.pending.clear()
                buffer.pending_chars = 0
            buffer.last_flush = time.monotonic()

    def _end_run(
        self,
        run_id: int,
        status: RunStatus,
        *,
        error: str = "",
        outcome: RunOutcome | None = None,
    ) -> StoryRun:
        with self._lock:
            unwritten = ""
            try:
                self.flush_output(run_id)
            except LibraryDiskFullError:
                buffer = self._buffers.get(run_id)
                unwritten = "".join(buffer.pending) if buffer is not None else ""
            self._buffers.pop(run_id, None)
            run = self.run(run_id)
            if run.status is not RunStatus.RUNNING:
                raise LibraryError(f"story run {run_id} has already ended ({run.status.value})")
            photos = run.photos
            raw_output = run.raw_output + unwritten
            backend = run.backend
            model = dict(run.model)
            timings = dict(run.timings)
            story: Mapping[str, Any] | None = None
            if outcome is not None:
                raw_output = outcome.raw_output
                backend = outcome.backend or backend
                if outcome.model_name:
                    model.setdefault("name", outcome.model_name)
                timings = dict(outcome.timings)
                photos = (
                    tuple(
                        replace(
                            photo,
                            original_size=seen.original_size,
                            prepared_size=seen.prepared_size,
                            tokens=seen.tokens,
                        )
                        for photo, seen in zip(photos, outcome.photos, strict=False)
                    )
                    + photos[len(outcome.photos) :]
                )
                story = outcome.story
            if story is None:
                story = storyjson.parse_story_json(
                    raw_output, [photo.prepared_size for photo in photos]
                )
            try:
                with self._write() as conn:
                    conn.execute(
                        """UPDATE runs SET status = ?, finished = ?, raw_output = ?, story_json = ?,
                                  photos = ?, backend = ?, model = ?, timings = ?, error = ?,
                                  owner_token = NULL
                           WHERE id = ?""",
                        (
                            status.value,
                            now(),
                            raw_output,
                            to_json(story) if story is not None else None,
                            to_json([photo.to_dict() for photo in photos]),
                            backend,
                            to_json(model),
                            to_json(timings),
                            error,
                            run_id,
                        ),
                    )
            except LibraryDiskFullError as err:
                run_lock = self._run_locks.pop(run_id, None)
                if run_lock is not None:
                    run_lock.release()  # the run is the recovery's now, at the next start
                raise self._keep_unsaved(run_id, raw_output, err) from err
            run_lock = self._run_locks.pop(run_id, None)
        if run_lock is not None:
            run_lock.release()
        return self.run(run_id)

    def _keep_unsaved(
        self, run_id: int, raw_output: str, full: LibraryDiskFullError
    ) -> RunNotStoredError:
        """Save a run's text the full library could not take to the first folder that can
        (``paths.unsaved_stories_dirs``); ``recover_interrupted`` brings it back."""
        record = {
            "format": UNSAVED_RUN_FORMAT,
            "library": str(self.path),
            "run_id": run_id,
            "raw_output": raw_output,
            "saved": now(),
        }
        name = f"run-{run_id}-{uuid.uuid4().hex[:8]}.json"
        saved_to, _ = write_text_somewhere(
            json.dumps(record, ensure_ascii=False),
            [folder / name for folder in paths.unsaved_stories_dirs()],
        )
        size = size_text(len(raw_output.encode("utf-8")))
        if saved_to is not None:
            kept = (
                f"the story ({size}) is kept in {saved_to} and comes back into the library as "
                "an interrupted version at its next start, once there is room"
            )
        else:
            kept = f"no disk could take the story ({size}) either: it is printed instead"
        logger.warning("story run %s could not be stored: %s", run_id, kept)
        return RunNotStoredError(f"{full}; {kept}", full.folder, saved_to, raw_output)

    def finish_run(self, run_id: int, outcome: RunOutcome) -> StoryRun:
        """End a run with its outcome: ``complete``, or ``stopped`` if the user stopped it."""
        status = RunStatus.STOPPED if outcome.stopped else RunStatus.COMPLETE
        return self._end_run(run_id, status, outcome=outcome)

    def stop_run(self, run_id: int) -> StoryRun:
        """End a run the user stopped before the backend returned a result; output is kept."""
        return self._end_run(run_id, RunStatus.STOPPED)

    def fail_run(self, run_id: int, message: str) -> StoryRun:
        """End a run that an error stopped; its partial output is kept."""
        return self._end_run(run_id, RunStatus.FAILED, error=message)

    @staticmethod
    def _run_from_row(row: sqlite3.Row) -> StoryRun:
        return StoryRun(
            id=row["id"],
            album_id=row["album_id"],
            status=RunStatus(row["status"]),
            created=row["created"],
            finished=row["finished"],
            photos=tuple(RunPhoto.from_dict(item) for item in json.loads(row["photos"])),
            parameters=json.loads(row["parameters"]),
            backend=row["backend"],
            model=json.loads(row["model"]),
            timings=json.loads(row["timings"]),
            raw_output=row["raw_output"],
            story=json.loads(row["story_json"]) if row["story_json"] else None,
            error=row["error"],
        )

    def _follow_relinks(self, runs: list[StoryRun]) -> list[StoryRun]:
        """Runs whose photo paths are where the library now finds each photo (after relinks)."""
        ids = {photo.photo_id for run in runs for photo in run.photos if photo.photo_id}
        if not ids:
            return runs
        with self._lock:
            rows = self._conn.execute(
                f"SELECT id, path FROM photos WHERE id IN ({','.join('?' * len(ids))})",
                tuple(ids),
            ).fetchall()
        current = {row["id"]: Path(row["path"]) for row in rows}
        return [
            replace(
                run,
                photos=tuple(
                    replace(photo, path=current.get(photo.photo_id, photo.path))
                    if photo.photo_id
                    else photo
                    for photo in run.photos
                ),
            )
            for run in runs
        ]

    def run(self, run_id: int) -> StoryRun:
        """One story run; its photo paths follow relinked photos."""
        with self._lock:
            row = self._conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFoundError(
                f"no story with id {run_id}: list an album's stories to see their ids"
            )
        return self._follow_relinks([self._run_from_row(row)])[0]

    def runs(self, ref: AlbumRef) -> list[StoryRun]:
        """The album's story runs, oldest first."""
        album = self.album(ref)
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM runs WHERE album_id = ? ORDER BY id", (album.id,)
            ).fetchall()
        return self._follow_relinks([self._run_from_row(row) for row in rows])

    def delete_run(self, run_id: int) -> None:
        """Forget a story run; one that this or another live process is writing is refused."""
        self.run(run_id)
        with self._write() as conn:
            # Decided inside the write transaction, as in recover_interrupted: the run's lock
            # file is held by whichever process writes it, this one included.
            row = conn.execute(
                "SELECT status, owner_token FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
            if (
                row is not None
                and row["status"] == RunStatus.RUNNING.value
                and self._writer_alive(row["owner_token"])
            ):
                raise LibraryError(f"story {run_id} is still being written: stop it first")
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def set_display_name(self, run_id: int, entity_id: str, name: str | None) -> None:
        """Show ``entity_id`` (e.g. ``char1``) as ``name`` in this story; None/"" restores it."""
        self.run(run_id)
        with self._write() as conn:
            if name is None or not name.strip():
                conn.execute(
                    "DELETE FROM run_names WHERE run_id = ? AND entity_id = ?", (run_id, entity_id)
                )
            else:
                conn.execute(
                    """INSERT INTO run_names (run_id, entity_id, display_name) VALUES (?, ?, ?)
                       ON CONFLICT (run_id, entity_id)
                       DO UPDATE SET display_name = excluded.display_name""",
                    (run_id, entity_id, name.strip()),
                )

    def add_finished_run(
        self,
        ref: AlbumRef,
        *,
        photos: Sequence[RunPhoto],
        status: RunStatus,
        raw_output: str,
        parameters: Mapping[str, Any],
        backend: str,
        model: Mapping[str, Any],
        timings: Mapping[str, Any],
        created: str | None = None,
        finished: str | None = None,
        error: str = "",
        display_names: Mapping[str, str] | None = None,
    ) -> int:
        """Store a run made elsewhere (an imported bundle); its story JSON is parsed anew."""
        if status is RunStatus.RUNNING:
            raise LibraryError("an imported story cannot be running: store it as interrupted")
        album = self.album(ref)
        story = storyjson.parse_story_json(raw_output, [photo.prepared_size for photo in photos])
        with self._write() as conn:
            cursor = conn.execute(
                """INSERT INTO runs (album_id, status, created, finished, photos, parameters,
                                     backend, model, timings, raw_output, story_json, error)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    album.id,
                    status.value,
                    created or now(),
                    finished or now(),
                    to_json([photo.to_dict() for photo in photos]),
                    to_json(dict(parameters)),
                    backend,
                    to_json(dict(model)),
                    to_json(dict(timings)),
                    raw_output,
                    to_json(story) if story is not None else None,
                    error,
                ),
            )
            run_id = int(cursor.lastrowid or 0)
            conn.executemany(
                "INSERT INTO run_names (run_id, entity_id, display_name) VALUES (?, ?, ?)",
                [(run_id, key, value) for key, value in (display_names or {}).items() if value],
            )
        return run_id

    def display_names(self, run_id: int) -> dict[str, str]:
        """The user's names for the story's entities, by entity id."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT entity_id, display_name FROM run_names WHERE run_id = ? ORDER BY entity_id",
                (run_id,),
            ).fetchall()
        return {row[0]: row[1] for row in rows}

    def _unsaved_runs(self) -> dict[int, tuple[str, Path]]:
        """Runs of this library whose end a full disk kept out of it: run id -> (text, file)."""
        found: dict[int, tuple[str, Path]] = {}
        for folder in paths.unsaved_stories_dirs():
            for file in sorted(folder.glob("run-*.json")) if folder.is_dir() else []:
                try:
                    record = json.loads(file.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                if (
                    isinstance(record, dict)
                    and record.get("format") == UNSAVED_RUN_FORMAT
                    and record.get("library") == str(self.path)
                    and isinstance(record.get("run_id"), int)
                ):
                    found[record["run_id"]] = (str(record.get("raw_output", "")), file)
        return found

    def recover_interrupted(self) -> list[int]:
        """Mark ``running`` runs whose writing process is gone as ``interrupted``.

        A run is live while its writer holds the run's lock file (see ``runlock``); runs this
        or another live process is writing are left alone. The partial output is kept and
        parsed; a run whose end a full disk kept out of the library comes back with the text
        saved for it (``paths.unsaved_stories_dirs``). Returns the ids of the runs recovered.
        While the library's disk is still full, nothing is recovered (the next start tries
        again).
        """
        recovered: list[int] = []
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, owner_token, owner_pid FROM runs WHERE status = 'running'"
            ).fetchall()
        unsaved = self._unsaved_runs() if rows else {}
        for row in rows:
            token = row["owner_token"]
            kept = unsaved.get(row["id"])
            try:
                with self._write() as conn:
                    # Decide inside the write transaction: a writer marks its run finished before
                    # it lets its lock go, so "still running and unlocked" means the writer died.
                    current = conn.execute(
                        "SELECT status FROM runs WHERE id = ?", (row["id"],)
                    ).fetchone()
                    if current is None or current["status"] != RunStatus.RUNNING.value:
                        continue
                    if self._writer_alive(token):
                        continue
                    run = self._run_from_row(
                        conn.execute("SELECT * FROM runs WHERE id = ?", (row["id"],)).fetchone()
                    )
                    raw_output = kept[0] if kept is not None else run.raw_output
                    story = storyjson.parse_story_json(raw_output, run.prepared_sizes())
                    who = f"process {row['owner_pid']}" if row["owner_pid"] else "the app"
                    why = (
                        "the disk was full when this story ended; its text was kept aside and "
                        "is back"
                        if kept is not None
                        else f"{who} ended while writing this story; its partial output is kept"
                    )
                    conn.execute(
                        """UPDATE runs SET status = 'interrupted', finished = ?, raw_output = ?,
                                  story_json = ?, error = ?, owner_token = NULL WHERE id = ?""",
                        (
                            now(),
                            raw_output,
                            to_json(story) if story is not None else None,
                            f"{why} (tell the story again for a complete one)",
                            row["id"],
                        ),
                    )
            except LibraryDiskFullError as err:
                logger.warning("interrupted stories are recovered at the next start: %s", err)
                break
            if token:
                with contextlib.suppress(OSError):
                    os.unlink(self._lock_file(token))
            if kept is not None:
                with contextlib.suppress(OSError):
                    kept[1].unlink()
            recovered.append(row["id"])
            logger.info("story run %s was interrupted; marked as such", row["id"])
        return recovered
