"""Policies are data (SPEC §3): the built-in dhs-2023, component policy files, and errors that
name the file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.errors import ScenarioError
from controller.params import CameraParams
from controller.policy import load_policy


@pytest.mark.req("POLICY")
def test_dhs_2023_is_what_the_spec_says() -> None:
    p = load_policy("dhs-2023")
    required = {a for a, kind in p.activities.items() if kind == "required"}
    assert required == {"patrol", "emergency_response", "arrest_warrant", "search_warrant"}
    assert p.kind("first_amendment_activity") == "prohibited"
    assert p.signals == {"holster", "taser", "lightbar", "siren", "crash"}
    assert p.deactivation_reasons == {
        "medical_facility_privacy", "victim_or_witness_request",
        "informant_or_undercover_safety", "supervisor_order",
    }
    assert set(p.post_s.values()) == {0.0}
    assert p.apply(CameraParams()) == CameraParams()


@pytest.mark.req("POLICY")
def test_component_policy_overrides_camera_parameters_and_tails(tmp_path: Path) -> None:
    f = tmp_path / "cbp.yaml"
    f.write_text(
        "name: cbp\nactivities:\n  patrol: {kind: required, post_s: 60}\n"
        "  encounter: {kind: discretionary}\npost_s: 10\n"
        "signals: [holster]\ncamera: {prebuffer_s: 120}\n", "utf-8",
    )
    p = load_policy(str(f))
    assert p.post_s == {"patrol": 60.0, "encounter": 10.0}
    assert p.kind("encounter") == "discretionary"
    assert p.apply(CameraParams()).prebuffer_s == 120


@pytest.mark.req("POLICY")
@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("name: x\nactivities:\n  foo: {knd: required}\n",
         ":3: activities.foo.knd: unknown key 'knd' (allowed here: kind, post_s)"),
        ("name: x\nactivities:\n  foo: {kind: maybe}\n",
         ":3: activities.foo.kind: Invalid enum value 'maybe'"),
        ("name: x\nactivities: {}\ncamra: {}\n", ":3: camra: unknown key 'camra'"),
        ("name: x\nactivities: {}\nsignals: [holster, drone]\n",
         ":3: signals[1]: unknown signal source 'drone'"),
        ("name: x\nactivities: {}\ncamera: {prebuffer_s: 500}\n",
         ":3: camera: prebuffer_s must be between 0 and 120"),
        ("name: x\nactivities: {}\ncamera: {record_drain: .nan}\n",
         ":3: camera: record_drain must be a finite number"),
        ("name: x\nactivities:\n  a: {kind: required}\n  a: {kind: prohibited}\n",
         ":4: activities.a: duplicate key 'a'"),
    ],
)
def test_policy_errors_name_file_line_and_field(tmp_path: Path, text: str, where: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text, "utf-8")
    with pytest.raises(ScenarioError) as err:
        load_policy(str(f))
    assert str(err.value).startswith(str(f) + where), str(err.value)


@pytest.mark.req("POLICY")
def test_a_missing_policy_names_the_built_in_ones(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="neither built in \\(dhs-2023\\)"):
        load_policy("nope.yaml", tmp_path)
