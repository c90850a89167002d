"""Plain words for what a camera refused, and why (the text report, the timeline, the studio).

Theory of operation
-------------------
A camera answers every message with an ack; a refusal carries a short machine code such as
``reason_not_allowed`` or ``invalid_json: ...``. A trainer must not have to know the codes, and
must never take a refused message for one that happened: a guessed deactivation reason that
the policy does not list is refused, so the recording never paused, and the class has to be
told so in those words. :func:`refusals` turns a camera's refusals into records that say what
arrived (event and its distinguishing word), the code, what it means, and — when the refusal
is about a word the policy fixes — the words that would have been accepted and the nearest of
them. The same records feed the JSON report, the text report, the timeline marks and the
studio's cursor panel.

A redelivered message is answered again with the same refusal (R-IDEM); like the report's
``refused`` count, each message id is listed once.
"""

from __future__ import annotations

import json
from typing import Any

from controller.policy import Policy
from sim.world.replay import ObservedCamera
from sim.world.scenario import nearest

__all__ = ["ERROR_MEANING", "describe_refusal", "explain_error", "refusal_sentence", "refusals"]

#: What each refusal code means, for a person. Codes with a detail carry it after ``": "``.
ERROR_MEANING: dict[str, str] = {
    "reason_not_allowed": "the policy does not allow pausing a required recording for this reason",
    "required_activity": "a required activity is running, so the recording cannot be stopped",
    "not_ready": "the camera could not record at that moment (docked, booting or off)",
    "storage_full": "storage was full, so nothing more could be recorded",
    "unknown_activity": "the policy does not know this activity, or no activity with this id was running",
    "unknown_type": "not an event the camera knows",
    "wrong_topic": "sent on a topic the camera does not take events from",
    "invalid_json": "not readable as JSON",
    "invalid_utf8": "not text (broken UTF-8)",
    "not_an_object": "JSON, but not an object with fields",
    "missing_field": "a field the event needs is missing",
    "invalid_field": "a field has the wrong kind of value",
    "invalid_payload": "the message does not have the shape of an event",
    "payload_too_large": "the message is larger than the camera reads",
    "internal_error": "the controller failed while handling it",
}

# Which message field holds the word a refusal is about, per event type.
_DETAIL_FIELD = {"activity_start": "activity", "activity_end": "activity_id", "button": "action",
                 "signal": "source", "deactivate": "reason"}


def explain_error(error: str | None) -> str:
    """The plain-words meaning of a refusal code (``"?"`` when the camera gave none)."""
    if not error:
        return "refused without a reason"
    code = error.split(":", 1)[0].strip()
    return ERROR_MEANING.get(code, error)


def _allowed(event: str, fields: dict[str, Any], error: str, policy: Policy) -> list[str]:
    """The words that would have been accepted instead, when the refusal is about a word."""
    if error == "reason_not_allowed":
        return sorted(policy.deactivation_reasons)
    if error.startswith("unknown_activity:") and event == "activity_start":
        return list(policy.activities)
    return []


def describe_refusal(event: str, fields: dict[str, Any], error: str,
                     policy: Policy) -> dict[str, Any]:
    """``meaning`` of a refusal, and ``allowed``/``nearest`` words when it is about a word."""
    out: dict[str, Any] = {"meaning": explain_error(error)}
    allowed = _allowed(event, fields, error, policy)
    if allowed:
        out["allowed"] = allowed
        guess = nearest(fields.get(_DETAIL_FIELD.get(event, "")), allowed)
        if guess is not None:
            out["nearest"] = guess
    return out


def refusals(run: ObservedCamera, policy: Policy) -> list[dict[str, Any]]:
    """Each message the camera refused, once per message id, in arrival order (JSON-ready)."""
    out: list[dict[str, Any]] = []
    seen: set[object] = set()
    for ref in run.refusals:
        ack = ref.ack
        if ack.id is not None:
            if ack.id in seen:
                continue
            seen.add(ack.id)
        try:
            body = json.loads(ref.payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            body = None
        event = body.get("type") if isinstance(body, dict) else None
        fields = ({k: v for k, v in body.items() if k not in ("id", "type", "ts")}
                  if isinstance(body, dict) else {})
        detail_key = _DETAIL_FIELD.get(event, "") if isinstance(event, str) else ""
        detail = fields.get(detail_key)
        error = ack.error or ""
        item: dict[str, Any] = {
            "at": round(ref.at, 6),
            "id": ack.id,
            "event": event if isinstance(event, str) else "malformed",
            "word": detail if isinstance(detail, str) else None,
        }
        if isinstance(event, str) and event == "deactivate" and isinstance(fields.get("actor"), str):
            item["actor"] = fields["actor"]
        item["error"] = error
        item.update(describe_refusal(str(event), fields, error, policy))
        out.append(item)
    return out


def refusal_sentence(item: dict[str, Any]) -> str:
    """One line: ``deactivate 'victim_privacy' (by officer-12) refused: the policy does not ...``."""
    what = item["event"] + (f" {item['word']!r}" if item.get("word") else "")
    if item.get("actor"):
        what += f" by {item['actor']}"
    text = f"{what} refused: {item['meaning']}"
    if item.get("allowed"):
        text += f"; allowed: {', '.join(item['allowed'])}"
    if item.get("nearest"):
        text += f" (did you mean `{item['nearest']}`?)"
    return text
