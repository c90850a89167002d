"""Bad input on the wire (R-BAD, P-BAD): every kind of malformed event reaches a running camera
through a broker — the real one and the simulated one — and is NACKed with a reason that names
the problem, changes nothing, and leaves the runtime serving. Hypothesis then throws arbitrary
bytes and mangled events at a camera on the simulated bus."""

from __future__ import annotations

import json
import string

import pytest
from bus_worlds import TIMEOUT_S, World, WorldFactory, containing, on
from bus_worlds import make_world_fixture as make_world_fixture  # the fixture "make_world"
from hypothesis import assume, example, given
from hypothesis import strategies as st

from controller.codec import MAX_PAYLOAD, DecodeError, decode_event

pytestmark = pytest.mark.req("R-BAD", "P-BAD")

START = b'{"id":"s-1","type":"activity_start","activity":"arrest_warrant","activity_id":"w-1"}'
ERROR_CODES = (
    "invalid_utf8", "invalid_json", "not_an_object", "missing_field", "invalid_field",
    "unknown_type", "payload_too_large", "internal_error",
    "too_long", "too_deep",  # R-BOUND: a field over 128 bytes or 64 bits, JSON nested too deep
)

BAD_INPUT = [
    pytest.param(b"\xff\xfe\x00garbage", None, "invalid_utf8", id="not-utf8"),
    pytest.param(b"not json", None, "invalid_json", id="not-json"),
    pytest.param(b'["id", 1]', None, "not_an_object", id="not-an-object"),
    pytest.param(b'{"type":"dock"}', None, "missing_field: id", id="no-id"),
    pytest.param(b'{"id":"m-1","type":"activity_start","activity_id":"a"}', "m-1",
                 "missing_field: activity", id="missing-field"),
    pytest.param(b'{"id":"t-1","type":"activity_start","activity":5,"activity_id":"a"}', "t-1",
                 "invalid_field: activity", id="wrong-type"),
    pytest.param(b'{"id":"u-1","type":"teleport"}', "u-1", "unknown_type", id="unknown-type"),
    pytest.param(b'{"id":"a-1","type":"activity_start","activity":"picnic","activity_id":"p"}', "a-1",
                 "unknown_activity", id="unknown-activity"),
    pytest.param(b'{"id":"e-1","type":"activity_end","activity_id":"never-started"}', "e-1",
                 "unknown_activity", id="unknown-activity-id"),
    pytest.param(b'{"id":"big","type":"dock","pad":"' + b"x" * MAX_PAYLOAD + b'"}', None,
                 "payload_too_large", id="oversized"),
]


@pytest.mark.parametrize(("payload", "msg_id", "error"), BAD_INPUT)
async def test_bad_event_is_nacked_by_name_and_changes_nothing(
    make_world: WorldFactory, payload: bytes, msg_id: str | None, error: str
) -> None:
    async with make_world() as world:
        cam = await world.camera("cam-1")
        probe = await world.probe()
        mark = probe.mark()
        await world.inject(cam.topics.event, payload)
        nack = json.loads((await probe.wait_for(on(cam.topics.ack), since=mark, timeout=TIMEOUT_S)).payload)
        assert nack["ok"] is False and nack["id"] == msg_id
        assert nack["error"].startswith(error), nack
        assert [m for m in probe.since(mark, cam.topics.state) if not m.retain] == []
        assert probe.since(mark, cam.topics.recording) == [] and probe.since(mark, cam.topics.alert) == []
        # The runtime is unharmed and the camera still works.
        await world.inject(cam.topics.event, START)
        await probe.wait_for(containing(cam.topics.state, b'"recording"'), since=mark, timeout=TIMEOUT_S)
        assert cam.connected and cam.stats.handler_errors == 0


async def test_an_event_on_a_team_the_camera_is_not_in_never_reaches_it(make_world: WorldFactory) -> None:
    async with make_world() as world:
        cam = await world.camera("cam-1", teams=("sr-1",))
        probe = await world.probe()
        mark = probe.mark()
        await world.inject(cam.topics.team_event("sr-9"), START)
        # A harmless event after it, on a topic the camera does hear, bounds the wait.
        await world.inject(cam.topics.team_event("sr-1"), b'{"id":"r-1","type":"reactivate"}')
        await probe.wait_for(containing(cam.topics.ack, b'"r-1"'), since=mark, timeout=TIMEOUT_S)
        assert [json.loads(m.payload)["id"] for m in probe.since(mark, cam.topics.ack)] == ["r-1"]
        assert [m for m in probe.since(mark, cam.topics.state) if not m.retain] == []
        assert cam.stats.received == 1


_KEYS = st.sampled_from(
    ["id", "type", "activity", "activity_id", "action", "source", "reason", "actor", "ts"]
)
_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12),
    st.sampled_from(["activity_start", "activity_end", "button", "signal", "dock", "arrest_warrant"]),
    st.lists(st.integers(), max_size=3),
)
_MANGLED = st.dictionaries(st.one_of(_KEYS, st.text(string.ascii_lowercase, max_size=6)), _VALUES, max_size=6)
PAYLOADS = st.one_of(
    st.binary(max_size=256),
    _MANGLED.map(lambda d: json.dumps(d).encode()),
    st.lists(_VALUES, max_size=4).map(lambda v: json.dumps(v).encode()),
    st.text(max_size=64).map(str.encode),
)


@pytest.mark.looptime
@given(payload=PAYLOADS, on_team=st.booleans())
@example(payload=b'{"id":9223372036854775808}', on_team=False)  # an id beyond 64 bits: too_long
async def test_arbitrary_bytes_never_change_the_camera_or_kill_the_runtime(
    payload: bytes, on_team: bool
) -> None:
    assume(isinstance(decode_event(payload), DecodeError))
    async with World("sim") as world:
        cam = await world.camera("cam-1", teams=("sr-1",))
        probe = await world.probe()
        mark = probe.mark()
        topic = cam.topics.team_event("sr-1") if on_team else cam.topics.event
        await world.inject(topic, payload)
        nack = json.loads((await probe.wait_for(on(cam.topics.ack), since=mark, timeout=TIMEOUT_S)).payload)
        assert nack["ok"] is False and nack["error"].split(":")[0] in ERROR_CODES
        await world.inject(cam.topics.event, START)
        await probe.wait_for(containing(cam.topics.state, b'"recording"'), since=mark, timeout=TIMEOUT_S)
        live = [m for m in probe.since(mark, cam.topics.state) if not m.retain]
        live_states = [json.loads(m.payload)["state"] for m in live]
        assert live_states == ["recording"]  # only the valid event changed anything
        assert cam.stats.handler_errors == 0 and cam.connected
