"""The node protocol (v1): the node contract of :mod:`controller.node` as messages on a pipe.

Theory of operation
===================

A controller written in any language runs as a *child process* of the bench. The bench (the
*host*) writes **requests** on the child's stdin; the child writes exactly one **answer** per
request on its stdout, in order, before the host sends the next request. stderr is the child's
own (diagnostics; the host keeps its tail to quote when something goes wrong). The shape is the
one of the Language Server Protocol and of Git's long-running filter processes: a versioned
handshake, then strictly one request, one answer, and a documented shutdown.

Framing
-------
One UTF-8 JSON object per line, terminated by ``\\n``. Compact JSON never contains a raw
newline (newlines inside strings are escaped), so a line is a message and nothing else is.
MQTT payloads are bytes, not text: they travel **base64-encoded** (RFC 4648, with padding) in
the ``payload`` fields, which is what makes the protocol binary-safe (a payload of ``ff 00``
arrives as ``ff 00``). Times are JSON numbers, seconds on the host's clock.

Conversation
------------
::

    host → {"seq":0,"op":"hello","protocol":1,"host":"bwcsim","features":["audit"]}
    child ← {"seq":0,"protocol":1,"name":"bwc-fixed","max_cameras":null,"features":["audit"]}
    host → {"seq":1,"op":"setup","node":1,"camera_id":"cam-1",...}   child ← subscriptions
    host → {"seq":2,"op":"start","node":1,"now":0.0}                 child ← publish + deadline
    host → {"seq":3,"op":"deliver","node":1,"now":12.5,"topic":...,"payload":"eyJpZCI6..."}
    host → {"seq":4,"op":"timer","node":1,"now":17.5}
    host → {"seq":5,"op":"finish","node":1,"now":3600.0}             (the camera is gone)
    host → {"seq":6,"op":"audit","node":1}                           child ← entries + head
    host → {"seq":7,"op":"close","node":1}                           (the node is released)
    host → {"seq":8,"op":"bye"}                                      child exits with status 0

``seq`` counts the host's requests from 0; every answer repeats the ``seq`` of its request,
which is how an answer that belongs to another request is caught. ``node`` is a number the host
picks in ``setup`` for one camera: **one child may serve any number of cameras at once** (the
cameras of a scenario, and of the scenarios after it), each addressed by its node number and
each independent of the others. A child that can serve only one camera at a time says
``"max_cameras": 1`` in its hello answer, and the host then starts one child per camera.
``finish`` ends a node's life; ``close`` releases a node the host dropped without finishing
(or, with the ``audit`` feature, a finished node whose log the host no longer needs).

Every *step* request (``start``, ``deliver``, ``timer``, ``finish``) is answered with the
publications it caused and the node's next deadline (``null``: none), so the host never needs
a round trip to ask for the deadline (``deadline`` exists for hosts that want to). A child that
cannot serve a request answers ``{"seq": n, "error": "why"}``.

Features
--------
Additions that not every child implements are *features*, negotiated in the handshake: the
host lists in ``hello`` the ones it can use, the child answers with those it accepts (none: the
field may be left out), and from then on both sides use exactly those. A child that knows
nothing of features ignores the request field and answers without one, and keeps working
unchanged; a host that offers none never sees the answer field. The one feature so far:

``audit``
    The node's hash-chained audit log (R-AUDIT) can be read with the ``audit`` request: its
    entries from index ``first`` on, each ``[seq, at, kind, data, prev, hash]`` hashed in the
    canonical form of :mod:`controller.audit`, and the chain's head. A child that accepts it
    keeps a finished node's log until the host sends ``close`` for it (after ``finish`` the
    node answers ``audit`` and ``close`` only), so the log can be checked after a run.

The host decodes answers strictly (unknown or missing fields are a protocol error, so a typo
in a child is caught at once); a child should ignore request fields it does not know.

This module is pure: the message types, the codec, and :class:`NodeServer`, the child side's
dispatcher, which turns one request line into one answer line over any
:data:`~controller.node.ControllerFactory`. ``python -m controller.serve`` is the stdio loop
around it; the host side lives in ``sim.nodes.stdio``.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from .audit import AuditEntry, trail_of
from .bounds import Limits
from .node import CameraNode, CameraSetup, ControllerFactory, Initial, Publish
from .params import CameraParams
from .policy import Policy
from .principals import TrustFile

PROTOCOL = 1
"""The protocol version this module speaks."""

FEATURES = ("audit",)
"""The features this module knows (see "Features" above)."""

# ------------------------------------------------------------------------------ setup parts


class ActivityRule(msgspec.Struct, frozen=True, kw_only=True):
    """One activity of the policy, resolved: its kind and its own ``post_s`` tail."""

    kind: Literal["required", "prohibited", "discretionary"]
    post_s: float


class RoleDoc(msgspec.Struct, frozen=True, kw_only=True):
    """What one role may send (SPEC §14): event types, and whether only to its own camera."""

    events: list[str]
    own_camera: bool


class PolicyDoc(msgspec.Struct, frozen=True, kw_only=True):
    """The policy a camera runs under, resolved (defaults filled in, overrides already in params)."""

    name: str
    activities: dict[str, ActivityRule]
    signals: list[str]
    deactivation_reasons: list[str]
    roles: dict[str, RoleDoc]
    max_skew_s: float


def policy_doc(policy: Policy) -> PolicyDoc:
    """``policy`` as the wire document (sorted lists, so the same policy gives the same bytes)."""
    return PolicyDoc(
        name=policy.name,
        activities={
            name: ActivityRule(kind=kind, post_s=policy.post_s.get(name, 0.0))  # type: ignore[arg-type]
            for name, kind in policy.activities.items()
        },
        signals=sorted(policy.signals),
        deactivation_reasons=sorted(policy.deactivation_reasons),
        roles={
            role: RoleDoc(events=sorted(events), own_camera=role in policy.own_camera_roles)
            for role, events in policy.roles.items()
        },
        max_skew_s=policy.max_skew_s,
    )


def policy_from_doc(doc: PolicyDoc) -> Policy:
    """The :class:`~controller.policy.Policy` a :class:`PolicyDoc` describes."""
    from .policy import ActivityRule as FileRule
    from .policy import PolicyFile, RoleRule

    return Policy(PolicyFile(
        name=doc.name,
        activities={k: FileRule(kind=r.kind, post_s=r.post_s) for k, r in doc.activities.items()},
        signals=list(doc.signals),
        deactivation_reasons=list(doc.deactivation_reasons),
        roles={k: RoleRule(events=list(r.events), own_camera=r.own_camera) for k, r in doc.roles.items()},
        max_skew_s=doc.max_skew_s,
    ))


# ------------------------------------------------------------------------------ requests


class _Request(msgspec.Struct, frozen=True, kw_only=True, tag_field="op"):
    seq: int


class Hello(_Request, tag="hello", frozen=True, kw_only=True):
    """First request: the protocol version the host speaks, who it is, the features it offers."""

    protocol: int
    host: str
    features: list[str] = []


class Setup(_Request, tag="setup", frozen=True, kw_only=True):
    """Build one camera's controller and call it ``node`` from now on.

    ``trust`` is the trust file the camera is provisioned with (``null``: ``auth: none``) and
    ``limits`` the caps of R-BOUND (SPEC §14).
    """

    node: int
    camera_id: str
    teams: list[str]
    initial: Initial
    prefix: str
    params: CameraParams
    policy: PolicyDoc
    trust: TrustFile | None
    limits: Limits


class Start(_Request, tag="start", frozen=True, kw_only=True):
    """Power on at ``now``: availability and the first retained state."""

    node: int
    now: float


class Deliver(_Request, tag="deliver", frozen=True, kw_only=True):
    """One MQTT delivery to the node at ``now`` (``payload``: base64 of the exact bytes)."""

    node: int
    now: float
    topic: str
    payload: bytes


class Timer(_Request, tag="timer", frozen=True, kw_only=True):
    """Run every internal event due at or before ``now``."""

    node: int
    now: float


class Deadline(_Request, tag="deadline", frozen=True, kw_only=True):
    """Ask when the node next needs a ``timer`` request."""

    node: int


class Finish(_Request, tag="finish", frozen=True, kw_only=True):
    """End of observation at ``now``: close open recordings and publish them; releases the node."""

    node: int
    now: float


class Audit(_Request, tag="audit", frozen=True, kw_only=True):
    """Read a node's audit log from entry ``first`` on (feature ``audit``)."""

    node: int
    first: int = 0


class Close(_Request, tag="close", frozen=True, kw_only=True):
    """Release a node the host no longer drives (no publications)."""

    node: int


class Bye(_Request, tag="bye", frozen=True, kw_only=True):
    """Shutdown: answer, then exit with status 0."""


Request = Hello | Setup | Start | Deliver | Timer | Deadline | Finish | Audit | Close | Bye
STEP_OPS = ("start", "deliver", "timer", "finish")

# ------------------------------------------------------------------------------ answers
# Strict on the host: an unknown field is a protocol error (a misspelt "deadlin" is caught).


class HelloAnswer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The child's side of the handshake: the version it speaks and how many cameras it serves."""

    seq: int
    protocol: int
    name: str
    max_cameras: int | None = None
    # Left out (UNSET) unless the host offered features: a host that knows none never sees it.
    features: list[str] | msgspec.UnsetType = msgspec.UNSET


class SetupAnswer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The topic filters the new node subscribes to (QoS 1)."""

    seq: int
    subscriptions: list[str]


class StepAnswer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a step published, in order, and the node's next deadline."""

    seq: int
    publish: list[Publish]
    deadline: float | None


class DeadlineAnswer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    seq: int
    deadline: float | None


class AuditAnswer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The node's audit entries from ``first`` on, and the hash of its last entry."""

    seq: int
    entries: list[AuditEntry]
    head: str


class DoneAnswer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The answer to ``close`` and ``bye``."""

    seq: int


class ErrorAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """The child could not serve the request (unknown node, a handler that raised, ...)."""

    seq: int
    error: str


Answer = (
    HelloAnswer | SetupAnswer | StepAnswer | DeadlineAnswer | AuditAnswer | DoneAnswer | ErrorAnswer
)

#: The answer type of each request op.
ANSWER_OF: dict[str, type[Answer]] = {
    "hello": HelloAnswer,
    "setup": SetupAnswer,
    "start": StepAnswer,
    "deliver": StepAnswer,
    "timer": StepAnswer,
    "finish": StepAnswer,
    "deadline": DeadlineAnswer,
    "audit": AuditAnswer,
    "close": DoneAnswer,
    "bye": DoneAnswer,
}

# ------------------------------------------------------------------------------ codec

_encoder = msgspec.json.Encoder()
_request_decoder: msgspec.json.Decoder[Request] = msgspec.json.Decoder(Request)
_answer_decoders: dict[str, msgspec.json.Decoder[Answer]] = {
    op: msgspec.json.Decoder(typ) for op, typ in ANSWER_OF.items()
}
_error_decoder = msgspec.json.Decoder(ErrorAnswer)


class WireError(ValueError):
    """A line that is not a valid message of the protocol (the text says what is wrong)."""


def encode(msg: Request | Answer) -> bytes:
    """One message as its line, newline included."""
    return _encoder.encode(msg) + b"\n"


def encode_into(msg: Request | Answer, buffer: bytearray) -> None:
    """:func:`encode` into a reusable buffer (the host's hot path)."""
    _encoder.encode_into(msg, buffer)
    buffer.extend(b"\n")


def decode_request(line: bytes) -> Request:
    """A request line (child side); :class:`WireError` when it is not one."""
    try:
        return _request_decoder.decode(line)
    except msgspec.MsgspecError as exc:
        raise WireError(str(exc)) from None


def decode_answer(op: str, line: bytes) -> Answer:
    """The answer to a request of kind ``op`` (host side): the expected answer or an
    :class:`ErrorAnswer`; :class:`WireError` naming the problem otherwise."""
    try:
        return _answer_decoders[op].decode(line)
    except msgspec.MsgspecError as exc:
        problem = str(exc)
    try:
        return _error_decoder.decode(line)
    except msgspec.MsgspecError:
        raise WireError(f"not a {ANSWER_OF[op].__name__}: {problem}") from None


def setup_request(seq: int, node: int, setup: CameraSetup) -> Setup:
    """The ``setup`` request that builds ``setup``'s camera as ``node``."""
    return Setup(
        seq=seq, node=node, camera_id=setup.camera_id, teams=list(setup.teams),
        initial=setup.initial, prefix=setup.prefix, params=setup.params,
        policy=policy_doc(setup.policy), trust=setup.trust, limits=setup.limits,
    )


def camera_setup(req: Setup, policy: Policy | None = None) -> CameraSetup:
    """The :class:`~controller.node.CameraSetup` a ``setup`` request carries."""
    return CameraSetup(
        camera_id=req.camera_id, policy=policy if policy is not None else policy_from_doc(req.policy),
        params=req.params, teams=tuple(req.teams), initial=req.initial, prefix=req.prefix,
        trust=req.trust, limits=req.limits,
    )


# ------------------------------------------------------------------------------ child side


class NodeServer:
    """The child side of the protocol over any controller factory, one line at a time.

    :meth:`answer` takes one request line and returns the answer line; it never raises on a
    bad request (it answers with an error) and tells the caller, through :attr:`done`, when a
    ``bye`` was answered. A node that raises is answered with an error naming the exception:
    the host reports it with the camera and the request.

    ``features`` are the ones this server accepts when the host offers them (default: all it
    knows). With ``audit`` accepted, a finished node stays in :attr:`finished` until ``close``,
    and ``audit`` reads the log of any node through :func:`controller.audit.trail_of`.
    """

    def __init__(
        self, factory: ControllerFactory, name: str, max_cameras: int | None = None,
        features: tuple[str, ...] = FEATURES,
    ) -> None:
        self.factory = factory
        self.name = name
        self.max_cameras = max_cameras
        self.features = features
        self.accepted: frozenset[str] = frozenset()  # what the handshake agreed on
        self.nodes: dict[int, CameraNode] = {}
        self.finished: dict[int, CameraNode] = {}  # kept for their audit log until close
        self.done = False
        # One policy object per distinct policy document: the cameras of a scenario share it.
        self._policies: dict[bytes, Policy] = {}

    def answer(self, line: bytes) -> bytes:
        try:
            req = decode_request(line)
        except WireError as exc:
            return encode(ErrorAnswer(seq=_peek_seq(line), error=f"bad request: {exc}"))
        try:
            return encode(self._serve(req))
        except Exception as exc:  # the node broke its contract: say so, keep serving
            return encode(ErrorAnswer(seq=req.seq, error=f"{type(exc).__name__}: {exc}"))

    def _serve(self, req: Request) -> Answer:
        if isinstance(req, Deliver):
            node = self._node(req.node)
            pubs = node.on_message(req.topic, req.payload, req.now)
            return StepAnswer(seq=req.seq, publish=pubs, deadline=node.next_deadline())
        if isinstance(req, Timer):
            node = self._node(req.node)
            pubs = node.on_timer(req.now)
            return StepAnswer(seq=req.seq, publish=pubs, deadline=node.next_deadline())
        if isinstance(req, Start):
            node = self._node(req.node)
            pubs = node.start(req.now)
            return StepAnswer(seq=req.seq, publish=pubs, deadline=node.next_deadline())
        if isinstance(req, Finish):
            node = self._node(req.node)
            pubs = node.finish(req.now)
            del self.nodes[req.node]
            if "audit" in self.accepted:
                self.finished[req.node] = node
            return StepAnswer(seq=req.seq, publish=pubs, deadline=None)
        if isinstance(req, Setup):
            return self._setup(req)
        if isinstance(req, Deadline):
            return DeadlineAnswer(seq=req.seq, deadline=self._node(req.node).next_deadline())
        if isinstance(req, Audit):
            return self._audit(req)
        if isinstance(req, Close):
            self.nodes.pop(req.node, None)
            self.finished.pop(req.node, None)
            return DoneAnswer(seq=req.seq)
        if isinstance(req, Hello):
            if req.protocol != PROTOCOL:
                return ErrorAnswer(seq=req.seq, error=(
                    f"unsupported protocol {req.protocol}: this child speaks {PROTOCOL}"))
            accepted = [f for f in req.features if f in self.features]
            self.accepted = frozenset(accepted)
            return HelloAnswer(seq=req.seq, protocol=PROTOCOL, name=self.name,
                               max_cameras=self.max_cameras,
                               features=accepted if req.features else msgspec.UNSET)
        self.done = True  # Bye
        return DoneAnswer(seq=req.seq)

    def _setup(self, req: Setup) -> Answer:
        if req.node in self.nodes or req.node in self.finished:
            return ErrorAnswer(seq=req.seq, error=f"node {req.node} already exists")
        if self.max_cameras is not None and len(self.nodes) >= self.max_cameras:
            return ErrorAnswer(seq=req.seq, error=f"this child serves at most {self.max_cameras} camera(s)")
        key = _encoder.encode(req.policy)
        policy = self._policies.get(key)
        if policy is None:
            policy = self._policies[key] = policy_from_doc(req.policy)
        node = self.factory(camera_setup(req, policy))
        self.nodes[req.node] = node
        return SetupAnswer(seq=req.seq, subscriptions=node.subscriptions())

    def _audit(self, req: Audit) -> Answer:
        if "audit" not in self.accepted:
            return ErrorAnswer(seq=req.seq, error="feature audit was not agreed in the handshake")
        node = self.nodes.get(req.node) or self.finished.get(req.node)
        if node is None:
            raise LookupError(f"no node {req.node} (never set up, or closed)")
        trail = trail_of(node)
        return AuditAnswer(seq=req.seq, entries=list(trail.entries[max(0, req.first):]),
                           head=trail.head)

    def _node(self, node: int) -> CameraNode:
        try:
            return self.nodes[node]
        except KeyError:
            raise LookupError(f"no node {node} (never set up, or finished)") from None


def _peek_seq(line: bytes) -> int:
    """The ``seq`` of a request that did not decode, when it has a readable one (else -1)."""
    try:
        obj = msgspec.json.decode(line)
    except msgspec.MsgspecError:
        return -1
    seq = obj.get("seq") if isinstance(obj, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else -1
