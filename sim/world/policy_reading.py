"""The oracle's own reading of a policy document (SPEC §3), independent of ``controller/``.

Theory of operation
-------------------
The controller reads its policy with :mod:`controller.policy`; if the oracle judged the camera
by that same reading, a mistake in it (an explicit ``post_s: 0`` on an activity replaced by the
policy's default, say) would move the ground truth together with the controller, and the
verdict would stay ``pass``. So the oracle reads the *document* itself — the YAML mapping a
policy file, a built-in policy or a scenario's inline ``policy:`` block holds — with nothing
but the rules SPEC §3 states:

* an activity is ``required``, ``prohibited`` or ``discretionary`` as its ``kind`` says;
* its tail is its own ``post_s`` when the activity gives one (``0`` included), otherwise the
  policy's top-level ``post_s``, otherwise ``0``;
* ``signals`` lists the device sources that start a recording; ``deactivation_reasons`` the
  reasons that may pause a required one.

Nothing here imports the controller's policy code. The document has already been validated by
the scenario loader (which is what makes the scenario loadable at all); this module only
interprets it. ``tests/test_policy_reading.py`` checks that both readings agree on every shipped
and generated policy, so a difference is a bug in one of them, caught where it is made.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

__all__ = ["PolicyReading", "builtin_document", "file_document", "read_policy"]

#: The package that holds the built-in policy documents (data files, read as text).
_BUILTIN_PACKAGE = "controller.policies"


@dataclass(frozen=True, slots=True)
class PolicyReading:
    """What the oracle needs of a policy: kinds, tails, signals, deactivation reasons."""

    name: str
    kinds: Mapping[str, str]
    post_s: Mapping[str, float]
    signals: frozenset[str]
    deactivation_reasons: frozenset[str]

    def is_required(self, activity: str) -> bool:
        return self.kinds.get(activity) == "required"

    def tail(self, activity: str) -> float:
        """Seconds a required recording continues after ``activity`` ends (0 if unknown)."""
        return self.post_s.get(activity, 0.0)

    def windows(self) -> dict[str, float]:
        """Every required activity with its tail, for comparing two readings."""
        return {a: self.post_s[a] for a, k in self.kinds.items() if k == "required"}


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"policy {where}: expected a number, got {value!r}")
    return float(value)


def read_policy(document: Mapping[str, Any]) -> PolicyReading:
    """The oracle's reading of one policy document (see the module docstring)."""
    default = document.get("post_s")
    default_s = 0.0 if default is None else _number(default, "post_s")
    kinds: dict[str, str] = {}
    post_s: dict[str, float] = {}
    activities = document.get("activities") or {}
    if not isinstance(activities, Mapping):
        raise ValueError("policy activities: expected a mapping")
    for name, rule in activities.items():
        if not isinstance(rule, Mapping):
            raise ValueError(f"policy activities.{name}: expected a mapping")
        kinds[str(name)] = str(rule.get("kind"))
        own = rule.get("post_s")
        post_s[str(name)] = default_s if own is None else _number(own, f"activities.{name}.post_s")
    return PolicyReading(
        name=str(document.get("name", "")),
        kinds=kinds,
        post_s=post_s,
        signals=frozenset(str(s) for s in document.get("signals") or ()),
        deactivation_reasons=frozenset(str(r) for r in document.get("deactivation_reasons") or ()),
    )


@functools.cache
def builtin_document(name: str) -> Mapping[str, Any]:
    """The document of the built-in policy ``name``, parsed from its YAML file."""
    text = resources.files(_BUILTIN_PACKAGE).joinpath(f"{name}.yaml").read_text("utf-8")
    return _mapping(yaml.safe_load(text), f"<builtin {name}>")


def file_document(path: Path) -> Mapping[str, Any]:
    """The document of the policy file at ``path``."""
    return _mapping(yaml.safe_load(path.read_text("utf-8")), str(path))


def _mapping(data: object, where: str) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: a policy document must be a mapping")
    return data
