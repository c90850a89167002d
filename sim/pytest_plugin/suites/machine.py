"""P-NOMISS, P-NOSPLIT and P-IDEM as a rule-based state machine driving one node step by step.

Each rule is one thing the officer, the dispatcher or the bus does (an activity starts or ends,
dock, undock, a press, a deactivation, a signal, time passing, a redelivery). The machine feeds
it to a live node of the controller under test at the current virtual time and keeps a small
independent model of the holds (SPEC §4a): which required activities are open and whether an
allowed deactivation pauses them. After every step it checks the node against the model:

* P-NOMISS — while a required window is open and not deactivated, a camera that can record
  (buffering with free storage) is recording;
* P-NOSPLIT — while that stays true across a step (and the step is not a dock), no recording
  closes;
* P-IDEM — a redelivered message is answered with exactly the ack it got the first time, and
  nothing else.

At teardown the whole run is written as a format-v1 scenario and replayed through the harness
and the oracle, which must find no controller second, nothing unannounced and no split, no
footage that cannot exist (P-NOPHANTOM) and nothing recorded that the policy forbids, nor a
recording a signal or duplicate stopped (P-PRIVACY). A
failing check hands the run so far, as a scenario, to the ``bwcsim_counterexample`` recorder:
the report shows it as a file, and a P-NOMISS failure that the replay reproduces is saved.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from controller.bounds import Limits
from controller.node import CameraSetup, ControllerFactory, Publish
from controller.policy import load_policy
from sim.search.invariants import NodeDriver, no_miss, no_phantom, no_split, privacy
from sim.search.strategies import load_scenario_dict
from sim.world.replay import replay

from ..counterexamples import Counterexamples
from .common import suite_settings

__all__ = ["test_recording_machine"]

CAMERA = "cam-1"
TEAM = "team-a"
POLICY = load_policy("dhs-2023")
REQUIRED = sorted(a for a, kind in POLICY.activities.items() if kind == "required")
OTHER = sorted(a for a, kind in POLICY.activities.items() if kind != "required")
LISTED = sorted(POLICY.signals)
REASONS = sorted(POLICY.deactivation_reasons)
REDELIVERY_WINDOW_S = Limits().duplicate_window_s


class RecordingMachine(RuleBasedStateMachine):
    """One camera, driven rule by rule; see the module docstring."""

    factory: ControllerFactory
    counterexamples: Counterexamples

    def __init__(self) -> None:
        super().__init__()
        setup = CameraSetup(camera_id=CAMERA, policy=POLICY, teams=(TEAM,))
        self.driver = NodeDriver.build(self.factory, setup)
        self.now = 0
        self.entries: list[dict[str, Any]] = []
        # entry, payload, first ack, when it was delivered
        self.sent: list[tuple[dict[str, Any], bytes, bytes | None, int]] = []
        self.open: dict[str, bool] = {}  # activity id -> required
        self.activities = 0
        self.deactivated = False
        self.step_outputs: list[Publish] = []
        self.held_before = False
        self.step_kind = ""

    # ------------------------------------------------------------------ model and delivery

    def should_record(self) -> bool:
        return any(self.open.values()) and not self.deactivated

    def state(self) -> dict[str, Any]:
        state = self.driver.last_state()
        assert state is not None, "the node published no state"
        return state

    def scenario(self, tail: int = 60) -> dict[str, Any]:
        """The run so far as a format-v1 scenario, ``tail`` seconds past the last step."""
        return {
            "version": 1, "name": "state machine run", "end": self.now + tail,
            "cameras": [{"id": CAMERA, "team": TEAM}], "timeline": list(self.entries),
        }

    def can_record(self) -> bool:
        state = self.state()
        return state["state"] in ("pre_buffer", "recording") and state["storage_s"] > 0

    def send(
        self, kind: str, event: str, team: bool = False, late: int = 0, **fields: Any
    ) -> bool:
        """Deliver one event a second after the previous step; returns whether it was acked ok.

        The second apart keeps every activity at least a second long: a zero-length activity
        is noise a camera cannot judge (see :mod:`sim.search.strategies`).
        """
        self.now += 1
        self.driver.advance(self.now)
        self.step_kind = kind
        self.held_before = self.should_record() and self.can_record()
        msg_id = f"s-{len(self.sent)}"
        # A late message really happened ``late`` seconds ago: ``at``/``ts`` say so.
        late = min(late, self.now)
        at = self.now - late
        entry: dict[str, Any] = {"at": at, ("team" if team else "camera"):
                                 TEAM if team else CAMERA, "event": event, "id": msg_id, **fields}
        if late:
            entry["delay_s"] = late
        payload = msgspec.json.encode({"id": msg_id, "type": event, "ts": float(at), **fields})
        topic = f"bwc/team/{TEAM}/event" if team else f"bwc/{CAMERA}/event"
        self.step_outputs = self.driver.deliver(topic, payload, self.now)
        acks = [p.payload for p in self.step_outputs if p.topic.endswith("/ack")]
        self.entries.append(entry)
        self.sent.append((entry, payload, acks[0] if acks else None, self.now))
        return bool(acks) and bool(msgspec.json.decode(acks[0])["ok"])

    # ------------------------------------------------------------------ rules

    @rule(required=st.sampled_from((True, True, True, False)), pick=st.integers(0, 7),
          team=st.booleans(), late=st.sampled_from((0, 0, 4, 20, 90)))
    def start_activity(self, required: bool, pick: int, team: bool, late: int) -> None:
        names = REQUIRED if required or not OTHER else OTHER
        self.activities += 1
        aid = f"a-{self.activities}"
        ok = self.send("start", "activity_start", team, late, activity=names[pick % len(names)],
                       activity_id=aid)
        self.open[aid] = required or not OTHER
        if ok and (required or not OTHER):
            self.deactivated = False

    @precondition(lambda self: bool(self.open))
    @rule(data=st.data())
    def end_activity(self, data: st.DataObject) -> None:
        aid = data.draw(st.sampled_from(sorted(self.open)), label="activity")
        self.send("end", "activity_end", activity_id=aid)
        del self.open[aid]
        if not any(self.open.values()):
            self.deactivated = False

    @rule()
    def dock(self) -> None:
        self.send("dock", "dock")

    @rule()
    def undock(self) -> None:
        self.send("undock", "undock")

    @rule(action=st.sampled_from(("start", "stop")))
    def press(self, action: str) -> None:
        ok = self.send("press", "button", action=action)
        if ok and action == "start":
            self.deactivated = False

    @rule(allowed=st.booleans(), pick=st.integers(0, 7))
    def deactivate(self, allowed: bool, pick: int) -> None:
        reason = REASONS[pick % len(REASONS)] if allowed else "coffee_break"
        ok = self.send("deactivate", "deactivate", reason=reason, actor="officer-1")
        if ok and allowed and any(self.open.values()):
            self.deactivated = True

    @rule()
    def reactivate(self) -> None:
        self.send("reactivate", "reactivate")
        self.deactivated = False

    @rule(listed=st.booleans(), pick=st.integers(0, 7))
    def signal(self, listed: bool, pick: int) -> None:
        sources = LISTED if listed else ["button"]
        ok = self.send("signal", "signal", source=sources[pick % len(sources)])
        if ok and listed:
            self.deactivated = False

    @rule(seconds=st.sampled_from((1, 2, 5, 10, 30, 60, 300, 900)))
    def advance(self, seconds: int) -> None:
        self.step_kind = "advance"
        self.held_before = self.should_record() and self.can_record()
        before = len(self.driver.outputs)
        self.now += seconds
        self.driver.advance(self.now)
        self.step_outputs = [p for _, _, p in self.driver.outputs[before:]]

    def redeliverable(self) -> list[int]:
        """Messages a redelivery one second from now still finds in the duplicate table: one
        later than the redelivery window (SPEC §14, R-BOUND) is handled again, by design."""
        return [i for i, (*_, at) in enumerate(self.sent) if self.now + 1 - at <= REDELIVERY_WINDOW_S]

    @precondition(lambda self: bool(self.redeliverable()))
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        index = data.draw(st.sampled_from(self.redeliverable()), label="message")
        entry, payload, first_ack, _ = self.sent[index]
        self.now += 1
        self.driver.advance(self.now)
        self.step_kind = "redeliver"
        self.held_before = self.should_record() and self.can_record()
        topic = f"bwc/team/{TEAM}/event" if "team" in entry else f"bwc/{CAMERA}/event"
        self.step_outputs = self.driver.deliver(topic, payload, self.now)
        # P-IDEM: the same answer again, and nothing else.
        answered = [p.payload for p in self.step_outputs]
        assert answered == [first_ack], (
            f"at {self.now}: a redelivery must be answered with its first ack {first_ack!r} only, "
            f"got {answered}"
        )
        self.entries.append({**entry, "delay_s": self.now - entry["at"]})  # the same bytes, later

    # ------------------------------------------------------------------ invariants

    @invariant()
    def records_while_a_required_window_is_open(self) -> None:
        if self.should_record() and self.can_record() and self.state()["state"] != "recording":
            self.counterexamples.check("P-NOMISS", self.scenario(), [
                f"at {self.now}: required window open ({sorted(self.open)}), camera "
                f"{self.state()['state']}"
            ])

    @invariant()
    def never_splits_a_held_recording(self) -> None:
        if not (self.held_before and self.should_record() and self.can_record()):
            return
        if self.step_kind == "dock":
            return
        closed = [msgspec.json.decode(p.payload) for p in self.step_outputs
                  if p.topic.endswith("/recording")]
        if [r for r in closed if r["final"] and not r["open"]]:
            self.counterexamples.check("P-NOSPLIT", self.scenario(), [
                f"at {self.now}: a recording closed during a required window ({self.step_kind})"
            ])

    def teardown(self) -> None:
        if not self.entries:
            return
        data = self.scenario()
        result = replay(load_scenario_dict(data), self.factory)
        self.counterexamples.check("P-NOMISS", data, no_miss(result))
        self.counterexamples.check("P-NOSPLIT", data, no_split(result))
        self.counterexamples.check("P-NOPHANTOM", data, no_phantom(result))
        self.counterexamples.check("P-PRIVACY", data, privacy(result))


@pytest.mark.req("P-NOMISS", "P-NOSPLIT", "P-IDEM", "P-NOPHANTOM", "P-PRIVACY")
def test_recording_machine(
    bwcsim_controller: ControllerFactory, bwcsim_counterexample: Counterexamples
) -> None:
    machine = type("Machine", (RecordingMachine,), {
        "factory": staticmethod(bwcsim_controller), "counterexamples": bwcsim_counterexample,
    })
    run_state_machine_as_test(machine, settings=settings(suite_settings(), stateful_step_count=30))
