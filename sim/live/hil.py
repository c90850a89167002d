"""Hardware in the loop: a scenario played on a real broker against devices, judged by the oracle.

Theory of operation
-------------------
The harness is the world of a scenario, made real. The cameras are *devices* — a firmware team's
prototype, or ``bwcsim live`` standing in for one — already connected to the broker, or
started for the run (:mod:`sim.live.devices`). The harness

1. subscribes to everything each device publishes (``<prefix>/<device>/+``);
2. fixes the run's clock (:class:`~sim.live.clock.ClockMapping`): scenario second 0 is a Unix
   time, and the devices run on the scaled clock, ``speed * Unix time``;
3. checks that every device it can see starts where the scenario starts it (``initial``);
4. publishes every timeline message when its time comes — ids prefixed with the run's tag, so a
   device that remembers ids across runs (R-IDEM) never takes a new run's message for an old
   one, and ``ts`` on the device clock — or, for an event named in ``prompt`` (a physical
   event such as ``dock`` on a camera that has no way to be docked over MQTT), tells the
   operator to cause it;
5. at ``end`` lets in-flight publications arrive, then has every camera still recording close
   its recording (``dock``, the one event that always closes one, R-DOCK; a started device is
   simply stopped, which publishes its open recording) so that its footage is known;
6. and finally turns what it saw into exactly what a simulated replay observes
   (:class:`~sim.world.replay.ObservedCamera`) and judges it with the same oracle, so the report,
   the trace, the timeline and the JUnit file are a replay's, plus a ``live`` block.

Everything the harness saw carries the instant it was seen; all judging happens after the run,
from that log (:mod:`sim.live.observe`), so it can be tested without a broker.

Rules (SPEC §15, decided)
-------------------------
* **Ground truth is what was played.** A message the harness published late (a busy machine)
  is an activity that began late: its window starts at ``played - delay_s`` and its ``ts``
  says so. The oracle then compares the device with the world it was shown.
* **Times.** The device's own times (``since``, an alert's ``at`` and ``span``, a recording's
  start, end and segments) are mapped to scenario time by the clock rule; what only the harness
  can time — when a message reached the device — is when it was sent, if the device was online
  (its ack may come back much later), else when its ack came. The state a message found the
  device in is the last state the device reported with a ``since`` before it was sent.
* **Tolerance.** Jitter between those two clocks is absorbed by an explicit ``tolerance_s``
  (default: 0.25 s of scenario time or 20 ms of wall-clock time, whichever is longer), passed
  to the oracle: controller stretches no longer than it at a moment the harness timed are
  excused (and reported), slivers that small need no alert, and alerts may be that much early
  or late. Nothing else is loosened. ``expect: missed_s`` is compared within twice the
  tolerance (plus how late the harness itself was) per stretch of that cause.
* **Offline.** A device whose availability is not ``online`` (its Last Will fired, or it never
  came) is *offline*; uncovered seconds then are ``bus``, not the controller's, and the run is
  reported incomplete. A device that was online and never acknowledged a message is taken to
  have received it when it was sent, and the message is listed as unacknowledged.
* **End.** A recording closed after ``end`` is clipped to ``end`` and marked ``open``, as the
  simulator's ``finish`` does. Whatever the devices report about times after ``end`` is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from controller.codec import AVAILABLE, split_topic
from controller.errors import BusError, BwcError, InvalidInput
from controller.messages import StateReport
from sim.world.replay import ReplayResult
from sim.world.scenario import BusSpec, Scenario, TimelineEntry
from sim.world.senders import wire_messages

from .bus import Bus, MqttBus, MqttEndpoint
from .clock import ClockMapping
from .observe import CLOSE_ID, RunLog, Seen, Sent, observe

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "DEFAULT_TOLERANCE_WALL_S",
    "PHYSICAL_EVENTS",
    "DeviceError",
    "DevicePlan",
    "Devices",
    "DevicesLate",
    "HilOptions",
    "LiveRun",
    "LiveUnsupported",
    "default_tolerance",
    "live_obstacles",
    "play",
]

DEFAULT_TOLERANCE_S = 0.25
"""Scenario seconds: a real network at speed 1 jitters by tens of milliseconds."""
DEFAULT_TOLERANCE_WALL_S = 0.02
"""Wall-clock seconds: on a scaled clock the jitter of the wire grows with the speed."""
PHYSICAL_EVENTS = ("dock", "undock", "button", "signal")
"""Events that are physical on a real camera, which ``prompt`` may hand to the operator."""

Say = Callable[[str], None]


def default_tolerance(speed: float) -> float:
    """The default tolerance at ``speed``, in scenario seconds (see the module docstring)."""
    return max(DEFAULT_TOLERANCE_S, DEFAULT_TOLERANCE_WALL_S * speed)


class LiveUnsupported(BwcError):
    """The scenario needs something a real broker cannot do (see :func:`live_obstacles`)."""

    def __init__(self, file: str, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__(f"{file}: cannot run live: " + "; ".join(reasons))


class DeviceError(BwcError):
    """A device is not where the scenario starts it, or a started one failed."""


class DevicesLate(DeviceError):
    """Started devices were not online by scenario second 0 (a busy machine: try a longer lead)."""


def live_obstacles(scenario: Scenario) -> list[str]:
    """Why ``scenario`` cannot be played on a real broker (empty when it can)."""
    reasons = []
    for kind, why in (
        ("disconnect", "the harness cannot cut a device's link to a real broker"),
        ("broker_outage", "the harness cannot take down a broker other clients share"),
    ):
        first = next((e for e in scenario.timeline if e.fault == kind), None)
        if first is not None:
            reasons.append(f"timeline[{first.index}] is a {kind} fault: {why}")
    if scenario.bus != BusSpec():
        reasons.append("bus: the simulated bus's seeded latency, drops and duplicates cannot be "
                       "imposed on a real broker")
    if scenario.auth != "none":
        reasons.append(f"auth: {scenario.auth}: the harness re-addresses every message (the run's "
                       "tag in its id, its ts on the device clock) and does not sign them again")
    replay = next((e for e in scenario.timeline if e.replay_of is not None), None)
    if replay is not None:
        reasons.append(f"timeline[{replay.index}] replays a message byte for byte, which the "
                       "harness re-addresses")
    return reasons


# ---------------------------------------------------------------------------- options, plan


@dataclass(frozen=True, kw_only=True)
class HilOptions:
    """How to play scenarios live (``bwcsim run/check --live``)."""

    broker: str  # the URL as given, for the report (never holds a password)
    endpoint: MqttEndpoint | None = None  # None only with a bus given to play()
    prefix: str | None = None  # the devices' topic prefix; default: the scenario's
    camera_map: Mapping[str, str] = field(default_factory=dict)  # scenario camera → device id
    speed: float = 1.0
    tolerance_s: float | None = None  # scenario seconds; None: default_tolerance(speed)
    start_at: float | None = None  # Unix time of scenario second 0; None: now + lead_s
    lead_s: float = 2.0  # wall seconds from subscribing (or starting devices) to t = 0
    prompt: frozenset[str] = frozenset()  # event types the operator causes
    settle_s: float = 0.3  # wall seconds after end for publications still on the way
    close_wait_s: float = 5.0  # wall seconds to wait for recordings closed at the end

    @property
    def tolerance(self) -> float:
        return self.tolerance_s if self.tolerance_s is not None else default_tolerance(self.speed)


@dataclass(frozen=True, slots=True)
class DevicePlan:
    """What a set of devices started for one run must be told."""

    scenario: Scenario
    prefix: str
    devices: Mapping[str, str]  # scenario camera → device id
    speed: float
    tag: str  # unique to the run: client ids, topic prefix


class Devices(Protocol):
    """Devices the harness starts for a run and stops at its end (:mod:`sim.live.devices`).

    ``start`` them, wait until they are ``ready`` to power on, then ``power_on`` at scenario
    second 0: each connects and enters its initial state at exactly that instant.
    """

    def prefix_for(self, base: str, tag: str) -> str:
        """The topic prefix the started devices use (a run of its own, isolated)."""
        ...

    async def start(self, plan: DevicePlan) -> None:
        """Start every device."""
        ...

    async def ready(self) -> None:
        """Return once every device is ready to power on; ``DeviceError`` if one cannot be."""
        ...

    async def power_on(self, start_unix: float) -> None:
        """Tell every device to connect now and power on at Unix time ``start_unix``."""
        ...

    async def stop(self) -> list[str]:
        """Stop every device (each publishes its open recording); problems seen, if any."""
        ...

    def tail(self, camera: str, lines: int = 3) -> str:
        """The last lines a device logged, to explain a failure ("" if none)."""
        ...


@dataclass(slots=True)
class LiveRun:
    """A judged live run: the replay-shaped result (with its ``live`` block) and the trace."""

    result: ReplayResult
    records: list[dict[str, Any]]


# ---------------------------------------------------------------------------------- playing


class _Wire:
    """What each timeline entry looks like on the devices' broker."""

    def __init__(self, scenario: Scenario, prefix: str, devices: Mapping[str, str], tag: str,
                 clock: ClockMapping) -> None:
        self.sc = scenario
        self.prefix = prefix
        self.devices = devices
        self.tag = tag
        self.clock = clock

    def msg_id(self, entry: TimelineEntry) -> str:
        return f"{self.tag}-{entry.message_id}"

    def topic(self, entry: TimelineEntry) -> str:
        if entry.raw is not None:
            return self.map_topic(entry.raw.topic)
        if entry.camera is not None:
            return f"{self.prefix}/{self.devices[entry.camera]}/event"
        return f"{self.prefix}/team/{entry.team}/event"

    def map_topic(self, topic: str) -> str:
        """A scenario topic under the devices' prefix, with camera ids mapped to device ids."""
        where = split_topic(topic, self.sc.prefix)
        if where is not None:
            who, kind = where
            if who in self.devices:
                return f"{self.prefix}/{self.devices[who]}/{kind}"
            return f"{self.prefix}/{who}/{kind}"
        head = self.sc.prefix + "/"
        return self.prefix + "/" + topic[len(head):] if topic.startswith(head) else topic

    def payload(self, entry: TimelineEntry, played_at: float) -> bytes:
        if entry.raw is not None:
            return entry.raw.payload_bytes  # scripted bytes go out as written
        # A ts the scenario sets (one far ahead, say) moves with the entry, as the played time does.
        ts = (entry.ts if entry.ts is not None else entry.at) + (played_at - entry.at)
        body = {**entry.body(), "id": self.msg_id(entry), "ts": self.clock.device(ts)}
        return msgspec.json.encode(body)


async def play(
    scenario: Scenario,
    options: HilOptions,
    *,
    bus: Bus | None = None,
    devices: Devices | None = None,
    wall: Callable[[], float] = time.time,
    say: Say | None = None,
) -> LiveRun:
    """Play ``scenario`` against the devices on the broker and judge what they did.

    ``bus`` defaults to the broker of ``options.endpoint``; ``devices`` starts and stops the
    devices for the run (else they must already be there); ``wall`` is the Unix clock (tests
    pass a virtual one); ``say`` shows prompts and notes to the operator (stderr).
    """
    reasons = live_obstacles(scenario)
    if reasons:
        raise LiveUnsupported(scenario.file, reasons)
    speak = say or _stderr
    unknown = sorted(set(options.camera_map) - {c.id for c in scenario.cameras})
    if unknown:
        raise InvalidInput(f"{unknown[0]!r} is not a camera of {scenario.file}", "--camera-map")
    for event in options.prompt:
        if event not in PHYSICAL_EVENTS:
            raise InvalidInput(f"{event!r} is not a physical event ({', '.join(PHYSICAL_EVENTS)})",
                               "--prompt")
    mapped = {c.id: options.camera_map.get(c.id, c.id) for c in scenario.cameras}
    for device in mapped.values():
        if not device or any(ch in device for ch in "/+#"):
            raise InvalidInput(f"device id {device!r} must be non-empty without / + #", "--camera-map")
    tag = secrets.token_hex(3)
    base = options.prefix or scenario.prefix
    prefix = devices.prefix_for(base, tag) if devices is not None else base
    if bus is None:
        if options.endpoint is None:
            raise ValueError("play() needs options.endpoint or a bus")
        bus = MqttBus(options.endpoint)

    await bus.connect(f"bwcsim-hil-{tag}", clean_session=True)
    receiver: asyncio.Task[None] | None = None
    started = False
    try:
        if devices is not None:
            # Started first: a process may take seconds to be ready on a busy machine, and
            # scenario second 0 is chosen only once every device can power on at it.
            started = True
            await devices.start(DevicePlan(scenario, prefix, mapped, options.speed, tag))
            await devices.ready()
        start_unix = options.start_at if options.start_at is not None else wall() + options.lead_s
        clock = ClockMapping(options.speed, start_unix)
        log = RunLog(clock, tag, prefix, dict(mapped))
        for device in mapped.values():
            await bus.subscribe(f"{prefix}/{device}/+", 1)
        receiver = asyncio.create_task(_collect(bus, log, wall))
        if devices is not None:
            await devices.power_on(start_unix)
            late = await _wait_online(log, wall, clock.unix(0.0))
            if late:
                started = False
                cams = {device: cam for cam, device in mapped.items()}
                problems = [f"{cams[d]} said: {devices.tail(cams[d]) or 'nothing'}" for d in late]
                try:
                    problems += await devices.stop()
                except DeviceError as exc:
                    problems.append(str(exc))
                raise DevicesLate(
                    f"{scenario.file}: device {', '.join(late)} not online at scenario second 0 "
                    f"({options.lead_s:g} s after it was told when)"
                    + "".join(f"; {problem}" for problem in problems))
        else:
            await _sleep_until(wall, min(clock.unix(0.0), wall() + 1.0))
            _check_initial(scenario, log, mapped)
        await _play_timeline(scenario, options, log, bus, wall, speak)
        await _sleep_until(wall, clock.unix(scenario.end) + options.settle_s)
        log.closed_at = clock.from_unix(wall())
        if devices is not None:
            log.notes.extend(await devices.stop())
            started = False
            await asyncio.sleep(0.1)  # the last publications of stopped devices, on their way
            log.closing.update(dict.fromkeys(mapped, "stopped"))
        else:
            await _close_recordings(scenario, options, log, bus, wall, speak)
    finally:
        if started and devices is not None:
            with contextlib.suppress(DeviceError):
                await devices.stop()
        if receiver is not None:
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)
        with contextlib.suppress(BusError):
            await bus.disconnect()
    header = {
        "broker": options.broker,
        "tls": options.endpoint is not None and options.endpoint.tls is not None,
        "username": options.endpoint.username if options.endpoint is not None else None,
        "prompted": sorted(options.prompt),
    }
    result, records = observe(scenario, log, tolerance_s=options.tolerance, header=header)
    return LiveRun(result, records)


async def _wait_online(log: RunLog, wall: Callable[[], float], deadline: float) -> list[str]:
    """Wait until every device says ``online`` or ``deadline`` passes; the ones still missing."""
    while True:
        online = {s.topic for s in log.seen if s.payload == AVAILABLE}
        missing = [d for d in log.devices.values() if f"{log.prefix}/{d}/availability" not in online]
        if not missing or wall() >= deadline:
            return missing
        await asyncio.sleep(min(0.05, max(0.0, deadline - wall())))


async def _collect(bus: Bus, log: RunLog, wall: Callable[[], float]) -> None:
    async for msg in bus.messages():
        log.seen.append(Seen(log.clock.from_unix(wall()), msg.topic, msg.payload, msg.retain))


async def _sleep_until(wall: Callable[[], float], unix_t: float) -> None:
    delay = unix_t - wall()
    if delay > 0:
        await asyncio.sleep(delay)


def _check_initial(scenario: Scenario, log: RunLog, mapped: Mapping[str, str]) -> None:
    """Refuse to play against a device that says it is somewhere the scenario does not start it."""
    problems = []
    for spec in scenario.cameras:
        device = mapped[spec.id]
        state = _last_state(log, device)
        if state is not None and state.state != spec.initial:
            problems.append(f"{spec.id} (device {device}) reports {state.state}; the scenario "
                            f"starts it in {spec.initial}")
    if problems:
        raise DeviceError(
            f"{scenario.file}: " + "; ".join(problems)
            + " — put each device there before the run (or let the harness start them: --spawn)"
        )


def _last_state(log: RunLog, device: str) -> StateReport | None:
    topic = f"{log.prefix}/{device}/state"
    for seen in reversed(log.seen):
        if seen.topic == topic:
            try:
                return msgspec.json.decode(seen.payload, type=StateReport)
            except msgspec.MsgspecError:
                continue  # a payload that breaks the schema says nothing about the state
    return None


async def _play_timeline(scenario: Scenario, options: HilOptions, log: RunLog, bus: Bus,
                         wall: Callable[[], float], say: Say) -> None:
    clock = log.clock
    wire = _Wire(scenario, log.prefix, log.devices, log.tag, clock)
    scripted = wire_messages(scenario)
    canonical: dict[tuple[str, bytes], int] = {}
    for index in sorted(scripted):
        canonical.setdefault(scripted[index], index)
    for entry in sorted(scenario.timeline, key=lambda e: (e.send_at, e.index)):
        if entry.fault is not None or entry.send_at > scenario.end:
            continue  # never sent, as in simulation: a message not delivered by end never is
        await _sleep_until(wall, clock.unix(entry.send_at))
        now = clock.from_unix(wall())
        first = canonical[scripted[entry.index]]
        # A repeat of an earlier message (a redelivery) repeats its bytes, ts included.
        played_at = log.sent[first].played_at if first in log.sent else now - entry.delay_s
        topic = wire.topic(entry)
        if entry.event in options.prompt:
            say(f"[{_hms(entry.send_at)}] {_target(entry, log.devices)}: {entry.event.upper()} "
                f"now{_detail(entry)}")
            log.sent[entry.index] = Sent(now, played_at, topic, b"", len(log.seen), prompted=True)
            continue
        payload = wire.payload(entry, played_at)
        seen_before = len(log.seen)
        await bus.publish(topic, payload, qos=1)
        log.sent[entry.index] = Sent(now, played_at, topic, payload, seen_before)


async def _close_recordings(scenario: Scenario, options: HilOptions, log: RunLog, bus: Bus,
                            wall: Callable[[], float], say: Say) -> None:
    """Have every attached device still recording at ``end`` close (and so publish) it."""
    recording = []
    for spec in scenario.cameras:
        device = log.devices[spec.id]
        state = _last_state(log, device)
        if state is not None and state.state == "recording":
            recording.append(spec.id)
    if not recording:
        return
    for cam in recording:
        device = log.devices[cam]
        if "dock" in options.prompt:
            say(f"[end] {cam} (device {device}): the scenario is over — DOCK it now so that it "
                "publishes its recording")
            log.closing[cam] = "prompt"
            continue
        body = {"id": f"{log.tag}-{CLOSE_ID}", "type": "dock", "ts": log.clock.device(scenario.end)}
        await bus.publish(f"{log.prefix}/{device}/event", msgspec.json.encode(body), qos=1)
        log.closing[cam] = "dock"
    deadline = wall() + options.close_wait_s * (30 if "dock" in options.prompt else 1)
    topics = {f"{log.prefix}/{log.devices[cam]}/recording" for cam in recording}
    while wall() < deadline:
        closed = {s.topic for s in log.seen if s.topic in topics and s.t >= log.closed_at}
        if closed >= topics:
            return
        await asyncio.sleep(0.05)
    for cam in recording:
        log.notes.append(f"{cam}: no recording metadata after the end; its open recording is "
                         "judged from its reported state")


def _target(entry: TimelineEntry, devices: Mapping[str, str]) -> str:
    if entry.camera is not None:
        device = devices.get(entry.camera, entry.camera)
        return entry.camera if device == entry.camera else f"{entry.camera} (device {device})"
    return f"team {entry.team}"


def _detail(entry: TimelineEntry) -> str:
    fields = ", ".join(f"{k}={v}" for k, v in entry.fields.items())
    return f" ({fields})" if fields else ""


def _hms(t: float) -> str:
    whole = int(t)
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
