"""Devices started for a run: one ``bwcsim live`` process per camera of the scenario.

Theory of operation
-------------------
On a test bench the devices under test are often not hardware yet: a controller (ours, a broken
one, a team's own through ``--controller``) run by ``bwcsim live`` on the bench's broker is a
device in every way the harness can tell — it speaks SPEC §5 over a real network, on its own
clock, in its own process. :class:`SpawnedDevices` starts one per camera of the scenario,
configured as the scenario declares it (teams, initial state, every camera parameter, the
policy), on the scaled clock and powered on at scenario second 0, so the same scenario sees the
same cameras a replay sees. A Python process takes about half a second of CPU to start, which
on a busy machine can be many seconds of wall time; so each is started with ``--start-at -``:
it says ``ready`` on its standard output once it could run, and waits for the Unix time of
scenario second 0 on its standard input. The harness chooses that second only when every
device of the scenario is ready, and then they only have to connect. Each run gets a topic
prefix and client ids of its own (``<prefix>/<run>/...``, ``bwcsim-<run>-<camera>``), so several
scenarios can run at once on one broker without hearing each other.

At the end each process is stopped with SIGTERM, which makes it publish its open recording
(``"open": true``) and ``offline`` and disconnect cleanly. A process that exits on its own before
that is a failed device: its exit code and the end of its stderr are reported, never hidden. What
the runs leave on the broker — the retained ``state`` and ``availability`` of each device, the
persistent session of each client id — is removed afterwards.

Credentials travel as ``bwcsim live`` takes them: ``--username``, ``--password-file`` (or the
password in ``$BWCSIM_MQTT_PASSWORD`` of the child's environment), the TLS files; never a
password on a command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from controller.errors import BusError, ScenarioError
from controller.params import CameraParams
from controller.policy import BUILTIN
from sim.world.scenario import INLINE_POLICY, CameraSpec, Scenario

from .bus import Bus
from .command import PASSWORD_ENV
from .hil import DeviceError, DevicePlan

__all__ = ["READY", "SpawnOptions", "SpawnedDevices", "live_argv"]

_STOP_WAIT_S = 15.0
_READY_WAIT_S = 120.0
"""How long a started device may take to be ready (a Python process on a very busy machine)."""
READY = b"ready"


@dataclass(frozen=True, kw_only=True)
class SpawnOptions:
    """What every started device shares: the controller and how to reach the broker."""

    controller: str
    broker: str
    username: str | None = None
    password_file: Path | None = None
    password: str | None = None  # from the environment; passed on the same way
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None
    tls: bool = False
    python: str = sys.executable


def _policy_arg(scenario: Scenario) -> str:
    """The scenario's policy as ``bwcsim live --policy`` takes it: a name or an absolute path.

    An inline policy has neither: it is refused with the way out (put it in a file).
    """
    ref = scenario.policy_ref
    if ref == INLINE_POLICY:
        raise ScenarioError(
            "the policy is written inline; a device takes a built-in name or a policy file, "
            "so save the policy: block to a file and name it with policy: FILE",
            scenario.file,
        )
    if ref in BUILTIN:
        return ref
    path = Path(ref)
    return str(path if path.is_absolute() else (Path(scenario.file).parent / path).resolve())


def live_argv(
    plan: DevicePlan, spec: CameraSpec, options: SpawnOptions, state_dir: Path | None = None
) -> list[str]:
    """The ``bwcsim live`` command line for one camera of ``plan``.

    ``state_dir`` is the device's durable state: a fresh folder per run, so a device never
    resumes a camera of an earlier run (and the user's state directory stays clean).
    """
    device = plan.devices[spec.id]
    argv = [
        options.python, "-m", "sim", "live",
        "--broker", options.broker,
        "--camera", device,
        "--prefix", plan.prefix,
        "--client-id", f"bwcsim-{plan.tag}-{device}",
        "--controller", options.controller,
        "--policy", _policy_arg(plan.scenario),
        "--initial", spec.initial,
        "--speed", repr(plan.speed),
        "--start-at", "-",
        "--log-format", "json",
        "--log-level", "info",
    ]
    if state_dir is not None:
        argv += ["--state-dir", str(state_dir)]
    for team in spec.teams:
        argv += ["--team", team]
    for name in CameraParams.__struct_fields__:
        value = getattr(spec.params, name)
        argv += ["--param", f"{name}={str(value).lower() if isinstance(value, bool) else repr(value)}"]
    if options.username:
        argv += ["--username", options.username]
    if options.password_file is not None:
        argv += ["--password-file", str(options.password_file)]
    if options.tls:
        argv.append("--tls")
    for flag, path in (("--cafile", options.cafile), ("--certfile", options.certfile),
                       ("--keyfile", options.keyfile)):
        if path is not None:
            argv += [flag, str(path)]
    return argv


class SpawnedDevices:
    """The devices of one run, as ``bwcsim live`` processes (see the module docstring)."""

    def __init__(self, options: SpawnOptions, bus_factory: Callable[[], Bus]) -> None:
        self.options = options
        self.bus_factory = bus_factory
        self.plan: DevicePlan | None = None
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self._state: tempfile.TemporaryDirectory[str] | None = None

    def prefix_for(self, base: str, tag: str) -> str:
        return f"{base}/{tag}"

    async def start(self, plan: DevicePlan) -> None:
        self.plan = plan
        env = dict(os.environ)
        if self.options.password is not None and self.options.password_file is None:
            env[PASSWORD_ENV] = self.options.password
        self._state = tempfile.TemporaryDirectory(prefix="bwcsim-hil-")
        for spec in plan.scenario.cameras:
            state = Path(self._state.name) / plan.devices[spec.id]
            log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
            self._logs[spec.id] = log
            self.processes[spec.id] = await asyncio.create_subprocess_exec(
                *live_argv(plan, spec, self.options, state), stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=log, env=env,
            )

    async def ready(self) -> None:
        """Wait for each device's ``ready``; one that exits or never says it is a DeviceError."""
        for cam, proc in self.processes.items():
            assert proc.stdout is not None
            try:
                line = await asyncio.wait_for(proc.stdout.readline(), _READY_WAIT_S)
            except TimeoutError:
                raise DeviceError(f"{cam}: bwcsim live not ready after {_READY_WAIT_S:g} s: "
                                  f"{self.tail(cam) or 'it said nothing'}") from None
            if line.strip() != READY:
                code = await proc.wait()
                raise DeviceError(self._died(cam, code, "before it was ready"))

    async def power_on(self, start_unix: float) -> None:
        for proc in self.processes.values():
            assert proc.stdin is not None
            proc.stdin.write(f"{start_unix!r}\n".encode())
            with contextlib.suppress(ConnectionError):
                await proc.stdin.drain()
            proc.stdin.close()

    def tail(self, camera: str, lines: int = 3) -> str:
        """The last lines the device wrote to its log (stderr), for a report of what went wrong."""
        log = self._logs.get(camera)
        if log is None:
            return ""
        log.seek(0)
        text = log.read().decode("utf-8", "replace").strip().splitlines()
        log.seek(0, os.SEEK_END)
        return " | ".join(text[-lines:])

    async def stop(self) -> list[str]:
        """SIGTERM every device, wait, clean the broker up; what went wrong, if anything."""
        problems: list[str] = []
        for cam, proc in self.processes.items():
            if proc.returncode is not None:
                problems.append(self._died(cam, proc.returncode, "before the end of the run"))
            else:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for cam, proc in self.processes.items():
            try:
                code = await asyncio.wait_for(proc.wait(), _STOP_WAIT_S)
            except TimeoutError:
                proc.kill()
                code = await proc.wait()
                problems.append(f"{cam}: bwcsim live did not stop within {_STOP_WAIT_S:g} s")
                continue
            if code not in (0, -signal.SIGTERM) and not any(p.startswith(f"{cam}:") for p in problems):
                problems.append(self._died(cam, code, "when stopped"))
        for log in self._logs.values():
            log.close()
        self.processes.clear()
        self._logs.clear()
        if self._state is not None:
            self._state.cleanup()
            self._state = None
        await self._clean_broker()
        if problems:
            raise DeviceError("; ".join(problems))
        return problems

    def _died(self, cam: str, code: int, when: str) -> str:
        tail = self.tail(cam, 5)
        return f"{cam}: bwcsim live exited with code {code} {when}" + (f": {tail}" if tail else "")

    async def _clean_broker(self) -> None:
        """Remove the retained topics and persistent sessions the devices left behind."""
        plan = self.plan
        if plan is None:
            return
        with contextlib.suppress(BusError):
            bus = self.bus_factory()
            await bus.connect(f"bwcsim-hil-{plan.tag}-cleanup", clean_session=True)
            for device in plan.devices.values():
                for kind in ("state", "availability"):
                    await bus.publish(f"{plan.prefix}/{device}/{kind}", b"", qos=1, retain=True)
            await bus.disconnect()
        for device in plan.devices.values():
            with contextlib.suppress(BusError):
                session = self.bus_factory()
                await session.connect(f"bwcsim-{plan.tag}-{device}", clean_session=True)
                await session.disconnect()
