"""Plain words where a trainer reads: the policy vocabulary, refusals and causes in the report.

A trainer must be able to find the words a scenario may use (``bwcsim policy show``), must
see a refused message with the reason and the words that would have been accepted (a guessed
deactivation reason silently refused would let a class believe the pause happened), and must
be told when a scenario pins nothing down.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app
from sim.views.vocabulary import docs_page

ROOT = Path(__file__).resolve().parents[1]

GUESSED_REASON = """\
version: 1
name: Guessed deactivation reason
end: "00:30:00"
cameras:
  - {id: cam-1}
timeline:
  - {at: "00:05:00", camera: cam-1, event: activity_start, activity: patrol, activity_id: p-1}
  - {at: "00:10:00", camera: cam-1, event: deactivate, reason: victim_privacy, actor: officer-7}
  - {at: "00:25:00", camera: cam-1, event: activity_end, activity_id: p-1}
"""


@pytest.mark.req("POLICY-VOCAB")
def test_policy_show_lists_the_whole_vocabulary() -> None:
    result = CliRunner().invoke(app, ["policy", "show", "dhs-2023"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for word in ("patrol", "arrest_warrant", "first_amendment_activity", "prohibited",
                 "medical_facility_privacy", "victim_or_witness_request", "supervisor_order",
                 "holster", "crash", "prebuffer_s", "boot_s", "activity_start", "deactivate",
                 "reason, actor"):
        assert word in out, word
    assert "button    accepted, starts nothing" in out  # listed source, not a starting one
    assert max(len(line) for line in out.splitlines()) <= 80


@pytest.mark.req("POLICY-VOCAB")
def test_policy_show_json_and_a_component_policy_file() -> None:
    result = CliRunner().invoke(
        app, ["policy", "show", str(ROOT / "scenarios/policies/cbp-like.yaml"), "--format", "json"])
    assert result.exit_code == 0, result.output
    vocab = json.loads(result.stdout)
    kinds = {a["name"]: (a["kind"], a["post_s"]) for a in vocab["activities"]}
    assert kinds["enforcement_encounter"] == ("required", 120.0)
    assert kinds["secondary_inspection"][0] == "discretionary"
    (pre,) = [p for p in vocab["parameters"] if p["name"] == "prebuffer_s"]
    assert (pre["value"], pre["default"], pre["set_by_policy"]) == (120.0, 30.0, True)


@pytest.mark.req("POLICY-VOCAB")
def test_policy_list_and_an_unknown_name() -> None:
    result = CliRunner().invoke(app, ["policy", "list", str(ROOT / "scenarios")])
    assert result.exit_code == 0
    assert "dhs-2023  (built in)" in result.stdout and "cbp-like.yaml  (policy cbp-like)" in result.stdout
    bad = CliRunner().invoke(app, ["policy", "show", "dhs-2032"])
    assert bad.exit_code == 2
    assert "did you mean `dhs-2023`?" in bad.stderr


@pytest.mark.req("POLICY-VOCAB")
def test_the_vocabulary_docs_page_is_current() -> None:
    page = (ROOT / "docs" / "vocabulary.md").read_text("utf-8")
    assert page == docs_page(ROOT), "docs/vocabulary.md is stale: regenerate it with " \
        "python -c \"from pathlib import Path; from sim.views.vocabulary import docs_page; " \
        "Path('docs/vocabulary.md').write_text(docs_page(Path('.')))\""


@pytest.mark.req("OUT-TEXT")
def test_a_refused_deactivation_shows_its_reason_and_the_allowed_ones(tmp_path: Path) -> None:
    path = tmp_path / "guess.yaml"
    path.write_text(GUESSED_REASON, encoding="utf-8")
    result = CliRunner().invoke(app, ["run", str(path)], env={"COLUMNS": "100"})
    assert result.exit_code == 0
    out = " ".join(result.stdout.split())  # the table wraps long sentences
    assert "1 message(s) refused by the camera" in out
    assert "deactivate 'victim_privacy' by officer-7 refused: the policy does not allow pausing" \
        in out
    assert "allowed: informant_or_undercover_safety, medical_facility_privacy, supervisor_order, " \
        "victim_or_witness_request" in out
    assert "did you mean `victim_or_witness_request`?" in out
    # the JSON report carries the same record
    doc = json.loads(CliRunner().invoke(app, ["run", str(path), "--report", "json"]).stdout)
    (item,) = doc["cameras"]["cam-1"]["refusals"]
    assert (item["event"], item["word"], item["error"], item["actor"]) == (
        "deactivate", "victim_privacy", "reason_not_allowed", "officer-7")
    assert item["nearest"] == "victim_or_witness_request"


@pytest.mark.req("OUT-TEXT")
def test_each_cause_is_explained_and_a_missing_expect_is_warned_about(tmp_path: Path) -> None:
    path = tmp_path / "dock.yaml"
    path.write_text(GUESSED_REASON.replace(
        "  - {at: \"00:25:00\"", "  - {at: \"00:20:00\", camera: cam-1, event: dock}\n"
        "  - {at: \"00:25:00\""), encoding="utf-8")
    out = " ".join(CliRunner().invoke(app, ["run", str(path)], env={"COLUMNS": "100"}).stdout.split())
    assert "docked: the camera was in its dock" in out
    assert "warning: this scenario has no expect: block" in out
    assert "expect: verdict: pass missed_s: {total: 300, docked: 300}" in out
    with_expect = tmp_path / "pinned.yaml"
    with_expect.write_text(path.read_text() + "expect: {verdict: pass}\n", encoding="utf-8")
    out = CliRunner().invoke(app, ["run", str(with_expect)]).stdout
    assert "warning" not in out and "expect: met" in out
