"""The compiled state table does what a real ``transitions.Machine`` built from the same rows does.

Differential: for every (state, trigger) pair, and for tables with conditions every outcome of
them, a model driven by :class:`controller.machine.CompiledMachine` and one driven by
``transitions.Machine`` end in the same state, call the same callbacks in the same order, return
the same value, and raise the same ``MachineError`` (message included) for a trigger the table
does not allow.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from transitions import Machine, MachineError

from controller import camera as camera_module
from controller.camera import Camera
from controller.machine import TRANSITIONS, CompiledMachine, State

HOOKS = sorted(n for n in dir(Camera) if n.startswith(("on_enter_", "on_exit_")))
CONDITIONS = ("c_ok", "c_also", "u_blocked")
VALUES: tuple[Any, ...] = (True, False)


class Recorder:
    """A model with the camera's hook names (and a few more) that logs every call."""

    state: State

    def __init__(self, outcomes: Mapping[str, Any]) -> None:
        self.log: list[str] = []
        self.outcomes = outcomes

    def _hit(self, name: str) -> None:
        self.log.append(f"{name}@{self.state.value}")


def _make_hook(name: str) -> Callable[[Recorder], None]:
    def hook(self: Recorder) -> None:
        self._hit(name)

    return hook


def _make_condition(name: str) -> Callable[[Recorder], Any]:
    def cond(self: Recorder) -> Any:
        self._hit(name)
        return self.outcomes[name]

    return cond


CALLBACKS = ("_state_changed", "p_event", "p_row", "b_change", "b_row", "a_row", "f_event")
for _name in (*HOOKS, *CALLBACKS):
    setattr(Recorder, _name, _make_hook(_name))
for _name in CONDITIONS:
    setattr(Recorder, _name, _make_condition(_name))


class Compiled(Recorder):
    """The same model; its trigger methods come from the compiled table (bound per test)."""


def _guarded_table() -> list[dict[str, Any]]:
    """The camera's table with conditions and per-row callbacks, and after each row a second
    candidate with the opposite condition, so a failed condition falls through to it."""
    rows: list[dict[str, Any]] = []
    for row in TRANSITIONS:
        rows.append({**row, "conditions": ["c_ok", "c_also"], "unless": "u_blocked",
                     "prepare": "p_row", "before": ["b_row"], "after": "a_row"})
        rows.append({"trigger": row["trigger"], "source": row["source"], "dest": "=",
                     "unless": "c_ok", "after": "a_row"})
    rows.append({"trigger": "ping", "source": "*", "dest": None, "before": "b_row"})
    return rows


CAMERA_OPTIONS: dict[str, Any] = {"after_state_change": "_state_changed"}
FULL_OPTIONS: dict[str, Any] = {
    "after_state_change": "_state_changed", "before_state_change": "b_change",
    "prepare_event": "p_event", "finalize_event": ["f_event"],
}


def _outcome(model: Recorder, trigger: str) -> tuple[Any, ...]:
    try:
        result: Any = getattr(model, trigger)()
        error = None
    except MachineError as exc:
        result, error = None, str(exc)
    return result, error, model.state, tuple(model.log)


def _compare(table: Sequence[dict[str, Any]], options: dict[str, Any],
             outcomes: Mapping[str, Any]) -> int:
    compiled = CompiledMachine(State, table, Compiled, **options)
    compiled.bind(Compiled)
    checked = 0
    for state in State:
        for trigger in compiled.triggers:
            real_model = Recorder(outcomes)
            Machine(model=real_model, states=State, transitions=list(table), initial=state,
                    auto_transitions=False, send_event=False, **options)
            ours = Compiled(outcomes)
            ours.state = state
            expected = _outcome(real_model, trigger)
            got = _outcome(ours, trigger)
            assert got == expected, (state, trigger, dict(outcomes))
            checked += 1
    return checked


@pytest.mark.req("R-TRIG")
def test_compiled_camera_table_matches_transitions_on_every_state_and_trigger() -> None:
    checked = _compare(TRANSITIONS, CAMERA_OPTIONS, {})
    assert checked == len(State) * len({r["trigger"] for r in TRANSITIONS})


@pytest.mark.req("R-TRIG")
@pytest.mark.parametrize("values", list(itertools.product(VALUES, repeat=len(CONDITIONS))))
def test_compiled_conditions_and_callbacks_match_transitions(values: tuple[Any, ...]) -> None:
    _compare(_guarded_table(), FULL_OPTIONS, dict(zip(CONDITIONS, values, strict=True)))


@pytest.mark.req("R-TRIG")
def test_condition_values_compare_as_the_library_compares_them() -> None:
    # The library checks `condition() == True`: 1 passes, a truthy string does not.
    for truthy in (1, "yes"):
        _compare(_guarded_table(), FULL_OPTIONS, {"c_ok": truthy, "c_also": True, "u_blocked": 0})


@pytest.mark.req("R-TRIG")
def test_the_camera_runs_the_table_compiled_for_its_own_hooks() -> None:
    # The camera's compiled table is the one a model with the camera's hooks compiles to, so the
    # differential tests above cover the callbacks it really has.
    reference = CompiledMachine(State, TRANSITIONS, Recorder, **CAMERA_OPTIONS)
    assert camera_module._MACHINE.table == reference.table
    assert camera_module._MACHINE.triggers == reference.triggers
    assert all(callable(getattr(Camera, t)) for t in reference.triggers)
    assert any(step.enter for steps in reference.table.values() for step in steps)


@pytest.mark.req("R-TRIG")
def test_compiled_table_rejects_a_source_that_is_not_a_state() -> None:
    with pytest.raises(ValueError, match="not a state"):
        CompiledMachine(State, [{"trigger": "x", "source": "docked", "dest": State.off}], Recorder)


class _WithOwnHook(Compiled):
    """A subclass that adds a hook its base does not have (the library finds it per model)."""

    def on_enter_off(self) -> None:
        self._hit("subclass_on_enter_off")


class _RealWithOwnHook(Recorder):
    def on_enter_off(self) -> None:
        self._hit("subclass_on_enter_off")


@pytest.mark.req("R-TRIG")
def test_a_subclass_hook_is_called_as_the_library_calls_it() -> None:
    compiled = CompiledMachine(State, TRANSITIONS, Compiled, **CAMERA_OPTIONS)
    compiled.bind(Compiled)
    for state in (State.standby, State.pre_buffer, State.recording):
        real = _RealWithOwnHook({})
        Machine(model=real, states=State, transitions=TRANSITIONS, initial=state,
                auto_transitions=False, send_event=False, **CAMERA_OPTIONS)
        ours = _WithOwnHook({})
        ours.state = state
        assert _outcome(ours, "deplete") == _outcome(real, "deplete")
        assert any(e.startswith("subclass_on_enter_off") for e in ours.log)
