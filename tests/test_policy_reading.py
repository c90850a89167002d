"""The oracle reads the policy document itself, and agrees with the controller's loader.

Two readings of one document: the controller's (:mod:`controller.policy`) and the oracle's
(:mod:`sim.world.policy_reading`). They must give the same required windows (kinds and tails),
signals and deactivation reasons for every shipped policy and every generated one; and a
mistake in the controller's reading must not move the oracle's ground truth.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import broken_controllers
import pytest
import yaml
from hypothesis import given, settings

import controller.policy as controller_policy
from controller.errors import ScenarioError
from controller.policy import Policy, parse_policy
from controller.reference import make_node
from controller.yamlsrc import SourceDoc
from sim.search.corners import TAILS_POLICY
from sim.search.fuzz import check_all
from sim.search.strategies import load_scenario_dict, policies
from sim.world.policy_reading import PolicyReading, read_policy
from sim.world.replay import oracle_policy, replay
from sim.world.scenario import INLINE_POLICY, parse_scenario

ROOT = Path(__file__).resolve().parents[1]
POLICY_FILES = sorted(
    [*ROOT.glob("controller/policies/*.yaml"), *ROOT.glob("scenarios/**/policies/*.yaml")]
)


def _same(controller: Policy, oracle: PolicyReading) -> None:
    required = {a: controller.post_s[a] for a, k in controller.activities.items() if k == "required"}
    assert oracle.windows() == required
    assert dict(oracle.kinds) == controller.activities
    assert dict(oracle.post_s) == controller.post_s
    assert oracle.signals == controller.signals
    assert oracle.deactivation_reasons == controller.deactivation_reasons


@pytest.mark.req("P-TAIL", "R-TRIG")
@pytest.mark.parametrize("path", POLICY_FILES, ids=lambda p: p.name)
def test_both_readings_agree_on_every_shipped_policy(path: Path) -> None:
    assert len(POLICY_FILES) >= 2
    document = yaml.safe_load(path.read_text("utf-8"))
    _same(controller_policy.load_policy(str(path)), read_policy(document))


@pytest.mark.req("P-TAIL", "R-TRIG")
@settings(max_examples=200, derandomize=True, deadline=None)
@given(document=policies())
def test_both_readings_agree_on_generated_policies(document: dict[str, Any]) -> None:
    _same(parse_policy(SourceDoc(document, {}, "<generated>")), read_policy(document))


@pytest.mark.req("R-TRIG")
def test_an_explicit_zero_tail_is_zero_and_an_absent_one_is_the_default() -> None:
    reading = read_policy(TAILS_POLICY)
    assert reading.tail("traffic_stop") == 0.0  # explicit 0 over a default of 60
    assert reading.tail("patrol") == 60.0  # no post_s: the policy's default
    assert reading.tail("arrest_warrant") == 120.0
    assert reading.windows() == {"patrol": 60.0, "traffic_stop": 0.0, "arrest_warrant": 120.0}
    assert read_policy({"name": "x", "activities": {"a": {"kind": "required"}}}).tail("a") == 0.0


def _tails_scenario() -> dict[str, Any]:
    return {
        "version": 1, "name": "tails", "policy": copy.deepcopy(TAILS_POLICY), "end": 600,
        "cameras": [{"id": "cam-1"}],
        "timeline": [
            {"at": 60, "camera": "cam-1", "event": "activity_start", "activity": "traffic_stop",
             "activity_id": "t-1"},
            {"at": 120, "camera": "cam-1", "event": "activity_end", "activity_id": "t-1"},
            {"at": 300, "camera": "cam-1", "event": "activity_start", "activity": "arrest_warrant",
             "activity_id": "w-1"},
            {"at": 360, "camera": "cam-1", "event": "activity_end", "activity_id": "w-1"},
        ],
    }


def _misreading_loader(monkeypatch: pytest.MonkeyPatch, tail_of: Any) -> None:
    """Make the controller's own loader misread tails, for the scenario loader and camera alike."""
    original = Policy.__init__

    def init(self: Policy, spec: controller_policy.PolicyFile) -> None:
        original(self, spec)
        self.post_s = {n: float(tail_of(r.post_s, spec.post_s) or 0.0)
                       for n, r in spec.activities.items()}

    monkeypatch.setattr(Policy, "__init__", init)


@pytest.mark.req("P-NOMISS", "P-TAIL", "R-TRIG")
def test_a_mistake_in_the_controllers_loader_does_not_move_the_ground_truth(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    honest = replay(load_scenario_dict(_tails_scenario()))
    assert [(w.start, w.end) for w in honest.windows["cam-1"]] == [(60, 120), (300, 480)]
    assert check_all(_tails_scenario(), make_node) == {}

    # An explicit post_s: 0 read as the default: the controller (and the scenario loader, which
    # shares the loader) now believe in a 60 s tail; the oracle still says 0 s.
    _misreading_loader(monkeypatch, lambda own, default: own or default)
    scenario = load_scenario_dict(_tails_scenario())
    assert scenario.policy.post_s["traffic_stop"] == 60.0
    result = replay(scenario)
    assert [(w.start, w.end) for w in result.windows["cam-1"]] == [(60, 120), (300, 480)]
    found = check_all(_tails_scenario(), make_node)
    assert list(found) == ["P-TAIL"] and "ran until 180" in found["P-TAIL"][0]

    # Every activity given the default tail: the arrest warrant's 120 s tail is cut to 60 s,
    # and the oracle, reading the document, counts the missing minute as the controller's.
    _misreading_loader(monkeypatch, lambda own, default: default)
    result = replay(load_scenario_dict(_tails_scenario()))
    assert result.judgements["cam-1"].missed_s["controller"] == pytest.approx(60.0)
    assert result.windows["cam-1"][1].end == 480


@pytest.mark.req("P-TAIL", "R-TRIG")
def test_the_broken_loaders_of_the_catalogue_are_caught_on_the_tails_corner() -> None:
    found = check_all(_tails_scenario(), broken_controllers.explicit_zero_tail)
    assert list(found) == ["P-TAIL"]
    found = check_all(_tails_scenario(), broken_controllers.default_tail_only)
    assert "P-NOMISS" in found


@pytest.mark.req("R-TRIG")
def test_a_scenario_carries_its_policy_inline_and_the_oracle_reads_it() -> None:
    scenario = load_scenario_dict(_tails_scenario())
    assert scenario.policy_ref == INLINE_POLICY and scenario.policy.name == "corner-tails"
    assert scenario.policy_doc == TAILS_POLICY
    assert oracle_policy(scenario).windows() == read_policy(TAILS_POLICY).windows()


@pytest.mark.req("R-TRIG")
def test_an_inline_policy_error_names_the_scenario_line_and_the_policy_field() -> None:
    text = """version: 1
name: bad inline policy
end: 100
policy:
  name: inline
  activities:
    patrol: {kind: required, post_s: -5}
cameras: [{id: cam-1}]
"""
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "inline.yaml")
    message = str(caught.value)
    assert "inline.yaml:7" in message and "policy.activities.patrol.post_s" in message
    assert "post_s must be >= 0" in message
    unknown = text.replace("post_s: -5", "tail: 5")
    with pytest.raises(ScenarioError, match=r"inline.yaml:7: policy\.activities\.patrol\.tail"):
        parse_scenario(unknown, "inline.yaml")


@pytest.mark.req("R-TRIG")
def test_every_builtin_and_file_scenario_keeps_the_document_it_named() -> None:
    for path in sorted(ROOT.glob("scenarios/**/*.yaml")):
        if "policies" in path.parts:
            continue
        text = path.read_text("utf-8")
        scenario = parse_scenario(text, str(path))
        assert scenario.policy_doc is not None, path
        _same(scenario.policy, oracle_policy(scenario))
