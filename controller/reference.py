"""The reference controller as a bus node: codec + :class:`~controller.camera.Camera`.

``make_node`` is the default controller factory (``controller.reference:make_node``); a firmware
team swaps in its own factory with the same signature to run the suites on its implementation.
"""

from __future__ import annotations

from typing import Any

from .camera import Camera
from .codec import DecodeError, Topics, availability, decode_event, encode, peek_id
from .messages import Outbound
from .node import CameraNode, CameraSetup, Publish


class ReferenceNode:
    """One camera's reference controller, speaking bytes on MQTT topics."""

    def __init__(self, setup: CameraSetup) -> None:
        self.setup = setup
        self.camera_id = setup.camera_id
        self.topics = Topics(setup.camera_id, setup.prefix)
        self._team_topics = {self.topics.team_event(t): t for t in setup.teams}
        self.camera = Camera(setup.camera_id, setup.policy, setup.params, setup.initial)

    def subscriptions(self) -> list[str]:
        return [self.topics.event, *self._team_topics]

    def start(self, now: float) -> list[Publish]:
        if len(self.camera.audit) == 0 and self.camera.since != now:
            # Powered on later than t=0 (a live run, a camera joining a fleet): the battery,
            # the buffer and the boot count from now, not from the epoch.
            setup = self.setup
            self.camera = Camera(setup.camera_id, setup.policy, setup.params, setup.initial, now)
        return [availability(self.topics), *self._encode(self.camera.start())]

    def on_message(self, topic: str, payload: bytes, now: float) -> list[Publish]:
        try:
            if topic != self.topics.event and topic not in self._team_topics:
                return self._encode(self.camera.refuse(peek_id(payload), f"wrong_topic: {topic}", now))
            event = decode_event(payload)
            if isinstance(event, DecodeError):
                return self._encode(self.camera.refuse(event.id, event.error, now))
            return self._encode(self.camera.handle(event, now))
        except Exception as exc:  # the handler must never raise (R-BAD)
            return self._encode(self.camera.refuse(None, f"internal_error: {type(exc).__name__}", now))

    def next_deadline(self) -> float | None:
        return self.camera.next_deadline()

    def on_timer(self, now: float) -> list[Publish]:
        return self._encode(self.camera.on_timer(now))

    def finish(self, now: float) -> list[Publish]:
        return self._encode(self.camera.finish(now))

    # ------------------------------------------------------------------ restarts and audit

    def dump_state(self) -> bytes:
        return self.camera.dump_state()

    def load_state(self, data: bytes) -> None:
        setup = self.setup
        camera = Camera(setup.camera_id, setup.policy, setup.params, setup.initial)
        camera.load_state(data)
        self.camera = camera

    def resume(self, down_since: float, now: float) -> list[Publish]:
        return self._encode(self.camera.resume(down_since, now))

    def drain_audit(self) -> list[tuple[float, str, dict[str, Any]]]:
        return [(e.at, e.kind, e.data) for e in self.camera.audit.drain()]

    def _encode(self, msgs: list[Outbound]) -> list[Publish]:
        topics = self.topics
        return [encode(m, topics) for m in msgs]


def make_node(setup: CameraSetup) -> CameraNode:
    """The reference controller factory."""
    return ReferenceNode(setup)
