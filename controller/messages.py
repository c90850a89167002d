"""Typed messages of the camera's MQTT interface (SPEC §5).

Inbound events are a tagged union on ``type``; outbound payloads are plain structs. These are
values only: :mod:`controller.codec` is the one place that turns them into bytes and back.
"""

from __future__ import annotations

from typing import Annotated, Literal, final

import msgspec

MsgId = str | int

# Inbound strings the camera keeps or echoes are short (R-BOUND): at most 128 characters here,
# and at most 128 bytes of UTF-8 (checked after decoding, see controller.bounds). Integers are
# 64-bit. The published schema shows these limits.
FIELD_MAX = 128
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
Text = Annotated[str, msgspec.Meta(max_length=FIELD_MAX)]
Int64 = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
WireId = Text | Int64
Seq = Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]

ACTIVITY_KINDS = ("required", "prohibited", "discretionary")
ALERT_KINDS = (
    "late_trigger",
    "missed_required_recording",
    "low_battery",
    "battery_empty",
    "storage_full",
    "restarted",
    "bus_fault",
)
MISS_CAUSES = ("docked", "not_ready", "battery", "storage")
AUTH_MODES = ("signed", "none")
STATES = ("docked", "standby", "pre_buffer", "recording", "off")

# ---------------------------------------------------------------------------------- inbound


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", forbid_unknown_fields=False):
    id: WireId
    ts: float | None = None
    # With signed commands (SPEC §14): the sender's sequence number and the target the body
    # was signed for (a camera id or ``team/<team>``), so neither a replay nor a copy sent to
    # another camera passes. Ignored when the camera runs ``auth: none``.
    seq: Seq | None = None
    to: Text | None = None


@final
class ActivityStart(_Event, tag="activity_start", frozen=True):
    activity: Text
    activity_id: Text


@final
class ActivityEnd(_Event, tag="activity_end", frozen=True):
    activity_id: Text


@final
class Dock(_Event, tag="dock", frozen=True):
    pass


@final
class Undock(_Event, tag="undock", frozen=True):
    pass


@final
class Button(_Event, tag="button", frozen=True):
    action: Literal["start", "stop"]


@final
class Signal(_Event, tag="signal", frozen=True):
    source: Text


@final
class Deactivate(_Event, tag="deactivate", frozen=True):
    reason: Text
    # Who decided: never nobody. With signed commands it must be the signing principal.
    actor: Annotated[str, msgspec.Meta(min_length=1, max_length=FIELD_MAX)]


@final
class Reactivate(_Event, tag="reactivate", frozen=True):
    pass


Event = ActivityStart | ActivityEnd | Dock | Undock | Button | Signal | Deactivate | Reactivate
EVENT_TYPES: dict[str, type[Event]] = {
    "activity_start": ActivityStart,
    "activity_end": ActivityEnd,
    "dock": Dock,
    "undock": Undock,
    "button": Button,
    "signal": Signal,
    "deactivate": Deactivate,
    "reactivate": Reactivate,
}

# --------------------------------------------------------------------------------- outbound


class Ack(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Reply to one inbound message; ``id`` is ``None`` when the payload had no readable id."""

    id: MsgId | None
    ok: bool
    error: str | None = None


class StateReport(msgspec.Struct, frozen=True, kw_only=True):
    """Retained camera state. ``storage_s`` is the free storage, in seconds of footage."""

    state: str
    since: float
    active: list[str]
    battery_s: float
    storage_s: float
    # How the camera authenticates commands (SPEC §14): ``signed`` (Ed25519, trust file) or
    # ``none`` (anyone on the bus may command it). A controller that does not say is ``none``.
    auth: str = "none"


class Alert(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An alert. ``restarted`` (the camera came back after being down, ``span`` is the time it
    was not running) and ``bus_fault`` (the broker refused a subscription or publication, the
    camera's session was taken over, or another client overwrote its status; ``detail`` says
    which) come from the live edge, not from the recording logic."""

    kind: str
    at: float
    cause: str | None = None
    activity_id: str | None = None
    span: tuple[float, float] | None = None
    detail: str | None = None
    alert_id: str | None = None
    """Names this alert for good: ``<camera>-a<n>`` from the recording logic, ``<camera>-e<n>``
    from the live edge, ``n`` counting up across restarts. A copy published again (a redelivery
    after a restart or a retried publication) carries the same id, so a subscriber keeps the
    first and drops the rest."""


class RecordingMeta(msgspec.Struct, frozen=True, kw_only=True):
    """Metadata of one recording, published each time one of its segments closes (R-META).

    ``recording`` identifies the recording (stable across its segments); ``final`` is true on
    the message published when the whole recording closes; ``open`` marks a recording cut by
    the end of a scenario rather than closed by the camera.
    """

    camera: str
    recording: str
    incident: str
    start: float
    end: float
    buffer_s: float
    reasons: list[str]
    segments: int
    segment_list: list[tuple[float, float]]
    final: bool
    open: bool = False


class AuditHead(msgspec.Struct, frozen=True, kw_only=True):
    """The head of a live camera's audit chain (retained on ``<prefix>/<camera>/audit``): what
    its audit file must reach when verified (R-AUDITFILE)."""

    head: str
    seq: int
    segment: int
    at: float


Outbound = Ack | StateReport | Alert | RecordingMeta
