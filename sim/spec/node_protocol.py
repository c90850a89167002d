"""The published JSON Schema of the node protocol (SPEC §15, ``docs/node-protocol.md``).

Generated from the msgspec types of :mod:`controller.wire` -- the types the host decodes
answers with and the reference child decodes requests with -- so the schema cannot drift from
what is on the wire. This module adds the prose a reader needs: what each message is for and
what each field means. ``bwcsim schema --node-protocol`` prints it; a test keeps
``docs/schema/node-protocol.schema.json`` current.
"""

from __future__ import annotations

from typing import Any

import msgspec

from controller.messages import STATES
from controller.wire import (
    PROTOCOL,
    AuditAnswer,
    DeadlineAnswer,
    DoneAnswer,
    ErrorAnswer,
    HelloAnswer,
    Request,
    SetupAnswer,
    StepAnswer,
)

__all__ = ["SCHEMA_ID", "node_protocol_schema"]

SCHEMA_ID = "urn:bwcsim:schema:node-protocol-v1"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

ANSWERS: dict[str, Any] = {
    "HelloAnswer": HelloAnswer,
    "SetupAnswer": SetupAnswer,
    "StepAnswer": StepAnswer,
    "DeadlineAnswer": DeadlineAnswer,
    "AuditAnswer": AuditAnswer,
    "DoneAnswer": DoneAnswer,
    "ErrorAnswer": ErrorAnswer,
}

_DOCS: dict[str, str] = {
    "Request": "A request from the host (bwcsim) to the child, one per line on the child's stdin, "
               "tagged by `op`.",
    "Hello": "First request of every conversation: the protocol version the host speaks and "
             "the features it can use. Answered with HelloAnswer, or ErrorAnswer when the child "
             "speaks another version.",
    "Setup": "Build one camera's controller and call it `node` from now on. Answered with "
             "SetupAnswer. One child may serve many cameras at once, each its own node.",
    "Start": "Power the camera on at `now`: it announces availability and its first retained "
             "state. Answered with StepAnswer.",
    "Deliver": "One MQTT delivery to the camera at `now`. Answered with StepAnswer (at least the "
               "ack of the message). The handler must never fail on bad input: it NACKs it.",
    "Timer": "Run every internal event due at or before `now` (the host sends it at the "
             "deadline the last answer named). Answered with StepAnswer.",
    "Deadline": "Ask for the node's next deadline. Answered with DeadlineAnswer. The host "
                "normally relies on the deadline in every StepAnswer instead.",
    "Finish": "End of observation at `now`: open recordings are published as they stand "
              "(marked open). Answered with StepAnswer; the node is released afterwards -- "
              "with feature audit, only once the host closes it (until then it answers audit "
              "and close).",
    "Audit": "Feature audit: read the node's hash-chained audit log (R-AUDIT) from entry "
             "`first` on, before or after finish. Answered with AuditAnswer.",
    "Close": "Release a node the host no longer drives, without publishing (or a finished "
             "node whose audit log the host no longer needs). Answered with DoneAnswer.",
    "Bye": "Shutdown. Answered with DoneAnswer; then the child exits with status 0. End of "
           "input on stdin means the same.",
    "CameraParams": "Every camera parameter of SPEC §2, policy overrides and scenario values "
                    "already applied.",
    "PolicyDoc": "The policy the camera runs under, resolved: every activity with its own "
                 "post_s, the listed signal sources, the allowed deactivation reasons.",
    "ActivityRule": "One activity of the policy.",
    "RoleDoc": "What one role may send.",
    "Publish": "One MQTT publication the camera asks for.",
    "HelloAnswer": "The child's side of the handshake.",
    "SetupAnswer": "The topic filters the new node subscribes to (QoS 1).",
    "StepAnswer": "What the step published, in order, and the node's next deadline.",
    "DeadlineAnswer": "The node's next deadline.",
    "AuditAnswer": "The node's audit entries from `first` on, and the hash of its last entry.",
    "AuditEntry": "One audit entry: [seq, at, kind, data, prev, hash]. hash is the SHA-256 "
                  "(hex) of the canonical JSON text of [prev, seq, at, kind, data] "
                  "(docs/node-protocol.md, \"Reading the audit log\"); prev is the hash of "
                  "the entry before, or for the first entry SHA-256 of "
                  "\"bwcsim-audit:<camera id>\".",
    "DoneAnswer": "The answer to close and bye.",
    "ErrorAnswer": "The child could not serve the request (unknown node, unsupported version, "
                   "a handler that failed). The host reports it with the camera and the "
                   "request; the child stays in service.",
}

_FIELDS: dict[str, str] = {
    "op": "The request kind.",
    "seq": "The host's request counter, from 0; an answer repeats the seq of its request.",
    "node": "The number the host gave this camera in setup.",
    "now": "The host's time, in seconds (virtual time in a replay; Unix time or seconds since "
           "start in `bwcsim live`). Never earlier than the previous request's.",
    "protocol": f"The protocol version (this document: {PROTOCOL}).",
    "host": "Who is asking (for the child's logs).",
    "camera_id": "The camera's id: its topics are <prefix>/<camera_id>/...",
    "teams": "Teams the camera belongs to: it also receives <prefix>/team/<team>/event.",
    "initial": "The state the camera starts in.",
    "prefix": "The topic prefix (default bwc).",
    "params": "The camera's parameters.",
    "policy": "The policy document.",
    "topic": "The MQTT topic.",
    "payload": "The exact payload bytes, base64 (RFC 4648, padded). Binary-safe.",
    "retain": "Publish retained (the camera's state and availability are).",
    "qos": "MQTT QoS of the publication.",
    "publish": "The publications the step caused, in the order they are to be made.",
    "deadline": "When the node next needs a timer request, in the host's time; null: none.",
    "subscriptions": "Topic filters to subscribe to.",
    "name": "The child's name and version (for reports and logs).",
    "max_cameras": "How many cameras the child serves at a time; null: any number. With 1, "
                   "the host starts one child per camera.",
    "error": "Why the request could not be served.",
    "features": "In hello: the features the host can use. In its answer: those the child "
                "accepts (left out, or empty: none). The one feature so far is audit.",
    "first": "The index of the first entry wanted (0: the whole log).",
    "entries": "The entries, oldest first.",
    "head": "The hash of the node's last entry (the genesis value when it has none): "
            "the whole chain must end there.",
    "kind": "What the policy says about the activity.",
    "post_s": "Recording continues this long after the activity ends.",
    "activities": "Activity name to its rule.",
    "signals": "Device sources that start a recording.",
    "deactivation_reasons": "Reasons for which a required recording may be paused.",
    "roles": "Role to what it may send (SPEC §14).",
    "max_skew_s": "How far a command's ts may lie ahead of the camera's clock.",
    "events": "Event types the role may send.",
    "own_camera": "The role may command only the camera its principal is bound to.",
    "trust": "The trust file the camera is provisioned with; null: auth none (SPEC §14).",
    "limits": "The caps of R-BOUND.",
}


def _describe(defs: dict[str, Any]) -> None:
    for name, schema in defs.items():
        if name in _DOCS:
            schema["description"] = _DOCS[name]
        if name == "CameraParams":
            continue  # its fields are SPEC §2's table
        for field_name, prop in schema.get("properties", {}).items():
            if field_name in _FIELDS:
                prop["description"] = _FIELDS[field_name]
            if name == "Setup" and field_name == "initial":
                prop["enum"] = [s for s in STATES if s in ("docked", "standby", "pre_buffer")]


def node_protocol_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of every message of node protocol v1."""
    types = [Request, *ANSWERS.values()]
    tops, components = msgspec.json.schema_components(types, ref_template="#/$defs/{name}")
    defs: dict[str, Any] = {"Request": {"title": "Request", **tops[0]}, **components}
    _describe(defs)
    return {
        "$schema": DRAFT,
        "$id": SCHEMA_ID,
        "title": f"bwcsim node protocol v{PROTOCOL}",
        "description": (
            "Messages between bwcsim (the host) and a controller running as a child process: "
            "one UTF-8 JSON object per line, requests on the child's stdin, exactly one answer "
            "per request on its stdout, in order. A request validates against $defs/Request; "
            "the answer to op hello is a HelloAnswer, to setup a SetupAnswer, to start, deliver, "
            "timer and finish a StepAnswer, to deadline a DeadlineAnswer, to audit an "
            "AuditAnswer, to close and bye a DoneAnswer -- or, for any request, an ErrorAnswer. "
            "See docs/node-protocol.md."
        ),
        "$defs": defs,
        "anyOf": [{"$ref": f"#/$defs/{name}"} for name in ("Request", *ANSWERS)],
    }


def transcript(lines: list[tuple[str, bytes]]) -> str:
    """A conversation as ``docs/node-protocol.md`` shows it: each frame on its own line after
    ``→`` (host to child) or ``←`` (child to host), and under each frame that carries MQTT
    payloads, the payloads decoded, as ``#`` comments."""
    import base64

    out: list[str] = []
    for direction, line in lines:
        out.append(f"{direction} {line.decode('utf-8')}")
        doc = msgspec.json.decode(line)
        frames = doc.get("publish", [])
        if "payload" in doc and "topic" in doc:
            frames = [doc]
        for frame in frames:
            payload = base64.b64decode(frame["payload"]).decode("utf-8", "replace")
            out.append(f"#   {frame['topic']}  {payload}")
    return "\n".join(out) + "\n"
