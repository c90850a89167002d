"""A tiny synchronous driver for the pure camera core, for the controller unit tests.

:class:`CameraDriver` plays the part the simulator plays on the bus, without the bus: it keeps
the time, runs the camera's internal deadlines (boot done, tails, rollover, battery, storage)
in order *before* a message delivered at the same instant (SPEC §7), and sorts what the
camera publishes by kind so a test can say ``drv.alerts`` or ``drv.recordings``.

:class:`NodeDriver` does the same one level down, for the bytes-level
:class:`~controller.reference.ReferenceNode`: raw payloads on raw topics in, decoded
publications out.

Nothing here reads a clock: time moves only when a test says so.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import msgspec

from controller.camera import Camera
from controller.codec import Topics, decode_outbound, split_topic
from controller.messages import Ack, Alert, Event, MsgId, Outbound, RecordingMeta, StateReport
from controller.node import CameraSetup, Publish
from controller.params import CameraParams
from controller.policy import Policy, PolicyFile, load_policy
from controller.reference import ReferenceNode

DHS = load_policy("dhs-2023")
CAM = "cam-1"
ALLOWED_REASON = "victim_or_witness_request"


def make_policy(**fields: Any) -> Policy:
    """A policy built from dhs-2023's values with ``fields`` replaced (e.g. ``post_s=60``)."""
    spec: dict[str, Any] = {
        "name": "test",
        "activities": {
            "patrol": {"kind": "required"},
            "search_warrant": {"kind": "required"},
            "first_amendment_activity": {"kind": "prohibited"},
            "traffic_stop": {"kind": "discretionary"},
        },
        "signals": sorted(DHS.signals),
        "deactivation_reasons": sorted(DHS.deactivation_reasons),
        **fields,
    }
    return Policy(msgspec.convert(spec, PolicyFile))


def make_event(event_type: str, msg_id: MsgId, **fields: Any) -> Event:
    """A typed inbound event, built exactly as the codec would build it from JSON."""
    event: Event = msgspec.convert({"type": event_type, "id": msg_id, **fields}, Event)
    return event


class _Collected:
    """Outbound messages sorted by kind; shared by both drivers."""

    def __init__(self) -> None:
        self.out: list[Outbound] = []

    @property
    def acks(self) -> list[Ack]:
        return [m for m in self.out if isinstance(m, Ack)]

    @property
    def alerts(self) -> list[Alert]:
        return [m for m in self.out if isinstance(m, Alert)]

    @property
    def states(self) -> list[StateReport]:
        return [m for m in self.out if isinstance(m, StateReport)]

    @property
    def segments_published(self) -> list[RecordingMeta]:
        """Every recording publication (one per closed segment, plus the open one at finish)."""
        return [m for m in self.out if isinstance(m, RecordingMeta)]

    @property
    def recordings(self) -> list[RecordingMeta]:
        """Each recording once, in its last published form (closed or cut open by finish)."""
        last: dict[str, RecordingMeta] = {}
        for meta in self.segments_published:
            last[meta.recording] = meta
        return sorted(last.values(), key=lambda r: (r.start, r.recording))

    def alerts_of(self, kind: str) -> list[Alert]:
        return [a for a in self.alerts if a.kind == kind]

    def missed(self, cause: str | None = None) -> list[Alert]:
        """``missed_required_recording`` alerts, optionally of one cause."""
        return [a for a in self.alerts_of("missed_required_recording")
                if cause is None or a.cause == cause]

    def footage(self) -> list[tuple[float, float]]:
        """Every recorded span (buffer part included), merged where they touch."""
        spans = sorted((r.start, r.end) for r in self.recordings)
        merged: list[tuple[float, float]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1] + 1e-9:
                merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
            else:
                merged.append((a, b))
        return merged


class CameraDriver(_Collected):
    """Feeds a :class:`Camera` typed events at given times and collects what it publishes."""

    def __init__(
        self,
        initial: str = "pre_buffer",
        policy: Policy = DHS,
        camera_id: str = CAM,
        **params: Any,
    ) -> None:
        super().__init__()
        self.camera = Camera(camera_id, policy, CameraParams(**params), initial)
        self.now = 0.0
        self._ids: Iterator[int] = itertools.count(1)
        self.last: list[Outbound] = []
        self._take(self.camera.start())

    # -- time

    def advance(self, t: float) -> list[Outbound]:
        """Run every internal deadline up to and including ``t``, as the simulator would."""
        assert t >= self.now, "time never goes backwards"
        batch: list[Outbound] = []
        while (due := self.camera.next_deadline()) is not None and due <= t:
            self.now = max(self.now, due)
            batch += self.camera.on_timer(self.now)
        self.now = t
        self.last = batch
        self.out += batch
        return batch

    def finish(self, t: float) -> list[Outbound]:
        self.advance(t)
        return self._take(self.camera.finish(t))

    # -- messages

    def send(self, t: float, event_type: str, msg_id: MsgId | None = None, **fields: Any) -> Ack:
        """Deliver one event at time ``t`` (deadlines due by then run first); returns its ack."""
        if msg_id is None:
            msg_id = f"m-{next(self._ids)}"
        return self.deliver(t, make_event(event_type, msg_id, **fields))

    def deliver(self, t: float, event: Event) -> Ack:
        self.advance(t)
        batch = self._take(self.camera.handle(event, t))
        acks = [m for m in batch if isinstance(m, Ack)]
        assert len(acks) == 1, f"one ack per delivery, got {acks}"
        return acks[0]

    def start(self, t: float, activity: str, activity_id: str, **fields: Any) -> Ack:
        return self.send(t, "activity_start", activity=activity, activity_id=activity_id, **fields)

    def end(self, t: float, activity_id: str, **fields: Any) -> Ack:
        return self.send(t, "activity_end", activity_id=activity_id, **fields)

    # -- looking

    @property
    def state(self) -> str:
        return self.camera.state.value

    def _take(self, batch: list[Outbound]) -> list[Outbound]:
        self.last = batch
        self.out += batch
        return batch


class NodeDriver(_Collected):
    """Feeds a :class:`ReferenceNode` raw bytes on topics and decodes what it publishes."""

    def __init__(self, teams: tuple[str, ...] = (), initial: str = "pre_buffer",
                 prefix: str = "bwc", **params: Any) -> None:
        super().__init__()
        setup = CameraSetup(camera_id=CAM, policy=DHS, params=CameraParams(**params),
                            teams=teams, initial=initial, prefix=prefix)  # type: ignore[arg-type]
        self.node = ReferenceNode(setup)
        self.topics = Topics(CAM, prefix)
        self.prefix = prefix
        self.publishes: list[Publish] = []
        self.availability: list[bytes] = []
        self.now = 0.0
        self._take(self.node.start(0.0))

    @property
    def camera(self) -> Camera:
        return self.node.camera

    def advance(self, t: float) -> None:
        while (due := self.node.next_deadline()) is not None and due <= t:
            self.now = max(self.now, due)
            self._take(self.node.on_timer(self.now))
        self.now = t

    def raw(self, t: float, payload: bytes | str, topic: str | None = None) -> list[Outbound]:
        """Deliver ``payload`` on ``topic`` (default: the camera's event topic) at ``t``."""
        self.advance(t)
        data = payload.encode() if isinstance(payload, str) else payload
        return self._take(self.node.on_message(topic or self.topics.event, data, t))

    def raw_ack(self, t: float, payload: bytes | str, topic: str | None = None) -> Ack:
        acks = [m for m in self.raw(t, payload, topic) if isinstance(m, Ack)]
        assert len(acks) == 1, f"one ack per delivery, got {acks}"
        return acks[0]

    def _take(self, pubs: list[Publish]) -> list[Outbound]:
        decoded: list[Outbound] = []
        for pub in pubs:
            self.publishes.append(pub)
            where = split_topic(pub.topic, self.prefix)
            assert where is not None and where[0] == CAM, f"published off its own topics: {pub}"
            if where[1] == "availability":
                self.availability.append(pub.payload)
                continue
            decoded.append(decode_outbound(where[1], pub.payload))
        self.out += decoded
        return decoded
