"""P-AUTH: forged, replayed, re-sequenced and skewed commands change nothing (SPEC §11, §14).

Each example is a stream of genuine signed commands (dispatch's activities, the supervisor's
pauses, the officer's button, the paired device's signals and dock) with attacks spliced in:
signatures made with a key the camera does not trust (under a trusted name or the intruder's
own), unsigned commands, commands from a principal whose role may not send them or to another
camera, a captured message re-sent under a fresh id, a principal's own command re-signed with
a spent sequence number, and commands stamped beyond ``max_skew_s``. One node gets everything;
a second node gets the genuine commands alone. Every attack must be NACKed with the right code
(``unauthorized``, ``replayed``, ``stale``) and publish nothing but that NACK, and everything
else the first node publishes must equal what the second publishes: the attacks changed
nothing. Their only trace is one ``refused`` audit entry each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from signing import CAM, DHS, EVENT, TEAM, Sender, trust

from controller.audit import NoAuditTrail, trail_of
from controller.codec import decode_outbound
from controller.messages import Ack
from controller.node import CameraSetup, ControllerFactory
from controller.reference import ReferenceNode
from sim.search.invariants import NodeDriver, only_acks, same_outputs

GENUINE = ("start", "end", "deactivate", "reactivate", "button_start", "button_stop", "signal",
           "dock", "undock")
ATTACKS = ("forged", "unknown", "unsigned", "wrong_role", "other_camera", "fresh_id", "spent_seq",
           "same_seq", "skewed", "wrong_target")
ACTIVITIES = ("patrol", "arrest_warrant", "first_amendment_activity")


@dataclass
class Stream:
    """Genuine senders with their own sequence counters, and what they sent."""

    senders: dict[str, Sender] = field(default_factory=lambda: {
        n: Sender(n) for n in ("dispatch", "supervisor", "officer-cam-1", "device-cam-1")})
    sent: list[bytes] = field(default_factory=list)
    open: list[str] = field(default_factory=list)
    n: int = 0

    def genuine(self, kind: str, pick: int) -> bytes:
        self.n += 1
        mid = f"g-{self.n}"
        if kind == "start":
            aid = f"a-{self.n}"
            self.open.append(aid)
            body = self.senders["dispatch"].body(mid, "activity_start",
                                                 activity=ACTIVITIES[pick % 3], activity_id=aid)
            who = "dispatch"
        elif kind == "end":
            aid = self.open.pop(pick % len(self.open)) if self.open else "a-none"
            body, who = self.senders["dispatch"].body(mid, "activity_end", activity_id=aid), "dispatch"
        elif kind in ("deactivate", "reactivate"):
            fields: dict[str, Any] = (
                {"reason": "supervisor_order", "actor": "supervisor"} if kind == "deactivate" else {})
            body, who = self.senders["supervisor"].body(mid, kind, **fields), "supervisor"
        elif kind.startswith("button"):
            body = self.senders["officer-cam-1"].body(mid, "button", action=kind.split("_")[1])
            who = "officer-cam-1"
        elif kind == "signal":
            body, who = self.senders["device-cam-1"].body(mid, "signal", source="taser"), "device-cam-1"
        else:
            body, who = self.senders["device-cam-1"].body(mid, kind), "device-cam-1"
        payload = self.senders[who].signed(body)
        self.sent.append(payload)
        return payload

    def attack(self, kind: str, pick: int, now: float) -> tuple[bytes, str]:
        self.n += 1
        mid = f"x-{self.n}"
        end: dict[str, Any] = {"activity_id": self.open[pick % len(self.open)] if self.open else "a-1"}
        pause: dict[str, Any] = {"reason": "supervisor_order", "actor": "supervisor"}
        dispatch, boss = self.senders["dispatch"], self.senders["supervisor"]
        if kind == "forged":
            claim = ("dispatch", "supervisor", "officer-cam-1")[pick % 3]
            forged = Sender("intruder").command(mid, "activity_end", seq=10**9, claims=claim, **end)
            return forged, "unauthorized"
        if kind == "unknown":
            return Sender("intruder").command(mid, "deactivate", **pause), "unauthorized"
        if kind == "unsigned":
            bare = {"id": mid, "type": ("activity_end", "deactivate", "dock")[pick % 3], **end, **pause}
            return json.dumps(bare).encode(), "unauthorized"
        if kind == "wrong_role":
            who, etype, fields = (("officer-cam-1", "activity_end", end),
                                  ("dispatch", "deactivate", {**pause, "actor": "dispatch"}),
                                  ("device-cam-1", "button", {"action": "stop"}),
                                  ("supervisor", "dock", {}))[pick % 4]
            return Sender(who).command(mid, etype, seq=10**9, **fields), "unauthorized"
        if kind == "other_camera":
            return Sender("officer-cam-2").command(mid, "button", action="stop"), "unauthorized"
        if kind == "wrong_target":
            return dispatch.signed(dispatch.body(mid, "activity_end", to="cam-2", seq=10**9, **end)), \
                "unauthorized"
        if kind == "fresh_id" and self.sent:
            captured = json.loads(self.sent[pick % len(self.sent)])
            body = {**json.loads(captured["body"]), "id": mid}
            return json.dumps({**captured, "body": json.dumps(body)}).encode(), "unauthorized"
        used = [x for x in self.senders.values() if x.seq > 0]
        if kind in ("spent_seq", "same_seq") and used:
            # A principal's own, valid command but for its number: the last, or an older one.
            owner = used[pick % len(used)]
            seq = owner.seq if kind == "same_seq" else pick % owner.seq + 1
            table: dict[str, tuple[str, dict[str, Any]]] = {
                "dispatch": ("activity_start", {"activity": "patrol", "activity_id": mid}),
                "supervisor": ("deactivate", pause),
                "officer-cam-1": ("button", {"action": "start"}),
                "device-cam-1": ("signal", {"source": "taser"}),
            }
            etype, own = table[owner.name]
            return owner.command(mid, etype, seq=seq, **own), "replayed"
        # skewed (and the replays before anything was sent): a genuine sender, a ts far ahead
        ts = now + DHS.max_skew_s + 1 + pick * 10**6
        return dispatch.command(mid, "activity_end", seq=dispatch.seq + 1, ts=ts, **end) if pick % 2 else \
            boss.command(mid, "deactivate", seq=boss.seq + 1, ts=ts, **pause), "stale"


steps = st.lists(
    st.tuples(st.sampled_from(GENUINE + ATTACKS), st.integers(0, 11), st.integers(1, 90)),
    max_size=40,
)


def _setup() -> CameraSetup:
    return CameraSetup(camera_id=CAM, policy=DHS, teams=(TEAM,), trust=trust())


@pytest.mark.req("P-AUTH", "R-AUTH", "R-FRESH")
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(plan=steps)
def test_attacks_are_refused_and_change_nothing(
    controller_factory: ControllerFactory, plan: list[tuple[str, int, int]]
) -> None:
    stream = Stream()
    attacked = NodeDriver.build(controller_factory, _setup())
    clean = NodeDriver.build(controller_factory, _setup())
    t = 0.0
    n_attacks = 0
    for kind, pick, dt in plan:
        t += dt
        if kind in GENUINE:
            payload = stream.genuine(kind, pick)
            attacked.deliver(EVENT, payload, t)
            clean.deliver(EVENT, payload, t)
            continue
        payload, code = stream.attack(kind, pick, t)
        attacked.advance(t)  # timers due first: they are not the attack's doing
        before = len(attacked.outputs)
        pubs = attacked.deliver(EVENT, payload, t)
        del attacked.outputs[before:]
        assert only_acks(pubs) == []
        (reply,) = [decode_outbound("ack", p.payload) for p in pubs]
        assert isinstance(reply, Ack) and not reply.ok
        assert reply.error is not None and reply.error.startswith(code + ":"), (kind, reply)
        n_attacks += 1
    attacked.finish(t + 1)
    clean.finish(t + 1)
    assert same_outputs(clean.outputs, attacked.outputs) == []
    a, c = attacked.node, clean.node
    try:
        trails = trail_of(a), trail_of(c)
    except NoAuditTrail:
        trails = None  # a controller whose audit log the bench cannot read
    if trails is not None:
        assert len(trails[0]) == len(trails[1]) + n_attacks
    if isinstance(a, ReferenceNode) and isinstance(c, ReferenceNode):  # the gate's own memory
        assert msgspec.json.encode(a.gate.state) == msgspec.json.encode(c.gate.state)
