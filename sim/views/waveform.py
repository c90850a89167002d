"""A run as a VCD waveform, for GTKWave, Surfer or PulseView (SPEC §10).

Theory of operation
-------------------
Firmware engineers read controller behaviour as signals over time, so each camera becomes a
scope (``bwcsim.<camera>``) of 1-bit wires plus a few string-valued variables:

* one wire per state — ``docked``, ``standby``, ``pre_buffer``, ``recording``, ``off`` — high
  while the camera *reported* that state (exactly one is high at a time), and ``state``, the
  same as a string (GTKWave shows it as text);
* trigger sources: ``req_<activity_id>`` high over each required window (ground truth,
  activity start → end + ``post_s``), ``required`` high while any is open; ``dock`` high from a
  delivered ``dock`` to the next delivered ``undock`` (what the camera was told);
  ``sig_<source>``, ``btn_start``, ``btn_stop``, ``deactivate`` and ``reactivate`` pulse when
  such a message reaches the camera;
* outcome: ``footage`` high while any recording (buffer part included) covers the time,
  ``missed`` high over uncovered required seconds with ``missed_cause`` naming the cause,
  ``alert`` pulsing at each alert with ``last_alert`` holding its kind (and cause), ``nack``
  pulsing when the camera refuses a message.

The timescale is 1 ms: sim seconds times 1000, rounded, so every time in a scenario file maps to
an exact tick. A pulse lasts :data:`PULSE_TICKS` ticks — an instant has no width, and a viewer
needs one tick to draw an edge. Each wire is built from intervals that are merged before
writing, so touching or repeated pulses never produce two changes of one variable at one
time; string variables keep the last value written at a tick. Variable names are the camera's
ids with anything outside ``[A-Za-z0-9_]`` turned into ``_`` (VCD identifiers cannot hold
``-`` reliably across viewers). The header carries no wall-clock date (P-DET).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, TextIO

from vcd import VCDWriter

from controller.messages import STATES

from .model import CameraView, RunView

__all__ = ["PULSE_TICKS", "TICKS_PER_S", "TIMESCALE", "vcd_name", "write_vcd"]

TIMESCALE = "1 ms"
TICKS_PER_S = 1000
PULSE_TICKS = 1
_NONE = "-"  # string variables show this when nothing applies (an empty VCD string is unreadable)


def vcd_name(text: str) -> str:
    """``text`` as a VCD identifier: letters, digits and ``_`` only, not starting with a digit."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return name if name and not name[0].isdigit() else f"_{name}"


def _tick(t: float) -> int:
    return round(t * TICKS_PER_S)


def _merge(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(i for i in intervals if i[1] > i[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _edges(intervals: Iterable[tuple[int, int]], end: int) -> list[tuple[int, int]]:
    """(tick, 0|1) changes of a wire that is high over ``intervals``.

    A span that lasts until the scenario ``end`` has no falling edge: the camera was still in
    that state when the run stopped, and a viewer should show it so.
    """
    changes: list[tuple[int, int]] = []
    for a, b in _merge(intervals):
        changes.append((a, 1))
        if b < end:
            changes.append((b, 0))
    return changes


def _strings(values: Iterable[tuple[int, str]]) -> list[tuple[int, str]]:
    """String changes, last value per tick kept, repeats of the current value dropped."""
    by_tick: dict[int, str] = {}
    for tick, value in sorted(values, key=lambda tv: tv[0]):
        by_tick[tick] = value
    out: list[tuple[int, str]] = []
    for tick, value in sorted(by_tick.items()):
        if not out or out[-1][1] != value:
            out.append((tick, value))
    return out


def _camera_signals(cam: CameraView, end: int) -> tuple[dict[str, list[tuple[int, int]]],
                                                         dict[str, list[tuple[int, str]]]]:
    """Wires (name → changes) and strings (name → changes) of one camera, in declaration order."""
    wires: dict[str, list[tuple[int, int]]] = {}
    for state in STATES:
        wires[state] = _edges(((_tick(s.start), _tick(s.end)) for s in cam.states
                              if s.state == state), end)
    wires["required"] = _edges(((_tick(w.start), _tick(w.end)) for w in cam.windows), end)
    by_window: dict[str, list[tuple[int, int]]] = {}
    for w in cam.windows:
        by_window.setdefault("req_" + vcd_name(w.activity_id), []).append(
            (_tick(w.start), _tick(w.end)))
    for name, spans in by_window.items():
        wires[name] = _edges(spans, end)

    docked: list[tuple[int, int]] = []
    # A camera that starts the scenario in its dock was docked without being told.
    dock_from: int | None = 0 if cam.states and cam.states[0].state == "docked" \
        and cam.states[0].start == 0 else None
    pulses: dict[str, list[tuple[int, int]]] = {}
    for msg in cam.inbound:
        t = _tick(msg.t)
        if msg.event == "dock" and dock_from is None:
            dock_from = t
        elif msg.event == "undock" and dock_from is not None:
            docked.append((dock_from, t))
            dock_from = None
        pulse = {"signal": "sig_" + vcd_name(msg.detail), "button": "btn_" + vcd_name(msg.detail),
                 "deactivate": "deactivate", "reactivate": "reactivate"}.get(msg.event)
        if pulse is not None:
            pulses.setdefault(pulse, []).append((t, t + PULSE_TICKS))
        if msg.ok is False:
            pulses.setdefault("nack", []).append((t, t + PULSE_TICKS))
    if dock_from is not None:
        docked.append((dock_from, end))
    wires["dock"] = _edges(docked, end)
    for name in sorted(pulses):
        wires[name] = _edges(pulses[name], end)
    wires["footage"] = _edges(((_tick(f.start), _tick(f.end)) for f in cam.footage), end)
    wires["missed"] = _edges(((_tick(m.start), _tick(m.end)) for m in cam.misses), end)
    wires["alert"] = _edges(((_tick(a.t), _tick(a.t) + PULSE_TICKS) for a in cam.alerts), end)

    strings: dict[str, list[tuple[int, str]]] = {
        "state": _strings((_tick(s.start), s.state) for s in cam.states),
        "missed_cause": _strings(
            [(_tick(m.start), m.cause) for m in cam.misses]
            + [(_tick(m.end), _NONE) for m in cam.misses
               if not any(_tick(o.start) == _tick(m.end) for o in cam.misses)]
        ),
        "last_alert": _strings((_tick(a.t), f"{a.kind}:{a.cause}" if a.cause else a.kind)
                               for a in cam.alerts),
    }
    return wires, strings


def write_vcd(view: RunView, out: TextIO) -> None:
    """Write the run as VCD text to ``out`` (timescale :data:`TIMESCALE`)."""
    end = _tick(view.end)
    comment = f"bwcsim run of {view.name!r}, seed {view.seed}, verdict {view.verdict}"
    changes: list[tuple[int, int, Any, int | str]] = []  # (tick, declaration order, var, value)
    writer = VCDWriter(out, timescale=TIMESCALE, date="sim time 0 = scenario start",
                       comment=comment.replace("$", ""), version="bwcsim")
    try:
        order = 0
        for cam in view.cameras:
            scope = ("bwcsim", vcd_name(cam.camera_id))
            wires, strings = _camera_signals(cam, end)
            for name, wire_changes in wires.items():
                var = writer.register_var(scope, name, "wire", size=1, init=0)
                changes += [(tick, order, var, value) for tick, value in wire_changes]
                order += 1
            for name, str_changes in strings.items():
                var = writer.register_var(scope, name, "string", init=_NONE)
                changes += [(tick, order, var, value) for tick, value in str_changes]
                order += 1
        changes.sort(key=lambda c: (c[0], c[1]))
        for tick, _order, var, value in changes:
            writer.change(var, tick, value)
    finally:
        # A final timestamp at the scenario end, so viewers show the whole run and not just
        # up to the last edge.
        last = changes[-1][0] if changes else 0
        writer.close(end if end > last else None)
