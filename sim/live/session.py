"""A live session: how ``bwcsim run/check --live`` play scenarios on a real broker.

One :class:`LiveSession` holds what every scenario of a command shares — the broker and its
credentials, the speed, the tolerance, the camera map — and whether the devices are already on
the broker (a firmware team's cameras) or started for each scenario (``--spawn``: ``bwcsim
live`` processes running ``--controller``). Devices on the broker can play one scenario at a
time; started devices get a topic prefix of their own per scenario, so ``jobs`` scenarios can
play at once, which is what keeps a scaled-clock run of a whole library short.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from sim.world.scenario import Scenario

from .bus import Bus, MqttBus
from .devices import SpawnedDevices, SpawnOptions
from .hil import DevicesLate, HilOptions, LiveRun, Say, play

__all__ = ["SPAWN_LEAD_S", "STAGGER_S", "LiveSession"]

SPAWN_LEAD_S = 1.0
"""Wall seconds between telling started devices when scenario second 0 is and that second: they
are running already, and only have to connect and subscribe."""

STAGGER_S = 0.5
"""Wall seconds between the starts of scenarios played at once."""
_ATTEMPTS = 3
"""Starts of a scenario's devices before giving up on a machine too busy to start them."""

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, kw_only=True)
class LiveSession:
    """Everything the scenarios of one live command share (see the module docstring)."""

    options: HilOptions
    spawn: SpawnOptions | None = None
    jobs: int = 1

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise ValueError("jobs must be >= 1")
        if self.jobs > 1 and self.spawn is None:
            raise ValueError("several scenarios at once need started devices (spawn)")

    def bus(self) -> Bus:
        if self.options.endpoint is None:
            raise ValueError("a live session needs a broker endpoint")
        return MqttBus(self.options.endpoint)

    async def play(self, scenario: Scenario, say: Say | None = None) -> LiveRun:
        """Play one scenario (starting its devices first, with ``spawn``)."""
        options = self.options
        if self.spawn is None:
            return await play(scenario, options, bus=self.bus(), say=say)
        if options.start_at is None:
            options = dataclasses.replace(options, lead_s=max(options.lead_s, SPAWN_LEAD_S))
        for attempt in range(1, _ATTEMPTS + 1):
            devices = SpawnedDevices(self.spawn, self.bus)
            try:
                return await play(scenario, options, bus=self.bus(), devices=devices, say=say)
            except DevicesLate:
                if attempt == _ATTEMPTS or options.start_at is not None:
                    raise
                # A machine busy starting other processes: start again, with twice the time.
                options = dataclasses.replace(options, lead_s=2 * options.lead_s)
        raise AssertionError("unreachable")

    def run(self, scenario: Scenario, say: Say | None = None) -> LiveRun:
        """:meth:`play`, for a caller without an event loop."""
        return asyncio.run(self.play(scenario, say))

    async def each(self, items: Sequence[T], work: Callable[[T], Awaitable[R]]) -> list[R]:
        """``work`` on every item, ``jobs`` at a time; results in the order of ``items``.

        Starts are spaced :data:`STAGGER_S` apart, so that a batch of processes starting at once
        does not starve the harness (and the devices already playing) of the CPU.
        """
        gate = asyncio.Semaphore(self.jobs)
        spacing = asyncio.Lock()

        async def one(item: T) -> R:
            async with gate:
                if self.jobs > 1:
                    async with spacing:
                        await asyncio.sleep(STAGGER_S)
                return await work(item)

        return list(await asyncio.gather(*(one(item) for item in items)))
