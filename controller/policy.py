"""Recording policies as data (SPEC §3).

A policy names activities (``required``, ``prohibited`` or ``discretionary``, each with a
``post_s`` tail), the device signals that start a recording, the reasons for which a required
recording may be paused, and camera parameter overrides. ``dhs-2023`` is built in; component
policies are further YAML files of the same shape.

It also says who may command the camera (SPEC §14, R-AUTH, R-FRESH): ``roles`` maps each role a
principal can hold to the event types it may send (``own_camera: true`` limits a role to the
camera its principal is bound to), and ``max_skew_s`` is how far a command's ``ts`` may lie
ahead of the camera's clock. A policy that omits them gets :data:`DEFAULT_ROLES` and 300 s.
Which *principal* holds which role, and its keys, is deployment data: the trust file
(:mod:`controller.trust`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path as FsPath
from typing import Literal

import msgspec

from .errors import ScenarioError
from .messages import EVENT_TYPES
from .params import CameraParams
from .yamlsrc import SourceDoc, convert, load_yaml

DEVICE_SOURCES = ("holster", "taser", "lightbar", "siren", "crash", "button")
BUILTIN = ("dhs-2023",)


class ActivityRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: Literal["required", "prohibited", "discretionary"]
    post_s: float | None = None


class RoleRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What one role may send: event types, and whether only to its principal's own camera."""

    events: list[str]
    own_camera: bool = False


DEFAULT_ROLES: dict[str, RoleRule] = {
    "dispatch": RoleRule(events=["activity_start", "activity_end"]),
    "supervisor": RoleRule(events=["deactivate", "reactivate"]),
    "officer": RoleRule(events=["button"], own_camera=True),
    "device": RoleRule(events=["signal", "dock", "undock"], own_camera=True),
}
DEFAULT_MAX_SKEW_S = 300.0


class CameraOverrides(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Camera parameters a policy may set; ``None`` leaves the camera's default."""

    prebuffer_s: float | None = None
    buffer_audio: bool | None = None
    boot_s: float | None = None
    segment_max_s: float | None = None
    battery_s: float | None = None
    record_drain: float | None = None
    charge_rate: float | None = None
    low_battery_s: float | None = None
    storage_s: float | None = None
    upload_speed: float | None = None


class PolicyFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    activities: dict[str, ActivityRule]
    signals: list[str] = []
    deactivation_reasons: list[str] = []
    post_s: float = 0.0
    camera: CameraOverrides = CameraOverrides()
    roles: dict[str, RoleRule] = msgspec.field(default_factory=lambda: dict(DEFAULT_ROLES))
    max_skew_s: float = DEFAULT_MAX_SKEW_S


class Policy:
    """A validated policy with O(1) look-ups for the controller's hot path."""

    __slots__ = (
        "activities", "deactivation_reasons", "max_skew_s", "name", "overrides", "own_camera_roles",
        "post_s", "roles", "signals", "source",
    )

    def __init__(self, spec: PolicyFile) -> None:
        self.source = spec  # the validated document, as written (``post_s`` None where absent)
        self.name = spec.name
        self.activities: dict[str, str] = {k: r.kind for k, r in spec.activities.items()}
        self.post_s: dict[str, float] = {
            k: (r.post_s if r.post_s is not None else spec.post_s)
            for k, r in spec.activities.items()
        }
        self.signals = frozenset(spec.signals)
        self.deactivation_reasons = frozenset(spec.deactivation_reasons)
        self.overrides = {
            k: v for k in CameraOverrides.__struct_fields__
            if (v := getattr(spec.camera, k)) is not None
        }
        self.roles: dict[str, frozenset[str]] = {
            role: frozenset(rule.events) for role, rule in spec.roles.items()
        }
        self.own_camera_roles = frozenset(r for r, rule in spec.roles.items() if rule.own_camera)
        self.max_skew_s = spec.max_skew_s

    def may_send(self, role: str, event_type: str) -> bool:
        """Whether ``role`` may send ``event_type`` at all (R-AUTH)."""
        allowed = self.roles.get(role)
        return allowed is not None and event_type in allowed

    def kind(self, activity: str) -> str | None:
        return self.activities.get(activity)

    def is_required(self, activity: str) -> bool:
        return self.activities.get(activity) == "required"

    def apply(self, params: CameraParams) -> CameraParams:
        """``params`` with this policy's overrides applied (scenario values win later)."""
        return msgspec.structs.replace(params, **self.overrides) if self.overrides else params

    def __repr__(self) -> str:
        return f"Policy({self.name!r})"


def parse_policy(doc: SourceDoc) -> Policy:
    # Activities are converted one by one so an error names the activity (msgspec's own path
    # for a dict value does not say which key it was).
    if isinstance(doc.data, dict) and isinstance(doc.data.get("activities"), dict):
        for name, rule in doc.data["activities"].items():
            convert(doc, rule, ActivityRule, ("activities", str(name)))
    if isinstance(doc.data, dict) and isinstance(doc.data.get("roles"), dict):
        for name, rule in doc.data["roles"].items():
            convert(doc, rule, RoleRule, ("roles", str(name)))
    spec = convert(doc, doc.data, PolicyFile)
    for name, rule in spec.activities.items():
        if rule.post_s is not None and rule.post_s < 0:
            raise doc.error("post_s must be >= 0", ("activities", name, "post_s"))
    for i, src in enumerate(spec.signals):
        if src not in DEVICE_SOURCES:
            raise doc.error(
                f"unknown signal source {src!r} (one of {', '.join(DEVICE_SOURCES)})",
                ("signals", i),
            )
    for role, rule in spec.roles.items():
        for i, etype in enumerate(rule.events):
            if etype not in EVENT_TYPES:
                raise doc.error(
                    f"unknown event type {etype!r} (one of {', '.join(EVENT_TYPES)})",
                    ("roles", role, "events", i),
                )
    if not spec.max_skew_s > 0:
        raise doc.error("max_skew_s must be > 0", ("max_skew_s",))
    try:
        CameraParams(**{k: v for k, v in msgspec.structs.asdict(spec.camera).items() if v is not None})
    except (ValueError, TypeError) as exc:
        raise doc.error(str(exc), ("camera",)) from None
    return Policy(spec)


def load_policy(ref: str, base_dir: FsPath | None = None) -> Policy:
    """A built-in policy by name, or a policy file path (relative to ``base_dir``)."""
    if ref in BUILTIN:
        text = resources.files("controller.policies").joinpath(f"{ref}.yaml").read_text("utf-8")
        return parse_policy(load_yaml(text, f"<builtin {ref}>"))
    path = FsPath(ref)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ScenarioError(
            f"policy {ref!r} is neither built in ({', '.join(BUILTIN)}) nor a readable file "
            f"({exc.strerror})",
            str(path),
        ) from None
    return parse_policy(load_yaml(text, str(path)))
