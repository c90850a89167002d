"""Bounded resources (R-BOUND): nothing an outsider sends can grow the camera without limit.

Theory of operation
-------------------
Everything a message can make the camera keep is capped here, and what it costs to handle one
message does not grow with what the camera already holds:

* **Payload shape.** A payload is at most ``MAX_PAYLOAD`` bytes (the codec), nested at most
  :data:`MAX_DEPTH` deep — checked *before* any parser recurses, so a deeply nested
  payload is NACKed ``too_deep`` instead of exhausting the interpreter's stack — and every
  string the camera keeps (ids, activity ids, reasons, actors, principals) is at most
  :attr:`Limits.max_field_bytes` bytes of UTF-8 (NACK ``too_long``). Integer ids and sequence
  numbers are 64-bit (the message schema says so; the decoder enforces it).
* **Open activities.** At most :attr:`Limits.max_open_activities` per camera; one more is NACKed
  ``too_many_activities`` and changes nothing. Ended activity ids (so that a repeated
  ``activity_end`` is acked, not refused) are remembered for the newest
  :attr:`Limits.max_remembered` only.
* **The duplicate table** (:class:`ReplyTable`) remembers the reply to each message id for the
  redelivery window (:attr:`Limits.duplicate_window_s`) and at most
  :attr:`Limits.max_remembered` replies, oldest dropped first. A redelivery later than that is
  handled again: with signed commands its sequence number is then already spent, so it is
  NACKed ``replayed`` and still has no second effect (R-FRESH); without signatures
  (``auth: none``) the window is all the protection there is.

Costs per message are O(1) or O(log n) in these tables (a dict look-up, an ordered-dict pop from
the oldest end, a heap push in the camera); the only linear work left is output that lists
every open activity (the retained state report, one alert per open window), which the cap
bounds.

The tables are plain data: :meth:`ReplyTable.entries` lists what a journal must keep and
:meth:`ReplyTable.restore` puts it back, so a camera that restarts keeps refusing redeliveries.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Iterable

import msgspec

from .messages import Ack, MsgId

__all__ = [
    "MAX_DEPTH",
    "MAX_FIELD_BYTES",
    "Limits",
    "Remembered",
    "ReplyKey",
    "ReplyTable",
    "bounded_add",
    "depth_exceeds",
    "long_field",
]

MAX_DEPTH = 16
MAX_FIELD_BYTES = 128


class Limits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The caps of one camera (defaults are the SPEC's where it names a number)."""

    max_field_bytes: int = MAX_FIELD_BYTES
    max_open_activities: int = 256
    max_remembered: int = 4096
    duplicate_window_s: float = 3600.0

    def __post_init__(self) -> None:
        for name in ("max_field_bytes", "max_open_activities", "max_remembered"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.duplicate_window_s <= 0:
            raise ValueError("duplicate_window_s must be > 0")


# ------------------------------------------------------------------------- payload shape

# A JSON string (escapes included): brackets inside strings do not nest anything.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def depth_exceeds(payload: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether ``payload`` (JSON, or garbage) nests arrays/objects more than ``limit`` deep.

    Runs at C speed: a payload with no more than ``limit`` opening brackets cannot be deeper
    (the common case, two counts). Otherwise strings are cut out, everything but brackets
    deleted, and innermost ``[]``/``{}`` pairs removed round by round: a well-formed document
    empties in exactly its depth in rounds. What cannot be paired (broken JSON) is counted as
    if it all nested, so the answer errs on the side of refusing, and a parser is never handed
    something deeper than ``limit``.
    """
    if payload.count(b"[") + payload.count(b"{") <= limit:
        return False
    rest = _STRING.sub(b"", payload).translate(None, _NOT_BRACKETS)
    rounds = 0
    while rest:
        shorter = rest.replace(b"[]", b"").replace(b"{}", b"")
        if len(shorter) == len(rest):  # unpaired brackets: assume the worst
            return rounds + rest.count(b"[") + rest.count(b"{") > limit
        rest = shorter
        rounds += 1
        if rounds > limit:
            return True
    return False


def long_field(values: Iterable[tuple[str, object]], limit: int = MAX_FIELD_BYTES) -> str | None:
    """The NACK for the first string longer than ``limit`` bytes of UTF-8, else ``None``.

    Only strings of more than ``limit // 4`` characters can exceed the limit, so the encode is
    skipped for nearly every field.
    """
    quarter = limit // 4
    for name, value in values:
        if isinstance(value, str) and len(value) > quarter:
            size = len(value.encode("utf-8", "surrogatepass"))
            if size > limit:
                return f"too_long: {name}: {size} bytes > {limit}"
    return None


# ------------------------------------------------------------------------- duplicate table

ReplyKey = tuple[str | None, MsgId]
"""A message as the duplicate table knows it: (verified sender or ``None``, message id).

Ids are the sender's own namespace: with signed commands two principals may both send ``"7"``,
and nobody can pre-empt a principal's id by sending it first.
"""


class Remembered(msgspec.Struct, frozen=True, kw_only=True):
    """One duplicate-table entry, as a journal stores it."""

    sender: str | None
    id: MsgId
    ack: Ack
    at: float


class ReplyTable:
    """The first reply to each recent message, for redeliveries (R-IDEM, R-BOUND).

    Entries are kept in arrival order, so expiry and the cap both pop from the oldest end:
    O(1) per message.
    """

    __slots__ = ("_entries", "_oldest_at", "limit", "window_s")

    def __init__(self, limits: Limits | None = None) -> None:
        lim = limits if limits is not None else Limits()
        self.limit = lim.max_remembered
        self.window_s = lim.duplicate_window_s
        # Each entry is kept in the form a journal stores it, so a snapshot copies the table
        # at C speed (one list() of the values) instead of building thousands of records.
        self._entries: OrderedDict[ReplyKey, Remembered] = OrderedDict()
        # When the oldest entry was remembered (inf: none is): while it is inside the window
        # nothing has expired, and that is known without looking at the table.
        self._oldest_at = math.inf

    def get(self, key: ReplyKey, now: float) -> Ack | None:
        if not self._oldest_at >= now - self.window_s:  # the oldest entry has expired
            self._expire(now)
        hit = self._entries.get(key)
        return hit.ack if hit is not None else None

    def put(self, key: ReplyKey, ack: Ack, now: float) -> None:
        entries = self._entries
        oldest_may_change = not entries
        if key in entries:
            entries.move_to_end(key)  # a new key is added at the newest end anyway
            oldest_may_change = True
        entries[key] = Remembered(sender=key[0], id=key[1], ack=ack, at=now)
        while len(entries) > self.limit:
            entries.popitem(last=False)
            oldest_may_change = True
        if oldest_may_change:
            self._note_oldest()

    def _expire(self, now: float) -> None:
        entries = self._entries
        horizon = now - self.window_s
        # One walk from the oldest end, which also meets the time of the oldest entry kept.
        expired = []
        oldest_at = math.inf
        for key, entry in entries.items():
            if entry.at >= horizon:
                oldest_at = entry.at
                break
            expired.append(key)
        for key in expired:
            del entries[key]
        self._oldest_at = oldest_at

    def _note_oldest(self) -> None:
        entries = self._entries
        self._oldest_at = next(iter(entries.values())).at if entries else math.inf

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[Remembered]:
        """Everything remembered, oldest first (for a journal)."""
        return list(self._entries.values())

    def restore(self, entries: Iterable[Remembered]) -> None:
        """Put back what :meth:`entries` returned (oldest first)."""
        table = self._entries
        for e in entries:
            key = (e.sender, e.id)
            table[key] = e
            table.move_to_end(key)
        while len(table) > self.limit:
            table.popitem(last=False)
        self._note_oldest()


def bounded_add(table: OrderedDict[str, None], key: str, limit: int) -> None:
    """Add ``key`` to an insertion-ordered set, dropping the oldest past ``limit`` (O(1))."""
    table[key] = None
    table.move_to_end(key)
    if len(table) > limit:
        table.popitem(last=False)
