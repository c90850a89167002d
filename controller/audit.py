"""Append-only, hash-chained audit log (R-AUDIT).

Each entry stores the hash of its predecessor and its own hash over ``(prev, seq, at, kind,
data)`` in a canonical JSON encoding, so changing, dropping, inserting or reordering any entry
breaks :func:`verify`. The chain starts from a fixed genesis value derived from the camera id,
so logs of two cameras cannot be swapped unnoticed either. Cutting entries off the end, or
rewriting the chain from an edit onwards, leaves a chain that is consistent with itself: that is
caught by comparing its end with the head recorded elsewhere (``verify(..., head=...)``).

In the simulator the log keeps every entry, so a report or a property can check the whole
chain. A live camera runs for weeks: there the runtime drains the new entries
(:meth:`AuditLog.drain`) after every call into the controller and writes them to an append-only file
(:mod:`sim.live.auditfile`), so the log in memory holds only its head and its length.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import msgspec

_encode = msgspec.json.Encoder(order="deterministic").encode


class AuditEntry(msgspec.Struct, frozen=True, array_like=True):
    seq: int
    at: float
    kind: str
    data: dict[str, Any]
    prev: str
    hash: str


def genesis(camera_id: str) -> str:
    return hashlib.sha256(f"bwcsim-audit:{camera_id}".encode()).hexdigest()


def entry_hash(prev: str, seq: int, at: float, kind: str, data: dict[str, Any]) -> str:
    return hashlib.sha256(_encode((prev, seq, at, kind, data))).hexdigest()


class AuditLog:
    """The log itself. Entries are immutable; the list is only ever appended to."""

    __slots__ = ("_count", "_entries", "_head", "camera_id")

    def __init__(self, camera_id: str) -> None:
        self.camera_id = camera_id
        self._entries: list[AuditEntry] = []
        self._head = genesis(camera_id)
        self._count = 0

    def append(self, at: float, kind: str, data: dict[str, Any]) -> None:
        seq = self._count
        h = entry_hash(self._head, seq, at, kind, data)
        self._entries.append(AuditEntry(seq, at, kind, data, self._head, h))
        self._head = h
        self._count = seq + 1

    @property
    def entries(self) -> tuple[AuditEntry, ...]:
        """The entries still held (all of them, unless some were drained)."""
        return tuple(self._entries)

    @property
    def head(self) -> str:
        return self._head

    def __len__(self) -> int:
        """How many entries were ever appended (drained ones included)."""
        return self._count

    def drain(self) -> list[AuditEntry]:
        """Hand over the entries appended since the last drain and forget them; the head and the
        count stay, so the chain goes on where it was."""
        out, self._entries = self._entries, []
        return out

    def resume(self, head: str, count: int) -> None:
        """Continue a chain kept elsewhere (a camera restored after a restart)."""
        self._entries = []
        self._head = head
        self._count = count


def verify(
    camera_id: str, entries: Iterable[AuditEntry], head: str | None = None
) -> int | None:
    """Index of the first entry that breaks the chain, or ``None`` when the chain is intact.

    A chain is self-consistent after its last entries are cut off, or after every hash from an
    edited entry on is recomputed; only the head kept elsewhere (:attr:`AuditLog.head`,
    published or escrowed) exposes that. Given ``head``, a chain that does not end there fails
    at the index after its last entry (where the missing entries would be).
    """
    prev = genesis(camera_id)
    n = 0
    for i, e in enumerate(entries):
        if e.seq != i or e.prev != prev or entry_hash(prev, i, e.at, e.kind, e.data) != e.hash:
            return i
        prev = e.hash
        n = i + 1
    if head is not None and prev != head:
        return n
    return None
