"""P-REPLY: what the camera answered, judged against SPEC §4, §4a and §5 (SPEC §8b).

Theory of operation
===================

The replay records every delivery a camera received — when, on which topic, the bytes, the
state the camera had reported just before, and the acks it published while handling it
(:class:`sim.world.replay.Delivery`). This module reads those deliveries *without* the
controller's code: it parses each payload itself (plain :mod:`json`, the bounds of §14a), keeps
its own small model of what the camera has been told (open activities, ended ones, required
windows with their ``post_s`` tails, an allowed deactivation in effect) and says, for each
delivery, what the spec obliges the camera to answer:

* **one reply** — exactly one ack per delivery, carrying the payload's id (compared with its
  JSON type: ``7`` is not ``"7"``), ``null`` only when no id can be read;
* **the first reply again** for a redelivered id (within the 3,600 s redelivery window and the
  4,096 remembered replies), whatever the bytes of the second copy;
* **refusals the spec mandates** — malformed input (R-BAD), an unknown activity, an
  ``activity_end`` for an activity that never started (R-IDEM), a ``button stop`` while a required
  window holds the recording and no allowed deactivation is in effect (R-STOP), a ``deactivate``
  with a reason the policy does not allow during a required window, a ``button start`` or a
  listed ``signal`` while ``docked``, ``standby`` or ``off`` (``not_ready``), and whatever §14
  obliges the camera to refuse;
* **acceptances** — everything else that is well formed (an ``activity_end`` of an activity
  that already ended, a ``button stop`` outside a required window, an unlisted signal...).

Where the spec leaves a choice the judgement accepts either answer (listed in SPEC §8b). Each
problem is one sentence naming the camera, the time, the message id and what was expected.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from controller.messages import Ack, Alert, RecordingMeta, StateReport
from controller.spans import EPS

from .policy_reading import PolicyReading
from .scenario import CameraSpec, Scenario

__all__ = ["MAX_DEPTH", "MAX_FIELD_BYTES", "MAX_PAYLOAD", "Delivery", "Observed", "Parsed", "Pause",
           "Reading", "judge_replies", "parse"]

MAX_PAYLOAD = 64 * 1024
MAX_DEPTH = 16
MAX_FIELD_BYTES = 128
REDELIVERY_WINDOW_S = 3600.0
MAX_REMEMBERED = 4096
MAX_OPEN = 256
_INT64 = (-(2**63), 2**63 - 1)
_CANNOT_CAPTURE = frozenset({"docked", "standby", "off"})
# The words of a NACK for a payload whose origin did not verify: never remembered (§14a).
_ORIGIN_FAILURES = ("unauthorized: unsigned", "unauthorized: unknown principal",
                    "unauthorized: bad signature")
_FIELDS: dict[str, tuple[str, ...]] = {
    "activity_start": ("activity", "activity_id"),
    "activity_end": ("activity_id",),
    "dock": (),
    "undock": (),
    "button": ("action",),
    "signal": ("source",),
    "deactivate": ("reason", "actor"),
    "reactivate": (),
}

MsgId = str | int
# What a reply is remembered by: the signer (None unsigned), the id's JSON type ("i" or "s")
# and the id, so that 7 and "7" are two ids.
IdKey = tuple[str | None, str, MsgId]


class Delivery(msgspec.Struct):
    """One delivery to a camera and the replies it published while handling it (P-REPLY).
    (A struct for its cheap construction: one is recorded for every delivery.)"""

    seq: int  # order of arrival at the camera, across the whole run
    at: float
    topic: str
    payload: bytes
    entry: int | None  # the timeline entry it carries, when it is one
    prior: StateReport | None  # the state the camera had reported just before
    acks: list[Ack] = msgspec.field(default_factory=list)


class Arrival(Protocol):
    """The first delivery of a timeline entry (``sim.world.replay.FirstDelivery``)."""

    @property
    def at(self) -> float: ...
    @property
    def ok(self) -> bool | None: ...


class Observed(Protocol):
    """What the judgements of what a camera said read of it (``sim.world.replay.ObservedCamera``)."""

    @property
    def spec(self) -> CameraSpec: ...
    @property
    def deliveries(self) -> Sequence[Delivery]: ...
    @property
    def reports(self) -> Sequence[tuple[float, StateReport]]: ...
    @property
    def recordings(self) -> Mapping[str, RecordingMeta]: ...
    @property
    def alerts(self) -> Sequence[Alert]: ...
    @property
    def refusable(self) -> Mapping[int, str]: ...
    @property
    def delivered(self) -> Mapping[int, Arrival]: ...
    @property
    def offline(self) -> Sequence[tuple[float, float]]: ...
    @property
    def paused(self) -> Sequence[tuple[float, float]]: ...


class Parsed(msgspec.Struct, frozen=True):
    """One payload as the spec reads it: its id (if readable), the event (if well formed).

    (A msgspec struct only as a record, for its cheap construction: one is built for every
    payload read. The payload itself is read with :mod:`json` below, not by msgspec.)
    """

    id: MsgId | None
    event: dict[str, Any] | None  # None: malformed, must be refused
    principal: str | None = None  # a signed envelope's ``by``


def _depth(text: str) -> int:
    """Nesting depth of JSON text, counted outside strings, before any parser recurses."""
    depth = deepest = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _bad_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


# What json.loads(text, parse_constant=_bad_constant) does, without building a decoder per call:
# the decoder's scanner, called directly (JSONDecoder.decode is two Python calls around it that
# skip JSON whitespace either side and turn "no value here" into an error; _object does both).
# (JSONDecoder sets scan_once in __init__; typeshed does not declare it.)
_json_scan: Callable[[str, int], tuple[Any, int]] = (
    json.JSONDecoder(parse_constant=_bad_constant).scan_once)  # type: ignore[attr-defined]
_JSON_SPACE = " \t\n\r"


def _object(data: bytes) -> dict[str, Any] | None:
    if len(data) > MAX_PAYLOAD:
        return None
    try:
        text = data.decode()  # UTF-8, the default (named, it would be looked up as a codec name)
    except UnicodeDecodeError:
        return None
    # The depth is at most the number of opening brackets: count them at C speed first
    # (a "[" is looked for before it is counted: most payloads have none, and `in` is cheaper).
    opening = text.count("{") + text.count("[") if "[" in text else text.count("{")
    if opening > MAX_DEPTH and _depth(text) > MAX_DEPTH:
        return None
    # The value starts at once when the payload opens with "{" (nearly always), else after
    # the JSON whitespace before it.
    start = 0 if text[:1] == "{" else len(text) - len(text.lstrip(_JSON_SPACE))
    try:
        obj, end = _json_scan(text, start)
    except (StopIteration, ValueError, RecursionError):
        return None
    if end != len(text) and text[end:].lstrip(_JSON_SPACE):
        return None  # more than whitespace after the value
    return obj if isinstance(obj, dict) else None


def _short(value: object) -> bool:
    if not isinstance(value, str):
        return False
    # An ASCII string's length is its length in UTF-8 (isascii reads a flag: no encoding).
    return len(value) <= MAX_FIELD_BYTES if value.isascii() else (
        len(value.encode("utf-8")) <= MAX_FIELD_BYTES)


def _read_id(value: object) -> MsgId | None:
    if isinstance(value, str):  # the usual case first
        return value if _short(value) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if _INT64[0] <= value <= _INT64[1] else None
    return None


def _well_formed(obj: dict[str, Any], msg_id: MsgId | None) -> bool:
    """Whether ``obj`` (whose id reads as ``msg_id``) is an event as §4a/§5 define it."""
    kind = obj.get("type")
    if msg_id is None or not isinstance(kind, str) or kind not in _FIELDS:
        return False
    ts = obj.get("ts")
    # json gives exact types (true is a bool, never an int), and type() is cheaper than a
    # failing isinstance(), which looks the value's __class__ up too.
    if ts is not None and type(ts) is not float and type(ts) is not int:
        return False
    seq = obj.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)
                            or not 0 <= seq <= _INT64[1]):
        return False
    to = obj.get("to")
    if to is not None and not _short(to):
        return False
    for name in _FIELDS[kind]:
        value = obj.get(name)
        # _short(value), with its usual case (a short ASCII string) written out.
        if isinstance(value, str) and value.isascii() and len(value) <= MAX_FIELD_BYTES:
            continue
        if not _short(value):
            return False
    if kind == "button" and obj["action"] not in ("start", "stop"):
        return False
    return not (kind == "deactivate" and obj["actor"] == "")


def parse(payload: bytes, signed: bool = False) -> Parsed:
    """Read one inbound payload as SPEC §4a/§14a define it (independently of the controller).

    The same payload reaches every camera of a team and is read by several judgements of each:
    a payload of up to :data:`_CACHED_BYTES` is read once and the same :class:`Parsed` returned
    after that (treat its ``event`` as read-only).
    """
    if len(payload) > _CACHED_BYTES:
        return _parse(payload, signed)
    # A signed reading is remembered apart; an unsigned one (every fleet run's) by the bytes
    # alone, with no pair to build and hash.
    key = (payload, True) if signed else payload
    hit = _parsed.get(key)
    if hit is None:
        hit = _parse(payload, signed)
        if len(_parsed) >= _CACHE_ENTRIES:
            _parsed.clear()
        _parsed[key] = hit
    return hit


_CACHED_BYTES = 4096
_CACHE_ENTRIES = 4096
_parsed: dict[bytes | tuple[bytes, bool], Parsed] = {}


def _parse(payload: bytes, signed: bool) -> Parsed:
    obj = _object(payload)
    if obj is None:
        return Parsed(None, None)
    principal: str | None = None
    if signed and isinstance(obj.get("body"), str) and "sig" in obj:
        by = obj.get("by")
        principal = by if isinstance(by, str) else None
        body = _object(obj["body"].encode("utf-8", "surrogatepass"))
        if body is None:
            return Parsed(None, None, principal)
        obj = body
    elif signed:
        return Parsed(_read_id(obj.get("id")), None)  # unsigned: refused ``unauthorized``
    msg_id = obj.get("id")
    # _read_id(msg_id), with its usual case (a short ASCII string) written out.
    if not (isinstance(msg_id, str) and msg_id.isascii() and len(msg_id) <= MAX_FIELD_BYTES):
        msg_id = _read_id(msg_id)
    return Parsed(msg_id, obj if _well_formed(obj, msg_id) else None, principal)


def _show(msg_id: MsgId | None) -> str:
    return json.dumps(msg_id)


_INF = float("inf")


def _where(cam: str, d: Delivery, p: Parsed) -> str:
    """How a problem names the delivery it is about (built only when there is one)."""
    return f"{cam} at {d.at:g}: message {_show(p.id)} on {d.topic}"


@dataclass(slots=True)
class Pause:
    """An allowed deactivation as the spec reads the messages: ``resumed`` when a message
    (``reactivate``, a new required activity, a listed signal, ``button start``) ended it,
    rather than the last required window closing."""

    start: float
    end: float | None = None
    resumed: bool = False
    recording: bool = True  # the camera reported recording when the deactivation arrived


@dataclass(slots=True)
class _Told:
    """What the camera has been told, as the spec reads the accepted messages."""

    open: dict[str, str] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)
    windows: dict[str, float | None] = field(default_factory=dict)  # id → tail end (None: open)
    pauses: list[Pause] = field(default_factory=list)
    # No tail in ``windows`` ends before this (None: none has a tail); it may be earlier
    # than the soonest tail (an activity restarted), which only costs a look at them all.
    soonest: float | None = None

    @property
    def paused(self) -> bool:
        return bool(self.pauses) and self.pauses[-1].end is None

    def pause(self, now: float, recording: bool) -> None:
        if not self.paused:
            self.pauses.append(Pause(now, recording=recording))

    def resume(self, now: float, resumed: bool = True) -> None:
        pauses = self.pauses
        if pauses and pauses[-1].end is None:  # self.paused, without the property's call
            pauses[-1].end = now
            pauses[-1].resumed = resumed

    def tail(self, aid: str, end: float) -> None:
        """The required window ``aid`` now ends at ``end`` (its activity ended)."""
        self.windows[aid] = end
        if self.soonest is None or end < self.soonest:
            self.soonest = end

    def prune(self, now: float) -> None:
        # Scheduled internal events (a post_s tail ending) come before messages at equal times.
        windows = self.windows
        if not windows:
            self.resume(now, resumed=False)
            return
        limit = now + EPS
        if self.soonest is None or self.soonest > limit:
            return  # no tail has ended
        tails: list[float] = []
        for aid, tail in list(windows.items()):
            if tail is not None and tail <= limit:
                del windows[aid]
                tails.append(tail)
        self.soonest = min((t for t in windows.values() if t is not None), default=None)
        if tails and not windows:
            self.resume(max(tails), resumed=False)


Expect = tuple[bool | None, tuple[str, ...]]  # (ok expected or None for either, error words)


def _expect(ev: dict[str, Any], told: _Told, state: str | None, storage_free: float,
            policy: PolicyReading, now: float) -> tuple[Expect, str]:
    """The answer the spec requires for a well-formed, first-delivered event, and why
    (``policy``: the oracle's own reading of the scenario's policy, never the controller's)."""
    kind = ev["type"]
    # Calls to prune(), resume() and policy's methods are made only when they have work to do,
    # or written out: this runs for every delivery. prune() has work when a tail has ended, or
    # when no window is left and a pause may end.
    if (told.soonest is not None and told.soonest <= now + EPS) if told.windows else told.pauses:
        told.prune(now)
    if kind == "activity_start":
        activity, aid = ev["activity"], ev["activity_id"]
        rule = policy.kinds.get(activity)
        if rule is None:
            return (False, ("unknown_activity",)), f"{activity!r} is no activity of the policy"
        if aid in told.open:
            return ((True, ()), "a repeated start") if told.open[aid] == activity else (
                (None, ()), "an id reused for another activity")
        if len(told.open) >= MAX_OPEN:
            return (None, ()), "the open activities are at the cap"
        told.open[aid] = activity
        told.ended.discard(aid)
        if rule == "required":  # policy.is_required(activity)
            told.windows[aid] = None
            if told.pauses:  # (resume() ends only a pause)
                told.resume(now)
        return (True, ()), "a known activity starts"
    if kind == "activity_end":
        aid = ev["activity_id"]
        if aid in told.open:
            activity = told.open.pop(aid)
            told.ended.add(aid)
            if aid in told.windows:
                post = policy.post_s.get(activity, 0.0)  # policy.tail(activity)
                if post > 0:
                    told.tail(aid, now + post)
                else:
                    del told.windows[aid]
            if (told.soonest is not None and told.soonest <= now + EPS
                    ) if told.windows else told.pauses:  # (as above)
                told.prune(now)
            return (True, ()), "an open activity ends"
        if aid in told.ended:
            return (True, ()), "an activity that already ended"
        if len(told.ended) >= MAX_REMEMBERED:
            return (None, ()), "more ended activities than the camera remembers"
        return (False, ("unknown_activity",)), f"activity {aid!r} never started (R-IDEM)"
    if kind in ("dock", "undock"):
        return (True, ()), f"{kind} always succeeds"
    if kind == "reactivate":
        if told.pauses:
            told.resume(now)
        return (True, ()), "reactivate is always acked"
    if kind == "signal" and ev["source"] not in policy.signals:
        return (True, ()), f"signal {ev['source']!r} is not listed: acked, starts nothing"
    if kind == "signal" or (kind == "button" and ev["action"] == "start"):
        what = "a listed signal" if kind == "signal" else "button start"
        if state in _CANNOT_CAPTURE:
            return (False, ("not_ready",)), f"{what} while {state}"
        if state == "pre_buffer" and storage_free <= EPS:
            return (None, ("storage_full",)), f"{what} with no free storage"
        if told.pauses:
            told.resume(now)
        return (True, ()), f"{what} while {state}"
    if kind == "button":  # stop
        # (told.paused, without the property's call)
        if told.windows and not (told.pauses and told.pauses[-1].end is None):
            return (False, ("required_activity",)), "button stop during a required window (R-STOP)"
        return (True, ()), "button stop with no required window holding the recording"
    # deactivate
    allowed = ev["reason"] in policy.deactivation_reasons
    if told.windows:
        if not allowed:
            return (False, ("reason_not_allowed",)), f"reason {ev['reason']!r} is not allowed"
        told.pause(now, recording=state == "recording")
        return (True, ()), "an allowed deactivation during a required window"
    if allowed:
        return (True, ()), "deactivate outside a required window acts as button stop"
    return (None, ("reason_not_allowed",)), "a reason not allowed, outside any required window"


def _entries(seen: Observed) -> Iterator[Delivery]:
    return iter(sorted(seen.deliveries, key=_SEQ))


_SEQ = operator.attrgetter("seq")


@dataclass(slots=True)
class Reading:
    """P-REPLY's problems for one camera, and what it read on the way: the allowed
    deactivations, and (time, reason) of every accepted ``button start`` and listed ``signal``
    (the reasons a recording may name besides its required windows, :mod:`sim.world.evidence`)."""

    problems: list[str]
    pauses: list[Pause]
    manual: list[tuple[float, str]] = field(default_factory=list)


def judge_replies(sc: Scenario, seen: Observed, policy: PolicyReading) -> Reading:
    """P-REPLY for one camera: every problem with what it answered (``[]``: all as required).
    ``policy`` is the oracle's reading of ``sc``'s policy (``sim.world.replay.oracle_policy``)."""
    if not seen.deliveries:
        return Reading([], [])
    cam = seen.spec.id
    signals = policy.signals
    manual: list[tuple[float, str]] = []
    signed = sc.auth == "signed"
    table: dict[IdKey, tuple[float, bool, str | None]] = {}
    order: list[IdKey] = []
    told = _Told()
    problems: list[str] = []
    refusable: Mapping[int, str] = seen.refusable
    for d in _entries(seen):
        p = parse(d.payload, signed)
        acks = d.acks
        if len(acks) != 1:
            problems.append(f"{_where(cam, d, p)} got {len(acks)} replies, not exactly one")
            if not acks:
                continue
        ack = acks[0]
        acked, error = ack.ok, ack.error  # read once: both are read again and again below
        ev = p.event
        if ev is not None and acked:
            kind = ev.get("type")
            if kind == "button" and ev.get("action") == "start":
                manual.append((d.at, "button"))
            elif kind == "signal" and ev.get("source") in signals:
                manual.append((d.at, f"signal:{ev.get('source')}"))
        msg_id = p.id
        # Ids compare with their JSON type: 7 is not "7" (here and in the key below).
        if type(ack.id) is not type(msg_id) or ack.id != msg_id:
            problems.append(f"{_where(cam, d, p)} was answered with id {_show(ack.id)}, "
                            f"not {_show(p.id)}")
        key = (None if msg_id is None else
               (p.principal, "i" if type(msg_id) is int else "s", msg_id))  # (see _well_formed)
        first = table.get(key) if key is not None else None  # one lookup, read twice below
        if key is not None and first is not None:
            first_at, ok, first_error = first
            recent = d.at - first_at <= REDELIVERY_WINDOW_S + EPS and (
                len(order) - order.index(key) <= MAX_REMEMBERED)
            if recent:
                if acked != ok or error != first_error:
                    problems.append(
                        f"{_where(cam, d, p)} is a redelivery: answered ok={acked} "
                        f"{error or ''}".rstrip() + f", not its first reply ok={ok} "
                        f"{first_error or ''}".rstrip())
                continue
            if signed:
                # Past the redelivery window its sequence number is spent (R-FRESH).
                if acked:
                    problems.append(f"{_where(cam, d, p)} is a redelivery past the window, "
                                    f"acked: its spent seq must make it refused replayed (R-FRESH)")
                continue
        if key is not None and not (error is not None and error.startswith(_ORIGIN_FAILURES)):
            if first is not None:
                order.remove(key)
            table[key] = (d.at, acked, error)
            order.append(key)
        if d.entry is not None and d.entry in refusable:
            continue  # §14: judged as a forgery (sim.world.senders), never acted on
        if ev is None:
            if acked:
                problems.append(f"{_where(cam, d, p)} is malformed and was acked (R-BAD: must be "
                                f"refused)")
            continue
        prior = d.prior
        state = prior.state if prior is not None else None
        free = prior.storage_s if prior is not None else _INF
        (ok_expected, words), why = _expect(ev, told, state, free, policy, d.at)
        if ok_expected is None:
            if not acked and words and not (error or "").startswith(words):
                problems.append(f"{_where(cam, d, p)} was refused {error!r}; {why} is acked "
                                f"or refused {' or '.join(words)}")
            continue
        if acked != ok_expected:
            verb = "refused" if ok_expected is False else "acked"
            problems.append(
                f"{_where(cam, d, p)} ({ev['type']}) was "
                f"{'acked' if acked else 'refused ' + repr(error)}: {why} must be {verb}"
                + (f" {' or '.join(words)}" if words else ""))
        elif not acked and words and not (error or "").startswith(words):
            problems.append(f"{_where(cam, d, p)} ({ev['type']}) was refused "
                            f"{error!r}, not {' or '.join(words)}: {why}")
    told.prune(sc.end)
    told.resume(sc.end, resumed=False)
    return Reading(problems, told.pauses, manual)
