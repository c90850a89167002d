"""A payload of up to 64 KiB has its id read; one byte more and it has none (R-BOUND, P-REPLY).

SPEC §14a bounds a payload at 64 KiB (65,536 bytes): up to that it is read, and its reply
carries its id; above it the camera reads nothing of it and NACKs it with ``"id": null``.
Payloads a few bytes either side of the bound, padded with an extra field, on the event topic and on a
topic the camera refuses (``wrong_topic``), show where the line is drawn.

Mutation testing found a payload of exactly 64 KiB treated as oversized (its NACK without its
id), with no suite or scenario noticing (docs/mutation.md).
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from controller.node import ControllerFactory
from sim.pytest_plugin.suites.common import suite_settings
from sim.search.invariants import NodeDriver, camera_setup
from sim.search.strategies import load_scenario_dict

_SETTINGS = suite_settings()
LIMIT = 64 * 1024  # SPEC §14a: payload ≤ 64 KiB


@pytest.mark.req("R-BOUND", "P-REPLY")
@_SETTINGS
@given(offset=st.integers(-40, 40), topic=st.sampled_from(("event", "wrong")))
@example(offset=0, topic="event")  # the bound itself, and one byte over it, on both topics
@example(offset=0, topic="wrong")
@example(offset=1, topic="event")
@example(offset=1, topic="wrong")
def test_a_payload_up_to_64_kib_has_its_id_read_and_no_more(
    controller_factory: ControllerFactory, offset: int, topic: str
) -> None:
    """On the event topic, and on a topic the camera does not take commands on (its NACK
    ``wrong_topic`` still names the id it could read)."""
    scenario = load_scenario_dict({"version": 1, "name": "bound", "policy": "dhs-2023", "end": 100,
                                   "cameras": [{"id": "cam-1"}], "timeline": []})
    driver = NodeDriver.build(controller_factory, camera_setup(scenario, "cam-1"))
    size = LIMIT + offset
    head = b'{"id":"big-1","type":"dock","pad":"'
    payload = head + b"a" * (size - len(head) - 2) + b'"}'
    assert len(payload) == size
    pubs = driver.deliver(f"{scenario.prefix}/cam-1/{topic}", payload, 10.0)
    acks = [msgspec.json.decode(p.payload) for p in pubs if p.topic.endswith("/ack")]
    assert len(acks) == 1, f"one reply expected, got {acks}"
    expected = "big-1" if size <= LIMIT else None
    assert acks[0]["id"] == expected, (
        f"a {size}-byte payload (limit {LIMIT}) must be answered with id {expected!r}: {acks[0]}"
    )
