"""Bytes ⇄ typed messages, and the topic scheme (SPEC §5). The only parser of payloads.

Inbound payloads are decoded in one pass by msgspec into the tagged union of
:mod:`controller.messages`; only when that fails do we look closer, to name the problem in
the NACK (not UTF-8, not JSON, not an object, missing or mistyped field, unknown type). Nothing
here raises on bad input: :func:`decode_event` returns a :class:`DecodeError` instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, final

import msgspec

from .bounds import MAX_DEPTH, MAX_FIELD_BYTES, depth_exceeds
from .messages import EVENT_TYPES, Ack, Alert, Event, MsgId, Outbound, RecordingMeta, StateReport
from .node import Publish

MAX_PAYLOAD = 64 * 1024
DEFAULT_PREFIX = "bwc"
AVAILABLE = b"online"
UNAVAILABLE = b"offline"

_event_decoder: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)
_any_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder()
_encode = msgspec.json.Encoder().encode
_MISSING = re.compile(r"missing required field `([^`]+)`")
_AT = re.compile(r"^(.*?) - at `\$\.?([^`]*)`$")
_TOO_LONG = re.compile(r"^Expected `str` of length <= (\d+)$")
TOO_DEEP = f"too_deep: nested more than {MAX_DEPTH} levels"


@final  # never subclassed: a Gate tells one from an event by its class alone
class DecodeError(msgspec.Struct, frozen=True):
    """Why a payload was refused; ``id`` is the message id when one could be read."""

    id: MsgId | None
    error: str


# ---------------------------------------------------------------------------------- topics


class Topics:
    """The topic names of one camera under a prefix (default ``bwc``)."""

    __slots__ = ("ack", "alert", "audit", "availability", "event", "prefix", "recording", "state")

    def __init__(self, camera_id: str, prefix: str = DEFAULT_PREFIX) -> None:
        base = f"{prefix}/{camera_id}"
        self.prefix = prefix
        self.event = f"{base}/event"
        self.state = f"{base}/state"
        self.availability = f"{base}/availability"
        self.ack = f"{base}/ack"
        self.alert = f"{base}/alert"
        self.recording = f"{base}/recording"
        self.audit = f"{base}/audit"  # the live camera's audit chain head (retained)

    def team_event(self, team: str) -> str:
        return team_event_topic(team, self.prefix)


def camera_event_topic(camera_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/{camera_id}/event"


def team_event_topic(team: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/team/{team}/event"


def split_topic(topic: str, prefix: str = DEFAULT_PREFIX) -> tuple[str, str] | None:
    """``bwc/cam-1/state`` → ``("cam-1", "state")``; team topics give ``("team/T", "event")``."""
    parts = topic.split("/")
    head = prefix.split("/")
    if parts[: len(head)] != head:
        return None
    rest = parts[len(head):]
    if len(rest) == 2:
        return rest[0], rest[1]
    if len(rest) == 3 and rest[0] == "team":
        return f"team/{rest[1]}", rest[2]
    return None


# ---------------------------------------------------------------------------------- inbound


def decode_event(payload: bytes) -> Event | DecodeError:
    """Decode one inbound event payload; never raises."""
    if len(payload) > MAX_PAYLOAD:
        return DecodeError(None, f"payload_too_large: {len(payload)} bytes > {MAX_PAYLOAD}")
    # Before any parser recurses into it (R-BOUND). Few enough brackets cannot nest too deep:
    # depth_exceeds' own first test, made here so that most payloads skip the call.
    if payload.count(b"[") + payload.count(b"{") > MAX_DEPTH and depth_exceeds(payload):
        return DecodeError(None, TOO_DEEP)
    try:
        return _event_decoder.decode(payload)
    except (msgspec.DecodeError, ValueError):
        # msgspec raises UnicodeDecodeError (a ValueError), not DecodeError, for a broken
        # UTF-8 sequence inside a JSON string; _explain names both kinds of problem.
        pass
    return _explain(payload)


def _explain(payload: bytes) -> DecodeError:
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return DecodeError(None, f"invalid_utf8: byte {exc.start}")
    try:
        obj = _any_decoder.decode(payload)
    except msgspec.DecodeError as exc:
        return DecodeError(None, f"invalid_json: {exc}")
    if not isinstance(obj, dict):
        return DecodeError(None, f"not_an_object: got {_json_type(obj)}")
    raw_id = obj.get("id")
    msg_id = _short_id(raw_id)
    if "id" not in obj:
        return DecodeError(None, "missing_field: id")
    if msg_id is None:
        if _is_id(raw_id):  # an id, but one too long to keep or to echo (R-BOUND)
            return DecodeError(None, f"too_long: id: more than {MAX_FIELD_BYTES} bytes or 64 bits")
        return DecodeError(None, f"invalid_field: id: expected string or integer, got {_json_type(raw_id)}")
    if "type" not in obj:
        return DecodeError(msg_id, "missing_field: type")
    etype = obj["type"]
    if not isinstance(etype, str):
        return DecodeError(msg_id, f"invalid_field: type: expected string, got {_json_type(etype)}")
    if etype not in EVENT_TYPES:
        return DecodeError(msg_id, f"unknown_type: {etype!r} (one of {', '.join(EVENT_TYPES)})")
    try:
        msgspec.convert(obj, EVENT_TYPES[etype])
    except msgspec.ValidationError as exc:
        return DecodeError(msg_id, _field_error(str(exc)))
    return DecodeError(msg_id, "invalid_payload")  # pragma: no cover - decoder and convert agree


def _field_error(text: str) -> str:
    missing = _MISSING.search(text)
    if missing:
        return f"missing_field: {missing.group(1)}"
    at = _AT.match(text)
    if at:
        too_long = _TOO_LONG.match(at.group(1))
        if too_long:
            return f"too_long: {at.group(2)}: more than {too_long.group(1)} characters"
        return f"invalid_field: {at.group(2)}: {at.group(1)}"
    return f"invalid_payload: {text}"


def _is_id(value: object) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def _short_id(value: object) -> MsgId | None:
    """``value`` if it is an id short enough to keep and echo (≤ 128 bytes, 64-bit), else None."""
    if isinstance(value, str):
        return value if len(value) <= MAX_FIELD_BYTES // 4 or len(value.encode("utf-8", "surrogatepass")) \
            <= MAX_FIELD_BYTES else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value if -(2**63) <= value < 2**63 else None
    return None


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def peek_id(payload: bytes) -> MsgId | None:
    """The message id of a payload, if one can be read at all (for NACKs of misrouted input)."""
    if len(payload) > MAX_PAYLOAD or depth_exceeds(payload):
        return None
    try:
        obj = _any_decoder.decode(payload)
    except (msgspec.DecodeError, ValueError):
        return None
    if isinstance(obj, dict):
        return _short_id(obj.get("id"))
    return None


def encode_event(event: Event) -> bytes:
    return _encode(event)


# --------------------------------------------------------------------------------- outbound


#: Where each outbound type is published: the :class:`Topics` field and the retain flag (only
#: the state is retained). Anything else goes where a recording's metadata goes.
_ROUTES: dict[type, tuple[str, bool]] = {
    Ack: ("ack", False), StateReport: ("state", True), Alert: ("alert", False),
    RecordingMeta: ("recording", False),
}


def _route(kind: type) -> tuple[str, bool]:
    route = _ROUTES.get(kind)
    if route is None:  # a subclass of one of them, or something else
        route = next((r for k, r in _ROUTES.items() if issubclass(kind, k)), _ROUTES[RecordingMeta])
    return route


def encode(msg: Outbound, topics: Topics) -> Publish:
    """One outbound message → the publication that carries it."""
    field, retain = _route(type(msg))
    return Publish(getattr(topics, field), _encode(msg), retain, 1)


def encoder(topics: Topics) -> Callable[[list[Outbound]], list[Publish]]:
    """:func:`encode` of a list of messages, for one camera's ``topics``, with each type's topic
    looked up once: for a node that encodes every message it sends."""
    known = {kind: (getattr(topics, field), retain) for kind, (field, retain) in _ROUTES.items()}

    def encode_all(msgs: list[Outbound]) -> list[Publish]:
        out = []
        for msg in msgs:
            route = known.get(type(msg))
            out.append(encode(msg, topics) if route is None
                       else Publish(route[0], _encode(msg), route[1], 1))
        return out

    return encode_all


def availability(topics: Topics, online: bool = True) -> Publish:
    return Publish(topics.availability, AVAILABLE if online else UNAVAILABLE, True, 1)


_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    "ack": msgspec.json.Decoder(Ack),
    "state": msgspec.json.Decoder(StateReport),
    "alert": msgspec.json.Decoder(Alert),
    "recording": msgspec.json.Decoder(RecordingMeta),
}


def outbound_decoder(kind: str) -> Callable[[bytes], Outbound]:
    """The decoder :func:`decode_outbound` uses for ``kind`` (``KeyError`` for another kind):
    for an observer that reads many publications of a kind it knows in advance."""
    return _decoders[kind].decode


def decode_outbound(kind: str, payload: bytes) -> Outbound:
    """Decode a camera's publication on its ``kind`` topic (ack, state, alert, recording).

    Used by observers (the oracle, the live tools); raises ``msgspec.ValidationError`` or
    ``msgspec.DecodeError`` on a payload that breaks the schema — that is a controller bug.
    """
    result: Outbound = _decoders[kind].decode(payload)
    return result
