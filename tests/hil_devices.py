"""In-process devices for the hardware-in-the-loop harness: camera runtimes on any bus.

:class:`RuntimeDevices` is the harness's :class:`~sim.live.hil.Devices` made of
:class:`~sim.live.runtime.CameraRuntime` objects in the test's own event loop — on the simulated
broker under ``looptime`` the whole harness runs in virtual time, so a scenario of an hour plays
in milliseconds and exactly. Each device runs the scaled clock of :mod:`sim.live.clock` on the
``wall`` the harness uses and powers on at scenario second 0, as ``bwcsim live --speed
--start-at`` does. ``cut(camera)`` drops one device's link (its Last Will fires) for the
offline tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from controller.node import CameraSetup, ControllerFactory
from controller.reference import make_node
from sim.live.bus import Bus, SimHub
from sim.live.clock import PowerOnAt
from sim.live.hil import DevicePlan
from sim.live.runtime import Backoff, CameraRuntime


class RuntimeDevices:
    """Camera runtimes started for a run, on buses from ``bus_factory``."""

    def __init__(self, bus_factory: Callable[[], Bus], wall: Callable[[], float],
                 factory: ControllerFactory = make_node, *, isolate: bool = True) -> None:
        self.bus_factory = bus_factory
        self.wall = wall
        self.factory = factory
        self.isolate = isolate
        self.plan: DevicePlan
        self.runtimes: dict[str, CameraRuntime] = {}
        self.tasks: list[asyncio.Task[None]] = []

    def prefix_for(self, base: str, tag: str) -> str:
        return f"{base}/{tag}" if self.isolate else base

    async def start(self, plan: DevicePlan) -> None:
        self.plan = plan

    async def ready(self) -> None:
        pass

    async def power_on(self, start_unix: float) -> None:
        plan = self.plan
        scenario, speed = plan.scenario, plan.speed
        for spec in scenario.cameras:
            device = plan.devices[spec.id]
            setup = CameraSetup(camera_id=device, policy=scenario.policy, params=spec.params,
                                teams=spec.teams, initial=spec.initial, prefix=plan.prefix)
            node = PowerOnAt(self.factory(setup), speed * start_unix)
            runtime = CameraRuntime(
                node, self.bus_factory(), prefix=plan.prefix, client_id=f"dev-{plan.tag}-{device}",
                # A dropped link comes back after a few scenario seconds, never at once.
                backoff=Backoff(initial_s=0.05, max_s=0.1, stable_s=1e9), speed=speed,
                time_origin=lambda: speed * self.wall(),
            )
            self.runtimes[spec.id] = runtime
            self.tasks.append(asyncio.create_task(runtime.run()))

    async def stop(self) -> list[str]:
        for runtime in self.runtimes.values():
            runtime.stop()
        for task in self.tasks:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 5.0)
        self.tasks.clear()
        return []

    def tail(self, camera: str, lines: int = 3) -> str:
        return ""

    def cut(self, hub: SimHub, camera: str) -> None:
        """Drop one device's link: the broker fires its Last Will (``offline``); it reconnects."""
        hub.cut(self.runtimes[camera].client_id)

    def kill(self, camera: str) -> None:
        """The device dies: its link drops (the Last Will says ``offline``) and it never returns."""
        index = list(self.runtimes).index(camera)
        self.tasks[index].cancel()
