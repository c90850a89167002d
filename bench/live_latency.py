"""Live latency: trigger published → ``state: recording`` received, through a real broker.

Cameras run in this process (the reference controller in :class:`sim.live.runtime.CameraRuntime` on
:class:`sim.live.bus.MqttBus`), 1 and then 100 of them. An observer publishes an ``activity_start`` to
one camera at a time (round robin, QoS 1) and times how long until that camera's retained
``state`` with ``"recording"`` reaches it; an ``activity_end`` then resets the camera (untimed).
The baseline, measured in the same run with the same client code, is a bare publish → receive
round trip between two clients: one broker hop against the trigger path's two hops plus the
controller. A second figure fires a *burst* (every camera triggered at once) for information.

The broker is the one answering on 127.0.0.1:1883, else a Mosquitto spawned on a free loopback
port, else in-process amqtt (whose figures say little). Duration is bounded by ``--seconds`` per
figure. SPEC §13 target: p99 ≤ 5 ms with 100 cameras.

    python bench/live_latency.py [--quick] [--samples N] [--seconds S] [--json]
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import measure

sys.path.insert(0, str(measure.ROOT / "tests"))  # the broker finder the live tests use

from brokers import (  # type: ignore[import-not-found, unused-ignore]
    LOOPBACK,
    BrokerAddress,
    any_broker,
    free_loopback_port,
    mosquitto_binary,
    wait_until_answers,
)

from controller.node import CameraSetup
from controller.params import CameraParams
from controller.policy import load_policy
from controller.reference import make_node
from sim.live.bus import MqttBus, MqttEndpoint
from sim.live.runtime import Backoff, CameraRuntime
from sim.world.broker import Message

TARGET_P99_MS = 5.0


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[rank]


class Waiter:
    """Routes an observer's incoming messages to whoever awaits a (topic, fragment)."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, bytes], asyncio.Future[float]] = {}

    def expect(self, topic: str, fragment: bytes) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting[(topic, fragment)] = future
        return future

    def feed(self, msg: Message) -> None:
        now = time.perf_counter()
        for key in [k for k in self._waiting if k[0] == msg.topic and k[1] in msg.payload]:
            future = self._waiting.pop(key)
            if not future.done():
                future.set_result(now)

    async def pump(self, bus: MqttBus) -> None:
        async for msg in bus.messages():
            self.feed(msg)


async def bare_round_trip(endpoint: MqttEndpoint, prefix: str, samples: int, budget_s: float) -> list[float]:
    sender, receiver = MqttBus(endpoint), MqttBus(endpoint)
    await sender.connect(f"{prefix}-rt-send", clean_session=True)
    await receiver.connect(f"{prefix}-rt-recv", clean_session=True)
    topic = f"{prefix}/rt"
    await receiver.subscribe(topic, 1)
    waiter = Waiter()
    pump = asyncio.create_task(waiter.pump(receiver))
    out: list[float] = []
    stop_at = time.perf_counter() + budget_s
    warmup = 5  # the first exchanges on fresh connections are not steady-state figures
    try:
        for index in range(samples + warmup):
            if time.perf_counter() > stop_at:
                break
            body = f'{{"n":{index}}}'.encode()
            arrived = waiter.expect(topic, body)
            t0 = time.perf_counter()
            await sender.publish(topic, body, qos=1)
            out.append(await asyncio.wait_for(arrived, 5.0) - t0)
    finally:
        pump.cancel()
        await sender.disconnect()
        await receiver.disconnect()
    return out[warmup:] if len(out) > warmup else out


@contextlib.asynccontextmanager
async def cameras(endpoint: MqttEndpoint, prefix: str, count: int) -> AsyncIterator[list[CameraRuntime]]:
    policy = load_policy("dhs-2023")
    runtimes = [
        CameraRuntime(
            make_node(CameraSetup(camera_id=f"cam-{i}", policy=policy, params=policy.apply(CameraParams()),
                                  prefix=prefix)),
            MqttBus(endpoint), prefix=prefix, client_id=f"{prefix}-cam-{i}", backoff=Backoff(initial_s=0.2),
        )
        for i in range(count)
    ]
    tasks = [asyncio.create_task(r.run()) for r in runtimes]
    try:
        for runtime in runtimes:
            await asyncio.wait_for(runtime.wait_connected(), 10.0)
            await asyncio.wait_for(runtime.wait_flushed(), 10.0)
        yield runtimes
    finally:
        for runtime in runtimes:
            runtime.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Leave the broker clean: no retained topics, no persistent sessions.
        cleaner = MqttBus(endpoint)
        await cleaner.connect(f"{prefix}-cleaner", clean_session=True)
        for runtime in runtimes:
            for topic in (runtime.topics.state, runtime.topics.availability):
                await cleaner.publish(topic, b"", qos=1, retain=True)
        await cleaner.disconnect()
        for runtime in runtimes:
            bus = MqttBus(endpoint)
            await bus.connect(runtime.client_id, clean_session=True)
            await bus.disconnect()


async def trigger_latency(
    endpoint: MqttEndpoint, prefix: str, count: int, samples: int, budget_s: float, burst: bool = False
) -> list[float]:
    # Separate connections to send and to watch, as in the bare round trip: on one connection the
    # broker's PUBACK and the state that follows it would meet Nagle's algorithm on the broker's
    # side (Mosquitto's default set_tcp_nodelay false) and the peer's delayed ACK: ~40 ms.
    dispatcher, observer = MqttBus(endpoint), MqttBus(endpoint)
    await dispatcher.connect(f"{prefix}-dispatcher", clean_session=True)
    await observer.connect(f"{prefix}-observer", clean_session=True)
    await observer.subscribe(f"{prefix}/+/state", 1)
    waiter = Waiter()
    pump = asyncio.create_task(waiter.pump(observer))
    out: list[float] = []
    try:
        async with cameras(endpoint, prefix, count) as runtimes:
            stop_at = time.perf_counter() + budget_s
            serial = 0
            warmup = len(runtimes)  # each connection's first exchange is not a steady-state figure
            while len(out) < samples + warmup and time.perf_counter() < stop_at:
                group: list[CameraRuntime] = runtimes if burst else [runtimes[serial % count]]
                pending = []
                for runtime in group:
                    serial += 1
                    activity = f"w-{serial}"
                    recording = waiter.expect(runtime.topics.state, f'"active":["{activity}"]'.encode())
                    start = (f'{{"id":"s{serial}","type":"activity_start","activity":"arrest_warrant",'
                             f'"activity_id":"{activity}"}}').encode()
                    t0 = time.perf_counter()
                    await dispatcher.publish(runtime.topics.event, start, qos=1)
                    pending.append((runtime, activity, recording, t0))
                for _runtime, _activity, recording, t0 in pending:
                    out.append(await asyncio.wait_for(recording, 5.0) - t0)
                for runtime, activity, _recording, _t0 in pending:  # back to pre_buffer, untimed
                    idle = waiter.expect(runtime.topics.state, b'"pre_buffer"')
                    end = f'{{"id":"e{activity}","type":"activity_end","activity_id":"{activity}"}}'.encode()
                    await dispatcher.publish(runtime.topics.event, end, qos=1)
                    await asyncio.wait_for(idle, 5.0)
    finally:
        pump.cancel()
        await observer.disconnect()
        await dispatcher.disconnect()
    return out[warmup:] if len(out) > warmup else out


@contextlib.contextmanager
def nodelay_mosquitto() -> Iterator[BrokerAddress | None]:
    """A private Mosquitto with ``set_tcp_nodelay true`` (``None`` if the binary is missing)."""
    binary = mosquitto_binary()
    if binary is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="bwcsim-bench-") as workdir:
        port = free_loopback_port()
        config = Path(workdir) / "mosquitto.conf"
        config.write_text(f"listener {port} {LOOPBACK}\nallow_anonymous true\npersistence false\n"
                          "set_tcp_nodelay true\n")
        process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, cwd=workdir)
        try:
            up = wait_until_answers(LOOPBACK, port)
            yield BrokerAddress(LOOPBACK, port, "mosquitto-spawned") if up else None
        finally:
            process.terminate()
            process.wait(timeout=10)


def main() -> None:
    p = measure.parser(__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=None, help="samples per figure")
    p.add_argument("--seconds", type=float, default=None, help="time budget per figure")
    args = p.parse_args()
    samples = args.samples or (50 if args.quick else 1000)
    budget = args.seconds or (2.0 if args.quick else 30.0)
    logging.basicConfig(level=logging.ERROR)
    rows: list[measure.Row] = []
    notes: list[str] = []
    with any_broker() as address:
        endpoint = MqttEndpoint(address.host, address.port)
        notes.append(f"broker: {address.kind} on {address.host}:{address.port}")
        prefix = f"bench{uuid.uuid4().hex[:8]}"
        bare = asyncio.run(bare_round_trip(endpoint, prefix, samples, budget))
        bare_p50, bare_p99 = percentile(bare, 0.5) * 1e3, percentile(bare, 0.99) * 1e3
        rows.append(measure.Row("bare publish→receive p50", bare_p50, "ms"))
        rows.append(measure.Row("bare publish→receive p99", bare_p99, "ms"))

        def figure(label: str, lat: list[float], target: bool) -> None:
            p50, p99 = percentile(lat, 0.5) * 1e3, percentile(lat, 0.99) * 1e3
            goal = f"p99 <= {TARGET_P99_MS:g} ms" if target else ""
            rows.append(measure.Row(f"trigger→recording p50 ({label})", p50, "ms",
                                    baseline=f"bare p50 {bare_p50:.3f} ms", ratio=p50 / bare_p50,
                                    ratio_of="trigger p50 / bare p50"))
            rows.append(measure.Row(f"trigger→recording p99 ({label})", p99, "ms",
                                    baseline=f"bare p99 {bare_p99:.3f} ms", ratio=p99 / bare_p99,
                                    ratio_of="trigger p99 / bare p99", target=goal,
                                    met=(p99 <= TARGET_P99_MS) if target else None))
            notes.append(f"{label}: {len(lat)} samples, mean {statistics.fmean(lat) * 1e3:.3f} ms, "
                         f"max {max(lat) * 1e3:.3f} ms")

        for count, burst in ((1, False), (100, False), (100, True)):
            label = f"{count} camera{'s' if count > 1 else ''}{', burst' if burst else ''}"
            lat = asyncio.run(trigger_latency(endpoint, f"{prefix}-{count}{'b' if burst else ''}", count,
                                              samples, budget, burst))
            figure(label, lat, target=count == 100 and not burst)
    # One camera triggered back to back waits for its own delayed ACK whenever the broker leaves
    # Nagle's algorithm on (Mosquitto's default): the same figure on a broker that turns it off.
    with nodelay_mosquitto() as fast:
        if fast is not None:
            endpoint = MqttEndpoint(fast.host, fast.port)
            lat = asyncio.run(trigger_latency(endpoint, f"{prefix}-nd", 1, samples, budget))
            figure("1 camera, broker set_tcp_nodelay true", lat, target=False)
    measure.emit("live_latency", rows, args.json, notes)


if __name__ == "__main__":
    main()
