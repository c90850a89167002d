"""The JSON Schema (draft 2020-12) of the run report (``bwcsim run --report json``, SPEC §9).

``bwcsim schema --report`` prints it; ``docs/schema/report.schema.json`` is the published copy
(kept current by a test, which also validates the report of every library scenario against it).
Every key the report always carries is required; objects stay open (``additionalProperties``
is not forbidden) so that a reader written against this version keeps working when a later
one adds a key.
"""

from __future__ import annotations

from typing import Any

from sim.world.footage import PHANTOM_KINDS
from sim.world.oracle import CAUSES, REPORT_KEYS

__all__ = ["REPORT_SCHEMA_ID", "report_schema"]

REPORT_SCHEMA_ID = "urn:bwcsim:schema:report"
_DRAFT = "https://json-schema.org/draft/2020-12/schema"

_SECONDS = {"type": "number", "minimum": 0}
_TIME = {"type": "number", "description": "Seconds of simulated time from the scenario's start."}


def _obj(description: str, props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": props,
        "required": list(props) if required is None else required,
    }


def _span(description: str, extra: dict[str, Any]) -> dict[str, Any]:
    return _obj(description, {"start": _TIME, "end": _TIME, **extra})


def report_schema() -> dict[str, Any]:
    """The report's schema, with a description of every key."""
    missed = _obj(
        "Required seconds no footage covers, by cause (SPEC §8). total is the sum of every cause.",
        {k: {**_SECONDS, "description": "total: every cause together" if k == "total"
             else f"seconds missed with cause {k}"} for k in REPORT_KEYS},
    )
    miss = _span("A stretch of a required window that no footage covers, with its one cause.",
                 {"cause": {"enum": list(CAUSES)}})
    window = _obj("A required window: the activity's true start to its true end plus post_s.", {
        "activity": {"type": "string"},
        "activity_id": {"type": "string"},
        "start": _TIME,
        "end": _TIME,
        "missed": {"type": "array", "items": miss},
    })
    recording = _obj("A recording the camera published (uploaded or not), buffer included.", {
        "start": _TIME,
        "end": _TIME,
        "buffer_s": {**_SECONDS, "description": "Seconds of pre-event buffer prepended (R-BUF)."},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "incident": {"type": "string"},
        "segments": {"type": "integer", "minimum": 0},
        "segment_list": {"type": "array", "items": {
            "type": "array", "prefixItems": [_TIME, _TIME], "minItems": 2, "maxItems": 2}},
        "open": {"type": "boolean", "description": "Cut by the end of the run, not closed."},
    })
    alert = _obj("An alert the camera published.", {
        "at": _TIME,
        "kind": {"type": "string"},
        "cause": {"type": "string"},
        "activity_id": {"type": "string"},
        "span": {"type": "array", "prefixItems": [_TIME, _TIME], "minItems": 2, "maxItems": 2},
    }, required=["at", "kind"])
    phantom = _span(
        "Footage that cannot exist (P-NOPHANTOM), judged from what the camera reported: buffer "
        "(more buffer than prebuffer_s or than the time since it last reported entering "
        "pre_buffer), docked / off / standby (captured while it reported that state), overlap "
        "(a second recorded twice), gap (a recording's segments not contiguous; counts no "
        "seconds).",
        {"kind": {"enum": list(PHANTOM_KINDS)}, "recording": {"type": "string"},
         "detail": {"type": "string"}},
    )
    prohibited = _span(
        "Seconds recorded while a prohibited activity was open and no required window, manual "
        "hold or justified activation's buffer justified them (P-PRIVACY).",
        {"recording": {"type": "string"},
         "activity_ids": {"type": "array", "items": {"type": "string"}}},
    )
    camera = _obj("One camera's part of the run.", {
        "final_state": {"type": "string"},
        "required": {"type": "array", "items": window},
        "recordings": {"type": "array", "items": recording},
        "alerts": {"type": "array", "items": alert},
        "refused": {"type": "integer", "minimum": 0,
                    "description": "NACKed deliveries (a redelivered id counted once)."},
        "refusals": {"type": "array", "items": {"type": "object"},
                     "description": "Each refused message, with the reason in plain words."},
        "missed_s": missed,
        "phantom_s": {**_SECONDS, "description": "Length of the union of this camera's phantom "
                      "stretches (gaps excluded); non-zero fails the verdict."},
        "phantom": {"type": "array", "items": phantom},
        "prohibited_s": {**_SECONDS, "description": "Seconds this camera recorded that the policy "
                         "prohibits (P-PRIVACY); non-zero fails the verdict."},
        "prohibited": {"type": "array", "items": prohibited},
        "stopped": {"type": "array", "items": {"type": "string"},
                    "description": "Recordings a signal or a duplicate stopped or split "
                                   "(P-PRIVACY); any fails the verdict."},
        "unannounced": {"type": "array", "items": {"type": "string"}},
        "overdue_boot": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                         "description": "Standby reported past the camera's boot (boot_s after "
                                        "power-on or an undock) while required seconds were missed: "
                                        "those seconds are not excused as not_ready (SPEC §8). "
                                        "Present only when non-empty."},
        "accepted_forgeries": {"type": "array", "items": {"type": "string"}},
        "replies": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                    "description": "What the camera answered that the spec contradicts (P-REPLY, "
                                   "SPEC §8b), one sentence each; present only when non-empty, "
                                   "and then the verdict fails."},
        "evidence": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                     "description": "Recording metadata and alerts untrue to the facts "
                                    "(P-EVIDENCE, SPEC §8b); present only when non-empty, and "
                                    "then the verdict fails."},
        "resources": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                      "description": "Battery and storage reports, and their alerts, off the §2 "
                                     "model (P-RESOURCE, SPEC §8b); present only when non-empty, "
                                     "and then the verdict fails."},
    }, required=["final_state", "required", "recordings", "alerts", "refused", "refusals",
                 "missed_s", "phantom_s", "phantom", "prohibited_s", "prohibited", "stopped"])
    expect = {"anyOf": [{"type": "null"}, _obj("The scenario's expect: block, checked.", {
        "ok": {"type": "boolean"}, "failures": {"type": "array", "items": {"type": "string"}}})]}
    return {
        "$schema": _DRAFT,
        "$id": REPORT_SCHEMA_ID,
        "title": "bwcsim run report",
        **_obj(
            "The report of one run (bwcsim run --report json). verdict is pass when no second was "
            "missed through the controller's fault, every other miss was announced, no footage "
            "cannot exist (phantom_s 0, no gap), nothing was recorded that the policy prohibits "
            "(prohibited_s 0), no signal or duplicate stopped a recording, no command the "
            "camera had to refuse was acted on, and nothing the camera said (replies, evidence, "
            "resources) contradicts the spec.",
            {
                "scenario": {"type": "string"},
                "policy": {"type": "string"},
                "auth": {"enum": ["none", "signed"]},
                "seed": {"type": "integer"},
                "end": _TIME,
                "verdict": {"enum": ["pass", "fail"]},
                "expect": expect,
                "missed_s": missed,
                "phantom_s": {**_SECONDS, "description": "Sum of the cameras' phantom_s."},
                "prohibited_s": {**_SECONDS, "description": "Sum of the cameras' prohibited_s."},
                "cameras": {"type": "object", "additionalProperties": camera},
                "live": {"type": "object",
                         "description": "A run on a real broker only (SPEC §15)."},
            },
            required=["scenario", "policy", "auth", "seed", "end", "verdict", "expect",
                      "missed_s", "phantom_s", "prohibited_s", "cameras"],
        ),
    }
