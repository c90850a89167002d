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

The canonical form
------------------
An entry's hash is the SHA-256 (lowercase hex) of the compact JSON array
``[prev, seq, at, kind, data]`` written exactly as :func:`canonical` writes it, so a controller
in another language can keep a chain the bench verifies (the node protocol's ``audit`` request,
``docs/node-protocol.md``): no whitespace; object keys sorted by code point; strings in UTF-8
with only ``"``, ``\\``, and the control characters escaped (``\\b \\f \\n \\r \\t``, the
others as ``\\u00XX`` in lowercase hex); integers in decimal; ``true``, ``false``, ``null``;
floats (``at`` always is one) as the shortest decimal that reads back as the same double, laid
out the way Rust's ``ryu`` crate lays it out -- with ``d`` the shortest digits and ``p`` the
position of the decimal point (the value is ``0.d * 10**p``):

* ``len(d) ≤ p ≤ 16``: the digits, ``p - len(d)`` zeros, ``.0``: ``3600.0``,
  ``1000000000000000.0``;
* ``0 < p ≤ 16``: the digits with the point inside: ``12.5``, ``1.3``;
* ``-5 < p ≤ 0``: ``0.``, ``-p`` zeros, the digits: ``0.30000000000000004``, ``0.00001``;
* otherwise an exponent, without ``+`` or leading zeros: ``1e16``, ``1.5e-7``, ``5e-324``.

``0.0`` and ``-0.0`` are written so; no NaN or infinity is ever logged. The genesis value is the
SHA-256 hex of ``bwcsim-audit:<camera id>``.
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


class AuditTrail(msgspec.Struct, frozen=True):
    """A camera's audit log as read from outside the controller: its entries and its head."""

    camera_id: str
    entries: tuple[AuditEntry, ...]
    head: str

    def __len__(self) -> int:
        return len(self.entries)


class NoAuditTrail(LookupError):
    """The controller keeps no audit log the bench can read (the text says why)."""


def canonical(prev: str, seq: int, at: float, kind: str, data: dict[str, Any]) -> bytes:
    """The bytes an entry's hash covers (see "The canonical form" above)."""
    return _encode((prev, seq, at, kind, data))


def genesis(camera_id: str) -> str:
    return hashlib.sha256(f"bwcsim-audit:{camera_id}".encode()).hexdigest()


def entry_hash(prev: str, seq: int, at: float, kind: str, data: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(prev, seq, at, kind, data)).hexdigest()


class AuditLog:
    """The log itself. Entries are immutable; the list is only ever appended to.

    The chain is computed lazily: :meth:`append` only records ``(at, kind, data)``, and the
    hashes of the entries not yet hashed are computed, in order, the first time anything reads
    the log (:attr:`entries`, :attr:`head`, :meth:`drain`, :meth:`trail`). The hashes are the
    ones an eager chain computes, since each depends only on its predecessor and on what was
    appended; ``data`` is the caller's dict, which must not change once appended (the entry
    keeps it either way). A run nobody audits pays for the record, not for the hashing.
    """

    __slots__ = ("_entries", "_hashed", "_hashed_count", "_pending", "camera_id")

    def __init__(self, camera_id: str) -> None:
        self.camera_id = camera_id
        self._entries: list[AuditEntry] = []
        # Appended but not hashed yet, oldest first; _hashed is the head of the hashed part (None:
        # the genesis value, computed when the chain is first read) and _hashed_count its length
        # (drained entries included).
        self._pending: list[tuple[float, str, dict[str, Any]]] = []
        self._hashed: str | None = None
        self._hashed_count = 0

    def append(self, at: float, kind: str, data: dict[str, Any]) -> None:
        self._pending.append((at, kind, data))

    def _settle(self) -> str:
        """Hash the pending entries onto the chain; its head."""
        prev = self._hashed
        if prev is None:
            prev = self._hashed = genesis(self.camera_id)
        pending = self._pending
        if not pending:
            return prev
        self._pending = []
        seq = self._hashed_count
        entries = self._entries
        for at, kind, data in pending:
            h = entry_hash(prev, seq, at, kind, data)
            entries.append(AuditEntry(seq, at, kind, data, prev, h))
            prev = h
            seq += 1
        self._hashed = prev
        self._hashed_count = seq
        return prev

    @property
    def _head(self) -> str:
        # The head as the camera's durable state reads and restores it ("audit._head").
        return self._settle()

    @_head.setter
    def _head(self, head: str) -> None:
        self._settle()
        self._hashed = head

    @property
    def _count(self) -> int:
        # The length as the camera's durable state reads and restores it ("audit._count").
        return self._hashed_count + len(self._pending)

    @_count.setter
    def _count(self, count: int) -> None:
        self._settle()
        self._hashed_count = count

    @property
    def entries(self) -> tuple[AuditEntry, ...]:
        """The entries still held (all of them, unless some were drained)."""
        self._settle()
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
        self._settle()
        out, self._entries = self._entries, []
        return out

    def resume(self, head: str, count: int) -> None:
        """Continue a chain kept elsewhere (a camera restored after a restart)."""
        self._entries = []
        self._pending = []
        self._hashed = head
        self._hashed_count = count

    def trail(self) -> AuditTrail:
        head = self._settle()
        return AuditTrail(self.camera_id, tuple(self._entries), head)


def trail_of(node: object) -> AuditTrail:
    """The audit log of a controller node: what its ``audit_trail()`` returns, or the log of a
    node built on the reference camera (``node.camera.audit``); :class:`NoAuditTrail` saying
    why when it keeps none the bench can read."""
    get = getattr(node, "audit_trail", None)
    if callable(get):
        trail = get()
        if not isinstance(trail, AuditTrail):
            raise NoAuditTrail(f"{type(node).__name__}.audit_trail() returned {type(trail).__name__}")
        return trail
    log = getattr(getattr(node, "camera", None), "audit", None)
    if isinstance(log, AuditLog):
        return log.trail()
    raise NoAuditTrail(f"the controller ({type(node).__name__}) keeps no audit log the bench can "
                       "read: it has no audit_trail() and no reference camera")


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
