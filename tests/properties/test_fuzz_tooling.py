"""``bwcsim fuzz`` and ``bwcsim explore``: reproducible searches, failures as replayable files."""

from __future__ import annotations

from pathlib import Path

import broken_controllers
import pytest
from typer.testing import CliRunner

from controller.reference import make_node
from sim.cli import app
from sim.search.explore import explore, sequence_scenario, sequences
from sim.search.fuzz import replay_hint, search
from sim.search.strategies import load_scenario_dict
from sim.world.replay import replay

runner = CliRunner()


@pytest.mark.req("FUZZ-CLI", "P-NOMISS")
def test_fuzz_saves_a_counterexample_that_bwcsim_run_replays_failing(tmp_path: Path) -> None:
    result = runner.invoke(app, ["fuzz", "--examples", "200", "--seed", "3", "--save",
                                 str(tmp_path), "--controller", "broken_controllers:no_refcount"])
    assert result.exit_code == 1, result.output
    [saved] = list(tmp_path.glob("*.yaml"))
    assert str(saved) in result.output.replace("\n", "")
    assert "failures 1" in result.output
    # The replay hint must name the controller: without it the replay uses the reference and passes.
    assert (f"(replay: bwcsim run {saved} --controller broken_controllers:no_refcount)"
            in result.output.replace("\n", ""))

    broken = runner.invoke(app, ["run", str(saved), "--report", "json", "--controller",
                                 "broken_controllers:no_refcount"])
    assert broken.exit_code == 1
    assert '"verdict":"fail"' in broken.stdout.replace(" ", "")
    fixed = runner.invoke(app, ["run", str(saved), "--report", "json"])
    assert fixed.exit_code == 0, fixed.stdout


@pytest.mark.req("FUZZ-CLI", "P-NOMISS")
def test_fuzz_passes_the_reference_controller_and_says_how_fast(tmp_path: Path) -> None:
    result = runner.invoke(app, ["fuzz", "--examples", "30", "--seed", "1",
                                 "--save", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "examples 30" in result.output and "examples/s" in result.output
    assert not list(tmp_path.iterdir())


@pytest.mark.req("FUZZ-CLI", "P-DET")
def test_same_seed_same_counterexample() -> None:
    first = search(broken_controllers.stop_honoured, examples=100, seed=11)
    second = search(broken_controllers.stop_honoured, examples=100, seed=11)
    assert first.counterexample is not None
    assert first.counterexample == second.counterexample
    assert (first.examples, first.shrink_calls) == (second.examples, second.shrink_calls)


@pytest.mark.req("EXPLORE", "P-NOMISS", "P-NOSPLIT")
def test_every_sequence_of_depth_4_passes_on_the_reference() -> None:
    result = explore(4, make_node, late_starts=True)
    assert result.checked == sum(1 for _ in sequences(4, late_starts=True)) > 1000
    assert result.failures == []


@pytest.mark.req("EXPLORE")
def test_exploration_prunes_invalid_ground_truth_and_dedupes() -> None:
    seqs = list(sequences(4))
    assert len(seqs) == len(set(seqs))
    for seq in seqs:
        opened = 0
        docked = False
        for step in seq:
            opened += step in ("start", "late_start")
            if step == "end":
                assert opened > 0, seq  # never an end before its start
                opened -= 1
            if step in ("dock", "undock"):
                assert docked == (step == "undock"), seq
                docked = step == "dock"


@pytest.mark.req("EXPLORE", "R-NOSPLIT")
def test_exploration_finds_a_broken_controller_and_its_sequence_replays(tmp_path: Path) -> None:
    result = explore(4, broken_controllers.no_refcount, max_failures=1)
    assert result.failures
    seq, _ = result.failures[0]
    data = sequence_scenario(seq)
    assert replay(load_scenario_dict(data), broken_controllers.no_refcount).verdict == "fail"
    assert replay(load_scenario_dict(data), make_node).verdict == "pass"
    cli = runner.invoke(app, ["explore", "--depth", "3", "--save", str(tmp_path),
                              "--controller", "broken_controllers:no_refcount"])
    assert cli.exit_code == 1 and "sequences checked" in cli.output
    assert list(tmp_path.glob("explore-depth3.yaml"))


def _bad_save_targets(tmp_path: Path) -> list[Path]:
    plain = tmp_path / "plain.txt"
    plain.write_text("not a folder", encoding="utf-8")
    targets = [plain, plain / "sub"]
    if Path("/proc/self").is_dir():
        targets.append(Path("/proc/nope"))
    return targets


def _must_not_search(*args: object, **kwargs: object) -> None:
    raise AssertionError("searched although the save folder was bad")


@pytest.mark.req("FUZZ-CLI")
def test_fuzz_save_that_cannot_be_written_exits_2_before_searching(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sim.search.fuzz.search", _must_not_search)
    for target in _bad_save_targets(tmp_path):
        result = runner.invoke(app, ["fuzz", "--examples", "100000", "--save", str(target)])
        assert result.exit_code == 2, (target, result.output)
        assert result.stdout == ""
        [line] = result.stderr.splitlines()
        assert line.startswith(f"bwcsim: cannot write {target}: "), line


@pytest.mark.req("FUZZ-CLI")
def test_replay_hint_names_a_non_default_controller_only() -> None:
    saved = Path("out dir/p-nomiss-seed3.yaml")
    assert replay_hint(saved, "controller.reference:make_node") == (
        "bwcsim run 'out dir/p-nomiss-seed3.yaml'")
    assert replay_hint(saved, "mine:factory") == (
        "bwcsim run 'out dir/p-nomiss-seed3.yaml' --controller mine:factory")


@pytest.mark.req("EXPLORE")
def test_explore_save_that_cannot_be_written_exits_2_before_exploring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sim.search.explore.explore", _must_not_search)
    for target in _bad_save_targets(tmp_path):
        result = runner.invoke(app, ["explore", "--depth", "3", "--save", str(target)])
        assert result.exit_code == 2, (target, result.output)
        assert result.stdout == ""
        [line] = result.stderr.splitlines()
        assert line.startswith(f"bwcsim: cannot write {target}: "), line


@pytest.mark.req("EXPLORE")
def test_explore_save_hint_names_the_controller(tmp_path: Path) -> None:
    result = runner.invoke(app, ["explore", "--depth", "3", "--save", str(tmp_path),
                                 "--controller", "broken_controllers:no_refcount"])
    assert result.exit_code == 1
    saved = tmp_path / "explore-depth3.yaml"
    assert (f"(replay: bwcsim run {saved} --controller broken_controllers:no_refcount)"
            in result.stderr.replace("\n", ""))


@pytest.mark.req("EXPLORE")
def test_explore_says_when_it_stopped_at_the_failure_limit() -> None:
    total = sum(1 for _ in sequences(4))
    limited = explore(4, broken_controllers.no_refcount, max_failures=3)
    assert len(limited.failures) == 3 and limited.stopped_early and limited.checked < total
    unlimited = explore(4, broken_controllers.no_refcount, max_failures=0)
    assert unlimited.checked == total and not unlimited.stopped_early
    assert len(unlimited.failures) > 3
    assert unlimited.failures[:3] == limited.failures

    cli = runner.invoke(app, ["explore", "--depth", "4", "--max-failures", "3",
                              "--controller", "broken_controllers:no_refcount"])
    out = cli.stderr.replace("\n", " ")
    assert cli.exit_code == 1
    assert f"{limited.checked} of {total} sequences checked, 3 failing" in out
    assert "stopped early at the failure limit (3 failing" in out
    assert "--max-failures 0 checks them all" in out

    everything = runner.invoke(app, ["explore", "--depth", "4", "--max-failures", "0",
                                     "--controller", "broken_controllers:no_refcount"])
    assert everything.exit_code == 1
    assert f"{total} sequences checked, {len(unlimited.failures)} failing" in everything.stderr
    assert "stopped early" not in everything.stderr


@pytest.mark.req("FUZZ-CLI", "EXPLORE", "P-TAIL")
def test_a_newly_registered_property_is_searched_by_fuzz_and_explore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sim.search.invariants import REPLAY_PROPERTIES
    from sim.world.replay import ReplayResult

    def no_second_activity(result: ReplayResult) -> list[str]:
        return [f"{cam}: a second required window" for cam, ws in result.windows.items()
                if len(ws) > 1]

    monkeypatch.setitem(REPLAY_PROPERTIES, "P-ONEONLY", no_second_activity)
    outcome = search(make_node, examples=30, seed=1, corners=False)
    assert not outcome.passed and outcome.failed == ["P-ONEONLY"]
    assert outcome.counterexample is not None
    assert outcome.counterexample["expect"]["holds"] == ["P-ONEONLY"]
    explored = explore(3, make_node, max_failures=1)
    assert explored.failures and explored.failures[0][1][0].startswith("P-ONEONLY: ")


@pytest.mark.req("FUZZ-CLI", "P-TAIL", "R-TRIG")
def test_fuzz_judges_every_property_and_its_file_replays_to_the_failure(tmp_path: Path) -> None:
    result = runner.invoke(app, ["fuzz", "--examples", "20", "--seed", "5", "--save",
                                 str(tmp_path), "--controller",
                                 "broken_controllers:explicit_zero_tail"])
    assert result.exit_code == 1, result.output
    assert "FAIL P-TAIL" in result.output and "corners " in result.output
    [saved] = list(tmp_path.glob("p-tail-seed5.yaml"))
    broken = runner.invoke(app, ["run", str(saved), "--report", "json", "--controller",
                                 "broken_controllers:explicit_zero_tail"])
    assert broken.exit_code == 1
    assert "holds.P-TAIL: cam-1: recording" in broken.stdout
    fixed = runner.invoke(app, ["run", str(saved), "--report", "json"])
    assert fixed.exit_code == 0, fixed.stdout
    narrowed = runner.invoke(app, ["fuzz", "--examples", "5", "--property", "P-NOMISS",
                                   "--controller", "broken_controllers:explicit_zero_tail"])
    assert narrowed.exit_code == 0, narrowed.output  # its bug is not a miss
    unknown = runner.invoke(app, ["fuzz", "--property", "P-FAST"])
    assert unknown.exit_code == 2
    assert "unknown property 'P-FAST'" in unknown.stderr
