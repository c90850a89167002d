"""The words a scenario may use under one policy, for people: ``bwcsim policy show``, the docs.

Theory of operation
-------------------
A trainer writing (or generating, in the studio's form) a scenario needs the closed vocabulary
the loader will accept: which activities the policy knows and what each obliges the camera to
do, for which reasons a required recording may be paused, which device signals start one, the
camera parameters with the values this policy gives them, and the event words with their own
fields. All of it is derived here from the objects that enforce it — the parsed
:class:`~controller.policy.Policy`, :class:`~controller.params.CameraParams` and the event
types of the wire codec — so the list cannot drift from what is checked. :func:`vocabulary`
gives it as plain data (the studio serves it as JSON); :func:`render_text` and
:func:`render_markdown` print it; ``docs/vocabulary.md`` is the Markdown of every built-in
policy and the library's component policies, kept current by a test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from controller.params import CameraParams
from controller.policy import BUILTIN, DEVICE_SOURCES, Policy, load_policy
from sim.world.scenario import EVENT_FIELDS

__all__ = [
    "ACTIVITY_KIND_MEANING",
    "EVENT_MEANING",
    "PARAM_MEANING",
    "docs_page",
    "policy_files",
    "render_markdown",
    "render_text",
    "vocabulary",
]

ACTIVITY_KIND_MEANING: dict[str, str] = {
    "required": "must be recorded, from its start to its end plus the tail",
    "prohibited": "never by itself a reason to record",
    "discretionary": "the officer decides (button or signal)",
}

EVENT_MEANING: dict[str, str] = {
    "activity_start": "an activity begins (dispatch says so)",
    "activity_end": "the activity with this id ends",
    "dock": "into the dock (it cannot record there)",
    "undock": "out of the dock: boots, then buffers",
    "button": "the officer presses start or stop",
    "signal": "a device signal (a source above)",
    "deactivate": "the officer pauses, giving a reason",
    "reactivate": "the officer ends a pause",
}

PARAM_MEANING: dict[str, str] = {
    "prebuffer_s": "pre-event buffer length, seconds (0-120)",
    "buffer_audio": "whether the buffer records audio",
    "boot_s": "boot time after undock, seconds",
    "segment_max_s": "a recording goes on in a new file after, s",
    "battery_s": "full charge, in seconds of buffering",
    "record_drain": "battery used per second while recording",
    "charge_rate": "charge gained per second in the dock",
    "low_battery_s": "warn when this much charge remains, seconds",
    "storage_s": "footage the card holds, seconds",
    "upload_speed": "footage seconds offloaded per second docked",
}


def policy_files(folders: list[Path]) -> list[Path]:
    """Component policy files under ``folders`` (any ``policies/`` folder inside them)."""
    found: list[Path] = []
    for folder in folders:
        if folder.is_file():
            found.append(folder)
            continue
        for path in sorted(folder.rglob("*.y*ml")):
            if "policies" in path.relative_to(folder).parts[:-1] or folder.name == "policies":
                found.append(path)
    return found


def vocabulary(policy: Policy, ref: str | None = None) -> dict[str, Any]:
    """Everything a scenario under ``policy`` may say, as JSON-ready data."""
    base = CameraParams()
    applied = policy.apply(base)
    return {
        "policy": policy.name,
        "ref": ref or policy.name,
        "activities": [
            {"name": name, "kind": kind, "post_s": policy.post_s.get(name, 0.0),
             "meaning": ACTIVITY_KIND_MEANING.get(kind, "")}
            for name, kind in policy.activities.items()
        ],
        "deactivation_reasons": sorted(policy.deactivation_reasons),
        "signals": [{"source": s, "starts_recording": s in policy.signals}
                    for s in DEVICE_SOURCES],
        "parameters": [
            {"name": name, "default": getattr(base, name), "value": getattr(applied, name),
             "set_by_policy": name in policy.overrides, "meaning": PARAM_MEANING.get(name, "")}
            for name in msgspec.structs.asdict(base)
        ],
        "events": [
            {"event": name, "fields": list(fields), "meaning": EVENT_MEANING.get(name, "")}
            for name, fields in EVENT_FIELDS.items()
        ],
    }


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def render_text(vocab: dict[str, Any]) -> str:
    """The vocabulary for a terminal: one section per kind of word, aligned columns."""
    out = [f"policy {vocab['policy']}" + (f" ({vocab['ref']})" if vocab["ref"] != vocab["policy"]
                                          else ""), ""]
    out.append("activities (activity_start: activity):")
    width = max((len(a["name"]) for a in vocab["activities"]), default=0)
    for a in vocab["activities"]:
        tail = f" (tail {_fmt(a['post_s'])} s)" if a["kind"] == "required" else ""
        out.append(f"  {a['name']:<{width}}  {a['kind']}{tail}")
    kinds = dict.fromkeys(a["kind"] for a in vocab["activities"])
    out.extend(f"  - {kind}: {ACTIVITY_KIND_MEANING[kind]}" for kind in kinds
               if kind in ACTIVITY_KIND_MEANING)
    out.append("")
    out.append("deactivation reasons (deactivate: reason) that may pause a required recording:")
    out.extend(f"  {r}" for r in vocab["deactivation_reasons"])
    if not vocab["deactivation_reasons"]:
        out.append("  none: every deactivation during a required activity is refused")
    out.append("  any other reason is refused while a required activity runs")
    out.append("")
    out.append("signal sources (signal: source):")
    for s in vocab["signals"]:
        does = "starts a recording" if s["starts_recording"] else "accepted, starts nothing"
        out.append(f"  {s['source']:<9} {does}")
    out.append("")
    out.append("camera parameters (on a camera entry; this policy's value, [default]):")
    pwidth = max(len(p["name"]) for p in vocab["parameters"])
    for p in vocab["parameters"]:
        value = _fmt(p["value"]) + ("" if not p["set_by_policy"] else f" [{_fmt(p['default'])}]")
        out.append(f"  {p['name']:<{pwidth}}  {value:<12} {p['meaning']}")
    out.append("")
    out.append("events (timeline: event) and their own fields:")
    ewidth = max(len(e["event"]) for e in vocab["events"])
    for e in vocab["events"]:
        fields = ", ".join(e["fields"]) or "-"
        out.append(f"  {e['event']:<{ewidth}}  {fields:<21} {e['meaning']}")
    return "\n".join(out) + "\n"


def render_markdown(vocab: dict[str, Any], level: int = 2) -> str:
    """The vocabulary as a Markdown section (tables), for ``docs/vocabulary.md``."""
    h = "#" * level
    out = [f"{h} `{vocab['ref']}` (policy {vocab['policy']})", ""]
    out += [f"{h}# Activities (`activity_start: activity`)", "",
            "| activity | kind | tail after its end | meaning |", "|---|---|---|---|"]
    for a in vocab["activities"]:
        tail = f"{_fmt(a['post_s'])} s" if a["kind"] == "required" else "-"
        out.append(f"| `{a['name']}` | {a['kind']} | {tail} | {a['meaning']} |")
    out += ["", f"{h}# Deactivation reasons (`deactivate: reason`)", ""]
    out += [f"- `{r}`" for r in vocab["deactivation_reasons"]] or ["- none"]
    out += ["", "Any other reason is refused while a required activity runs.", "",
            f"{h}# Signal sources (`signal: source`)", "", "| source | effect |", "|---|---|"]
    for s in vocab["signals"]:
        does = "starts a recording" if s["starts_recording"] else "accepted, starts nothing"
        out.append(f"| `{s['source']}` | {does} |")
    out += ["", f"{h}# Camera parameters", "", "| parameter | value | default | meaning |",
            "|---|---|---|---|"]
    for p in vocab["parameters"]:
        out.append(f"| `{p['name']}` | {_fmt(p['value'])} | {_fmt(p['default'])} | "
                   f"{p['meaning']} |")
    out += ["", f"{h}# Events (`timeline: event`)", "", "| event | its own fields | meaning |",
            "|---|---|---|"]
    for e in vocab["events"]:
        fields = ", ".join(f"`{f}`" for f in e["fields"]) or "-"
        out.append(f"| `{e['event']}` | {fields} | {e['meaning']} |")
    return "\n".join(out) + "\n"


def docs_page(root: Path) -> str:
    """``docs/vocabulary.md``: every built-in policy and the library's component policies."""
    parts = [
        "# The words a scenario may use",
        "",
        "Generated from the policies themselves (`bwcsim policy show NAME` prints the same); a",
        "test fails when this page is stale. A scenario that uses a word not listed here is",
        "refused with the nearest valid word (\"did you mean `undock`?\").",
        "",
    ]
    refs: list[tuple[str, Policy]] = [(name, load_policy(name)) for name in BUILTIN]
    for path in policy_files([root / "scenarios"]):
        refs.append((path.relative_to(root).as_posix(), load_policy(str(path))))
    for ref, policy in refs:
        parts.append(render_markdown(vocabulary(policy, ref)))
    return "\n".join(parts)
