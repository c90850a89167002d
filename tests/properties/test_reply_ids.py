"""Every reply carries the id of the message it answers (SPEC §4, R-BAD, R-BOUND).

A message whose id can be read — a string of at most 128 bytes or an integer in the 64-bit range,
negative ones included — gets exactly one reply on the camera's ack topic, carrying that id, be
the rest of the message valid, incomplete or nonsense. An id that is too long, too large or of
the wrong type is neither kept nor echoed: the reply's id is ``null``. A message delivered again
with a readable id gets its first reply again, whatever it was (R-IDEM).

Mutation testing found replies with the wrong id that no suite or scenario noticed: a NACK
for a message without a ``type`` sent with ``"id": null``, and negative integer ids treated as
unreadable, and a refused message that crashed the camera when redelivered (docs/mutation.md).
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.bounds import MAX_FIELD_BYTES
from controller.node import ControllerFactory
from sim.pytest_plugin.suites.common import suite_settings
from sim.search.invariants import NodeDriver, camera_setup
from sim.search.strategies import load_scenario_dict

_SETTINGS = suite_settings()
_SCENARIO = load_scenario_dict({"version": 1, "name": "replies", "policy": "dhs-2023", "end": 600,
                                "cameras": [{"id": "cam-1"}], "timeline": []})
_TOPIC = f"{_SCENARIO.prefix}/cam-1/event"
_ACKS = f"{_SCENARIO.prefix}/cam-1/ack"

readable_ids = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.text(min_size=1, max_size=MAX_FIELD_BYTES // 4),
)
unreadable_ids = st.one_of(
    st.integers(2**63, 2**80), st.integers(-(2**80), -(2**63) - 1),
    st.text(min_size=MAX_FIELD_BYTES + 1, max_size=MAX_FIELD_BYTES + 8),
    st.booleans(), st.none(), st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=2),
)
rest = st.fixed_dictionaries({}, optional={
    "type": st.one_of(st.sampled_from(("activity_start", "activity_end", "dock", "undock", "button",
                                       "signal", "deactivate", "reactivate", "warp")), st.integers()),
    "activity": st.sampled_from(("patrol", "warrant_service", "karaoke")),
    "activity_id": st.one_of(st.text(max_size=4), st.integers()),
    "action": st.sampled_from(("start", "stop", "sideways")),
    "source": st.sampled_from(("holster", "tractor")),
    "reason": st.text(max_size=6),
    "ts": st.one_of(st.floats(0, 10, allow_nan=False), st.text(max_size=3)),
})



def _replies_to(factory: ControllerFactory, payloads: list[bytes]) -> list[list[bytes]]:
    """The replies to each payload, delivered one a second from t=10 to a fresh camera."""
    driver = NodeDriver.build(factory, camera_setup(_SCENARIO, "cam-1"))
    out: list[list[bytes]] = []
    for i, payload in enumerate(payloads):
        pubs = driver.deliver(_TOPIC, payload, 10.0 + i)
        out.append([p.payload for p in pubs if p.topic == _ACKS])
    return out


def _ids(replies: list[bytes]) -> list[Any]:
    return [msgspec.json.decode(r)["id"] for r in replies]


@pytest.mark.req("R-BAD", "R-BOUND", "R-IDEM")
@_SETTINGS
@given(ids=st.lists(readable_ids, min_size=1, max_size=4, unique_by=lambda v: (type(v), v)),
       bodies=st.lists(rest, min_size=4, max_size=4))
def test_a_readable_id_is_echoed_in_the_one_reply(
    controller_factory: ControllerFactory, ids: list[Any], bodies: list[dict[str, Any]]
) -> None:
    payloads = [msgspec.json.encode({"id": msg_id, **body})
                for msg_id, body in zip(ids, bodies, strict=False)]
    # Each delivered, then each delivered again (an MQTT redelivery): the same one reply again.
    replies = _replies_to(controller_factory, payloads + payloads)
    first, again = replies[:len(payloads)], replies[len(payloads):]
    for msg_id, payload, got, repeated in zip(ids, payloads, first, again, strict=True):
        assert _ids(got) == [msg_id], f"{payload!r} must get one reply with id {msg_id!r}, got {got}"
        assert repeated == got, f"{payload!r} redelivered must get its first reply {got}, got {repeated}"


@pytest.mark.req("R-BAD", "R-BOUND")
@_SETTINGS
@given(msg_id=unreadable_ids, body=rest)
def test_an_unreadable_id_is_answered_with_a_null_id(
    controller_factory: ControllerFactory, msg_id: Any, body: dict[str, Any]
) -> None:
    payload = msgspec.json.encode({"id": msg_id, **body})
    [got] = _replies_to(controller_factory, [payload])
    assert _ids(got) == [None], f"{payload!r} has no readable id; its one reply must carry null, got {got}"
