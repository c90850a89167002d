"""``bench/mutation.py``: sampling, scoring and the equivalents file, without running mutmut.

mutmut itself is an optional extra (``.[mutation]``) and a run takes minutes to hours, so these
tests check the script's own arithmetic and bookkeeping on made-up verdicts; the nightly job
(``.ci/nightly``) is where it runs for real.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import mutation

pytestmark = pytest.mark.req("BENCH")

NAMES = [f"controller.camera.xǁCameraǁ_stop__mutmut_{i}" for i in range(1, 40)] + [
    f"controller.codec.x_encode__mutmut_{i}" for i in range(1, 20)
]


def test_a_mutant_name_maps_to_its_source_file() -> None:
    assert mutation.module_of("controller.camera.xǁCameraǁ_stop__mutmut_3") == "controller/camera.py"
    assert mutation.module_of("controller.codec.x__short_id__mutmut_12") == "controller/codec.py"


def test_the_sample_is_the_same_for_the_same_seed_and_stays_in_the_modules() -> None:
    first = mutation.select(NAMES, ["camera"], 10, seed=15)
    assert first == mutation.select(NAMES, ["camera"], 10, seed=15)
    assert first != mutation.select(NAMES, ["camera"], 10, seed=16)
    assert len(first) == 10 and all("camera" in n for n in first)
    assert len(mutation.select(NAMES, [], None, seed=0)) == len(NAMES)


def test_the_score_sets_equivalents_aside_and_counts_unreached_mutants_against_it() -> None:
    mutants = [mutation.Mutant(f"m{i}", "controller/camera.py", exit_code=1) for i in range(8)]
    mutants += [mutation.Mutant("s", "controller/camera.py", exit_code=0),
                mutation.Mutant("e", "controller/camera.py", exit_code=0, reason="why"),
                mutation.Mutant("n", "controller/camera.py", exit_code=33),
                mutation.Mutant("u", "controller/camera.py", exit_code=None),
                mutation.Mutant("t", "controller/camera.py", exit_code=36)]
    outcome = mutation.Outcome(mutants=mutants, population=100, elapsed_s=1.0)
    # killed: 8 + the timeout; judged: those, the survivor and the unreached one.
    assert (outcome.count("killed"), outcome.count("equivalent"), outcome.count("not checked")) == (9, 1, 1)
    assert outcome.score == pytest.approx(9 / 11)


def test_the_wilson_interval_contains_the_estimate_and_narrows_with_the_sample() -> None:
    low, high = mutation.wilson(45, 50)
    assert low < 0.9 < high
    low2, high2 = mutation.wilson(450, 500)
    assert low < low2 < 0.9 < high2 < high
    assert mutation.wilson(0, 0) == (0.0, 1.0)


def test_an_equivalents_entry_without_a_reason_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "eq.yaml"
    path.write_text(yaml.safe_dump({"equivalent": [{"mutant": "m", "mutated": "x = 1"}]}), "utf-8")
    with pytest.raises(mutation.SetupError,
                       match=r"eq.yaml: entry 1: needs the strings mutant, mutated and reason"):
        mutation.load_equivalents(path)


def test_the_repository_equivalents_file_is_well_formed_and_each_entry_says_why() -> None:
    entries = mutation.load_equivalents(mutation.EQUIVALENTS)
    assert entries, "bench/mutation_equivalents.yaml lists no equivalent mutant"
    assert len({e["mutant"] for e in entries}) == len(entries), "an equivalent mutant is listed twice"
    for entry in entries:
        assert entry["mutant"].startswith("controller.") and len(entry["reason"]) > 20


def test_the_changed_line_is_read_from_the_diff() -> None:
    diff = "--- a\n+++ a\n@@ -1,2 +1,2 @@\n def f():\n-    return 1\n+    return 2\n"
    assert mutation.changed_line(diff) == "return 2"


def test_a_fresh_judgement_runs_the_same_test_command_as_mutmut_never_the_unit_tests() -> None:
    cmd = mutation._test_command()
    assert "tests/properties" in cmd and "tests/test_scenarios.py" in cmd
    assert "tests" not in cmd and "mutation_profile" in cmd


def test_a_fresh_kill_is_written_into_mutmuts_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    meta = tmp_path / "controller" / "camera.py.meta"
    meta.parent.mkdir()
    meta.write_text('{"exit_code_by_key": {"a": 0, "b": 0}}', "utf-8")
    monkeypatch.setattr(mutation, "MUTANTS", tmp_path)
    mutation._record({"a": 1, "elsewhere": 1})
    assert mutation.read_results() == {"a": 1, "b": 0}
