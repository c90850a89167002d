"""The camera's state table — the one source of truth for what the camera may do.

Theory of operation
===================

A body-worn camera is in exactly one of five states:

========== ==================================================================================
docked     In the dock: charging and offloading evidence. No capture, no buffering.
standby    Worn and powered, booting after an undock (``boot_s``). Not capturing yet.
pre_buffer Capturing into a rolling pre-event buffer of at most ``prebuffer_s`` seconds.
recording  Recording evidence; the buffered footage at activation was prepended.
off        Battery exhausted. Nothing works until the camera is docked.
========== ==================================================================================

The table below says which trigger moves the camera between them; nothing else may. *Why* a
trigger fires — which activities hold a recording open, when a manual stop is refused, what a
deactivation pauses — is decided in :mod:`controller.camera`, which owns the reference counting
of holds. Keeping the table this small is deliberate: it is what a firmware team compares with
its own chart, and ``bwcsim chart`` draws it.

* ``dock`` is physical and always succeeds, from any state but ``docked`` itself. Leaving
  ``recording`` closes the open recording with every second kept.
* ``undock`` boots the camera: ``standby``, then ``boot_done`` after ``boot_s`` brings it to
  ``pre_buffer`` — or straight on to ``recording`` when a required activity is already open.
* ``activate`` starts a recording from the buffer; ``release`` ends it, and the buffer restarts
  at that instant (the camera keeps capturing).
* ``deplete`` fires when the charge reaches zero; only ``dock`` leaves ``off``.
* Segment rollover (every ``segment_max_s``) is not a state change: the recording continues in
  a new file with no gap.

The compiled table
------------------
:data:`TRANSITIONS` is written in the form the ``transitions`` library takes, and stays the one
source of truth. A camera does not build a ``transitions.Machine`` of its own, though: that costs
more than the rest of its construction, binds the model and the machine in a reference cycle, and
every trigger walks the library's general event machinery. :func:`compile_table` turns the table
once per process into a plain lookup, ``(state, trigger)`` → the candidate transitions in table
order, each with its destination, its conditions and the names of the callbacks to call, in the
order the library calls them: the machine's ``prepare_event``; per candidate its ``prepare``,
its conditions (``conditions`` must return a value equal to ``True``, ``unless`` one equal to
``False``), the machine's ``before_state_change`` and the transition's ``before``, the source's
``on_exit_<state>``, the state change, the destination's ``on_enter_<state>``, the transition's
``after`` and the machine's ``after_state_change``; the machine's ``finalize_event`` last, even
when a callback raised. A trigger the table does not allow from the current state raises the
library's ``MachineError`` with its message; when no candidate's conditions hold, the trigger
returns ``False`` and nothing changes. :meth:`CompiledMachine.bind` puts one method per trigger
on the model's class; a subclass with ``on_enter_``/``on_exit_`` methods of its own gets its own
table on first use, as the library would find them on its models.
``tests/test_machine_compiled.py`` checks, for every (state, trigger) pair and every outcome of
the conditions, that the compiled table and a real ``transitions.Machine`` built from the same
rows do the same thing.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from transitions import MachineError


class State(enum.Enum):
    docked = "docked"
    standby = "standby"
    pre_buffer = "pre_buffer"
    recording = "recording"
    off = "off"


S = State

#: The transition table: one dict per trigger and source, in the form ``transitions`` takes.
TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "dock", "source": [S.standby, S.pre_buffer, S.recording, S.off], "dest": S.docked},
    {"trigger": "undock", "source": S.docked, "dest": S.standby},
    {"trigger": "boot_done", "source": S.standby, "dest": S.pre_buffer},
    {"trigger": "activate", "source": S.pre_buffer, "dest": S.recording},
    {"trigger": "release", "source": S.recording, "dest": S.pre_buffer},
    {"trigger": "deplete", "source": [S.standby, S.pre_buffer, S.recording], "dest": S.off},
]

#: States in which the camera captures video (into the buffer or a recording).
CAPTURING = frozenset({S.pre_buffer, S.recording})


def mermaid() -> str:
    """The state chart as a Mermaid ``stateDiagram-v2``, generated from :data:`TRANSITIONS`."""
    lines = ["stateDiagram-v2", "    [*] --> pre_buffer"]
    for row in TRANSITIONS:
        sources = row["source"] if isinstance(row["source"], list) else [row["source"]]
        for src in sources:
            lines.append(f"    {src.value} --> {row['dest'].value}: {row['trigger']}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ the compiled table

Callback = str | Callable[..., Any]


def _names(value: Any) -> tuple[Callback, ...]:
    """A callback option as the library reads it: one name or callable, a list, or nothing."""
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


def _call(model: object, func: Callback, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call a callback the way the library resolves it: a name is looked up on the model each
    time (a non-callable attribute is its own value), a callable is called as it is."""
    if isinstance(func, str):
        func = getattr(model, func)
        if not callable(func):
            return func
    return func(*args, **kwargs)


@dataclass(frozen=True, slots=True)
class Step:
    """One candidate transition for a (state, trigger) pair, ready to run."""

    dest: enum.Enum | None  # None: an internal transition (callbacks, no state change)
    prepare: tuple[Callback, ...]
    conditions: tuple[tuple[Callback, bool], ...]  # (callback, the value it must equal)
    before: tuple[Callback, ...]  # before_state_change, then the transition's before
    exit: tuple[Callback, ...]  # the source's on_exit callbacks
    enter: tuple[Callback, ...]  # the destination's on_enter callbacks
    after: tuple[Callback, ...]  # the transition's after, then after_state_change


def _by_name(
    table: dict[tuple[enum.Enum, str], tuple[Step, ...]],
) -> dict[tuple[str, str], tuple[enum.Enum, tuple[Step, ...]]]:
    """``table`` keyed by the state's name, for :meth:`CompiledMachine.fire`: Enum.__hash__ is
    Python-level on 3.11, a str hashes in C. The state is kept to check it is the very one."""
    return {(state._name_, trigger): (state, steps) for (state, trigger), steps in table.items()}


class CompiledMachine:
    """The state table compiled for one model class (see "The compiled table" above)."""

    __slots__ = ("_after", "_before", "_by_class", "_rows", "_states", "attribute", "finalize_event",
                 "model_class", "prepare_event", "table", "triggers")

    def __init__(
        self,
        states: Iterable[enum.Enum],
        transitions: Sequence[Mapping[str, Any]],
        model_class: type,
        *,
        before_state_change: Any = None,
        after_state_change: Any = None,
        prepare_event: Any = None,
        finalize_event: Any = None,
        attribute: str = "state",
    ) -> None:
        self._states = list(states)
        self._rows = [dict(row) for row in transitions]
        self.attribute = attribute
        self.prepare_event = _names(prepare_event)
        self.finalize_event = _names(finalize_event)
        self._before, self._after = _names(before_state_change), _names(after_state_change)
        self.model_class = model_class
        self.triggers = tuple(dict.fromkeys(row["trigger"] for row in self._rows))
        self.table = self._compile(model_class)
        # Subclasses of the model class may add on_enter_/on_exit_ methods of their own (the
        # library looks for them on each model): their tables are compiled on first use.
        self._by_class: dict[type, dict[tuple[str, str], tuple[enum.Enum, tuple[Step, ...]]]] = {
            model_class: _by_name(self.table)
        }

    def _compile(self, model_class: type) -> dict[tuple[enum.Enum, str], tuple[Step, ...]]:
        """The table for models of ``model_class``: (state, trigger) → candidates in order."""
        before_change, after_change = self._before, self._after

        def hooks(kind: str, state: enum.Enum) -> tuple[Callback, ...]:
            # The library adds on_enter_<name> / on_exit_<name> when the model has such a method.
            name = f"{kind}_{state.name}"
            return (name,) if inspect.isfunction(getattr(model_class, name, None)) else ()

        table: dict[tuple[enum.Enum, str], list[Step]] = {}
        for row in self._rows:
            trigger = row["trigger"]
            source = row["source"]
            sources = self._states if source == "*" else list(_names(source))
            conditions = tuple((c, True) for c in _names(row.get("conditions")))
            conditions += tuple((c, False) for c in _names(row.get("unless")))
            for src in sources:
                if not isinstance(src, enum.Enum):
                    raise ValueError(f"trigger {trigger!r}: source {src!r} is not a state")
                dest = row.get("dest")
                if dest == "=":
                    dest = src
                table.setdefault((src, trigger), []).append(Step(
                    dest=dest,
                    prepare=_names(row.get("prepare")),
                    conditions=conditions,
                    before=before_change + _names(row.get("before")),
                    exit=hooks("on_exit", src) if dest is not None else (),
                    enter=hooks("on_enter", dest) if dest is not None else (),
                    after=_names(row.get("after")) + after_change,
                ))
        return {k: tuple(v) for k, v in table.items()}

    def fire(self, model: object, trigger: str, *args: Any, **kwargs: Any) -> bool:
        """Fire ``trigger`` on ``model``: True when a transition ran, False when no candidate's
        conditions held; ``MachineError`` when the table does not allow it from this state."""
        attribute = self.attribute
        cls = type(model)
        table = self._by_class.get(cls)
        if table is None:
            table = self._by_class[cls] = _by_name(self._compile(cls))
        try:
            state = getattr(model, attribute)
            hit = table.get((state._name_, trigger))
            if hit is None or hit[0] is not state:
                raise MachineError(f"Can't trigger event {trigger} from state {state.name}!")
            steps = hit[1]
            for func in self.prepare_event:
                _call(model, func, args, kwargs)
            for step in steps:
                for func in step.prepare:
                    _call(model, func, args, kwargs)
                if step.conditions and not all(
                    _call(model, c, args, kwargs) == target for c, target in step.conditions
                ):
                    continue
                for func in step.before:
                    _call(model, func, args, kwargs)
                if step.dest is not None:
                    for func in step.exit:
                        _call(model, func, args, kwargs)
                    setattr(model, attribute, step.dest)
                    for func in step.enter:
                        _call(model, func, args, kwargs)
                for func in step.after:
                    _call(model, func, args, kwargs)
                return True
            return False
        finally:
            try:
                for func in self.finalize_event:
                    _call(model, func, args, kwargs)
            except BaseException:  # the library logs and swallows these too
                pass

    def method(self, trigger: str) -> Callable[..., bool]:
        """The trigger as a method for the model's class."""
        if trigger not in self.triggers:
            raise ValueError(f"no trigger {trigger!r} in the table")
        fire = self.fire

        def method(model: object, *args: Any, **kwargs: Any) -> bool:
            return fire(model, trigger, *args, **kwargs)

        method.__name__ = method.__qualname__ = trigger
        method.__doc__ = f"Fire ``{trigger}`` (compiled from the state table)."
        return method

    def bind(self, model_class: type) -> None:
        """Give ``model_class`` one method per trigger."""
        for trigger in self.triggers:
            setattr(model_class, trigger, self.method(trigger))
