"""Corner scenarios every search tries first, whatever its seed (SPEC §11).

Theory of operation
-------------------
A random search finds a broken rule when some example happens to exercise it; with the few
dozen examples of the ``dev`` profile that is a matter of the seed. The scenarios below are the
short, deliberate shapes each rule of SPEC §4 and each kind of policy entry needs — one corner
each — so that a search (``bwcsim fuzz``, :func:`sim.search.fuzz.search`) and the property
suites run them as *explicit examples* before any generated one (hypothesis' ``@example``).
They are not tuned to any broken controller: each states a rule's plain case (an activity with
a buffer to prepend, nested activities, a stop pressed during a warrant, a dock, a signal, a
prohibited activity, a tail of each kind, an empty battery, a full card, a long shift with
rollovers, the refusals), and every property judges every one of them.

Each corner is a format-v1 scenario dict, as the generators produce, with its policy inline
when it is not ``dhs-2023``: a failure on it is minimised and saved like any other.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["CORNERS", "corner_scenarios"]

_DHS = "dhs-2023"


def _scenario(name: str, end: float, cameras: list[dict[str, Any]],
              timeline: list[dict[str, Any]], policy: str | dict[str, Any] = _DHS) -> dict[str, Any]:
    return {"version": 1, "name": f"corner: {name}", "policy": policy, "seed": 0, "end": end,
            "cameras": cameras, "timeline": timeline}


def _start(at: float, aid: str, activity: str = "arrest_warrant", cam: str = "cam-1",
           **extra: Any) -> dict[str, Any]:
    return {"at": at, "camera": cam, "event": "activity_start", "activity": activity,
            "activity_id": aid, **extra}


def _end(at: float, aid: str, cam: str = "cam-1", **extra: Any) -> dict[str, Any]:
    return {"at": at, "camera": cam, "event": "activity_end", "activity_id": aid, **extra}


def _ev(at: float, event: str, cam: str = "cam-1", **fields: Any) -> dict[str, Any]:
    return {"at": at, "camera": cam, "event": event, **fields}


#: A policy with every kind of tail: a non-zero default, an explicit ``post_s: 0``, an explicit
#: longer one, and no ``post_s`` at all; a prohibited and a discretionary activity; two signals.
TAILS_POLICY: dict[str, Any] = {
    "name": "corner-tails",
    "activities": {
        "patrol": {"kind": "required"},
        "traffic_stop": {"kind": "required", "post_s": 0},
        "arrest_warrant": {"kind": "required", "post_s": 120},
        "first_amendment_activity": {"kind": "prohibited"},
        "community_meeting": {"kind": "discretionary"},
    },
    "post_s": 60,
    "signals": ["taser", "button"],
    "deactivation_reasons": ["supervisor_order"],
}

_ONE = [{"id": "cam-1", "prebuffer_s": 30}]

#: The corner scenarios by name (see the module docstring for what they are for).
CORNERS: dict[str, dict[str, Any]] = {
    # R-TRIG, R-BUF: a trigger 20 s late, within the reach of a full buffer.
    "buffer": _scenario("a trigger the buffer still reaches back to", 400, _ONE, [
        _start(100, "a-1", delay_s=20), _end(200, "a-1")]),
    # R-NOSPLIT: nested activities, the outer one ending first.
    "nested": _scenario("nested activities, the first ends first", 400, _ONE, [
        _start(60, "a-1"), _start(90, "a-2", "search_warrant"), _end(120, "a-1"),
        _end(240, "a-2")]),
    # R-STOP: a manual stop during a warrant is refused; after it, accepted.
    "stop": _scenario("a stop pressed during a warrant and after it", 400, _ONE, [
        _start(60, "a-1"), _ev(120, "button", action="stop"), _end(200, "a-1"),
        _ev(230, "button", action="start"), _ev(260, "button", action="stop")]),
    # R-DOCK, R-MISS: docked mid-warrant (recording closed, nothing lost, missed alert), then a
    # warrant that starts while docked, then undocked (boot, not_ready).
    "dock": _scenario("docked during a warrant, and a warrant starting while docked", 600,
                      [{"id": "cam-1", "prebuffer_s": 30, "boot_s": 20}], [
        _start(60, "a-1"), _ev(150, "dock"), _end(200, "a-1"), _start(300, "a-2"),
        _ev(360, "undock"), _end(450, "a-2")]),
    # R-SIG: a listed signal during a warrant holds, never stops; one after it starts a
    # recording; an unlisted one starts nothing.
    "signals": _scenario("signals during and after a warrant, listed and not", 500, _ONE, [
        _start(60, "a-1"), _ev(90, "signal", source="holster"), _end(150, "a-1"),
        _ev(200, "signal", source="button"), _ev(260, "signal", source="taser"),
        _ev(320, "button", action="stop")]),
    # R-STOP deactivation: allowed and refused reasons, resumption by reactivate.
    "deactivate": _scenario("an allowed and a refused deactivation during a warrant", 500, _ONE, [
        _start(60, "a-1"), _ev(100, "deactivate", reason="coffee_break", actor="sergeant-2"),
        _ev(130, "deactivate", reason="supervisor_order", actor="sergeant-2"),
        _ev(190, "reactivate"), _end(300, "a-1")]),
    # R-LATE: a trigger sent later than the buffer reaches.
    "late": _scenario("a trigger that arrives after the buffer's reach", 400, _ONE, [
        _start(100, "a-1", delay_s=90), _end(250, "a-1")]),
    # Policy kinds and tails (SPEC §3): each tail kind alone, with quiet after it; a
    # prohibited and a discretionary activity; a listed signal.
    "tails": _scenario("every kind of post_s tail, prohibited and discretionary activities",
                       1500, _ONE, [
        _start(60, "t-1", "traffic_stop"), _end(120, "t-1"),
        _start(300, "p-1", "patrol"), _end(360, "p-1"),
        _start(600, "w-1", "arrest_warrant"), _end(660, "w-1"),
        _start(900, "f-1", "first_amendment_activity"), _end(960, "f-1"),
        _start(1100, "c-1", "community_meeting"), _end(1160, "c-1"),
        _ev(1250, "signal", source="taser"), _ev(1300, "button", action="stop")],
        policy=TAILS_POLICY),
    # R-IDEM, R-BAD: a redelivered start and end, an end for an unknown activity, garbage.
    "replies": _scenario("redeliveries, an unknown activity_end and garbage", 400, _ONE, [
        {**_start(60, "a-1"), "id": "s-1"}, {**_start(60, "a-1"), "id": "s-1", "delay_s": 30},
        _end(100, "x-9"), {**_end(200, "a-1"), "id": "e-1"},
        {**_end(200, "a-1"), "id": "e-1", "delay_s": 10},
        {"at": 250, "camera": "cam-1", "raw": {"topic": "bwc/cam-1/event", "payload": "{"}},
        {"at": 260, "camera": "cam-1",
         "raw": {"topic": "bwc/cam-1/event", "payload": '{"type": "activity_start"}'}}]),
    # R-POWER: a small battery under a heavy drain empties during a warrant, then charges.
    "battery": _scenario("a battery that empties during a warrant and charges in the dock", 2400,
                         [{"id": "cam-1", "prebuffer_s": 30, "battery_s": 900,
                           "low_battery_s": 300, "record_drain": 4.0, "charge_rate": 2.0,
                           "boot_s": 10}], [
        _start(100, "a-1"), _end(700, "a-1"), _ev(800, "dock"), _ev(1600, "undock"),
        _start(1700, "a-2"), _end(1900, "a-2")]),
    # R-STORE: a small card fills during a warrant; docked, it uploads slowly and frees space.
    "storage": _scenario("a card that fills during a warrant, then uploads in the dock", 3000,
                         [{"id": "cam-1", "prebuffer_s": 30, "storage_s": 300,
                           "upload_speed": 0.5, "boot_s": 10}], [
        _start(100, "a-1"), _end(600, "a-1"), _ev(700, "dock"), _ev(2000, "undock"),
        _start(2100, "a-2"), _end(2200, "a-2")]),
    # R-ROLL: a long shift with short segments (rollovers), overlapping activities.
    "long_shift": _scenario("a twelve-hour shift with ten-minute segments", 43200,
                            [{"id": "cam-1", "prebuffer_s": 30, "segment_max_s": 600}], [
        _start(600, "a-1", "patrol"), _start(7200, "a-2"), _end(9000, "a-2"),
        _end(28800, "a-1"), _start(36000, "a-3", "emergency_response"), _end(39600, "a-3")]),
}


def corner_scenarios() -> list[dict[str, Any]]:
    """Fresh copies of every corner scenario, in :data:`CORNERS` order."""
    return [copy.deepcopy(data) for data in CORNERS.values()]
