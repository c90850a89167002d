"""A broken policy file is refused with one line naming the file, the line and the field (SPEC §3, §7).

A team runs the library and its own scenarios against component policies it writes; a mistake in
one must be reported where it is, not as a traceback and not on the wrong key. Hypothesis writes
a valid policy file (activities, signals, roles), plants one mistake the spec forbids — a
negative `post_s`, an activity rule with an unknown key or kind, a signal source outside §3's
list, an event type no message has, a `max_skew_s` that is not positive — and checks the error:
``<file>:<line>: <field>: <message>``, with the line and field of the mistake as this test laid
them out, and a message that names what is wrong with the key as written in the file.

Mutation testing found the policy loader's field paths and messages judged by no suite or
scenario (docs/mutation.md).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.errors import ScenarioError
from controller.policy import load_policy
from sim.pytest_plugin.suites.common import suite_settings

_SETTINGS = suite_settings()

# SPEC §3: the device sources a policy may list; §4a: the message types a role may send.
SOURCES = ("holster", "taser", "lightbar", "siren", "crash", "button")
EVENT_TYPES = ("activity_start", "activity_end", "deactivate", "reactivate", "button", "signal",
               "dock", "undock")
KINDS = ("required", "prohibited", "discretionary")

# Every generated word has a prefix: a bare `no` or `on` would be a YAML boolean, not a name.
_word = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
activity_names = _word.map(lambda w: f"act_{w}")
role_names = _word.map(lambda w: f"role_{w}")


@dataclass
class Planted:
    text: str
    line: int  # 1-based line of the mistake
    field: str  # the field path the error must name
    says: tuple[str, ...]  # what the message must contain, case as written


@st.composite
def broken_policies(draw: st.DrawFn) -> Planted:
    activities = draw(st.lists(activity_names, min_size=1, max_size=4, unique=True))
    kinds = [draw(st.sampled_from(KINDS)) for _ in activities]
    posts = [draw(st.one_of(st.none(), st.integers(0, 120))) for _ in activities]
    signals = draw(st.lists(st.sampled_from(SOURCES), max_size=4, unique=True))
    roles = draw(st.lists(role_names, min_size=1, max_size=3, unique=True))
    events = [draw(st.lists(st.sampled_from(EVENT_TYPES), min_size=1, max_size=3, unique=True))
              for _ in roles]
    mistake = draw(st.sampled_from(("negative_post", "unknown_key", "bad_kind", "signal", "event",
                                    "skew")))
    lines = ["name: generated", "post_s: 0"]
    planted: tuple[int, str, tuple[str, ...]] | None = None
    skew = 30
    if mistake == "skew":
        skew = draw(st.integers(-100, 0))
        planted = (len(lines) + 1, "max_skew_s", ("max_skew_s", "> 0"))
    lines.append(f"max_skew_s: {skew}")
    lines.append("activities:")
    bad_activity = draw(st.integers(0, len(activities) - 1))
    for i, (name, kind, post) in enumerate(zip(activities, kinds, posts, strict=True)):
        fields = [f"kind: {kind}"]
        if post is not None:
            fields.append(f"post_s: {post}")
        if i == bad_activity and mistake == "negative_post":
            fields = [f"kind: {kind}", f"post_s: {-draw(st.integers(1, 600))}"]
            planted = (len(lines) + 1, f"activities.{name}.post_s", ("post_s", ">= 0"))
        elif i == bad_activity and mistake == "unknown_key":
            key = draw(st.sampled_from(("knd", "post", "tail_s", "required")))
            fields.append(f"{key}: 1")
            planted = (len(lines) + 1, f"activities.{name}.{key}", (f"unknown key {key!r}",))
        elif i == bad_activity and mistake == "bad_kind":
            bad = draw(_word.map(lambda w: f"kind_{w}"))
            fields = [f"kind: {bad}"]
            planted = (len(lines) + 1, f"activities.{name}.kind", (repr(bad),))
        lines.append(f"  {name}: {{{', '.join(fields)}}}")
    if mistake == "signal":
        bad = draw(_word.map(lambda w: f"source_{w}"))
        at = draw(st.integers(0, len(signals)))
        signals = [*signals[:at], bad, *signals[at:]]
        planted = (len(lines) + 1, f"signals[{at}]", (repr(bad), *SOURCES))
    lines.append(f"signals: [{', '.join(signals)}]")
    lines.append("roles:")
    bad_role = draw(st.integers(0, len(roles) - 1))
    for i, (role, evs) in enumerate(zip(roles, events, strict=True)):
        if mistake == "event" and i == bad_role:
            bad = draw(_word.map(lambda w: f"event_{w}"))
            at = draw(st.integers(0, len(evs)))
            evs = [*evs[:at], bad, *evs[at:]]
            planted = (len(lines) + 1, f"roles.{role}.events[{at}]", (repr(bad), *EVENT_TYPES))
        lines.append(f"  {role}: {{events: [{', '.join(evs)}]}}")
    assert planted is not None
    line, field, says = planted
    return Planted("\n".join(lines) + "\n", line, field, says)


@pytest.mark.req("POLICY")
@_SETTINGS
@given(broken_policies())
def test_a_broken_policy_names_its_file_line_and_field(case: Planted) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.yaml"
        path.write_text(case.text, "utf-8")
        with pytest.raises(ScenarioError) as err:
            load_policy(str(path))
    text = str(err.value)
    assert "\n" not in text, text
    where = f"{path}:{case.line}: {case.field}: "
    assert text.startswith(where), f"expected {where!r}..., got {text!r} for\n{case.text}"
    message = text.removeprefix(where)
    for part in case.says:
        assert part in message, f"the message does not say {part!r}: {text!r}"


@pytest.mark.req("POLICY")
@_SETTINGS
@given(broken_policies())
def test_the_same_policy_without_its_mistake_loads(case: Planted) -> None:
    """The generator plants exactly one mistake: the file without that line's fault is valid."""
    lines = case.text.splitlines()
    bad = lines[case.line - 1]
    if case.field == "max_skew_s":
        lines[case.line - 1] = "max_skew_s: 30"
    elif case.field.startswith("activities."):
        name = case.field.split(".")[1]
        lines[case.line - 1] = f"  {name}: {{kind: required}}"
    elif case.field.startswith("signals"):
        lines[case.line - 1] = "signals: []"
    else:
        role = case.field.split(".")[1]
        lines[case.line - 1] = f"  {role}: {{events: [button]}}"
    assert lines[case.line - 1] != bad
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.yaml"
        path.write_text("\n".join(lines) + "\n", "utf-8")
        policy = load_policy(str(path))
    assert policy.name == "generated"
