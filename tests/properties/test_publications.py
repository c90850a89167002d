"""Every publication follows the topic table of SPEC §5: its topic, its retain flag, its fields.

A subscriber that connects late learns a camera's state and availability only from what the
broker retained, so ``state`` and ``availability`` (and the live camera's ``audit`` head) must be
published retained, and replies, alerts and recording metadata must not (a retained ack or alert
would be handed again to every new subscriber). The retained ``state`` carries exactly the fields
of §5, ``auth`` included (§14: ``none`` must be visible to whoever reads the state), and says
how the scenario's cameras authenticate commands; ``availability`` is one of its two plain words.

Every generated scenario is replayed with a node that records everything the controller under
test publishes, and every signed scenario of the library too (``auth: signed``).

Mutation testing found the state published without ``auth`` and availability published without
the retain flag, with no suite or scenario noticing (docs/mutation.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given

from controller.node import ControllerFactory, Publish
from sim.pytest_plugin.suites.common import suite_settings
from sim.search.strategies import load_scenario_dict, scenarios
from sim.world.replay import replay
from sim.world.scenario import Scenario, load_scenario

_SETTINGS = suite_settings()
ROOT = Path(__file__).resolve().parents[2]

#: SPEC §5: outbound topics (last level) and whether each is retained.
RETAINED = {"state": True, "availability": True, "audit": True,
            "ack": False, "alert": False, "recording": False}
STATE_FIELDS = {"state", "since", "active", "battery_s", "storage_s", "auth"}
AVAILABILITY = (b"online", b"offline")


def publication_problems(scenario: Scenario, logs: dict[str, list[Publish]]) -> list[str]:
    """What the cameras of ``scenario`` published against the topic table of SPEC §5."""
    problems: list[str] = []
    for cam, log in logs.items():
        base = f"{scenario.prefix}/{cam}/"
        for pub in log:
            kind = pub.topic.removeprefix(base)
            if not pub.topic.startswith(base) or kind not in RETAINED:
                problems.append(f"{cam}: published on {pub.topic!r}, not an outbound topic of §5")
                continue
            if pub.retain is not RETAINED[kind]:
                problems.append(f"{cam}: {kind} published with retain={pub.retain}, §5 says "
                                f"{'retained' if RETAINED[kind] else 'not retained'}")
            if kind == "availability" and pub.payload not in AVAILABILITY:
                problems.append(f"{cam}: availability {pub.payload!r} is neither online nor offline")
            if kind == "state":
                state = msgspec.json.decode(pub.payload)
                if not isinstance(state, dict) or set(state) != STATE_FIELDS:
                    problems.append(f"{cam}: state report {state!r} lacks or adds fields of §5 "
                                    f"({sorted(STATE_FIELDS)})")
                elif state["auth"] != scenario.auth:
                    problems.append(f"{cam}: state says auth {state['auth']!r}, the camera runs "
                                    f"auth {scenario.auth!r}")
        if not any(p.topic == base + "state" for p in log):
            problems.append(f"{cam}: no state report at all")
    return problems


def _judge(factory: ControllerFactory, scenario: Scenario) -> list[str]:
    # The replay's trace holds every publication a camera makes, with its retain flag.
    logs: dict[str, list[Publish]] = {}

    def keep(record: dict[str, Any]) -> None:
        if record.get("kind") == "out":
            logs.setdefault(record["camera"], []).append(
                Publish(record["topic"], record["payload"].encode(), retain=record["retain"]))

    replay(scenario, factory, trace=keep)
    return publication_problems(scenario, logs)


@pytest.mark.req("R-AUTH", "R-NODE")
@_SETTINGS
@given(data=scenarios())
def test_every_publication_has_the_topic_retain_flag_and_fields_of_the_spec(
    controller_factory: ControllerFactory, data: dict[str, Any]
) -> None:
    problems = _judge(controller_factory, load_scenario_dict(data))
    assert not problems, "\n".join(problems)


_SIGNED = sorted(p for p in (ROOT / "scenarios").rglob("*.yaml")
                 if "auth: signed" in p.read_text("utf-8"))


@pytest.mark.req("R-AUTH", "R-NODE")
@pytest.mark.parametrize("path", _SIGNED, ids=lambda p: p.stem)
def test_a_signed_camera_publishes_by_the_spec_and_says_auth_signed(
    controller_factory: ControllerFactory, path: Path
) -> None:
    scenario = load_scenario(path)
    assert scenario.auth == "signed"
    problems = _judge(controller_factory, scenario)
    assert not problems, "\n".join(problems)
