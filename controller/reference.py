"""The reference controller as a bus node: codec + gate + :class:`~controller.camera.Camera`.

``make_node`` is the default controller factory (``controller.reference:make_node``); a firmware
team swaps in its own factory with the same signature to run the suites on its implementation.

A delivery goes through :class:`~controller.trust.Gate` before the camera sees it: the gate
establishes who sent it (a verified signature, or nobody in ``auth: none``) and decodes it; the
camera answers a redelivery from its duplicate table; only a new message is checked for role
and freshness, and only an authorized one is handled (SPEC §14).
"""

from __future__ import annotations

from typing import Any, ClassVar

from .audit import AuditTrail
from .camera import Camera
from .codec import Topics, availability, encoder, peek_id, split_topic
from .node import CameraNode, CameraSetup, Publish
from .persist import StateCodec, Via
from .trust import Admitted, Gate, GateState


class ReferenceNode:
    """One camera's reference controller, speaking bytes on MQTT topics."""

    def __init__(self, setup: CameraSetup) -> None:
        self.setup = setup
        self.camera_id = setup.camera_id
        self.topics = Topics(setup.camera_id, setup.prefix)
        self._team_topics = {self.topics.team_event(t): t for t in setup.teams}
        # What each subscribed topic addresses, as a signed body's ``to`` names it.
        self._targets = {self.topics.event: setup.camera_id}
        for topic in self._team_topics:
            where = split_topic(topic, setup.prefix)
            assert where is not None
            self._targets[topic] = where[0]
        self.gate = Gate(setup.camera_id, setup.policy, setup.trust, setup.limits)
        self._encode = encoder(self.topics)
        self.camera = self._new_camera(0.0)

    def _new_camera(self, now: float, kind: type[Camera] = Camera) -> Camera:
        s = self.setup
        return kind(s.camera_id, s.policy, s.params, s.initial, now, limits=s.limits, auth=s.auth)

    def subscriptions(self) -> list[str]:
        return [self.topics.event, *self._team_topics]

    def start(self, now: float) -> list[Publish]:
        if len(self.camera.audit) == 0 and self.camera.since != now:
            # Powered on later than t=0 (a live run, a camera joining a fleet): the battery,
            # the buffer and the boot count from now, not from the epoch.
            # Of the same class: a node built around a Camera subclass (a deliberately broken
            # one, say) keeps it.
            self.camera = self._new_camera(now, type(self.camera))
        return [availability(self.topics), *self._encode(self.camera.start())]

    def on_message(self, topic: str, payload: bytes, now: float) -> list[Publish]:
        camera = self.camera
        try:
            target = self._targets.get(topic)
            if target is None:
                return self._encode(camera.refuse(peek_id(payload), f"wrong_topic: {topic}", now))
            admitted = self.gate.admit(payload)
            # Asked this way round: isinstance is quick when it holds, slow on a Struct class when
            # it does not, and nearly every delivery is admitted.
            if not isinstance(admitted, Admitted):  # a Refusal
                return self._encode(camera.refuse(
                    admitted.id, admitted.error, now, by=admitted.claimed, remember=admitted.remember,
                ))
            event, sender = admitted.event, admitted.sender
            if sender is None:
                # Nothing to verify or record (auth: none), and authorize only reads: a message
                # it lets through is handled (a redelivery answered from the duplicate table
                # by the camera itself), so the table is consulted here only for one it refuses.
                error = self.gate.authorize(admitted, target, now, camera.activities)
                if error is None or camera.is_duplicate(event, now, None):
                    return self._encode(camera.handle(event, now, None))
                return self._encode(camera.refuse(event.id, error, now, by=admitted.claimed,
                                                  remember=False))
            if not camera.is_duplicate(event, now, sender):  # a redelivery gets its first reply
                error = self.gate.authorize(admitted, target, now, camera.activities)
                if error is not None:
                    return self._encode(camera.refuse(event.id, error, now, by=admitted.claimed,
                                                      remember=sender is not None))
                out = camera.handle(event, now, sender)
                self.gate.record(admitted, camera.activities)
                return self._encode(out)
            return self._encode(camera.handle(event, now, sender))
        except Exception as exc:  # the handler must never raise (R-BAD)
            return self._encode(self.camera.refuse(None, f"internal_error: {type(exc).__name__}", now))

    def next_deadline(self) -> float | None:
        return self.camera.next_deadline()

    def on_timer(self, now: float) -> list[Publish]:
        return self._encode(self.camera.on_timer(now))

    def finish(self, now: float) -> list[Publish]:
        return self._encode(self.camera.finish(now))

    # ------------------------------------------------------------------ restarts and audit

    #: The node's state across a restart: the camera's, and the gate's memory (the last
    #: sequence number of each principal, who started each open activity). See
    #: :mod:`controller.persist`.
    DURABLE: ClassVar[dict[str, Any]] = {
        "camera": Via(bytes, Camera.dump_state, Camera.load_state),
        "gate.state": GateState,
    }

    def dump_state(self) -> bytes:
        return _STATE.dump(self)

    def load_state(self, data: bytes) -> None:
        self.camera = self._new_camera(0.0)
        self.gate.state = GateState()
        _STATE.load(self, data)

    def resume(self, down_since: float, now: float) -> list[Publish]:
        return self._encode(self.camera.resume(down_since, now))

    def drain_audit(self) -> list[tuple[float, str, dict[str, Any]]]:
        return [(e.at, e.kind, e.data) for e in self.camera.audit.drain()]


    def audit_trail(self) -> AuditTrail:
        """The camera's hash-chained audit log (R-AUDIT), as it stands."""
        return self.camera.audit.trail()


_STATE = StateCodec("ReferenceNode", ReferenceNode.DURABLE)


def make_node(setup: CameraSetup) -> CameraNode:
    """The reference controller factory."""
    return ReferenceNode(setup)
