"""Time on a real bus: the scaled clock, scenario time, and a camera powered on at a set time.

Theory of operation
-------------------
A controller never reads a clock; whoever drives it passes the time in. On a real broker the
runtime passes the *device clock*, and a harness that plays a scenario against the device
(:mod:`sim.live.hil`) has to agree with it on what every time means. Three rules (SPEC §15,
decided) make that agreement need no handshake:

* **The scaled clock.** A device told ``speed`` N (``bwcsim live --speed N``; a firmware
  device in its own test configuration) reads ``N * Unix time``. At N = 1 that is the Unix clock
  ``bwcsim live`` always used. Its timers — boot, ``post_s`` tails, battery and storage,
  segment rollover — run on that clock, so they elapse N times faster than the wall clock, and
  so does everything in the scenario. Any two processes that share a wall clock (one machine,
  or NTP) and a speed agree on the device clock without ever exchanging it.
* **Scenario time.** A run starts at a Unix time ``start`` (``--start-at``). Scenario second
  ``t`` happens at Unix ``start + t / N``, which the device's clock reads as
  ``N * start + t``: device time minus ``N * start`` *is* scenario time
  (:class:`ClockMapping`). A trigger's ``ts`` is sent on the device clock the same way.
* **Power-on.** A simulated camera is powered on at ``t = 0``: its battery is full and its
  buffer, its boot and its battery count from then. ``bwcsim live --start-at`` gives a live
  camera the same start (:class:`PowerOnAt`): it connects at once, but its controller enters
  ``--initial`` only at that instant, so the same scenario sees the same camera.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.node import CameraNode, Publish

__all__ = ["MAX_SPEED", "ClockMapping", "PowerOnAt"]

MAX_SPEED = 10_000.0
"""Beyond this a millisecond of wall-clock jitter is ten seconds of scenario time."""

_MAPPED_DIGITS = 3
"""Device times are mapped to the millisecond: at ``N * Unix time`` a double carries about
``N * 3e-7`` s of noise, which no report should show."""


@dataclass(frozen=True, slots=True)
class ClockMapping:
    """Scenario time, Unix time and device time of one live run (see the module docstring)."""

    speed: float
    start_unix: float

    def __post_init__(self) -> None:
        if not 0 < self.speed <= MAX_SPEED:
            raise ValueError(f"speed must be in (0, {MAX_SPEED:g}], got {self.speed}")

    @property
    def device_origin(self) -> float:
        """What the device clock reads at scenario time 0."""
        return self.speed * self.start_unix

    def device(self, t: float) -> float:
        """The device-clock reading at scenario second ``t`` (a trigger's ``ts``)."""
        return self.device_origin + t

    def from_device(self, device_t: float) -> float:
        """The scenario second a device-clock reading stands for."""
        return round(device_t - self.device_origin, _MAPPED_DIGITS) + 0.0

    def unix(self, t: float) -> float:
        """The Unix time at which scenario second ``t`` happens."""
        return self.start_unix + t / self.speed

    def from_unix(self, unix_t: float) -> float:
        """The scenario second a Unix time stands for (the harness's own observations)."""
        return round((unix_t - self.start_unix) * self.speed, _MAPPED_DIGITS) + 0.0

    def describe(self) -> dict[str, object]:
        """The mapping as the report prints it."""
        return {
            "rule": "device time = speed x Unix time; scenario time = device time - device_origin",
            "speed": self.speed,
            "start_unix": self.start_unix,
            "device_origin": self.device_origin,
        }


class PowerOnAt:
    """A camera node that powers on at device time ``at`` instead of when its runtime starts.

    Until then it is connected but off: ``start`` publishes nothing and the only deadline is
    ``at``. At ``at`` the wrapped node starts *as of* ``at`` — a start already past when the
    process came up still counts from it — and runs whatever fell due since. A message that
    arrives before ``at`` powers the camera on at once and is then handled.
    """

    def __init__(self, node: CameraNode, at: float) -> None:
        self.node = node
        self.at = at
        self.camera_id = node.camera_id
        self.powered = False

    def subscriptions(self) -> list[str]:
        return self.node.subscriptions()

    def start(self, now: float) -> list[Publish]:
        return self._power_on(self.at, now) if now >= self.at else []

    def on_message(self, topic: str, payload: bytes, now: float) -> list[Publish]:
        out = [] if self.powered else self._power_on(min(self.at, now), now)
        return out + self.node.on_message(topic, payload, now)

    def next_deadline(self) -> float | None:
        return self.node.next_deadline() if self.powered else self.at

    def on_timer(self, now: float) -> list[Publish]:
        if self.powered:
            return self.node.on_timer(now)
        return self._power_on(self.at, now) if now >= self.at else []

    def finish(self, now: float) -> list[Publish]:
        return self.node.finish(now) if self.powered else []

    def _power_on(self, at: float, now: float) -> list[Publish]:
        self.powered = True
        out = self.node.start(at)
        due = self.node.next_deadline()
        if due is not None and due <= now:
            out += self.node.on_timer(now)
        return out
