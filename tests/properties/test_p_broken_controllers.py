"""The search catches each deliberately broken controller and shrinks it to a short scenario.

Each test runs the search of every registered property (:func:`sim.search.fuzz.search`)
against one factory of ``tests/broken_controllers.py`` with the ``dev`` profile's budget, and
checks the saved counterexample: a format-v1 file of at most 8 timeline entries that ``bwcsim
run`` replays to a failure with the broken controller (a ``fail`` verdict, or an unmet ``expect:
holds``) and to a pass with the reference one. The parametrised test does it for every entry of
the catalogue under several seeds: a ``dev`` run must catch each bug whatever its seed (the
corner scenarios, :mod:`sim.search.corners`, are tried first by every search).
``bench/catalogue_catch.py`` measures how often the generated examples alone catch each one.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import broken_controllers
import pytest

from controller.node import ControllerFactory
from controller.reference import make_node
from sim.search.fuzz import FuzzOutcome, search
from sim.search.invariants import judge_holds
from sim.search.profiles import PROFILE_EXAMPLES
from sim.views.report import build_report, exit_code
from sim.world.replay import replay
from sim.world.scenario import load_scenario

BUDGET = PROFILE_EXAMPLES["dev"]
SEED = 20231
SEEDS = (1, 2, 3)


def _run_exit_code(path: Path, factory: ControllerFactory) -> int:
    """What ``bwcsim run PATH --controller ...`` exits with."""
    scenario = load_scenario(path)
    result = replay(scenario, factory)
    return exit_code(judge_holds(build_report(result), result), scenario.expect)


def _check_saved(outcome: FuzzOutcome, factory: ControllerFactory, name: str, seed: int) -> None:
    assert not outcome.passed, f"{name} survived {BUDGET} examples with seed {seed}"
    assert outcome.saved is not None and outcome.saved.exists()
    scenario = load_scenario(outcome.saved)
    assert len(scenario.timeline) <= 8, scenario.timeline
    assert outcome.failed and all(prop in scenario.description for prop in outcome.failed)
    assert f"seed {seed}" in scenario.description
    assert _run_exit_code(outcome.saved, factory) == 1
    assert _run_exit_code(outcome.saved, make_node) == 0


def _caught_and_shrunk(
    factory: ControllerFactory, name: str, tmp_path: Path, prop: str = "all"
) -> None:
    outcome = search(factory, examples=BUDGET, seed=SEED, save_dir=tmp_path, prop=prop,
                     controller=f"broken_controllers:{name}")
    _check_saved(outcome, factory, name, SEED)


@pytest.mark.req("P-NOMISS", "P-NOSPLIT", "P-NOPHANTOM", "P-PRIVACY", "P-TAIL", "P-REPLY",
                 "P-EVIDENCE", "P-RESOURCE")
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(broken_controllers.BROKEN))
def test_every_catalogued_bug_is_caught_within_the_dev_budget_whatever_the_seed(
    name: str, seed: int, tmp_path: Path
) -> None:
    factory = cast(ControllerFactory, broken_controllers.BROKEN[name][1])
    outcome = search(factory, examples=BUDGET, seed=seed, save_dir=tmp_path,
                     controller=f"broken_controllers:{name}")
    _check_saved(outcome, factory, name, seed)


@pytest.mark.req("P-NOMISS", "R-BUF")
def test_catches_a_camera_that_prepends_no_buffer(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.zero_buffer, "zero_buffer", tmp_path)


@pytest.mark.req("P-NOMISS", "R-BUF")
def test_catches_a_camera_that_prepends_half_the_buffer(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.half_buffer, "half_buffer", tmp_path)


@pytest.mark.req("P-NOMISS", "R-NOSPLIT")
def test_catches_a_camera_that_ends_at_the_first_nested_activity_end(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.no_refcount, "no_refcount", tmp_path)


@pytest.mark.req("P-NOMISS", "R-STOP")
def test_catches_a_camera_that_obeys_a_manual_stop_during_a_warrant(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.stop_honoured, "stop_honoured", tmp_path)


@pytest.mark.req("P-NOMISS", "R-DOCK")
def test_catches_a_camera_that_loses_the_recording_at_a_dock(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.dock_drops, "dock_drops", tmp_path)


@pytest.mark.req("P-NOMISS", "R-MISS")
def test_catches_a_camera_that_never_sends_the_missed_alert(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.silent_miss, "silent_miss", tmp_path)


@pytest.mark.req("P-NOMISS", "R-SIG")
def test_catches_a_camera_that_stops_on_a_device_signal(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.signal_stops, "signal_stops", tmp_path)


@pytest.mark.req("P-TAIL", "R-TRIG")
def test_catches_a_policy_loader_that_reads_an_explicit_zero_tail_as_the_default(
    tmp_path: Path,
) -> None:
    _caught_and_shrunk(broken_controllers.explicit_zero_tail, "explicit_zero_tail", tmp_path)


@pytest.mark.req("P-NOMISS", "R-TRIG")
def test_catches_a_policy_loader_that_ignores_an_activitys_own_tail(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.default_tail_only, "default_tail_only", tmp_path)


@pytest.mark.req("P-NOPHANTOM", "R-BUF")
def test_catches_a_camera_that_claims_more_buffer_than_it_held(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.full_buffer, "full_buffer", tmp_path, "P-NOPHANTOM")


@pytest.mark.req("P-NOPHANTOM", "R-DOCK")
def test_catches_a_camera_that_buffers_while_docked(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.docked_buffer, "docked_buffer", tmp_path, "P-NOPHANTOM")


@pytest.mark.req("P-PRIVACY", "R-SIG")
def test_catches_a_camera_that_records_a_prohibited_activity(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.prohibited_records, "prohibited_records", tmp_path,
                       "P-PRIVACY")


@pytest.mark.req("P-PRIVACY", "R-SIG")
def test_catches_a_camera_that_splits_a_recording_on_a_signal(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.signal_splits, "signal_splits", tmp_path, "P-PRIVACY")


@pytest.mark.req("P-PRIVACY", "R-SIG")
def test_catches_a_camera_that_stops_a_held_recording_on_a_signal(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.signal_stops, "signal_stops", tmp_path, "P-PRIVACY")


@pytest.mark.req("P-PRIVACY", "R-IDEM", "R-NOSPLIT")
def test_catches_a_camera_that_splits_a_recording_on_a_redelivery(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.duplicate_splits, "duplicate_splits", tmp_path,
                       "P-PRIVACY")


# What the camera says (SPEC §8b): each of these records every required second, so only the
# judgement of its replies, its published evidence or its self-reports can catch it.


@pytest.mark.req("P-REPLY", "R-STOP")
def test_catches_a_camera_that_acks_a_stop_it_does_not_obey(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.stop_acked, "stop_acked", tmp_path, "P-REPLY")


@pytest.mark.req("P-REPLY", "R-BAD")
def test_catches_a_camera_that_drops_the_nack_of_a_payload_without_id(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.silent_null_nack, "silent_null_nack", tmp_path, "P-REPLY")


@pytest.mark.req("P-REPLY", "R-IDEM")
def test_catches_a_camera_that_acks_the_end_of_an_unknown_activity(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.unknown_end_acked, "unknown_end_acked", tmp_path,
                       "P-REPLY")


@pytest.mark.req("P-RESOURCE", "R-POWER")
def test_catches_a_camera_whose_battery_drains_too_slowly_while_recording(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.flat_drain, "flat_drain", tmp_path, "P-RESOURCE")


@pytest.mark.req("P-RESOURCE", "R-POWER")
def test_catches_a_camera_that_never_rearms_low_battery(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.low_battery_once, "low_battery_once", tmp_path,
                       "P-RESOURCE")


@pytest.mark.req("P-RESOURCE", "R-STORE")
def test_catches_a_camera_that_frees_storage_before_the_upload_is_confirmed(
    tmp_path: Path,
) -> None:
    _caught_and_shrunk(broken_controllers.freed_at_dock, "freed_at_dock", tmp_path, "P-RESOURCE")


@pytest.mark.req("P-EVIDENCE", "R-META")
def test_catches_a_camera_that_gives_a_resumed_recording_a_new_incident(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.new_incident_on_resume, "new_incident_on_resume",
                       tmp_path, "P-EVIDENCE")


@pytest.mark.req("P-EVIDENCE", "R-LATE")
def test_catches_a_camera_whose_late_trigger_span_ignores_the_buffer(tmp_path: Path) -> None:
    _caught_and_shrunk(broken_controllers.late_span_to_arrival, "late_span_to_arrival", tmp_path,
                       "P-EVIDENCE")
