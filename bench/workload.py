"""The workload of the one-camera benchmarks: a busy generated 12-hour shift.

About 1,000 inbound events for one camera (patrols, nested emergency calls, warrants with
deactivations, signals, button presses, refused stops, late triggers, a disconnect), generated
by :mod:`sim.fleet` with :data:`sim.fleet.DENSE_PROFILE`, so the mix is the fleet's mix, only
denser. The same seed always gives the same events.
"""

from __future__ import annotations

import measure  # noqa: F401  (puts the checkout on sys.path)

from controller.node import CameraSetup
from sim.fleet import DENSE_PROFILE, plan_fleet, team_scenario
from sim.world.scenario import Scenario

Message = tuple[str, bytes, float]  # topic, payload, handling time


def dense_shift(hours: float = 12.0, seed: int = 1) -> Scenario:
    """One camera, one busy shift."""
    return team_scenario(plan_fleet(1, hours, seed, profile=DENSE_PROFILE)[0])


def camera_messages(scenario: Scenario) -> tuple[CameraSetup, list[Message]]:
    """The camera's setup and its inbound messages in sending order, without the bus."""
    spec = scenario.cameras[0]
    setup = CameraSetup(camera_id=spec.id, policy=scenario.policy, params=spec.params,
                        teams=spec.teams, initial=spec.initial, prefix=scenario.prefix)
    msgs: list[Message] = []
    for entry in sorted(scenario.timeline, key=lambda e: (e.send_at, e.index)):
        if entry.event is None and entry.raw is None:
            continue  # faults publish nothing
        topic, payload = entry.payload(scenario.prefix)
        msgs.append((topic, payload, entry.send_at))
    return setup, msgs
