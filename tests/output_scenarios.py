"""Scenarios the output tests draw, and one helper to replay them with a trace.

``DOCK_MID_WARRANT`` is the trainer's reference case (a camera docked during a warrant
service: 600 s missed, cause ``docked``). ``SHIFT_12H`` is a deliberately busy 12-hour shift
of four cameras on a jittery, duplicating bus: every kind of miss but ``bus`` and
``controller``, refusals, signals, a deactivation, storage and battery exhaustion — the case
the timeline must stay readable for.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sim.views.report import build_report
from sim.world.replay import ReplayResult, replay
from sim.world.scenario import parse_scenario

DOCK_MID_WARRANT = """\
version: 1
name: Camera docked in the middle of a warrant service
description: >
  The officer docks the camera at 00:15:00 while the warrant service runs until 00:25:00.
policy: dhs-2023
end: "00:30:00"
cameras:
  - {id: cam-1, initial: pre_buffer}
timeline:
  - {at: 300, camera: cam-1, event: activity_start, activity: arrest_warrant, activity_id: w-2}
  - {at: 900, camera: cam-1, event: dock}
  - {at: 1500, camera: cam-1, event: activity_end, activity_id: w-2}
expect:
  verdict: pass
  missed_s: {controller: 0, docked: 600}
"""

SHIFT_12H = """\
version: 1
name: Twelve-hour shift, four cameras
policy: dhs-2023
seed: 3
end: "12:00:00"
cameras:
  - {id: cam-1, team: sr-1, initial: docked}
  - {id: cam-2, team: sr-1, initial: pre_buffer}
  - {id: cam-3, initial: pre_buffer, battery_s: 20000}
  - {id: cam-4, initial: pre_buffer, storage_s: 3000}
bus: {latency_s: 0.05, jitter_s: 0.2, latency: uniform, duplicate: 0.1}
timeline:
  - {at: 0, camera: cam-1, event: undock}
  - {at: 2, camera: cam-1, event: activity_start, activity: patrol, activity_id: p-1}
  - {at: "00:40:00", camera: cam-1, event: activity_end, activity_id: p-1}
  - {at: "01:00:00", team: sr-1, event: activity_start, activity: arrest_warrant, activity_id: w-1}
  - {at: "01:30:00", camera: cam-2, event: button, action: stop}
  - {at: "01:45:00", camera: cam-1, event: dock}
  - {at: "02:00:00", team: sr-1, event: activity_end, activity_id: w-1}
  - {at: "02:05:00", camera: cam-1, event: undock}
  - {at: "03:00:00", camera: cam-2, event: signal, source: taser}
  - {at: "03:02:00", camera: cam-2, event: button, action: stop}
  - {at: "04:00:00", camera: cam-2, event: activity_start, activity: search_warrant,
     activity_id: s-1, delay_s: 50}
  - {at: "04:20:00", camera: cam-2, event: deactivate, reason: medical_facility_privacy, actor: sgt-1}
  - {at: "04:30:00", camera: cam-2, event: reactivate}
  - {at: "05:00:00", camera: cam-2, event: activity_end, activity_id: s-1}
  - {at: "05:10:00", camera: cam-1, raw: {topic: bwc/cam-1/event, payload: "not json"}}
  - {at: "06:00:00", camera: cam-3, event: activity_start, activity: patrol, activity_id: p-3}
  - {at: "09:00:00", camera: cam-3, event: activity_end, activity_id: p-3}
  - {at: "02:00:00", camera: cam-4, event: activity_start, activity: emergency_response, activity_id: e-4}
  - {at: "03:10:00", camera: cam-4, event: activity_end, activity_id: e-4}
  - {at: "07:00:00", camera: cam-4, event: activity_start, activity: first_amendment_activity,
     activity_id: f-1}
  - {at: "07:30:00", camera: cam-4, event: activity_end, activity_id: f-1}
  - {at: "10:00:00", team: sr-1, event: activity_start, activity: emergency_response, activity_id: e-9}
  - {at: "10:00:20", camera: cam-1, event: activity_start, activity: patrol, activity_id: p-9, delay_s: 1}
  - {at: "10:30:00", team: sr-1, event: activity_end, activity_id: e-9}
  - {at: "10:30:00", camera: cam-1, event: activity_end, activity_id: p-9}
  - {at: "11:00:00", camera: cam-4, event: button, action: start}
  - {at: "11:00:05", camera: cam-4, event: button, action: stop}
"""


def run_text(
    text: str, seed: int | None = None
) -> tuple[ReplayResult, dict[str, Any], list[dict[str, Any]]]:
    """Replay scenario ``text`` (optionally with another seed); result, report, trace records."""
    scenario = parse_scenario(text, "<test>")
    if seed is not None:
        scenario = dataclasses.replace(scenario, seed=seed)
    records: list[dict[str, Any]] = []
    result = replay(scenario, trace=records.append)
    return result, build_report(result), records
