"""Scenario files, format version 1 (SPEC §7): load, validate, and expose as typed values.

Theory of operation
-------------------
A scenario is ground truth plus a script. ``timeline`` entries say what *really* happens at
``at`` (an activity begins, the officer docks the camera) and how the camera learns of it: an
``event`` entry becomes one JSON message on ``<prefix>/<camera>/event`` or
``<prefix>/team/<team>/event``, published ``delay_s`` after ``at`` but carrying ``ts = at``; a
``raw`` entry publishes arbitrary bytes on an arbitrary topic (scripted garbage for R-BAD); a
``fault`` entry disconnects one camera's client or the whole broker for ``for_s`` seconds.
Entries keep their file order (``index``): the scheduler breaks delivery-time ties with it,
and the default message id ``m-<index>`` comes from it.

Validation is done by hand rather than by one ``msgspec.convert`` because most rules depend on
other parts of the file (an activity must be known to the *chosen* policy, a team must be
declared by some camera, ``at`` must not pass ``end``) and because every error must name the
file, the line and the field, e.g. ``x.yaml:14: timeline[3].at: 4000.0 is after end (3600.0)``.
The YAML is composed by :func:`controller.yamlsrc.load_yaml`, which remembers the line of every
key and item; each check below raises :meth:`SourceDoc.error` with the path of the value it
rejects, so the line is the line of that key. Unknown keys are errors everywhere: a misspelt
``delay_s`` silently ignored would turn a late-trigger scenario into a passing one.

Errors are written for a trainer fixing a file by hand: each is one line that names the
file, the line and the field, says what is wrong and how to put it right. A word that is not
in the vocabulary (an event, an activity, a camera, a key) comes with the nearest valid word
("did you mean `undock`?") and the words allowed there; a missing field comes with an example
of what to add; an entry after ``end`` says where ``end`` is.

Camera parameters come from three layers, later ones winning: the defaults of
:class:`~controller.params.CameraParams`, the policy's ``camera:`` overrides, then the camera
entry's own keys. Any key ending in ``_s`` that holds seconds also accepts ``"HH:MM:SS"``.

Senders (SPEC §14)
------------------
Every event entry has a sender: the principal named by ``as:``, else the one whose role the
event belongs to (``dispatch`` for activities, ``supervisor`` for deactivations, the camera's
own ``officer-<cam>`` for the button and ``device-<cam>`` for signals and the dock). Those, and
an untrusted ``intruder``, exist in every scenario; ``principals:`` declares more. With
``auth: signed`` the replay signs each message with the sender's deterministic test key
(:mod:`sim.world.senders`) and provisions the cameras with the trusted principals' public
keys; with ``auth: none`` (the default) messages go unsigned, as before. ``claims:`` forges a
signature (the sender's key, another principal's name), ``seq:`` and ``ts:`` set what a message
says of its order and time, and a ``replay`` entry republishes an earlier message's exact bytes
(optionally with a fresh ``id``, which breaks its signature).

A two-part time such as ``"00:20"`` is refused: read as ``HH:MM`` it is twenty minutes, as
``MM:SS`` twenty seconds, and a scenario that silently took the other reading would judge a
different incident.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

import msgspec

from controller.errors import InvalidInput, ScenarioError
from controller.messages import ALERT_KINDS, AUTH_MODES, EVENT_TYPES, STATES
from controller.params import CameraParams
from controller.policy import BUILTIN, DEVICE_SOURCES, Policy, load_policy, parse_policy
from controller.yamlsrc import Path as DocPath
from controller.yamlsrc import SourceDoc, load_yaml

__all__ = [
    "AUTH_MODES",
    "EVENT_FIELDS",
    "FAULT_KINDS",
    "INITIAL_STATES",
    "LATENCY_MODELS",
    "MISSED_KEYS",
    "BusSpec",
    "CameraSpec",
    "Expect",
    "PrincipalSpec",
    "RawSpec",
    "Scenario",
    "TimelineEntry",
    "load_scenario",
    "parse_scenario",
    "parse_time",
]

FORMAT_VERSION = 1
DEFAULT_POLICY = "dhs-2023"
DEFAULT_PREFIX = "bwc"

Initial = Literal["docked", "standby", "pre_buffer"]
LatencyModel = Literal["fixed", "uniform", "exponential"]
Verdict = Literal["pass", "fail"]
FaultKind = Literal["disconnect", "broker_outage"]

INITIAL_STATES: tuple[str, ...] = get_args(Initial)
LATENCY_MODELS: tuple[str, ...] = get_args(LatencyModel)
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
MISSED_KEYS: tuple[str, ...] = (
    "total", "controller", "late_trigger", "not_ready", "docked", "battery", "storage", "bus",
    "deactivated",
)

# Camera and team ids become MQTT topic levels, so they may hold neither a level separator nor
# a wildcard; the rest is kept permissive (letters, digits, '-', '_', '.').
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_REQUIREMENT_RE = re.compile(r"^[RP]-[A-Z]+$")
_PROPERTY_RE = re.compile(r"^P-[A-Z]+$")
_TIME_RE = re.compile(r"^(\d+):(\d+):(\d+(?:\.\d*)?)$")
_TWO_PART_RE = re.compile(r"^(\d+):(\d+(?:\.\d*)?)$")

#: ``Scenario.policy_ref`` of a scenario that carries its policy inline.
INLINE_POLICY = "<inline>"

_TOP_KEYS = (
    "version", "name", "description", "policy", "seed", "end", "prefix", "auth", "principals",
    "cameras", "bus", "timeline", "expect", "requirements",
)
_PRINCIPAL_KEYS = ("name", "role", "camera", "trusted")
_SENDER_KEYS = ("as", "claims", "seq", "ts")
INTRUDER = "intruder"
# The role each event type belongs to: who sends it when an entry names no sender.
_DEFAULT_ROLE = {
    "activity_start": "dispatch", "activity_end": "dispatch", "deactivate": "supervisor",
    "reactivate": "supervisor", "button": "officer", "signal": "device", "dock": "device",
    "undock": "device",
}
_CAMERA_PARAM_TYPES: dict[str, type] = {
    f.name: cast(type, f.type) for f in msgspec.structs.fields(CameraParams)
}
_CAMERA_KEYS = ("id", "team", "teams", "initial", *_CAMERA_PARAM_TYPES)
_BUS_KEYS = ("latency_s", "jitter_s", "latency", "drop", "duplicate")
_EXPECT_KEYS = ("verdict", "missed_s", "final_state", "recordings", "alerts", "refused", "holds")
_ENTRY_KINDS = ("event", "raw", "fault", "replay")
_REPLAY_KEYS = ("of", "id")
_RAW_KEYS = ("topic", "payload", "payload_hex")

# The event's own fields (everything but the envelope ``id``/``type``/``ts``), derived from the
# wire types so the scenario format cannot drift from the codec's.
_ENVELOPE = frozenset({"id", "type", "ts", "seq", "to"})
_EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    name: tuple(f for f in typ.__struct_fields__ if f not in _ENVELOPE)
    for name, typ in EVENT_TYPES.items()
}
#: Public name of the same table: event word → its own fields, in wire order.
EVENT_FIELDS = _EVENT_FIELDS
_BUTTON_ACTIONS = ("start", "stop")


# ------------------------------------------------------------------------------- data model


@dataclass(frozen=True, slots=True, kw_only=True)
class CameraSpec:
    """One declared camera: its id, teams, initial state and effective parameters."""

    id: str
    teams: tuple[str, ...] = ()
    initial: Initial = "pre_buffer"
    params: CameraParams = field(default_factory=CameraParams)


@dataclass(frozen=True, slots=True, kw_only=True)
class BusSpec:
    """Simulated bus behaviour (SPEC §6); the defaults are a perfect bus.

    Latency of one delivery: ``fixed`` → ``latency_s``; ``uniform`` → ``latency_s + U(0,
    jitter_s)``; ``exponential`` → ``latency_s + Exp(mean=jitter_s)``. ``drop`` applies to QoS 0
    only; ``duplicate`` is the probability that a QoS 1 delivery is redelivered.
    """

    latency_s: float = 0.0
    jitter_s: float = 0.0
    latency: LatencyModel = "fixed"
    drop: float = 0.0
    duplicate: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RawSpec:
    """Arbitrary bytes on an arbitrary topic.

    ``payload`` is the text as written (for a ``payload_hex`` entry, the bytes decoded with
    backslash escapes, for display only); ``payload_bytes`` is what goes on the wire.
    """

    topic: str
    payload: str
    payload_bytes: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class PrincipalSpec:
    """A sender of commands: its role, the camera it is bound to, whether cameras trust it."""

    name: str
    role: str
    camera: str | None = None
    trusted: bool = True


class TimelineEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One scripted happening. Exactly one of ``event``, ``raw``, ``fault`` and ``replay_of``
    is set. (A msgspec struct, not a dataclass, for its construction in C: a fleet generates
    every team's timeline, about a hundred entries each.)

    ``sender`` is the principal that sends an event (``as:``, or the default for its type);
    ``claims`` the principal its signature names when that is another one (a forgery);
    ``seq`` and ``ts`` what the message says of its order and time when the file sets them.
    A replay entry republishes the message ``replay_of`` names, with ``id`` as a fresh id.
    """

    index: int
    line: int
    at: float
    camera: str | None = None
    team: str | None = None
    delay_s: float = 0.0
    event: str | None = None
    fields: dict[str, object] = msgspec.field(default_factory=dict)
    raw: RawSpec | None = None
    fault: FaultKind | None = None
    for_s: float = 0.0
    id: str | None = None
    sender: str | None = None
    claims: str | None = None
    seq: int | None = None
    ts: float | None = None
    replay_of: str | None = None

    @property
    def message_id(self) -> str:
        """The ``id`` the message carries: the explicit one, else ``m-<index>``."""
        return self.id if self.id is not None else f"m-{self.index}"

    @property
    def send_at(self) -> float:
        """When the message is published (before bus latency): ``at + delay_s``."""
        return self.at + self.delay_s

    def payload(self, prefix: str = DEFAULT_PREFIX) -> tuple[str, bytes]:
        """The MQTT topic and payload bytes this entry publishes.

        Event entries: ``<prefix>/<camera>/event`` or ``<prefix>/team/<team>/event`` with the
        JSON object ``{"id", "type", "ts", **fields}`` (keys in that order, ``ts`` = ``at``).
        Raw entries: their topic and bytes as written. Fault entries publish nothing.
        """
        if self.raw is not None:
            return self.raw.topic, self.raw.payload_bytes
        if self.event is None:
            what = f"a {self.fault} fault: it publishes nothing" if self.fault is not None else (
                "a replay: its bytes are the original's (sim.world.senders)")
            raise ValueError(f"timeline[{self.index}] is {what}")
        return self.topic(prefix), msgspec.json.encode(self.body())

    def topic(self, prefix: str = DEFAULT_PREFIX) -> str:
        """The event topic the entry targets (its camera's, or its team's)."""
        return (
            f"{prefix}/{self.camera}/event" if self.camera is not None
            else f"{prefix}/team/{self.team}/event"
        )

    @property
    def target(self) -> str:
        """What the entry addresses, as a signed body's ``to`` says it: camera id or ``team/T``."""
        return self.camera if self.camera is not None else f"team/{self.team}"

    def body(self) -> dict[str, object]:
        """The event object: ``id``, ``type``, ``ts`` (``at`` unless set), then its fields."""
        ts = self.ts if self.ts is not None else self.at
        msg_id = self.id if self.id is not None else f"m-{self.index}"  # message_id, uncalled
        return {"id": msg_id, "type": self.event, "ts": ts, **self.fields}


@dataclass(frozen=True, slots=True, kw_only=True)
class Expect:
    """What a run of the scenario must show (all optional; empty maps check nothing)."""

    verdict: Verdict | None = None
    missed_s: dict[str, float] = field(default_factory=dict)
    final_state: dict[str, str] = field(default_factory=dict)
    recordings: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, list[str]] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    #: Replay-judged properties (SPEC §11 IDs) that must hold on the run, e.g. ``P-TAIL``:
    #: checked by ``run``, ``check`` and the pytest plugin (``sim.search.invariants.judge_holds``).
    holds: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """A validated scenario file."""

    version: int
    name: str
    policy: Policy
    end: float
    cameras: tuple[CameraSpec, ...]
    file: str
    description: str = ""
    policy_ref: str = DEFAULT_POLICY
    #: The policy document as the scenario named or carried it (a built-in's or a file's YAML
    #: mapping, or the inline ``policy:`` block): what the oracle reads for itself
    #: (:mod:`sim.world.policy_reading`). ``None`` for scenarios built in code: then the oracle
    #: reads the document ``policy_ref`` names.
    policy_doc: Mapping[str, Any] | None = None
    seed: int = 0
    bus: BusSpec = BusSpec()
    timeline: tuple[TimelineEntry, ...] = ()
    expect: Expect | None = None
    requirements: tuple[str, ...] = ()
    prefix: str = DEFAULT_PREFIX
    auth: str = "none"
    principals: tuple[PrincipalSpec, ...] = ()
    # Look-up tables for the harness's per-message calls; derived, so kept out of eq/repr.
    _by_id: dict[str, CameraSpec] = field(init=False, repr=False, compare=False)
    _by_team: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_team: dict[str, list[str]] = {}
        for cam in self.cameras:
            for team in cam.teams:
                by_team.setdefault(team, []).append(cam.id)
        object.__setattr__(self, "_by_id", {cam.id: cam for cam in self.cameras})
        object.__setattr__(self, "_by_team", {t: tuple(ids) for t, ids in by_team.items()})

    @property
    def teams(self) -> tuple[str, ...]:
        """Every declared team, in order of first mention."""
        return tuple(self._by_team)

    def camera(self, camera_id: str) -> CameraSpec:
        """The camera declared with ``camera_id`` (``KeyError`` if none)."""
        try:
            return self._by_id[camera_id]
        except KeyError:
            raise KeyError(f"no camera {camera_id!r} in {self.file}") from None

    def team_members(self, team: str) -> tuple[str, ...]:
        """Ids of the cameras in ``team``, in declaration order (empty for an unknown team)."""
        return self._by_team.get(team, ())

    def principal(self, name: str) -> PrincipalSpec:
        """The principal called ``name`` (``KeyError`` if none)."""
        for p in self.principals:
            if p.name == name:
                return p
        raise KeyError(f"no principal {name!r} in {self.file}")

    def targets(self, entry: TimelineEntry) -> tuple[str, ...]:
        """Camera ids an entry addresses: its camera, or every camera of its team.

        A raw entry addresses its ``camera`` label if it has one; a broker outage, none.
        """
        if entry.team is not None:
            return self.team_members(entry.team)
        return (entry.camera,) if entry.camera is not None else ()


# ----------------------------------------------------------------------------------- times


def parse_time(value: object) -> float:
    """Seconds from a number or a ``"HH:MM:SS"`` string (fractional seconds ok).

    Raises :class:`~controller.errors.InvalidInput` for anything else, for negative or
    non-finite values (no time in a scenario is negative) and for a two-part ``"MM:SS"`` or
    ``"HH:MM"``, which could mean either.
    """
    if isinstance(value, bool):
        raise InvalidInput(f"expected seconds or \"HH:MM:SS\", got a boolean ({value})")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        two = _TWO_PART_RE.match(value.strip())
        if two is not None:
            first, second = two.groups()
            raise InvalidInput(
                f"{value!r} has two parts, so it could be {int(first)} h {second} min or "
                f"{int(first)} min {second} s: write \"{int(first):02d}:{second}:00\" or "
                f"\"00:{value.strip()}\" (\"HH:MM:SS\"), or the seconds as a number"
            )
        match = _TIME_RE.match(value.strip())
        if match is None:
            raise InvalidInput(
                f"bad time {value!r}: write seconds as a number (90) or \"HH:MM:SS\" "
                "(\"00:01:30\")"
            )
        hours, minutes, secs = match.groups()
        if float(secs) >= 60 or int(minutes) >= 60:
            raise InvalidInput(f"bad time {value!r}: minutes and seconds must be below 60")
        seconds = int(hours) * 3600 + int(minutes) * 60 + float(secs)
    else:
        raise InvalidInput(f"expected seconds or \"HH:MM:SS\", got {_kind(value)}")
    if not math.isfinite(seconds):
        raise InvalidInput(f"{value} is not a finite time")
    if seconds < 0:
        raise InvalidInput(f"{value} is negative")
    return seconds


# ------------------------------------------------------------------------------ validation


def _kind(value: object) -> str:
    """A YAML-flavoured name for a value's type, for error messages."""
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a mapping"}
    name = names.get(type(value), type(value).__name__)
    return f"{name} ({value!r})" if isinstance(value, bool | int | float | str) else name


def _one_of(options: Iterable[str]) -> str:
    return ", ".join(options)


def nearest(word: object, options: Iterable[str]) -> str | None:
    """The valid word closest to ``word`` (a misspelling, a guess), if one is close enough."""
    if not isinstance(word, str):
        return None
    options = list(options)
    found = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not found:  # a guess that shares a leading word: victim_privacy -> victim_or_witness_...
        head = re.split(r"[_\-. ]", word, maxsplit=1)[0]
        found = [o for o in options if head and len(head) >= 3 and o.startswith(head)][:1]
    return found[0] if found else None


def not_a_word(value: object, what: str, options: Iterable[str]) -> str:
    """``'undok' is not an event; did you mean `undock`? (events: ...)``."""
    options = tuple(options)
    guess = nearest(value, options)
    hint = f"; did you mean `{guess}`?" if guess is not None else ""
    shown = repr(value) if isinstance(value, str) else _kind(value)
    return f"{shown} is not {what}{hint} (one of: {_one_of(options)})"


_MISSING = object()


class _Nested(SourceDoc):
    """The part of ``doc`` under ``base`` as a document of its own: its errors keep the lines
    and the full path of the enclosing file (an inline policy's errors say ``policy.…``)."""

    def __init__(self, doc: SourceDoc, base: DocPath, data: object) -> None:
        super().__init__(data, doc.lines, doc.file)
        self.outer = doc
        self.base = base

    def line_of(self, path: DocPath) -> int | None:
        return self.outer.line_of((*self.base, *path))

    def error(self, message: str, path: DocPath = ()) -> ScenarioError:
        return self.outer.error(message, (*self.base, *path))


class _Mapping:
    """One YAML mapping under validation: typed getters whose errors name the key's line."""

    def __init__(self, doc: SourceDoc, data: object, path: DocPath, what: str) -> None:
        if not isinstance(data, dict):
            raise doc.error(f"{what} must be a mapping, got {_kind(data)}", path)
        self.doc = doc
        self.data: dict[object, object] = data
        self.path = path

    def error(self, key: str | int, message: str) -> ScenarioError:
        return self.doc.error(message, (*self.path, key))

    def only(self, allowed: Iterable[str], hint: str = "") -> None:
        allowed = tuple(allowed)
        for key in self.data:
            if key not in allowed:
                name = key if isinstance(key, str | int) else str(key)
                guess = nearest(key, allowed)
                fix = f"; did you mean `{guess}`?" if guess is not None else ""
                raise self.error(
                    name, f"unknown key {key!r}{hint}{fix} (allowed here: {_one_of(allowed)})"
                )

    def has(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str, default: object = _MISSING, need: str = "") -> object:
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            raise self.error(key, f"missing{need}")
        return default

    def string(self, key: str, default: object = _MISSING, need: str = "") -> str:
        value = self.get(key, default, need)
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a non-empty string, got {_kind(value)}")
        return value

    def optional_string(self, key: str) -> str | None:
        return self.string(key) if key in self.data else None

    def ident(self, key: str, what: str) -> str:
        value = self.string(key)
        if not _ID_RE.match(value):
            raise self.error(
                key, f"{value!r} is not a valid {what} (letters, digits, '-', '_', '.'; it "
                "becomes an MQTT topic level)",
            )
        return value

    def choice(self, key: str, options: tuple[str, ...], default: str | object = _MISSING,
               what: str = "") -> str:
        value = self.get(key, default)
        if value not in options:
            if what:
                raise self.error(key, not_a_word(value, what, options))
            guess = nearest(value, options)
            hint = f"; did you mean `{guess}`?" if guess is not None else ""
            raise self.error(key, f"{value!r} is not one of {_one_of(options)}{hint}")
        return value

    def time(self, key: str, default: float | object = _MISSING, need: str = "") -> float:
        value = self.get(key, default, need)
        try:
            return parse_time(value)
        except InvalidInput as exc:
            raise self.error(key, exc.message) from None

    def number(self, key: str, default: float | object = _MISSING) -> float:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {_kind(value)}")
        if not math.isfinite(value):
            raise self.error(key, f"{value} is not finite")
        return float(value)

    def probability(self, key: str) -> float:
        value = self.number(key, 0.0)
        if not 0.0 <= value <= 1.0:
            raise self.error(key, f"{value} is not a probability (0 to 1)")
        return value

    def integer(self, key: str, default: int | object = _MISSING) -> int:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {_kind(value)}")
        return value

    def boolean(self, key: str) -> bool:
        value = self.get(key)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {_kind(value)}")
        return value

    def sub(self, key: str, what: str) -> _Mapping:
        return _Mapping(self.doc, self.data[key], (*self.path, key), what)

    def items(self, key: str, what: str) -> list[tuple[DocPath, object]]:
        value = self.get(key, None)
        if value is None:  # an absent key and a key with nothing under it both mean "none"
            return []
        if not isinstance(value, list):
            raise self.error(key, f"{what} must be a list, got {_kind(value)}")
        return [((*self.path, key, i), item) for i, item in enumerate(value)]


class _Loader:
    """Validates one parsed document into a :class:`Scenario`."""

    def __init__(self, doc: SourceDoc, base_dir: Path) -> None:
        self.doc = doc
        self.base_dir = base_dir
        self.auth = "none"
        self.senders: dict[str, PrincipalSpec] = {}

    def scenario(self) -> Scenario:
        top = _Mapping(self.doc, self.doc.data, (), "a scenario")
        top.only(_TOP_KEYS)
        version = top.get("version", need=f" (this loader reads format version {FORMAT_VERSION})")
        if isinstance(version, bool) or version != FORMAT_VERSION:
            raise top.error(
                "version", f"unsupported format version {version!r} (supported: {FORMAT_VERSION})"
            )
        end = top.time("end", need=" (the scenario's end time, e.g. \"01:00:00\")")
        if end <= 0:
            raise top.error("end", "must be after 0")
        seed = top.integer("seed", 0)
        if seed < 0:
            raise top.error("seed", f"{seed} is negative")
        prefix = top.string("prefix", DEFAULT_PREFIX)
        if "+" in prefix or "#" in prefix or prefix.startswith("/") or prefix.endswith("/"):
            raise top.error(
                "prefix", f"{prefix!r} is not a topic prefix (no wildcards, no leading or "
                "trailing '/')",
            )
        policy_doc: Mapping[str, Any] | None
        if isinstance(top.get("policy", None), dict):
            policy, policy_doc = self.inline_policy(top)
            policy_ref = INLINE_POLICY
        else:
            policy_ref = top.string("policy", DEFAULT_POLICY)
            policy = self.policy(top, policy_ref)
            policy_doc = self.policy_document(policy_ref)
        auth = self.auth = top.choice("auth", AUTH_MODES, "none")
        cameras = self.cameras(top, policy)
        by_id = {cam.id: cam for cam in cameras}
        teams = {team for cam in cameras for team in cam.teams}
        self.senders = {p.name: p for p in self.principals(top, policy, by_id)}
        description = top.get("description", "")
        if not isinstance(description, str):
            raise top.error("description", f"expected a string, got {_kind(description)}")
        return Scenario(
            version=FORMAT_VERSION,
            name=top.string("name"),
            description=description,
            policy=policy,
            policy_ref=policy_ref,
            policy_doc=policy_doc,
            seed=seed,
            end=end,
            cameras=cameras,
            bus=self.bus(top),
            timeline=self.timeline(top, end, policy, by_id, teams),
            expect=self.expect(top, by_id) if top.get("expect", None) is not None else None,
            requirements=self.requirements(top),
            file=self.doc.file,
            prefix=prefix,
            auth=auth,
            principals=tuple(self.senders.values()),
        )

    def policy(self, top: _Mapping, ref: str) -> Policy:
        # A missing policy file is this file's error (the line that names it); a policy file
        # that exists but is invalid is reported against its own file and line.
        if ref not in BUILTIN:
            path = Path(ref) if Path(ref).is_absolute() else self.base_dir / ref
            if not path.is_file():
                raise top.error(
                    "policy", f"{ref!r} is neither a built-in policy ({_one_of(BUILTIN)}) nor a "
                    f"file (looked for {path})",
                )
        return load_policy(ref, self.base_dir)

    def inline_policy(self, top: _Mapping) -> tuple[Policy, Mapping[str, Any]]:
        """A ``policy:`` mapping in the scenario itself: a policy document of the same shape as
        a policy file, validated by the same rules, errors naming this file's lines."""
        data = cast(dict[str, Any], top.get("policy"))
        return parse_policy(_Nested(self.doc, (*top.path, "policy"), data)), data

    def policy_document(self, ref: str) -> Mapping[str, Any] | None:
        """The raw document of the policy ``ref`` names, for the oracle's own reading."""
        from .policy_reading import builtin_document, file_document

        if ref in BUILTIN:
            return builtin_document(ref)
        path = Path(ref) if Path(ref).is_absolute() else self.base_dir / ref
        return file_document(path)

    def cameras(self, top: _Mapping, policy: Policy) -> tuple[CameraSpec, ...]:
        entries = top.items("cameras", "cameras")
        if not entries:
            raise top.error("cameras", "declare at least one camera")
        base = policy.apply(CameraParams())
        seen: dict[str, int] = {}
        cameras = []
        for path, data in entries:
            entry = _Mapping(self.doc, data, path, "a camera entry")
            entry.only(_CAMERA_KEYS)
            cam_id = entry.ident("id", "camera id")
            if cam_id in seen:
                raise entry.error(
                    "id", f"duplicate camera id {cam_id!r} (first declared at line {seen[cam_id]})"
                )
            seen[cam_id] = self.doc.line_of((*path, "id")) or 0
            cameras.append(CameraSpec(
                id=cam_id,
                teams=self.camera_teams(entry),
                initial=cast(Initial, entry.choice("initial", INITIAL_STATES, "pre_buffer")),
                params=self.camera_params(entry, base),
            ))
        return tuple(cameras)

    def camera_teams(self, entry: _Mapping) -> tuple[str, ...]:
        """``team`` and ``teams`` merged, first mention first, without repeats."""
        teams: list[str] = []
        if entry.has("team"):
            teams.append(entry.ident("team", "team name"))
        for path, value in entry.items("teams", "teams"):
            if not isinstance(value, str) or not _ID_RE.match(value):
                raise self.doc.error(
                    f"{_kind(value)} is not a valid team name (letters, digits, '-', '_', '.')",
                    path,
                )
            if value not in teams:
                teams.append(value)
        return tuple(teams)

    def camera_params(self, entry: _Mapping, base: CameraParams) -> CameraParams:
        own: dict[str, object] = {}
        for name, typ in _CAMERA_PARAM_TYPES.items():
            if not entry.has(name):
                continue
            if typ is bool:
                own[name] = entry.boolean(name)
            elif name.endswith("_s"):
                own[name] = entry.time(name)
            else:
                own[name] = entry.number(name)
        if not own:
            return base
        try:
            return msgspec.structs.replace(base, **own)
        except ValueError as exc:
            # CameraParams names the parameter first in its message; point at the camera's own
            # key when it set that parameter, else at the entry (the policy set the bad value).
            culprit = str(exc).split(" ", 1)[0]
            raise entry.error(culprit, str(exc)) if culprit in own else self.doc.error(
                f"{exc} (with the policy's overrides)", entry.path
            ) from None

    def principals(
        self, top: _Mapping, policy: Policy, cameras: Mapping[str, CameraSpec]
    ) -> list[PrincipalSpec]:
        """The built-in senders, then the file's own ``principals:`` (which may redefine them)."""
        out: dict[str, PrincipalSpec] = {
            "dispatch": PrincipalSpec(name="dispatch", role="dispatch"),
            "supervisor": PrincipalSpec(name="supervisor", role="supervisor"),
        }
        for cam in cameras:
            out[f"officer-{cam}"] = PrincipalSpec(name=f"officer-{cam}", role="officer", camera=cam)
            out[f"device-{cam}"] = PrincipalSpec(name=f"device-{cam}", role="device", camera=cam)
        out[INTRUDER] = PrincipalSpec(name=INTRUDER, role="dispatch", trusted=False)
        for path, data in top.items("principals", "principals"):
            entry = _Mapping(self.doc, data, path, "a principal")
            entry.only(_PRINCIPAL_KEYS)
            name = entry.ident("name", "principal name")
            role = entry.string("role")
            if role not in policy.roles:
                raise entry.error("role", f"role {role!r} is not in policy {policy.name} (roles: "
                                  f"{_one_of(policy.roles)})")
            camera = self.camera_ref(entry, cameras) if entry.has("camera") else None
            if role in policy.own_camera_roles and camera is None:
                raise entry.error("camera", f"missing (a {role} is bound to one camera)")
            trusted = entry.boolean("trusted") if entry.has("trusted") else True
            out[name] = PrincipalSpec(name=name, role=role, camera=camera, trusted=trusted)
        return list(out.values())

    def claimed_ts(self, entry: _Mapping) -> float:
        """An explicit ``ts``: seconds as a number, ``"1e300"`` (YAML reads that as text) or
        ``"HH:MM:SS"``; it may lie far ahead, which is what it is for."""
        value = entry.get("ts")
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return entry.time("ts")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise entry.error("ts", f"expected seconds (a finite number), got {_kind(value)}")
        return float(value)

    def sender_ref(self, entry: _Mapping, key: str) -> str:
        name = entry.string(key)
        if name not in self.senders:
            raise entry.error(key, f"unknown principal {name!r} (known: {_one_of(self.senders)})")
        return name

    def default_sender(self, entry: _Mapping, event: str, camera: str | None) -> str | None:
        role = _DEFAULT_ROLE[event]
        if role in ("dispatch", "supervisor"):
            return role
        if camera is None:
            if self.auth == "none":
                return None  # nobody in particular: an unsigned bus cannot tell anyway
            raise self.doc.error(
                f"a {event} on a team topic has no default sender (officer and device keys "
                "belong to one camera): name one with as:", entry.path,
            )
        return f"{role}-{camera}"

    def bus(self, top: _Mapping) -> BusSpec:
        if top.get("bus", None) is None:
            return BusSpec()
        bus = top.sub("bus", "bus")
        bus.only(_BUS_KEYS)
        return BusSpec(
            latency_s=bus.time("latency_s", 0.0),
            jitter_s=bus.time("jitter_s", 0.0),
            latency=cast(LatencyModel, bus.choice("latency", LATENCY_MODELS, "fixed")),
            drop=bus.probability("drop"),
            duplicate=bus.probability("duplicate"),
        )

    def timeline(
        self, top: _Mapping, end: float, policy: Policy, cameras: Mapping[str, CameraSpec],
        teams: set[str],
    ) -> tuple[TimelineEntry, ...]:
        out = []
        first_with_id: dict[str, TimelineEntry] = {}
        for path, data in top.items("timeline", "timeline"):
            entry = _Mapping(self.doc, data, path, "a timeline entry")
            built = self.entry(entry, cast(int, path[-1]), end, policy, cameras, teams)
            if built.event is not None:
                # A repeated id is how a redelivery is scripted, so it must repeat the same
                # message; a different message under a known id would be silently ignored by
                # the camera (R-IDEM) and make the scenario say something it does not mean.
                first = first_with_id.setdefault(built.message_id, built)
                if first is not built and _message_key(first) != _message_key(built):
                    raise entry.error(
                        "id" if entry.has("id") else "event",
                        f"message id {built.message_id!r} is already used by timeline[{first.index}] "
                        "(line {}) for a different message; a scripted redelivery repeats the same "
                        "at, target and fields, anything else needs its own id".format(first.line),
                    )
            if built.replay_of is not None:
                original = first_with_id.get(built.replay_of)
                if original is None:
                    raise self.doc.error(f"no earlier event entry has id {built.replay_of!r}",
                                         (*entry.path, "replay", "of"))
                if built.camera is None and built.team is None:  # to where the original went
                    built = msgspec.structs.replace(built, camera=original.camera, team=original.team)
            out.append(built)
        return tuple(out)

    def entry(
        self, entry: _Mapping, index: int, end: float, policy: Policy,
        cameras: Mapping[str, CameraSpec], teams: set[str],
    ) -> TimelineEntry:
        kinds = [k for k in _ENTRY_KINDS if entry.has(k)]
        if len(kinds) != 1:
            problem = "has none" if not kinds else f"has {' and '.join(kinds)}"
            raise self.doc.error(
                f"a timeline entry needs exactly one of {_one_of(_ENTRY_KINDS)} ({problem})",
                entry.path,
            )
        kind = kinds[0]
        at = entry.time("at", need=" (when it happens): add e.g. at: \"00:10:00\"")
        line = self.doc.line_of(entry.path) or 0
        camera = self.camera_ref(entry, cameras) if entry.has("camera") else None
        if kind == "event":
            event = entry.choice("event", tuple(EVENT_TYPES), what="an event")
            own = _EVENT_FIELDS[event]
            entry.only(
                ("at", "camera", "team", "delay_s", "id", "event", *own, *_SENDER_KEYS),
                f" for event {event}" + (f" (it takes {_one_of(own)})" if own else ""),
            )
            team = self.team_ref(entry, teams) if entry.has("team") else None
            if (camera is None) == (team is None):
                raise self.doc.error(
                    "an event entry needs exactly one of camera or team", entry.path
                )
            seq = entry.integer("seq") if entry.has("seq") else None
            if seq is not None and not 0 <= seq < 2**63:
                raise entry.error("seq", f"{seq} is not a sequence number (0 to 2**63 - 1)")
            result = TimelineEntry(
                index=index, line=line, at=at, camera=camera, team=team,
                delay_s=entry.time("delay_s", 0.0), event=event,
                fields=self.event_fields(entry, event, own, policy),
                id=entry.optional_string("id"),
                sender=(self.sender_ref(entry, "as") if entry.has("as")
                        else self.default_sender(entry, event, camera)),
                claims=self.sender_ref(entry, "claims") if entry.has("claims") else None,
                seq=seq,
                ts=self.claimed_ts(entry) if entry.has("ts") else None,
            )
        elif kind == "replay":
            entry.only(("at", "camera", "team", "delay_s", "replay"), " for a replay entry")
            team = self.team_ref(entry, teams) if entry.has("team") else None
            if camera is not None and team is not None:
                raise self.doc.error("a replay entry takes camera or team, not both", entry.path)
            replay = entry.sub("replay", "replay")
            replay.only(_REPLAY_KEYS)
            result = TimelineEntry(
                index=index, line=line, at=at, camera=camera, team=team,
                delay_s=entry.time("delay_s", 0.0), replay_of=replay.string("of"),
                id=replay.optional_string("id"),
            )
        elif kind == "raw":
            entry.only(("at", "camera", "delay_s", "raw"), " for a raw entry")
            result = TimelineEntry(
                index=index, line=line, at=at, camera=camera, delay_s=entry.time("delay_s", 0.0),
                raw=self.raw(entry.sub("raw", "raw")),
            )
        else:
            fault = cast(FaultKind, entry.choice("fault", FAULT_KINDS))
            takes = ("camera", "for_s") if fault == "disconnect" else ("for_s",)
            entry.only(("at", "fault", *takes), f" for fault {fault}")
            if fault == "disconnect" and camera is None:
                raise entry.error("camera", "missing (disconnect needs the camera to cut off)")
            for_s = entry.time("for_s", need=" (how long the fault lasts)")
            if for_s <= 0:
                raise entry.error("for_s", "must be more than 0")
            result = TimelineEntry(
                index=index, line=line, at=at, camera=camera, fault=fault, for_s=for_s
            )
        if at > end:
            end_line = self.doc.line_of(("end",))
            raise entry.error(
                "at", f"{at} is after end ({end}{f', line {end_line}' if end_line else ''}): "
                "move this entry earlier or raise end",
            )
        return result

    def camera_ref(self, entry: _Mapping, cameras: Mapping[str, CameraSpec]) -> str:
        camera = entry.string("camera")
        if camera not in cameras:
            guess = nearest(camera, cameras)
            fix = f"did you mean `{guess}`? Or declare" if guess is not None else "declare"
            raise entry.error(
                "camera", f"unknown camera {camera!r} (declared: {_one_of(cameras)}); {fix} it "
                f"under cameras: as - {{id: {camera}}}",
            )
        return camera

    def team_ref(self, entry: _Mapping, teams: set[str]) -> str:
        team = entry.string("team")
        if team not in teams:
            declared = _one_of(sorted(teams)) if teams else "none"
            guess = nearest(team, teams)
            fix = f"; did you mean `{guess}`?" if guess is not None else (
                "; give a camera `team: " + team + "` to declare it")
            raise entry.error("team", f"unknown team {team!r} (declared: {declared}){fix}")
        return team

    def event_fields(
        self, entry: _Mapping, event: str, own: tuple[str, ...], policy: Policy
    ) -> dict[str, object]:
        examples = _field_examples(policy)
        fields: dict[str, object] = {
            name: entry.string(name, need=f" ({event} needs {' and '.join(own)}): add e.g. "
                                           f"{name}: {examples.get(name, 'x')}")
            for name in own
        }
        activity = fields.get("activity")
        if activity is not None and policy.kind(cast(str, activity)) is None:
            guess = nearest(activity, policy.activities)
            fix = f"did you mean `{guess}`? " if guess is not None else ""
            raise entry.error(
                "activity",
                f"activity {activity!r} is not in policy {policy.name}; {fix}(known: "
                f"{_one_of(policy.activities)}); send unknown activities as a raw entry",
            )
        if event == "button" and fields["action"] not in _BUTTON_ACTIONS:
            raise entry.error("action", not_a_word(fields["action"], "a button action",
                                                   _BUTTON_ACTIONS))
        if event == "signal" and fields["source"] not in DEVICE_SOURCES:
            raise entry.error(
                "source", not_a_word(fields["source"], "a device source", DEVICE_SOURCES)
                + "; send anything else as a raw entry",
            )
        # Keep the file's key order so the payload reads like the scenario line.
        return {key: fields[key] for key in entry.data if isinstance(key, str) and key in fields}

    def raw(self, raw: _Mapping) -> RawSpec:
        raw.only(_RAW_KEYS)
        topic = raw.string("topic")
        if "+" in topic or "#" in topic or "\0" in topic:
            raise raw.error("topic", f"{topic!r}: a published topic cannot hold '+', '#' or NUL")
        if raw.has("payload") == raw.has("payload_hex"):
            raise self.doc.error("needs exactly one of payload or payload_hex", raw.path)
        if raw.has("payload"):
            text = raw.get("payload")
            if not isinstance(text, str):
                raise raw.error(
                    "payload", f"expected a string, got {_kind(text)} (quote it to send it as text)"
                )
            return RawSpec(topic=topic, payload=text, payload_bytes=text.encode("utf-8"))
        hex_text = raw.get("payload_hex")
        if not isinstance(hex_text, str):
            raise raw.error(
                "payload_hex", f"expected a string of hex digits, got {_kind(hex_text)}"
            )
        try:
            data = bytes.fromhex(hex_text)
        except ValueError as exc:
            raise raw.error("payload_hex", f"not hex: {exc}") from None
        return RawSpec(
            topic=topic, payload=data.decode("utf-8", "backslashreplace"), payload_bytes=data
        )

    def expect(self, top: _Mapping, cameras: Mapping[str, CameraSpec]) -> Expect:
        expect = top.sub("expect", "expect")
        expect.only(_EXPECT_KEYS)
        verdict = expect.choice("verdict", ("pass", "fail")) if expect.has("verdict") else None

        missed: dict[str, float] = {}
        if expect.has("missed_s"):
            block = expect.sub("missed_s", "expect.missed_s")
            block.only(MISSED_KEYS, " (a miss cause)")
            missed = {cast(str, k): block.time(cast(str, k)) for k in block.data}

        def per_camera(key: str) -> tuple[_Mapping, dict[str, object]]:
            block = expect.sub(key, f"expect.{key}")
            for cam in block.data:
                if cam not in cameras:
                    raise block.error(
                        str(cam), f"unknown camera {cam!r} (declared: {_one_of(cameras)})"
                    )
            return block, {cast(str, k): v for k, v in block.data.items()}

        final_state: dict[str, str] = {}
        if expect.has("final_state"):
            block, _ = per_camera("final_state")
            final_state = {cam: block.choice(cam, STATES) for cam in map(str, block.data)}

        counts: dict[str, dict[str, int]] = {"recordings": {}, "refused": {}}
        for key in counts:
            if expect.has(key):
                block, _ = per_camera(key)
                for cam in map(str, block.data):
                    count = block.integer(cam)
                    if count < 0:
                        raise block.error(cam, f"{count} is negative")
                    counts[key][cam] = count

        alerts: dict[str, list[str]] = {}
        if expect.has("alerts"):
            block, data = per_camera("alerts")
            for cam, kinds in data.items():
                if not isinstance(kinds, list):
                    raise block.error(cam, f"expected a list of alert kinds, got {_kind(kinds)}")
                for i, kind in enumerate(kinds):
                    if kind not in ALERT_KINDS:
                        raise self.doc.error(
                            f"{kind!r} is not an alert kind (one of {_one_of(ALERT_KINDS)})",
                            (*block.path, cam, i),
                        )
                alerts[cam] = cast(list[str], list(kinds))

        holds: list[str] = []
        if expect.has("holds"):
            for path, value in expect.items("holds", "expect.holds"):
                if not isinstance(value, str) or not _PROPERTY_RE.match(value):
                    raise self.doc.error(
                        f"{_kind(value)} is not a property id such as P-NOMISS or P-TAIL", path
                    )
                holds.append(value)
        return Expect(
            verdict=cast(Verdict | None, verdict), missed_s=missed, final_state=final_state,
            recordings=counts["recordings"], alerts=alerts, refused=counts["refused"],
            holds=tuple(holds),
        )

    def requirements(self, top: _Mapping) -> tuple[str, ...]:
        out = []
        for path, value in top.items("requirements", "requirements"):
            if not isinstance(value, str) or not _REQUIREMENT_RE.match(value):
                raise self.doc.error(
                    f"{_kind(value)} is not a requirement id such as R-DOCK or P-NOMISS", path
                )
            out.append(value)
        return tuple(out)


def _field_examples(policy: Policy) -> dict[str, str]:
    """A plausible value for each event field, for the "add e.g. ..." of a missing one."""
    return {
        "activity": next(iter(policy.activities), "patrol"),
        "activity_id": "w-1",
        "action": "start",
        "source": next(iter(sorted(policy.signals)), "holster"),
        "reason": next(iter(sorted(policy.deactivation_reasons)), "supervisor_order"),
        "actor": "officer-1",
    }


# ------------------------------------------------------------------------------ public API


def _message_key(e: TimelineEntry) -> tuple[object, ...]:
    return (e.at, e.camera, e.team, e.event, sorted(e.fields.items(), key=lambda kv: kv[0]),
            e.sender, e.claims, e.seq, e.ts)


def parse_scenario(text: str, file: str, base_dir: Path | None = None) -> Scenario:
    """Validate scenario ``text`` read from ``file`` (used in error messages).

    A policy given as a path is resolved against ``base_dir``, by default the directory of
    ``file``. Every problem raises :class:`~controller.errors.ScenarioError` naming the file,
    line and field.
    """
    doc = load_yaml(text, file)
    return _Loader(doc, base_dir if base_dir is not None else Path(file).parent).scenario()


def scenario_from_data(data: object, file: str = "<generated>", base_dir: Path | None = None) -> Scenario:
    """Validate an already-parsed scenario document (e.g. one a generator built) by the same rules.

    Errors name the field but no line, as there is no text. Policy paths resolve against
    ``base_dir`` (default: the current folder).
    """
    return _Loader(SourceDoc(data, {}, file), base_dir if base_dir is not None else Path(".")).scenario()


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate the scenario file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read the scenario ({exc.strerror})", str(path)) from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start})", str(path)
        ) from None
    return parse_scenario(text, str(path), path.parent)
