"""The published contract of the camera's MQTT interface: JSON Schema and AsyncAPI (SPEC §5).

Both documents are *generated* from the msgspec types of :mod:`controller.messages` — the same
types the codec decodes with — so the schema cannot drift from what the camera accepts and
sends. msgspec gives the structure; this module adds what a reader needs and the types cannot
say: a description of every payload and field, the closed vocabularies (states, alert kinds,
miss causes), and the topic scheme.

* :func:`json_schema` — one JSON Schema (draft 2020-12) document: every payload under ``$defs``
  (``Event`` is the inbound union, tagged by ``type``), and a top level that accepts any of them.
  :func:`payload_schema` narrows it to one payload, for validators.
* :func:`asyncapi_document` — AsyncAPI 3.0: one channel per topic with ``{camera}`` and ``{team}``
  parameters, the camera's ``receive``/``send`` operations with MQTT bindings (QoS, retained),
  and the Last Will in the server binding. Its schemas are the same ones, rewritten into the
  AsyncAPI schema dialect (draft-07 based: ``prefixItems`` becomes ``items``, the discriminator is
  a property name).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import msgspec

from controller.bounds import MAX_DEPTH
from controller.codec import MAX_PAYLOAD
from controller.messages import (
    ALERT_KINDS,
    AUTH_MODES,
    MISS_CAUSES,
    STATES,
    Ack,
    Alert,
    AuditHead,
    Event,
    RecordingMeta,
    StateReport,
)
from controller.trust import Signed

__all__ = ["PAYLOADS", "SCHEMA_ID", "asyncapi_document", "json_schema", "payload_schema", "render"]

SCHEMA_ID = "urn:bwcsim:schema:mqtt-payloads"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

#: Named payloads → the msgspec type that defines each.
PAYLOADS: dict[str, Any] = {
    "Event": Event,
    "Signed": Signed,
    "Ack": Ack,
    "StateReport": StateReport,
    "Alert": Alert,
    "RecordingMeta": RecordingMeta,
    "AuditHead": AuditHead,
}

_TYPE_DOCS: dict[str, str] = {
    "Event": (
        "An inbound event (topics <prefix>/<camera>/event and <prefix>/team/<team>/event, or the same "
        "with the sender's name as one more level, QoS 1), tagged by `type`. UTF-8 JSON object of at most "
        f"{MAX_PAYLOAD} bytes, nested at most {MAX_DEPTH} levels; strings at most 128 bytes of "
        "UTF-8, integers 64-bit. Unknown extra fields are ignored. Every event is answered on the "
        "camera's ack topic. A camera provisioned with a trust file (auth: signed) takes events "
        "only inside a Signed envelope; one without (auth: none) takes them bare."
    ),
    "Signed": (
        "A signed command (SPEC §14), sent instead of a bare Event to a camera with auth: signed. "
        "`body` is the Event as JSON text, with `seq` and `to` set; `sig` is the Ed25519 signature "
        "of the exact UTF-8 bytes of `body` by a key of principal `by` in the camera's trust file. "
        "The camera verifies before it parses the body. Refusals: unauthorized (unsigned, unknown "
        "principal, bad signature, role may not send the type, not its own camera, signed for "
        "another target, actor not the signer, not the starter of the activity it ends), replayed "
        "(seq not above the principal's last), stale (ts more than max_skew_s ahead)."
    ),
    "ActivityStart": "A policy activity begins. A required one starts (or extends) a recording (R-TRIG).",
    "ActivityEnd": "The activity named by `activity_id` ended; unknown ids are refused.",
    "Dock": "The camera was put in its dock: the recording closes, charging and offload begin.",
    "Undock": "The camera left the dock: it boots (standby), then buffers.",
    "Button": "The record button: `start` takes a manual hold, `stop` releases it (refused during a "
              "required activity, R-STOP).",
    "Signal": "A device signal (holster, taser, lightbar, siren, crash, button): starts a recording "
              "when the policy lists the source; never stops one.",
    "Deactivate": "Pause recording during a required activity for a policy-allowed reason (audited).",
    "Reactivate": "Resume recording after a deactivation.",
    "Ack": "The camera's reply to one inbound message (topic <prefix>/<camera>/ack, not retained).",
    "StateReport": "The camera's state (topic <prefix>/<camera>/state, retained, last value wins).",
    "Alert": "Something the operator must know (topic <prefix>/<camera>/alert, not retained).",
    "RecordingMeta": (
        "Metadata of one recording, published on <prefix>/<camera>/recording each time one of its "
        "segments closes (R-META). `recording` is stable across segments; `final` marks the "
        "message sent when the whole recording closes."
    ),
    "AuditHead": (
        "The head of the live camera's hash-chained audit file (topic <prefix>/<camera>/audit, "
        "retained; published at least every minute and at every rotation). `bwcsim audit verify "
        "--head` checks the file against it (R-AUDITFILE)."
    ),
    "Availability": (
        "Plain text, not JSON: `online` (retained, published on connect) or `offline` (retained; "
        "the Last Will, and published on a clean stop). Topic <prefix>/<camera>/availability."
    ),
}

_EVENT_FIELDS = {
    "type": "Event type; selects the payload variant.",
    "id": "Message id (string or integer). A repeated id (QoS 1 redelivery) is acknowledged again "
          "with the first reply and has no second effect (R-IDEM).",
    "ts": "When the activity really began, in seconds on the camera's clock. Used to detect a "
          "trigger the pre-event buffer cannot reach back to (late_trigger alert, R-LATE); a ts more "
          "than the policy's max_skew_s (default 300) ahead of the camera's clock is refused as "
          "stale (R-FRESH).",
    "seq": "Signed commands: the sender's sequence number, rising with every command it sends (gaps "
           "allowed); one at or below the last the camera accepted from that principal is refused "
           "as replayed, whatever its id (R-FRESH). Ignored by a camera with auth: none.",
    "to": "Signed commands: what the command was signed for, the camera id or team/<team> of the "
          "topic it is published on; a copy delivered elsewhere is refused (R-AUTH). Ignored by a "
          "camera with auth: none.",
}

_FIELD_DOCS: dict[str, dict[str, str]] = {
    "ActivityStart": {
        "activity": "Activity name as the policy lists it (e.g. arrest_warrant, search_warrant, patrol); "
                    "names the policy does not know are refused with unknown_activity.",
        "activity_id": "The sender's id for this occurrence; the matching activity_end names it. "
                       "Overlapping activities are reference-counted by it (R-NOSPLIT).",
    },
    "ActivityEnd": {"activity_id": "The id given in the activity_start."},
    "Button": {"action": "`start` or `stop`."},
    "Signal": {"source": "The device that signalled."},
    "Deactivate": {
        "reason": "Why recording pauses; must be one the policy allows (else reason_not_allowed).",
        "actor": "Who decided, for the audit log; never empty. With auth: signed it must be the "
                 "signing principal.",
    },
    "Signed": {
        "by": "The principal that signed (its name in the camera's trust file).",
        "sig": "Ed25519 signature of the UTF-8 bytes of `body`, base64url without padding (86 "
               "characters).",
        "body": "The signed Event, as JSON text: the exact bytes the signature covers.",
    },
    "Ack": {
        "id": "The inbound message's id; null when no id could be read from the payload.",
        "ok": "true: accepted (or a harmless no-op); false: refused, nothing changed.",
        "error": "Present when refused: a code, then details after ': ' — invalid_utf8, invalid_json, "
                 "not_an_object, missing_field, invalid_field, unknown_type, unknown_activity, "
                 "payload_too_large, too_deep, too_long, too_many_activities, "
                 "unauthorized, replayed, stale, wrong_topic, not_ready, storage_full, "
                 "required_activity, reason_not_allowed, internal_error; from the live edge: "
                 "retained (a command published with the retain flag), rate_limited (the sender "
                 "exceeded its rate).",
    },
    "StateReport": {
        "state": "The camera state (one of the state table, never a sub-state).",
        "since": "When the camera entered this state, seconds on the camera's clock.",
        "active": "Ids of the required activities currently open (start seen, end + post_s not passed).",
        "battery_s": "Remaining charge, in seconds of buffering.",
        "storage_s": "Free storage, in seconds of footage.",
        "auth": "How the camera authenticates commands: signed (Ed25519 against its trust file) or "
                "none (anyone who can publish on its event topics commands it).",
    },
    "Alert": {
        "kind": "What happened.",
        "at": "When, seconds on the camera's clock.",
        "cause": "For missed_required_recording: why the camera could not record.",
        "activity_id": "The activity concerned, when there is one.",
        "span": "For late_trigger: the uncovered [start, end] seconds; for restarted: the seconds the "
                "camera was not running.",
        "detail": "For bus_fault: what the broker refused or what happened to the link, e.g. "
                  "'subscribe_refused: bwc/team/sr-1/event (Not authorized)'.",
        "alert_id": "Names this alert for good (<camera>-a<n> from the recording logic, <camera>-e<n> "
                    "from the live edge, n counting up across restarts): a copy published again after "
                    "a restart or a retry has the same id, so a subscriber can drop the duplicate.",
    },
    "AuditHead": {
        "head": "Hash of the newest entry written to stable storage (hex SHA-256).",
        "seq": "Its sequence number in the chain.",
        "segment": "The file it is in: 0 for the first audit-000000.jsonl, and so on.",
        "at": "Its time, seconds on the camera's clock.",
    },
    "RecordingMeta": {
        "camera": "Camera id.",
        "recording": "Recording id, stable across its segments.",
        "incident": "Incident id; a recording resumed after a deactivation keeps it.",
        "start": "Start of the footage, buffer included (seconds).",
        "end": "End of the footage so far (seconds).",
        "buffer_s": "Seconds of pre-event buffer prepended at activation (R-BUF).",
        "reasons": "What held the recording: activity ids, signal:<source>, button.",
        "segments": "Number of segments so far (a new one every segment_max_s, no gap, R-ROLL).",
        "segment_list": "[start, end] of each segment.",
        "final": "true on the message sent when the whole recording closes.",
        "open": "true when the recording was cut by the end of observation, not closed by the camera.",
    },
}

_ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("StateReport", "state"): STATES,
    ("Alert", "kind"): ALERT_KINDS,
    ("Alert", "cause"): MISS_CAUSES,
    ("StateReport", "auth"): AUTH_MODES,
}


def _enrich(defs: dict[str, Any]) -> None:
    for name, schema in defs.items():
        # msgspec copies class docstrings (written for programmers); the interface text wins.
        schema["description"] = _TYPE_DOCS.get(name, schema.get("description", ""))
        is_event = "type" in schema.get("properties", {})
        fields = {**(_EVENT_FIELDS if is_event else {}), **_FIELD_DOCS.get(name, {})}
        for field_name, prop in schema.get("properties", {}).items():
            if field_name in fields:
                prop["description"] = fields[field_name]
            allowed = _ENUMS.get((name, field_name))
            if allowed is not None:
                _restrict(prop, list(allowed))


def _restrict(prop: dict[str, Any], allowed: list[str]) -> None:
    """Narrow a string (or nullable string) property to ``allowed`` values."""
    if prop.get("type") == "string":
        prop["enum"] = allowed
        return
    for option in prop.get("anyOf", []):
        if option.get("type") == "string":
            option["enum"] = allowed


def _generate(ref_template: str) -> dict[str, Any]:
    """Every named payload and its parts, as one ``name → schema`` mapping."""
    tops, components = msgspec.json.schema_components(list(PAYLOADS.values()), ref_template=ref_template)
    defs: dict[str, Any] = dict(components)
    for name, top in zip(PAYLOADS, tops, strict=True):
        if name not in defs:  # the Event union has no component of its own
            defs[name] = {"title": name, **top}
    defs["Availability"] = {"title": "Availability", "type": "string", "enum": ["online", "offline"]}
    _enrich(defs)
    return defs


def json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of every payload of the interface (see the module docstring)."""
    defs = _generate("#/$defs/{name}")
    return {
        "$schema": DRAFT,
        "$id": SCHEMA_ID,
        "title": "bwcsim camera MQTT payloads",
        "description": (
            "Payloads of the body-worn camera's MQTT interface. Inbound: Event (bare, or inside a "
            "Signed envelope). Outbound: Ack, "
            "StateReport, Alert, RecordingMeta (JSON objects) and Availability (plain text). "
            "Validate one payload kind against $defs/<Name>."
        ),
        "$defs": defs,
        "anyOf": [{"$ref": f"#/$defs/{name}"} for name in (*PAYLOADS, "Availability")],
    }


def payload_schema(name: str) -> dict[str, Any]:
    """A schema that accepts exactly the payload ``name`` (``Event``, ``Ack``, ...)."""
    doc = json_schema()
    if name not in doc["$defs"]:
        raise KeyError(f"no payload named {name!r} (one of: {', '.join(doc['$defs'])})")
    return {"$schema": DRAFT, "$ref": f"#/$defs/{name}", "$defs": doc["$defs"]}


# ------------------------------------------------------------------------------ AsyncAPI


def _to_asyncapi_dialect(node: Any) -> Any:
    """Rewrite 2020-12 keywords the AsyncAPI (draft-07 based) schema object does not have."""
    if isinstance(node, list):
        return [_to_asyncapi_dialect(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _to_asyncapi_dialect(value) for key, value in node.items()}
    if "prefixItems" in out:
        out["items"] = out.pop("prefixItems")
        out.pop("additionalItems", None)
    elif out.get("items") is False:
        del out["items"]
    discriminator = out.get("discriminator")
    if isinstance(discriminator, dict):
        out["discriminator"] = discriminator.get("propertyName", "type")
    return out


def _mqtt(qos: int, retain: bool) -> dict[str, Any]:
    return {"mqtt": {"qos": qos, "retain": retain, "bindingVersion": "0.2.0"}}


def asyncapi_document(prefix: str = "bwc") -> dict[str, Any]:
    """The AsyncAPI 3.0 document of one camera's topics under ``prefix``."""
    schemas = _to_asyncapi_dialect(copy.deepcopy(_generate("#/components/schemas/{name}")))

    def message(name: str, content_type: str = "application/json") -> dict[str, Any]:
        return {
            "name": name,
            "title": name,
            "summary": _TYPE_DOCS[name].split(". ")[0].rstrip(".") + ".",
            "contentType": content_type,
            "payload": {"$ref": f"#/components/schemas/{name}"},
        }

    camera_param = {"description": "Camera id (one MQTT topic level)."}
    team_param = {"description": "Team id; an event here goes to every camera of the team."}
    sender_param = {"description": "The sending principal's user name on the broker."}
    # (channel key, address suffix, message, direction, retained, description)
    outbound = [
        ("state", "state", "StateReport", True, "The camera's state; retained, last value wins."),
        ("availability", "availability", "Availability", True,
         "`online` while connected; `offline` as Last Will and on a clean stop. Retained."),
        ("ack", "ack", "Ack", False, "One reply per inbound message, correlated by `id`."),
        ("alert", "alert", "Alert", False, "Alerts: late trigger, missed recording, battery, storage."),
        ("recording", "recording", "RecordingMeta", False, "Recording metadata when a segment closes."),
        ("audit", "audit", "AuditHead", True,
         "The live camera's audit chain head; retained, at least every minute and at every rotation."),
    ]
    channels: dict[str, Any] = {
        "cameraEvent": {
            "address": f"{prefix}/{{camera}}/event",
            "title": "Camera events",
            "description": "Events for one camera. QoS 1; the camera answers each on its ack channel.",
            "parameters": {"camera": dict(camera_param)},
            "messages": {"event": {"$ref": "#/components/messages/Event"},
                         "signed": {"$ref": "#/components/messages/Signed"}},
        },
        "teamEvent": {
            "address": f"{prefix}/team/{{team}}/event",
            "title": "Team events",
            "description": "Events for every camera of a team, whatever its state. QoS 1.",
            "parameters": {"team": team_param},
            "messages": {"event": {"$ref": "#/components/messages/Event"},
                         "signed": {"$ref": "#/components/messages/Signed"}},
        },
        "cameraEventBySender": {
            "address": f"{prefix}/{{camera}}/event/{{sender}}",
            "title": "Camera events, by sender",
            "description": "The same events with the sender's name as the last level. The broker "
                           "configuration `bwcsim broker-config` generates lets a principal write only "
                           "under its own name and nobody on the bare event topic, so the camera knows "
                           "who sent what (rate limits are per sender).",
            "parameters": {"camera": dict(camera_param), "sender": dict(sender_param)},
            "messages": {"event": {"$ref": "#/components/messages/Event"},
                         "signed": {"$ref": "#/components/messages/Signed"}},
        },
        "teamEventBySender": {
            "address": f"{prefix}/team/{{team}}/event/{{sender}}",
            "title": "Team events, by sender",
            "description": "Team events with the sender's name as the last level (see cameraEventBySender).",
            "parameters": {"team": team_param, "sender": dict(sender_param)},
            "messages": {"event": {"$ref": "#/components/messages/Event"},
                         "signed": {"$ref": "#/components/messages/Signed"}},
        },
    }
    operations: dict[str, Any] = {
        "receiveCameraEvent": {
            "action": "receive",
            "title": "Receive a camera event",
            "channel": {"$ref": "#/channels/cameraEvent"},
            "messages": [{"$ref": "#/channels/cameraEvent/messages/event"},
                         {"$ref": "#/channels/cameraEvent/messages/signed"}],
            "bindings": _mqtt(1, False),
            "reply": {
                "channel": {"$ref": "#/channels/ack"},
                "messages": [{"$ref": "#/channels/ack/messages/ack"}],
            },
        },
        "receiveTeamEvent": {
            "action": "receive",
            "title": "Receive a team event",
            "channel": {"$ref": "#/channels/teamEvent"},
            "messages": [{"$ref": "#/channels/teamEvent/messages/event"},
                         {"$ref": "#/channels/teamEvent/messages/signed"}],
            "bindings": _mqtt(1, False),
            "reply": {
                "channel": {"$ref": "#/channels/ack"},
                "messages": [{"$ref": "#/channels/ack/messages/ack"}],
            },
        },
    }
    for key in ("cameraEventBySender", "teamEventBySender"):
        operations[f"receive{key[0].upper()}{key[1:]}"] = {
            "action": "receive",
            "title": f"Receive a {'team' if key.startswith('team') else 'camera'} event from a named sender",
            "channel": {"$ref": f"#/channels/{key}"},
            "messages": [{"$ref": f"#/channels/{key}/messages/event"},
                         {"$ref": f"#/channels/{key}/messages/signed"}],
            "bindings": _mqtt(1, False),
            "reply": {
                "channel": {"$ref": "#/channels/ack"},
                "messages": [{"$ref": "#/channels/ack/messages/ack"}],
            },
        }
    for key, suffix, msg_name, retained, description in outbound:
        channels[key] = {
            "address": f"{prefix}/{{camera}}/{suffix}",
            "title": key.capitalize(),
            "description": description,
            "parameters": {"camera": dict(camera_param)},
            "messages": {key: {"$ref": f"#/components/messages/{msg_name}"}},
        }
        operations[f"send{key.capitalize()}"] = {
            "action": "send",
            "title": f"Publish {key}",
            "channel": {"$ref": f"#/channels/{key}"},
            "messages": [{"$ref": f"#/channels/{key}/messages/{key}"}],
            "bindings": _mqtt(1, retained),
        }
    messages = {name: message(name) for name in PAYLOADS}
    messages["Availability"] = message("Availability", "text/plain")
    return {
        "asyncapi": "3.0.0",
        "id": SCHEMA_ID.replace(":schema:", ":asyncapi:"),
        "info": {
            "title": "bwcsim body-worn camera",
            "version": "1.0.0",
            "description": (
                "The MQTT interface of one body-worn camera controller: it receives events for "
                "itself and its teams, and publishes its state, availability, acks, alerts and "
                "recording metadata. Payloads are UTF-8 JSON objects except availability."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:1883",
                "protocol": "mqtt",
                "protocolVersion": "5",
                "description": "A broker on loopback (as in the project's tests).",
                "bindings": {
                    "mqtt": {
                        "cleanSession": False,
                        "keepAlive": 30,
                        "lastWill": {
                            "topic": f"{prefix}/{{camera}}/availability",
                            "qos": 1,
                            "message": "offline",
                            "retain": True,
                        },
                        "bindingVersion": "0.2.0",
                    }
                },
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def render(doc: dict[str, Any], fmt: str = "json") -> str:
    """``doc`` as indented JSON or as YAML (block style, key order kept)."""
    if fmt == "yaml":
        import yaml

        return str(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100))
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
