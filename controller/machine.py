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
"""

from __future__ import annotations

import enum
from typing import Any


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
