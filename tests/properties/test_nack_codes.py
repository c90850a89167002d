"""A refusal of malformed input names what is wrong with the spec's code (SPEC §4 R-BAD, the Ack schema).

An ``error`` is a code, then details after ``: ``. For a JSON object that is not a valid event,
the code follows from the first thing wrong, in this order: no ``id`` → ``missing_field: id``;
no ``type`` → ``missing_field: type``; a ``type`` that is not a string → ``invalid_field: type``;
a string that is no event type → ``unknown_type``. Input that is not a JSON object at all is
``not_an_object``. This test derives the code from the payload itself and holds every refusal
to it; a firmware's tooling sorts refusals by these codes.

Mutation testing found the codes of these refusals judged by no suite or scenario: a NACK
``MISSING_FIELD: ID`` or one with no error text passed (docs/mutation.md).
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.node import ControllerFactory
from sim.pytest_plugin.suites.common import suite_settings
from sim.search.invariants import NodeDriver, camera_setup
from sim.search.strategies import load_scenario_dict

_SETTINGS = suite_settings()
_SCENARIO = load_scenario_dict({"version": 1, "name": "nack codes", "policy": "dhs-2023",
                                "end": 600, "cameras": [{"id": "cam-1"}], "timeline": []})
_TOPIC = f"{_SCENARIO.prefix}/cam-1/event"
_ACKS = f"{_SCENARIO.prefix}/cam-1/ack"
# SPEC §4a: the message types.
EVENT_TYPES = ("activity_start", "activity_end", "deactivate", "reactivate", "button", "signal",
               "dock", "undock")

json_values = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000),
                        st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=6),
                        st.lists(st.integers(), max_size=2))
objects = st.fixed_dictionaries({}, optional={
    "id": st.one_of(st.text(min_size=1, max_size=8), st.integers(0, 10**6)),
    "type": st.one_of(st.sampled_from(("warp", "Dock", "")), json_values),
    "activity": st.sampled_from(("patrol", "karaoke")),
})


def expected_code(payload: Any) -> str:
    """The refusal the spec requires for ``payload`` (a decoded JSON value that is not an event)."""
    if not isinstance(payload, dict):
        return "not_an_object"
    if "id" not in payload:
        return "missing_field: id"
    if "type" not in payload:
        return "missing_field: type"
    if not isinstance(payload["type"], str):
        return "invalid_field: type"
    assert payload["type"] not in EVENT_TYPES
    return "unknown_type"


@pytest.mark.req("R-BAD")
@_SETTINGS
@given(payload=st.one_of(objects.filter(lambda o: o.get("type") not in EVENT_TYPES), json_values))
def test_a_malformed_message_is_refused_with_the_code_of_its_first_fault(
    controller_factory: ControllerFactory, payload: Any
) -> None:
    driver = NodeDriver.build(controller_factory, camera_setup(_SCENARIO, "cam-1"))
    raw = msgspec.json.encode(payload)
    [reply] = [msgspec.json.decode(p.payload) for p in driver.deliver(_TOPIC, raw, 10.0)
               if p.topic == _ACKS]
    assert reply["ok"] is False, f"{raw!r} must be refused, got {reply}"
    error = reply.get("error")
    want = expected_code(payload)
    assert isinstance(error, str), f"{raw!r}: a refusal must say why, got {reply}"
    assert error == want or error.startswith((want + ":", want + " ")), (
        f"{raw!r} must be refused {want!r}..., got {error!r}"
    )
