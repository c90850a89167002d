"""The live camera keeps what matters (R-NODROP, R-DURABLE, R-BOUND, R-ISOLATE, R-AUDITFILE), in
virtual time on the simulated bus (``looptime``) with a real state directory.

A crash is played by cancelling the runtime without a clean stop and closing its files, which is
what ``kill -9`` leaves behind: only what was committed. ``tests/test_live_edge.py`` plays the same
attacks against a real Mosquitto, and ``kill -9`` of a real process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from bus_worlds import TIMEOUT_S, World, containing

from controller.errors import BusRefused, BusTimeout
from sim.live.auditfile import AuditFile, audit_files, verify_files
from sim.live.bus import Message, SimBus
from sim.live.limits import RateLimit
from sim.live.runtime import Backoff, CameraRuntime
from sim.live.store import StateStore

pytestmark = [pytest.mark.looptime]

START = b'{"id":"s-1","type":"activity_start","activity":"arrest_warrant","activity_id":"w-1"}'
END = b'{"id":"e-1","type":"activity_end","activity_id":"w-1"}'
DOCK = b'{"id":"d-1","type":"dock"}'
EPOCH = 1_700_000_000.0


def _json(msg: Message) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(msg.payload)
    return doc


@contextlib.asynccontextmanager
async def _durable(world: World, state: Path, *, origin: float = EPOCH, **options: Any
                   ) -> AsyncIterator[CameraRuntime]:
    """A camera with a state directory; on leaving, it *crashes* (no clean stop)."""
    store = StateStore(state, "cam-1")
    audit = AuditFile(state, "cam-1", max_bytes=options.pop("audit_max_bytes", 1 << 20))
    cam = await world.camera("cam-1", store=store, audit=audit, time_origin=origin, **options)
    task = next(t for r, t in world.runtimes if r is cam)
    try:
        yield cam
    finally:
        world.runtimes = [(r, t) for r, t in world.runtimes if r is not cam]
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        audit.close()
        store.close()


@pytest.mark.req("R-DURABLE", "R-NODROP")
async def test_a_camera_that_crashes_mid_warrant_comes_back_recording_the_same_incident(
    tmp_path: Path,
) -> None:
    async with World("sim") as world:
        probe = await world.probe()
        async with _durable(world, tmp_path) as cam:
            await world.inject(f"{cam.topics.event}/cad-1", START)
            first = await probe.wait_for(containing(cam.topics.state, b'"recording"'), timeout=TIMEOUT_S)
            await asyncio.sleep(30.0)
            crashed_at = cam.now()
        # Down for a while: a new process starts 100 s later on the same directory.
        mark = probe.mark()
        async with _durable(world, tmp_path, origin=crashed_at + 100.0) as back:
            assert back.stats.restored and back.stats.replayed >= 1  # the journal since the snapshot
            restarted = await probe.wait_for(containing(back.topics.alert, b'"restarted"'), since=mark)
            span = _json(restarted)["span"]
            assert span[0] == pytest.approx(crashed_at, abs=1.5)
            assert span[1] == pytest.approx(crashed_at + 100)
            closed = await probe.wait_for(containing(back.topics.recording, b'"final":true'), since=mark)
            assert _json(closed)["end"] == pytest.approx(crashed_at, abs=1.5)  # footage stops at the crash
            state = await probe.wait_for(containing(back.topics.state, b'"recording"'), since=mark)
            assert _json(state)["active"] == ["w-1"]
            assert _json(state)["since"] == pytest.approx(crashed_at + 100.0, abs=0.01)
            assert _json(first)["active"] == ["w-1"]

            await world.inject(f"{back.topics.event}/cad-1", END)
            ack = await probe.wait_for(containing(back.topics.ack, b'"e-1"'), since=mark)
            assert _json(ack) == {"id": "e-1", "ok": True}
            await asyncio.sleep(1.0)  # dhs-2023 has no post_s: the recording closes at the end
            metas = [_json(m) for m in probe.since(0, back.topics.recording) if b'"final":true' in m.payload]
            assert len(metas) == 2, "the interrupted recording and the resumed one"
            assert len({m["incident"] for m in metas}) == 1, "the resumed recording keeps the incident id"
            assert metas[1]["start"] == pytest.approx(crashed_at + 100.0, abs=0.01)


@pytest.mark.req("R-NODROP", "R-DURABLE")
async def test_evidence_produced_while_the_broker_is_down_survives_a_crash(tmp_path: Path) -> None:
    async with World("sim") as world:
        assert world.hub is not None
        async with _durable(world, tmp_path, backoff=Backoff(initial_s=5.0, max_s=5.0)) as cam:
            await world.inject(f"{cam.topics.event}/cad-1", START)
            await asyncio.sleep(1.0)
            world.hub.outage(600.0)
            await asyncio.sleep(1.0)
            await world.inject(cam.topics.event, DOCK)  # lost with the broker: nothing arrives
            # The dock itself is local (the camera's own sensor): handled with no broker.
            node: Any = cam.node
            cam._handle(Message(cam.topics.event, DOCK, 1, False))
            await asyncio.sleep(1.0)
            pending = [p.topic for p in cam.outbox.pending()]
            assert cam.topics.alert in pending and cam.topics.recording in pending
            assert node.camera.state.value == "docked"
        await asyncio.sleep(700.0)  # the broker is back; the camera was dead meanwhile
        probe = await world.probe()
        async with _durable(world, tmp_path, origin=EPOCH + 800.0):
            alert = await probe.wait_for(containing(f"{world.prefix}/cam-1/alert",
                                                    b'"missed_required_recording"'), timeout=TIMEOUT_S)
            assert _json(alert)["cause"] == "docked"
            await probe.wait_for(containing(f"{world.prefix}/cam-1/recording", b'"final":true'),
                                 timeout=TIMEOUT_S)


@pytest.mark.req("R-NODROP", "R-BOUND")
async def test_a_garbage_flood_around_a_dock_pushes_no_evidence_out_and_sheds_only_nacks() -> None:
    async with World("sim") as world:
        assert world.hub is not None
        cam = await world.camera("cam-1", outbox_limit=100)
        probe = await world.probe()
        # An observer with a persistent session: it gets what was sent while it was cut off.
        observer = world.bus()
        await observer.connect(world.client_id("observer"), clean_session=False)
        await observer.subscribe(f"{world.prefix}/cam-1/+", 1)
        await world.inject(f"{cam.topics.event}/cad-1", START)
        await probe.wait_for(containing(cam.topics.state, b'"recording"'))
        world.hub.outage(60.0)  # nothing gets out for a minute: everything queues
        await asyncio.sleep(0.5)
        for index in range(1600):
            cam._handle(Message(f"{cam.topics.event}/intruder", b'{"id":%d,"type":"nope"}' % index, 1, False))
        cam._handle(Message(f"{cam.topics.event}/cad-1", DOCK, 1, False))
        for index in range(1600, 3200):
            cam._handle(Message(f"{cam.topics.event}/intruder", b'{"id":%d,"type":"nope"}' % index, 1, False))
        await asyncio.sleep(0)
        assert len(cam.outbox) <= 100 + cam.outbox.count("evidence")
        assert cam.outbox.shed["cheap"] > 3000 and cam.outbox.shed["reply"] == 0
        await asyncio.sleep(120.0)
        assert len(cam.outbox) == 0
        observer = world.bus()
        await observer.connect(world.client_id("observer"), clean_session=False)
        got: list[Message] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(TIMEOUT_S):
                async for msg in observer.messages():
                    got.append(msg)
        await observer.disconnect()
        alerts = [_json(m) for m in got if m.topic == cam.topics.alert]
        assert {"kind": "missed_required_recording", "cause": "docked"}.items() <= alerts[0].items()
        assert [_json(m)["final"] for m in got if m.topic == cam.topics.recording] == [True]
        nacks = [m for m in got if m.topic == cam.topics.ack and b'"ok":false' in m.payload]
        assert 0 < len(nacks) <= 100, "the NACKs beyond the outbox were shed"


@pytest.mark.req("R-BOUND")
async def test_a_flooding_sender_is_rate_limited_and_the_others_are_not() -> None:
    async with World("sim") as world:
        cam = await world.camera("cam-1", rate_limit=RateLimit(rate=50.0, burst=50.0))
        probe = await world.probe()
        for index in range(500):
            await world.inject(f"{cam.topics.event}/intruder", b'{"id":"x%d","type":"undock"}' % index)
        await world.inject(f"{cam.topics.event}/cad-1", START)
        ack = await probe.wait_for(containing(cam.topics.ack, b'"s-1"'), timeout=TIMEOUT_S)
        assert _json(ack) == {"id": "s-1", "ok": True}
        assert cam.stats.rate_limited >= 400 and cam.limiter is not None
        assert set(cam.limiter.refused) == {"intruder"}
        limited = [m for m in probe.received if m.topic == cam.topics.ack and b"rate_limited" in m.payload]
        assert limited and all(_json(m)["ok"] is False for m in limited)


@pytest.mark.req("R-ISOLATE")
async def test_a_retained_command_never_reaches_the_controller() -> None:
    async with World("sim") as world:
        # Stored before the camera starts: the subscription asks for no retained messages.
        await world.inject(f"{world.prefix}/cam-1/event/cad-1", DOCK, retain=True)
        cam = await world.camera("cam-1")
        probe = await world.probe()
        await world.inject(f"{cam.topics.event}/cad-1", b'{"id":"r","type":"reactivate"}')
        await probe.wait_for(containing(cam.topics.ack, b'"r"'))
        node: Any = cam.node
        assert node.camera.state.value == "pre_buffer"
        # A bus that cannot refuse retained messages (MQTT 3.1.1) delivers it: the runtime refuses it.
        cam._handle(Message(f"{cam.topics.event}/cad-1", DOCK, 1, True))
        nack = await probe.wait_for(containing(cam.topics.ack, b'"d-1"'))
        assert _json(nack) == {"id": "d-1", "ok": False,
                               "error": "retained: a command must not be a retained message"}
        assert node.camera.state.value == "pre_buffer" and cam.stats.retained_refused == 1


@pytest.mark.req("R-ISOLATE")
async def test_another_clients_write_to_the_cameras_status_is_undone_and_alerted() -> None:
    async with World("sim") as world:
        assert world.hub is not None
        cam = await world.camera("cam-1")
        probe = await world.probe()
        await world.inject(cam.topics.state, b'{"state":"docked"}', retain=True)
        await world.inject(cam.topics.availability, b"maintenance", retain=True)
        fault = await probe.wait_for(containing(cam.topics.alert, b'"bus_fault"'))
        assert "status_overwritten" in _json(fault)["detail"]
        await asyncio.sleep(1.0)
        [state] = world.hub.broker.retained(cam.topics.state)
        [online] = world.hub.broker.retained(cam.topics.availability)
        assert _json(state)["state"] == "pre_buffer" and online.payload == b"online"
        assert cam.stats.foreign_status == 2
        # "offline" could be the camera's own Last Will coming back: not alerted, but undone.
        await world.inject(cam.topics.availability, b"offline", retain=True)
        await asyncio.sleep(1.0)
        assert [m.payload for m in world.hub.broker.retained(cam.topics.availability)] == [b"online"]


class _Refusing:
    """A bus that refuses some subscriptions and publications (an ACL), and can time out."""

    def __init__(self, inner: SimBus, refuse_sub: set[str], refuse_pub: set[str]) -> None:
        self.inner = inner
        self.refuse_sub = refuse_sub
        self.refuse_pub = refuse_pub
        self.timeouts = 0

    @property
    def is_connected(self) -> bool:
        return self.inner.is_connected

    async def connect(self, client_id: str, *, clean_session: bool = False,
                      will: Message | None = None) -> bool:
        return await self.inner.connect(client_id, clean_session=clean_session, will=will)

    async def subscribe(self, topic_filter: str, qos: int = 1, *, retained: bool = True,
                        no_local: bool = False) -> None:
        if topic_filter in self.refuse_sub:
            raise BusRefused(f"broker refused the subscription to {topic_filter!r} (Not authorized)", 0x87)
        await self.inner.subscribe(topic_filter, qos, retained=retained, no_local=no_local)

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        if topic in self.refuse_pub:
            raise BusRefused(f"broker refused the publication on {topic!r} (Not authorized, 0x87)", 0x87)
        if self.timeouts:
            self.timeouts -= 1
            await asyncio.sleep(10.0)
            raise BusTimeout("no answer from the broker within 10 s")
        await self.inner.publish(topic, payload, qos=qos, retain=retain)

    def messages(self) -> AsyncIterator[Message]:
        return self.inner.messages()

    async def disconnect(self, *, clean: bool = True) -> None:
        await self.inner.disconnect(clean=clean)


@pytest.mark.req("R-ISOLATE")
async def test_a_refused_subscription_is_reported_and_retried_while_the_camera_serves_on() -> None:
    async with World("sim") as world:
        assert world.hub is not None
        team = f"{world.prefix}/team/sr-9/event/+"
        bus = _Refusing(world.hub.client(), {team}, set())
        probe = await world.probe()
        cam = await world.camera("cam-1", teams=("sr-9",), bus=bus)
        fault = await probe.wait_for(containing(cam.topics.alert, b'"bus_fault"'), timeout=TIMEOUT_S)
        assert _json(fault)["detail"].startswith(f"subscribe_refused: {team}")
        assert cam.connected and cam.stats.connection_losses == 0 and team in cam.refused_subscriptions
        await world.inject(f"{cam.topics.event}/cad-1", START)  # its own topic still works
        await probe.wait_for(containing(cam.topics.ack, b'"s-1"'))
        await asyncio.sleep(10.0)
        assert cam.stats.refused_subscriptions >= 2, "it kept trying"
        assert len([m for m in probe.received if m.topic == cam.topics.alert]) == 1, "alerted once"
        bus.refuse_sub.clear()  # the ACL is fixed
        await asyncio.sleep(130.0)
        assert cam.refused_subscriptions == {} and cam.stats.refused_subscriptions >= 2
        await world.inject(f"{world.prefix}/team/sr-9/event/cad-1", b'{"id":"t","type":"reactivate"}')
        await probe.wait_for(containing(cam.topics.ack, b'"t"'))


@pytest.mark.req("R-NODROP")
async def test_a_publication_that_times_out_is_sent_again_after_a_reconnect() -> None:
    async with World("sim") as world:
        assert world.hub is not None
        bus = _Refusing(world.hub.client(), set(), set())
        cam = await world.camera("cam-1", bus=bus)
        probe = await world.probe()
        bus.timeouts = 1
        await world.inject(f"{cam.topics.event}/cad-1", START)
        ack = await probe.wait_for(containing(cam.topics.ack, b'"s-1"'), timeout=30.0)
        assert _json(ack)["ok"] is True
        assert cam.stats.publish_timeouts == 1 and cam.stats.connects == 2


@pytest.mark.req("R-NODROP", "R-ISOLATE")
async def test_a_refused_alert_is_kept_and_sent_once_the_broker_allows_it() -> None:
    async with World("sim") as world:
        assert world.hub is not None
        topic = f"{world.prefix}/cam-1/alert"
        bus = _Refusing(world.hub.client(), set(), {topic})
        cam = await world.camera("cam-1", bus=bus)
        probe = await world.probe()
        await world.inject(f"{cam.topics.event}/cad-1", START)
        await world.inject(f"{cam.topics.event}/cad-1", DOCK)
        await asyncio.sleep(5.0)
        assert cam.stats.refused_publications >= 1 and topic in [p.topic for p in cam.outbox.pending()]
        bus.refuse_pub.clear()
        alert = await probe.wait_for(containing(topic, b'"docked"'), timeout=120.0)
        assert _json(alert)["kind"] == "missed_required_recording"


@pytest.mark.req("R-AUDITFILE")
async def test_the_audit_file_holds_the_controllers_entries_and_the_head_is_published(tmp_path: Path) -> None:
    async with World("sim") as world:
        probe = await world.probe()
        async with _durable(world, tmp_path, head_interval_s=30.0, audit_max_bytes=4096) as cam:
            for index in range(40):
                press = b'{"id":"b%d","type":"button","action":"start"}' % index
                await world.inject(f"{cam.topics.event}/cad-1", press)
            await asyncio.sleep(61.0)
            heads = [_json(m) for m in probe.received if m.topic == cam.topics.audit]
            assert len(heads) >= 2, "at every rotation and every head_interval_s"
        files = audit_files(tmp_path)
        assert len(files) >= 2, "the file rotated"
        verdict = verify_files(files, head=heads[-1]["head"], camera="cam-1")
        assert verdict.ok, verdict.problem
        kinds = [json.loads(line)["kind"] for f in files for line in f.read_text().splitlines()]
        assert "accepted" in kinds and "connected" in kinds and kinds.count("audit_segment") == len(files)


@pytest.mark.req("R-DURABLE")
def test_a_state_directory_belongs_to_one_camera_and_one_process(tmp_path: Path) -> None:
    from controller.errors import InvalidInput

    store = StateStore(tmp_path, "cam-1")
    try:
        with pytest.raises(InvalidInput, match="in use"):
            StateStore(tmp_path, "cam-1")
    finally:
        store.close()
    with pytest.raises(InvalidInput, match="holds the state of camera 'cam-1'"):
        StateStore(tmp_path, "cam-2")



@pytest.mark.req("R-NODROP", "R-DURABLE")
async def test_the_edge_s_own_alerts_are_named_and_a_restart_goes_on_counting(tmp_path: Path) -> None:
    async with World("sim") as world:
        probe = await world.probe()
        async with _durable(world, tmp_path) as cam:
            await world.inject(f"{cam.topics.event}/cad-1", START)
            await probe.wait_for(containing(cam.topics.state, b'"recording"'), timeout=TIMEOUT_S)
            crashed_at = cam.now()
        first: Message | None = None
        for n in (1, 2):
            mark = probe.mark()
            async with _durable(world, tmp_path, origin=crashed_at + 50.0 * n) as back:
                name = f'"alert_id":"cam-1-e{n}"'.encode()
                restarted = await probe.wait_for(containing(back.topics.alert, name), since=mark)
                assert _json(restarted)["kind"] == "restarted"
                if first is None:
                    first = restarted
                else:
                    # The first restart's alert may not have been acknowledged before this crash:
                    # then it comes again — the same bytes, the same name, for a subscriber to drop.
                    again = [m for m in probe.since(mark, back.topics.alert)
                             if _json(m)["alert_id"] == "cam-1-e1"]
                    assert all(m.payload == first.payload for m in again)
                crashed_at = back.now()


@pytest.mark.req("R-DURABLE")
def test_checkpoints_happen_outside_commits_and_keep_the_log_short(tmp_path: Path) -> None:
    store = StateStore(tmp_path, "cam-1")
    try:
        for i in range(2000):  # one commit per command, as at a steady 1,000 msg/s
            store.journal("message", float(i), "bwc/cam-1/event", b"x" * 300)
            store.commit(alive_at=float(i), sync=False)
        pages = store.checkpoint()  # what the heartbeat runs in its worker thread
        assert pages > 1000, "no commit checkpointed on its own (SQLite would at 1,000 pages)"
        store.checkpoint_tail()
        store.journal("message", 2000.0, "bwc/cam-1/event", b"x")
        store.commit(alive_at=2000.0, sync=False)
        assert store.checkpoint() < 10, "the log started again from its beginning"
        store.commit(alive_at=2001.0)
    finally:
        store.close()
    again = StateStore(tmp_path, "cam-1")
    try:
        assert len(again.recover().journal) == 2001  # nothing a checkpoint touched was lost
    finally:
        again.close()
