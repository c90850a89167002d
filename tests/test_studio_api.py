"""The studio's JSON API and its cursor: answers computed in Python, bad input beside its field,
writes only inside the folder the studio was started in."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    # Starlette asks for the httpx2 fork; httpx (pinned in the test extra) works the same here.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from sim.studio.app import create_app
from sim.studio.session import Studio

pytestmark = pytest.mark.req("STUDIO")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "scenarios").mkdir()
    for name in ("arrest_warrant_team.yaml", "full_shift_12h.yaml", "deactivation_reason_refused.yaml"):
        shutil.copy(ROOT / "scenarios" / name, tmp_path / "scenarios")
    return tmp_path


@pytest.fixture
def client(home: Path) -> TestClient:
    return TestClient(create_app(Studio(home)), raise_server_exceptions=True)


def _open(client: TestClient, file: str, edits: list[dict[str, Any]] | None = None) -> Any:
    return client.post("/api/open", json={"source": {"file": file}, "edits": edits or []})


def test_library_lists_the_scenarios_and_the_page_is_served(client: TestClient) -> None:
    lib = client.get("/api/library").json()
    assert [f["file"] for f in lib["files"]] == [
        "scenarios/arrest_warrant_team.yaml", "scenarios/deactivation_reason_refused.yaml",
        "scenarios/full_shift_12h.yaml"]
    assert "dhs-2023" in lib["policies"]
    page = client.get("/")
    assert page.status_code == 200 and "bwcsim studio" in page.text
    for asset in ("/static/studio.js", "/static/studio.css"):
        assert client.get(asset).status_code == 200
    # no CDN, no URL outside the studio (the SVG namespace is a name, not a fetch)
    for asset in ("/", "/static/studio.js", "/static/studio.css"):
        urls = set(re.findall(r"https?://[^\s\"')]+", client.get(asset).text))
        assert urls <= {"http://www.w3.org/2000/svg"}, urls


def test_open_runs_and_compares_a_what_if(client: TestClient) -> None:
    first = _open(client, "scenarios/arrest_warrant_team.yaml").json()
    assert first["ok"] and first["original"] is None
    assert first["run"]["verdict"] == "pass" and first["run"]["missed_s"]["total"] == 0
    assert first["data"]["timeline"][1]["activity_id"] == "w-17"
    assert "arrest_warrant" in [a["name"] for a in first["vocabulary"]["activities"]]
    late = _open(client, "scenarios/arrest_warrant_team.yaml",
                 [{"op": "set", "field": "timeline[1].delay_s", "value": "90"}]).json()
    assert late["original"]["missed_s"]["late_trigger"] == 0
    assert late["run"]["missed_s"]["late_trigger"] == 150
    rows = {r["cause"]: r for r in late["compare"]["missed_s"]}
    assert rows["late_trigger"]["change"] == 150
    assert "<svg" in late["run"]["chart"] and "missed: late" in late["run"]["legend"]


def test_bad_edits_and_values_answer_4xx_naming_the_field(client: TestClient) -> None:
    res = _open(client, "scenarios/arrest_warrant_team.yaml",
                [{"op": "set", "field": "timeline[1].at", "value": "00:10"}])
    assert res.status_code == 422
    err = res.json()["error"]
    assert err["field"] == "timeline[1].at" and "has two parts" in err["message"]
    assert err["line"] == 21
    res = _open(client, "scenarios/arrest_warrant_team.yaml",
                [{"op": "unset", "field": "timeline[7]"}])
    assert res.status_code == 422 and res.json()["error"]["field"] == "timeline[7]"
    res = _open(client, "scenarios/arrest_warrant_team.yaml",
                [{"op": "explode", "field": "end"}])
    assert res.status_code == 422 and "unknown edit" in res.json()["error"]["message"]
    res = client.post("/api/open", content=b"{not json")
    assert res.status_code == 400
    res = _open(client, "../../etc/passwd.yaml")
    assert res.status_code == 422 and res.json()["error"]["field"] == "file"
    res = client.get("/api/cursor?run=nope&t=5")
    assert res.status_code == 404


def test_cursor_reads_each_camera_at_a_time(client: TestClient) -> None:
    run = _open(client, "scenarios/full_shift_12h.yaml").json()["run"]
    at = client.get(f"/api/cursor?run={run['run']}&t={9 * 3600 + 600}").json()
    (cam,) = at["cameras"]
    assert cam["state"] == "pre_buffer" and cam["buffer_s"] == 30
    assert cam["deactivation"] == {"reason": "medical_facility_privacy", "actor": "officer-2208",
                                   "since": 32400.0, "until": 33600.0}
    assert cam["holds"] == ["required activity p-pm (paused)"]
    assert [w["activity_id"] for w in cam["required_now"]] == ["p-pm"]
    assert cam["missing_now"] == "deactivated" and cam["missed_so_far"] == {"deactivated": 600.0}
    refused = [m for m in cam["messages"] if m["answer"] == "refused"]
    assert refused[0]["message"] == "button stop"
    assert "cannot be stopped" in refused[0]["meaning"]
    # battery carried from the report at 09:00:00 at 1 s per second while buffering
    assert cam["reported_at"] == 32400.0
    assert at["previous"] == 32400.0 and at["next"] == 33600.0
    # mid-recording: the buffer is the head of the recording, the battery drains faster
    rec = client.get(f"/api/cursor?run={run['run']}&t=1200").json()["cameras"][0]
    assert rec["state"] == "recording" and rec["buffer_s"] == 0
    assert rec["recording"] == {"incident": "cam-1-1", "start": 570.0, "buffer_s": 30.0}
    assert rec["holds"] == ["required activity p-am"]


def test_a_refused_reason_comes_with_the_allowed_ones(client: TestClient) -> None:
    run = _open(client, "scenarios/deactivation_reason_refused.yaml").json()["run"]
    (first, _second) = run["cameras"]["cam-1"]["refusals"]
    assert first["word"] == "officer_discretion" and first["error"] == "reason_not_allowed"
    assert "supervisor_order" in first["allowed"]
    at = client.get(f"/api/cursor?run={run['run']}&t=901").json()["cameras"][0]
    last = at["messages"][-1]
    assert last["answer"] == "refused" and "supervisor_order" in last["allowed"]


def test_save_writes_only_inside_the_studio_folder(client: TestClient, home: Path) -> None:
    src = {"file": "scenarios/arrest_warrant_team.yaml"}
    edits = [{"op": "set", "field": "timeline[1].delay_s", "value": 90}]
    for target, why in (("../outside.yaml", "outside the folder"), ("/tmp/x.yaml", "inside the"),
                        ("scenarios/x.txt", "ends in .yaml"), ("nowhere/x.yaml", "no folder"),
                        ("scenarios/arrest_warrant_team.yaml", "exists")):
        res = client.post("/api/save", json={"source": src, "edits": edits, "target": target})
        assert res.status_code == 422, target
        assert res.json()["error"]["field"] == "target" and why in res.json()["error"]["message"]
    (home / "link").symlink_to(home.parent)
    res = client.post("/api/save", json={"source": src, "edits": edits, "target": "link/x.yaml"})
    assert res.status_code == 422 and "outside" in res.json()["error"]["message"]
    assert not (home.parent / "x.yaml").exists()
    res = client.post("/api/save", json={"source": src, "edits": edits,
                                         "target": "scenarios/late.yaml", "pin_expect": True})
    assert res.json() == {"ok": True, "saved": "scenarios/late.yaml", "verdict": "pass",
                          "missed_s": res.json()["missed_s"]}
    saved = (home / "scenarios" / "late.yaml").read_text("utf-8")
    assert "missed_s: {total: 150, late_trigger: 150}" in saved  # expect: pinned to the result


def test_create_from_the_form_and_its_errors(client: TestClient) -> None:
    form = {"name": "Form", "end": "00:30:00", "policy": "dhs-2023",
            "cameras": [{"id": "cam-1", "team": "t-1", "initial": "pre_buffer", "prebuffer_s": ""}],
            "timeline": [{"at": "00:05:00", "team": "t-1", "event": "activity_start",
                          "activity": "patrol", "activity_id": "p-1"}]}
    res = client.post("/api/create", json=form).json()
    assert res["ok"] and res["run"]["verdict"] == "pass"
    assert "source" in res and res["source"]["text"].startswith("version: 1\nname: Form\n")
    bad = dict(form, timeline=[dict(form["timeline"][0], event="undok")])  # type: ignore[arg-type]
    res = client.post("/api/create", json=bad)
    assert res.status_code == 422
    err = res.json()["error"]
    assert err["field"] == "timeline[0].event" and "did you mean `undock`?" in err["message"]
    res = client.post("/api/create", json=dict(form, name=""))
    assert res.status_code == 422 and res.json()["error"]["field"] == "name"


def test_switching_to_a_library_policy_file(client: TestClient, home: Path) -> None:
    (home / "scenarios" / "policies").mkdir()
    shutil.copy(ROOT / "scenarios" / "policies" / "cbp-like.yaml", home / "scenarios" / "policies")
    first = _open(client, "scenarios/arrest_warrant_team.yaml").json()
    assert first["policies"] == ["dhs-2023", "policies/cbp-like.yaml"]  # as the file names it
    cbp = _open(client, "scenarios/arrest_warrant_team.yaml",
                [{"op": "set", "field": "policy", "value": "policies/cbp-like.yaml"}]).json()
    assert cbp["ok"], cbp
    assert "enforcement_encounter" in [a["name"] for a in cbp["vocabulary"]["activities"]]
    assert cbp["vocabulary"]["policy"] == "cbp-like"
    assert cbp["compare"]["missed_s"] == [{"cause": "total", "a": 0.0, "b": 0.0, "change": 0.0}]


def test_the_command_binds_only_loopback(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sim.cli import app

    result = CliRunner().invoke(app, ["studio", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "the studio serves only this machine" in result.stderr
    result = CliRunner().invoke(app, ["studio", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "no such file or folder" in result.stderr


def test_a_counterexample_carrying_its_policy_inline_opens(client: TestClient, home: Path) -> None:
    from sim.search.corners import CORNERS
    from sim.search.strategies import scenario_yaml

    (home / "scenarios" / "tails.yaml").write_text(scenario_yaml(CORNERS["tails"]), "utf-8")
    opened = _open(client, "scenarios/tails.yaml").json()
    assert opened["ok"] and opened["run"]["verdict"] == "pass", opened
    assert opened["vocabulary"]["policy"] == "corner-tails"
    tails = {a["name"]: a["post_s"] for a in opened["vocabulary"]["activities"]}
    assert tails["traffic_stop"] == 0 and tails["patrol"] == 60
