"""The camera's durable state on disk: one SQLite database in WAL mode, in the state directory.

Theory of operation
-------------------
A live camera can be killed at any instant (``kill -9``, a crash, a power cut). What it must not
lose is written here before anything it caused leaves the process:

* **The journal** of what was fed to the controller — a delivery (topic, payload, time), a timer
  call, the power-on — replayed on top of the last **snapshot** of the controller's state after a
  restart. The controller is deterministic, so replaying the same calls at the same times
  rebuilds the same state: open windows, holds, deactivation, incident ids, the duplicate table,
  battery and storage. A delivery the controller only refused (a NACK and nothing else) is not
  journaled: by the node contract it changes nothing worth keeping, and a flood of garbage must
  not cost a disk write per message.
* **Evidence** — alerts and recording metadata — from the moment it is produced until the broker
  has acknowledged it (R-NODROP). After a restart whatever is still here is published first.
* **Meta**: the camera id (a directory belongs to one camera), the count of the live edge's own
  alerts (their ids, ``<camera>-e<n>``, are never reused) and ``alive_at``, the last moment
  the camera is known to have been running, refreshed by every commit and by a heartbeat; after
  a crash the span from ``alive_at`` to the restart is what the camera could not record.

The runtime writes in batches: everything one burst of deliveries and timers caused goes into
one transaction, committed before the batch's publications are released to the sender and
before its inbound messages are acknowledged to the broker. A crash before the commit loses
the batch *and* leaves its messages with the broker, which delivers them again.

Fsync discipline
----------------
The database runs with ``journal_mode=WAL`` and ``synchronous=NORMAL``: a ``COMMIT`` writes the
batch to the write-ahead log, which is enough to survive the *process* dying (``kill -9``, a
crash): the operating system has the data. What must also survive a *power cut* is made so
explicitly, by an ``fsync`` of the log file right after the commit:

* a batch holding **evidence** (or a snapshot) is fsynced before any of it is released, so an
  alert or a recording metadata that left the camera is on stable storage first;
* everything else — the journal of accepted commands, ``alive_at``, forgotten evidence — is
  fsynced by the heartbeat, at most ``heartbeat_s`` (1 s) later. A power cut can cost that last
  second of journal; the camera was without power for it anyway, and the time it was down is
  announced by the ``restarted`` alert.

Fsync costs from a fraction of a millisecond to ten on a busy disk; paying it per command would
cap a camera at a few hundred commands a second, per evidence batch and per second it does not.
Commits happen only when there is something to keep, so a garbage flood costs none. New files
are followed by an fsync of their directory, so their names survive a power cut too.

Checkpoints — copying the log into the database file, with an fsync of each — are not left to
SQLite, which would run them inside whichever ``COMMIT`` crosses its threshold, stalling the
event loop for the length of two fsyncs (tens of milliseconds on a busy disk, measured: the
worst commits of a 1,000 msg/s run fell from 29 ms to under 12 when they left). The runtime's
heartbeat runs :meth:`StateStore.checkpoint` in its fsync thread, through a connection of its
own. The log only starts again from its beginning after a checkpoint that copied all of it, which
a background one racing the camera's commits rarely does; so once the log holds 16 MB, the
heartbeat follows the background checkpoint with :meth:`StateStore.checkpoint_tail` on the loop,
which copies the few pages committed meanwhile (two fsyncs, every 16 MB of log: some ten
seconds at 1,000 commands a second). A checkpoint changes nothing about durability: every page
it copies was committed (and, for evidence, fsynced) before, and SQLite recovers an interrupted
checkpoint from the log.

The ``meta`` row ``alive_at`` is written by at most four commits a second (and by the
heartbeat), and ``clean_stop`` once per run: a commit of one command is then the journal's
page, not the meta page besides.

One camera per directory: an exclusive ``flock`` on ``DIR/lock`` is held while the store is open,
and a second process on the same directory is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

from controller.errors import InvalidInput
from controller.node import Publish

__all__ = ["JournalRecord", "Recovered", "StateStore", "default_state_dir"]

FORMAT = 1
_ALIVE_EVERY_S = 0.25
"""``alive_at`` is rewritten by a commit at most this often (the heartbeat's commit always is
later than this): a crash is dated at most this much (plus a heartbeat) too early, never late."""
JournalKind = Literal["start", "message", "timer"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), journal_seq INTEGER NOT NULL,
                                     at REAL NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, at REAL NOT NULL,
                                    topic TEXT NOT NULL, payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS evidence (seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL,
                                     retain INTEGER NOT NULL, qos INTEGER NOT NULL);
"""


def default_state_dir(camera_id: str, prefix: str = "bwc") -> Path:
    """``<user state dir>/bwcsim/<prefix>/<camera>`` (``$XDG_STATE_HOME``, else ``~/.local/state``
    on Linux; the platform's usual place elsewhere)."""
    from platformdirs import user_state_path

    return user_state_path("bwcsim") / _safe(prefix) / _safe(camera_id)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "_"


@dataclass(frozen=True)
class JournalRecord:
    """One call into the controller, as it was made."""

    kind: JournalKind
    at: float
    topic: str = ""
    payload: bytes = b""


@dataclass
class Recovered:
    """What a previous run left behind (nothing, for a new directory)."""

    snapshot: bytes | None = None
    journal: list[JournalRecord] = field(default_factory=list)
    evidence: list[tuple[int, Publish]] = field(default_factory=list)
    alive_at: float | None = None
    clean_stop: bool = False

    @property
    def fresh(self) -> bool:
        """Nothing to restore: a camera that never ran here."""
        return self.snapshot is None and not self.journal


class StateStore:
    """The state directory of one camera (see the module docstring)."""

    def __init__(self, directory: Path, camera_id: str) -> None:
        self.directory = directory
        self.camera_id = camera_id
        try:
            created = not directory.exists()
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            if created:
                fsync_dir(directory.parent)
            self._lock: IO[bytes] | None = (directory / "lock").open("ab")
        except OSError as exc:
            raise InvalidInput(f"cannot use {directory}: {exc.strerror or exc}", "--state-dir") from None
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            self._lock = None
            raise InvalidInput(f"{directory} is in use by another camera process", "--state-dir") from None
        try:
            self._db = self._open(directory / "state.db")
        except (sqlite3.Error, InvalidInput):
            self._release_lock()
            raise
        self._dirty = False
        self._delivered: list[int] = []
        self._must_sync = False  # the open batch holds evidence or a snapshot
        self._unsynced = False  # committed but not yet on stable storage
        self._wal: int | None = None
        self._checkpointer: sqlite3.Connection | None = None
        self._alive_written = float("-inf")
        self._running_marked = False  # clean_stop = 0 written by this run
        self.journal_since_snapshot = 0
        self.commits = 0
        self.syncs = 0

    def _open(self, path: Path) -> sqlite3.Connection:
        new = not path.exists()
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            # Checkpoints are the runtime's to run, off the event loop (:meth:`checkpoint`).
            db.execute("PRAGMA wal_autocheckpoint=0")
            db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise InvalidInput(f"{path}: not a bwcsim state database ({exc})", "--state-dir") from None
        if new:
            fsync_dir(path.parent)
        rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
        self.edge_alerts = int(rows.get("edge_alerts") or 0)
        if not rows:
            db.execute("BEGIN")
            db.executemany("INSERT INTO meta VALUES (?, ?)",
                           [("format", FORMAT), ("camera", self.camera_id), ("clean_stop", 0)])
            db.execute("COMMIT")
        elif rows.get("camera") != self.camera_id:
            db.close()
            raise InvalidInput(
                f"{path.parent} holds the state of camera {rows.get('camera')!r}, not {self.camera_id!r}",
                "--state-dir",
            )
        elif rows.get("format") != FORMAT:
            db.close()
            raise InvalidInput(f"{path}: state format {rows.get('format')!r} is not {FORMAT}", "--state-dir")
        return db

    # ------------------------------------------------------------------------- reading

    def recover(self) -> Recovered:
        """What the last run left: snapshot, journal after it, undelivered evidence, ``alive_at``."""
        db = self._db
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        row = db.execute("SELECT journal_seq, data FROM snapshot WHERE id = 1").fetchone()
        after = row[0] if row else 0
        journal = [
            JournalRecord(kind, at, topic, bytes(payload))
            for kind, at, topic, payload in db.execute(
                "SELECT kind, at, topic, payload FROM journal WHERE seq > ? ORDER BY seq", (after,)
            )
        ]
        evidence = [
            (seq, Publish(topic, bytes(payload), bool(retain), qos))
            for seq, topic, payload, retain, qos in db.execute(
                "SELECT seq, topic, payload, retain, qos FROM evidence ORDER BY seq"
            )
        ]
        self.journal_since_snapshot = len(journal)
        alive = meta.get("alive_at")
        return Recovered(
            snapshot=bytes(row[1]) if row else None,
            journal=journal,
            evidence=evidence,
            alive_at=float(alive) if alive is not None else None,
            clean_stop=bool(meta.get("clean_stop")),
        )

    # ------------------------------------------------------------------------- writing

    def _begin(self) -> sqlite3.Connection:
        if not self._dirty:
            self._db.execute("BEGIN")
            self._dirty = True
        return self._db

    def journal(self, kind: JournalKind, at: float, topic: str = "", payload: bytes = b"") -> None:
        """Record one call into the controller (in the open batch)."""
        self._begin().execute("INSERT INTO journal (kind, at, topic, payload) VALUES (?, ?, ?, ?)",
                              (kind, at, topic, payload))
        self.journal_since_snapshot += 1

    def add_evidence(self, pub: Publish) -> int:
        """Keep an alert or recording metadata until :meth:`delivered`; returns its key."""
        cursor = self._begin().execute(
            "INSERT INTO evidence (topic, payload, retain, qos) VALUES (?, ?, ?, ?)",
            (pub.topic, pub.payload, int(pub.retain), pub.qos),
        )
        seq = cursor.lastrowid
        assert seq is not None
        self._must_sync = True
        return seq

    def count_edge_alert(self) -> int:
        """The number of the live edge's next alert (1, 2, ...), counted in the open batch — so
        it is kept exactly when the alert it names is — and never handed out twice."""
        self.edge_alerts += 1
        self._begin().execute("INSERT OR REPLACE INTO meta VALUES ('edge_alerts', ?)", (self.edge_alerts,))
        return self.edge_alerts

    def delivered(self, seq: int) -> None:
        """The broker acknowledged evidence ``seq``: forget it at the next commit."""
        self._delivered.append(seq)

    def snapshot(self, data: bytes, at: float) -> None:
        """Replace the snapshot and drop the journal it makes redundant (in the open batch)."""
        db = self._begin()
        last = db.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()[0]
        db.execute("INSERT OR REPLACE INTO snapshot VALUES (1, ?, ?, ?)", (last, at, data))
        db.execute("DELETE FROM journal WHERE seq <= ?", (last,))
        self.journal_since_snapshot = 0
        self._must_sync = True

    @property
    def pending(self) -> bool:
        """Whether there is anything to commit."""
        return self._dirty or bool(self._delivered)

    def commit(self, alive_at: float, *, sync: bool = True) -> bool:
        """Commit the open batch (and any delivered evidence to forget). A batch holding evidence
        or a snapshot must reach stable storage before what it holds is released: with
        ``sync=True`` it is fsynced here; with ``sync=False`` the caller does it (off the event
        loop, :meth:`sync_target`). Returns whether the batch needs that fsync."""
        db = self._begin()
        if self._delivered:
            db.executemany("DELETE FROM evidence WHERE seq = ?", [(s,) for s in self._delivered])
            self._delivered.clear()
        if alive_at - self._alive_written >= _ALIVE_EVERY_S or alive_at < self._alive_written:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('alive_at', ?)", (alive_at,))
            self._alive_written = alive_at
        if not self._running_marked:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('clean_stop', 0)")
            self._running_marked = True
        db.execute("COMMIT")
        self._dirty = False
        self._unsynced = True
        self.commits += 1
        needed = self._must_sync
        if needed and sync:
            self.sync()
        return needed

    def sync_target(self) -> int | None:
        """The file descriptor whose fsync puts every commit so far on stable storage, or
        ``None`` when they are there already; the caller fsyncs it (in a worker thread, say)."""
        if not self._unsynced:
            return None
        if self._wal is None:
            with contextlib.suppress(OSError):
                self._wal = os.open(self.directory / "state.db-wal", os.O_RDONLY)
        self._unsynced = self._must_sync = False
        self.syncs += 1
        return self._wal

    def sync(self) -> None:
        """Put every commit so far on stable storage, here and now."""
        fd = self.sync_target()
        if fd is not None:
            os.fsync(fd)

    def checkpoint(self) -> int:
        """Copy the committed log into the database file, fsyncing both (SQLite's ``PASSIVE``
        checkpoint), and return how many pages the log holds: safe to run in another thread
        while the camera goes on committing, through a connection of its own."""
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(self.directory / "state.db", isolation_level=None,
                                                 check_same_thread=False)
        row = self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[1]) if row is not None else 0

    def checkpoint_tail(self) -> None:
        """Checkpoint what was committed since the last :meth:`checkpoint` (a few pages), on this
        connection, so that the next commit writes the log from its start again: a log that is
        never wholly checkpointed never restarts, and grows."""
        if not self._dirty:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def mark_stopped(self, at: float) -> None:
        """A clean stop at ``at`` (still restored on the next start, with the gap announced)."""
        db = self._begin()
        db.execute("INSERT OR REPLACE INTO meta VALUES ('alive_at', ?)", (at,))
        db.execute("INSERT OR REPLACE INTO meta VALUES ('clean_stop', 1)")
        db.execute("COMMIT")
        self._alive_written, self._running_marked = at, False
        self._dirty = False
        self._unsynced = True
        self.sync()

    def close(self) -> None:
        """Roll back anything uncommitted (a crash would lose it too) and release the directory."""
        with contextlib.suppress(sqlite3.Error):
            if self._dirty:
                self._db.execute("ROLLBACK")
            self._db.close()
            if self._checkpointer is not None:
                self._checkpointer.close()
        self._checkpointer = None
        self._dirty = False
        if self._wal is not None:
            os.close(self._wal)
            self._wal = None
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None


def fsync_dir(path: Path) -> None:
    """Make a new directory entry durable (a file's own fsync does not cover its name)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
