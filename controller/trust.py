"""Who may command the camera, and the proof that they did (SPEC §14: R-AUTH, R-FRESH).

Theory of operation
-------------------
A camera provisioned with a **trust file** (public keys only) runs ``auth: signed``: every
inbound command must come in a signed envelope from a principal the file names, and the
policy must give that principal's role the right to send it. A camera without one runs
``auth: none`` — anyone on the bus may command it — and says so in its retained state.

**Wire format.** A signed command is a JSON object of three strings::

    {"by": "dispatch", "sig": "<base64url Ed25519 signature>", "body": "<the event, as JSON text>"}

``body`` is an ordinary event (SPEC §5) plus two fields, ``seq`` (the sender's sequence number)
and ``to`` (the camera id, or ``team/<team>``, it was sent to). The signature covers the exact
bytes of ``body``: the UTF-8 encoding of the string the envelope carries, which JSON's escapes
determine uniquely, so the camera verifies the very bytes the sender signed and parses them
only once they verified. The signature binds everything that matters — the event, its id and
``ts``, the sequence number and the target — and each key belongs to exactly one principal, so
``by`` only says which key to try.

**The checks**, in this order (:meth:`Gate.admit`, then :meth:`Gate.authorize` once the
duplicate table has had its say, so that a QoS 1 redelivery is still answered with its first
reply and never as a replay; in ``auth: none`` ``authorize`` only reads, and looks at nothing a
redelivery changes, so the node asks it first and the table only for what it refuses):

1. bounds — size and nesting depth (the codec), field lengths (:mod:`controller.bounds`);
2. origin — in ``signed`` mode an envelope whose signature verifies with a key of the named
   principal (else ``unauthorized``: unsigned, unknown principal, bad signature);
3. role — the policy lets the principal's role send this event type, an ``own_camera`` role
   only to its principal's own camera, the body was signed for the topic it arrived on, a
   ``deactivate`` names its signer as ``actor``, and an ``activity_end`` comes from the
   principal that started the activity or from ``dispatch`` (else ``unauthorized``);
4. freshness — the sequence number is above the last one seen from that principal (else
   ``replayed``), and ``ts`` is at most ``max_skew_s`` ahead of the camera's clock (else
   ``stale``; this one holds in ``auth: none`` too). A ``ts`` in the past is accepted and
   judged by R-LATE as ever.

A refusal changes nothing but the audit log, which records it with the principal the message
*claimed*. Refusals of messages whose origin did not verify are not remembered in the duplicate
table either: nobody can pre-empt a principal's message id by sending it first.

**State.** :class:`GateState` is plain data (the last sequence number per principal, who
started each open activity) so a journal can persist it with the rest of the camera.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import bounds
from .bounds import Limits
from .codec import MAX_PAYLOAD, DecodeError, decode_event, peek_id
from .messages import EVENT_TYPES, ActivityEnd, ActivityStart, Deactivate, Event, MsgId, Text
from .policy import Policy
from .principals import Principal, TrustFile, b64url, decode_public_key, unb64url

_astuple = msgspec.structs.astuple

__all__ = ["Admitted", "Gate", "GateState", "Refusal", "Signed", "sign"]

DISPATCH = "dispatch"  # the role that may end any activity (SPEC §14, R-FRESH)


# ------------------------------------------------------------------------------ wire format


class Signed(msgspec.Struct, frozen=True, kw_only=True):
    """A signed command: ``body`` (event JSON text) signed by principal ``by``."""

    by: Text
    sig: str
    body: str


_signed_decoder = msgspec.json.Decoder(Signed)
_encode = msgspec.json.Encoder().encode


def sign(key: Ed25519PrivateKey, by: str, body: bytes) -> bytes:
    """The envelope of ``body`` (an event's JSON bytes, ``seq`` and ``to`` in it) signed by ``by``."""
    return _encode(Signed(by=by, sig=b64url(key.sign(body)), body=body.decode("utf-8")))


# ------------------------------------------------------------------------------ the gate


class GateState(msgspec.Struct, kw_only=True):
    """The gate's memory, as plain data (a journal persists it with the camera)."""

    last_seq: dict[str, int] = msgspec.field(default_factory=dict)
    starters: dict[str, str] = msgspec.field(default_factory=dict)


# Values made for every delivery: msgspec structs (built at C speed, not tracked by the cyclic
# collector) rather than frozen dataclasses.
class Admitted(msgspec.Struct, frozen=True, gc=False):
    """A decoded event whose origin is established (``sender`` is ``None`` in ``auth: none``)."""

    event: Event
    sender: str | None
    claimed: str | None

    @property
    def key(self) -> bounds.ReplyKey:
        return (self.sender, self.event.id)


class Refusal(msgspec.Struct, frozen=True, gc=False):
    """Why a payload is refused before it reaches the camera.

    ``claimed`` is the principal the payload named (for the audit log); ``sender`` the one
    whose signature verified, if any — only then is the refusal remembered for redeliveries.
    """

    id: MsgId | None
    error: str
    claimed: str | None = None
    sender: str | None = None
    remember: bool = True


class Gate:
    """Origin, role and freshness checks in front of one camera (see the module docstring)."""

    __slots__ = ("_keys", "_principals", "_unsigned", "camera_id", "limits", "mode", "policy",
                 "state")

    def __init__(
        self, camera_id: str, policy: Policy, trust: TrustFile | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.camera_id = camera_id
        self.policy = policy
        self.limits = limits if limits is not None else Limits()
        self.mode = "none" if trust is None else "signed"
        self.state = GateState()
        self._principals: dict[str, Principal] = {}
        self._keys: dict[str, list[Ed25519PublicKey]] = {}
        for p in trust.principals if trust is not None else ():
            self._principals[p.name] = p
            self._keys[p.name] = [decode_public_key(k) for k in p.keys]
        # auth: none: what admit() made of each recent payload, shared by every gate with the
        # same field limit (a team message reaches each camera of the team as the same bytes).
        self._unsigned = (_UNSIGNED.setdefault(self.limits.max_field_bytes, {})
                          if trust is None else None)

    # -------------------------------------------------------------- origin (bytes → event)

    def admit(self, payload: bytes) -> Admitted | Refusal:
        """Bounds, then the envelope and its signature, then the event it carries."""
        memo = self._unsigned
        # Only short payloads are looked up: hashing costs as much as the payload is long, and a
        # long one (up to what the broker allows) must be refused at a cost that does not grow
        # with it (R-BOUND). A bytearray cannot be a key.
        if memo is None or len(payload) > _MEMO_PAYLOAD or type(payload) is not bytes:
            return self._admit(payload)
        # With nothing to verify, the verdict depends on the bytes and the field limit alone,
        # and verdicts are immutable: the same bytes get the very same verdict.
        verdict = memo.get(payload)
        if verdict is None:
            verdict = self._admit(payload)
            if len(memo) >= _MEMO_ENTRIES:
                memo.clear()
            memo[payload] = verdict
        return verdict

    def _admit(self, payload: bytes) -> Admitted | Refusal:
        envelope: Signed | None = None
        if len(payload) <= MAX_PAYLOAD and b'"sig"' in payload and not bounds.depth_exceeds(payload):
            try:
                envelope = _signed_decoder.decode(payload)
            except (msgspec.DecodeError, ValueError):
                envelope = None
        if envelope is None:
            if self.mode == "none":  # what _admit_bare would answer, without its call
                return self._decoded(payload, None, None)
            return self._admit_bare(payload)
        claimed = envelope.by
        if self.mode == "none":  # nothing to verify against: the body is taken as it is
            return self._decoded(envelope.body.encode("utf-8", "surrogatepass"), None, claimed)
        try:
            body = envelope.body.encode("utf-8")
            sig = unb64url(envelope.sig)
        except (UnicodeEncodeError, binascii.Error, ValueError):
            return Refusal(None, "unauthorized: malformed signature envelope", claimed, remember=False)
        keys = self._keys.get(claimed)
        if keys is None:
            return Refusal(peek_id(body), f"unauthorized: unknown principal {claimed!r}", claimed,
                           remember=False)
        if not _verifies(keys, sig, body):
            return Refusal(peek_id(body), f"unauthorized: bad signature for {claimed!r}", claimed,
                           remember=False)
        return self._decoded(body, claimed, claimed)

    def _admit_bare(self, payload: bytes) -> Admitted | Refusal:
        decoded = self._decoded(payload, None, None)
        if self.mode == "none":
            return decoded
        if isinstance(decoded, Admitted):
            event_type = type(decoded.event).__struct_config__.tag
            return Refusal(decoded.event.id, f"unauthorized: unsigned {event_type}", remember=False)
        # A command attempt, valid or not, is first of all unsigned; garbage is named as before.
        # Either way nobody's id is remembered for it.
        bounded = decoded.error.startswith(_BOUND_ERRORS)  # what the limits refuse stays named so
        event_type = None if bounded else _peek_type(payload)
        error = f"unauthorized: unsigned {event_type}" if event_type is not None else decoded.error
        return Refusal(decoded.id, error, remember=False)

    def _decoded(self, body: bytes, sender: str | None, claimed: str | None) -> Admitted | Refusal:
        event = decode_event(body)
        # By class (DecodeError is final): an isinstance that fails, as for every event, is slow
        # on a Struct class.
        if type(event) is DecodeError:
            return Refusal(event.id, event.error, claimed, sender)
        limit = self.limits.max_field_bytes
        quarter = limit // 4
        too_long = None
        # A decoded string is never longer in UTF-8 than its JSON text in the payload, so in a
        # payload of at most `limit` bytes no field can be too long (most events are shorter).
        # Otherwise only a string of more than limit // 4 characters can be: look for one first
        # before building the list long_field reads.
        if len(body) > limit:
            for value in _astuple(event):  # the field values in field order, read at C speed
                if isinstance(value, str) and len(value) > quarter:
                    too_long = bounds.long_field(_strings(event), limit)
                    break
        if too_long is not None:
            short_id = event.id if not isinstance(event.id, str) or len(event.id.encode()) <= \
                self.limits.max_field_bytes else None
            return Refusal(short_id, too_long, claimed, sender)
        return Admitted(event, sender, claimed)

    # -------------------------------------------------------------- role and freshness

    def authorize(
        self, adm: Admitted, target: str, now: float, running: Mapping[str, str]
    ) -> str | None:
        """The NACK for a command its sender may not give now, or ``None``.

        ``target`` is what the topic addressed (the camera id or ``team/<team>``); ``running``
        the camera's open activities (id → name).
        """
        event = adm.event
        sender = adm.sender
        if sender is not None:
            error = self._entitled(adm, sender, target, running)
            if error is not None:
                return error
            if event.seq is None:
                return "unauthorized: no seq (a signed command carries its sender's sequence number)"
            last = self.state.last_seq.get(sender)
            if last is not None and event.seq <= last:
                return f"replayed: seq {event.seq} <= {last}, the last from {sender}"
        ts = event.ts
        if ts is not None and ts > now + self.policy.max_skew_s:
            return (f"stale: ts {ts:g} is {ts - now:g} s ahead of the camera's clock "
                    f"(max_skew_s {self.policy.max_skew_s:g})")
        return None

    def _entitled(
        self, adm: Admitted, sender: str, target: str, running: Mapping[str, str]
    ) -> str | None:
        event = adm.event
        who = self._principals[sender]
        event_type = type(event).__struct_config__.tag
        assert isinstance(event_type, str)
        if not self.policy.may_send(who.role, event_type):
            return f"unauthorized: role {who.role} may not send {event_type}"
        if who.role in self.policy.own_camera_roles and (
            who.camera != self.camera_id or target != self.camera_id
        ):
            return f"unauthorized: {sender} may command only its own camera ({who.camera})"
        if event.to != target:
            return f"unauthorized: signed for {event.to!r}, delivered to {target!r}"
        if isinstance(event, Deactivate) and event.actor != sender:
            return f"unauthorized: actor {event.actor!r} is not the signer {sender!r}"
        if isinstance(event, ActivityEnd) and who.role != DISPATCH:
            starter = self.state.starters.get(event.activity_id)
            if starter is not None and starter != sender and event.activity_id in running:
                return (f"unauthorized: only {starter} (who started it) or {DISPATCH} may end "
                        f"{event.activity_id}")
        return None

    def record(self, adm: Admitted, running: Mapping[str, str]) -> None:
        """Remember what an authorized command spent: its sequence number, who started what."""
        sender = adm.sender
        if sender is None:
            return
        event = adm.event
        if event.seq is not None:
            self.state.last_seq[sender] = event.seq
        starters = self.state.starters
        if isinstance(event, ActivityStart):
            if event.activity_id in running:
                starters.setdefault(event.activity_id, sender)
        elif isinstance(event, ActivityEnd) and event.activity_id not in running:
            starters.pop(event.activity_id, None)


#: The verdicts of unsigned payloads, per field limit (see Gate.__init__): a payload is
#: remembered when at most _MEMO_PAYLOAD bytes long, and the table starts afresh when full.
_UNSIGNED: dict[int, dict[bytes, Admitted | Refusal]] = {}
_MEMO_PAYLOAD = 1024
_MEMO_ENTRIES = 4096

_any_decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder()
_BOUND_ERRORS = ("too_deep", "too_long", "payload_too_large")


def _peek_type(payload: bytes) -> str | None:
    """The known event type a (depth-checked) payload names, if it is an object naming one."""
    try:
        obj = _any_decoder.decode(payload)
    except (msgspec.DecodeError, ValueError, RecursionError):
        return None
    kind = obj.get("type") if isinstance(obj, dict) else None
    return kind if isinstance(kind, str) and kind in EVENT_TYPES else None


def _verifies(keys: list[Ed25519PublicKey], sig: bytes, body: bytes) -> bool:
    for key in keys:
        try:
            key.verify(sig, body)
        except InvalidSignature:
            continue
        return True
    return False


def _strings(event: Event) -> list[tuple[str, Any]]:
    """The event's fields, for the length check (ints and floats pass through untouched)."""
    return [(name, getattr(event, name)) for name in event.__struct_fields__]
