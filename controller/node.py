"""The contract between a camera controller and whatever drives it.

A *node* is one camera's controller seen from the bus: bytes in, publications out, all in the
driver's notion of time. The simulator (virtual time) and the live runtime (asyncio, real
broker) drive nodes through exactly this interface, and so do the property suites — which is
why a firmware team can plug its own implementation in with a factory
(``module:factory``, called with a :class:`CameraSetup`).

A node never reads a clock: ``now`` is passed in. It asks to be woken with
:meth:`CameraNode.next_deadline` (boot done, battery empty, segment rollover, end of a
``post_s`` tail, storage full, ...), and the driver calls :meth:`CameraNode.on_timer` at that
time, before any message delivered at the same instant.

A node *may* also survive restarts (:class:`DurableNode`): the live runtime then journals what it
feeds the node, snapshots the node's state now and then, and after a crash restores the last
snapshot, replays the journal and calls :meth:`DurableNode.resume` with the time it was down. A
node without these methods still runs everywhere; it simply starts afresh after a restart. The
same goes for :meth:`DurableNode.drain_audit`, through which the runtime copies the node's audit
entries into the camera's audit file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol, runtime_checkable

import msgspec

from .audit import AuditTrail
from .bounds import Limits
from .params import CameraParams
from .policy import Policy
from .principals import TrustFile

Initial = Literal["docked", "standby", "pre_buffer"]


class Publish(msgspec.Struct, frozen=True):
    """One MQTT publication a node asks for."""

    topic: str
    payload: bytes
    retain: bool = False
    qos: int = 1


class CameraSetup(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a factory needs to build one camera's controller.

    ``trust`` is the trust file the camera is provisioned with (SPEC §14): with one, every
    command must be signed by a principal it names (``auth: signed``); ``None`` is
    ``auth: none``. ``limits`` are the caps of R-BOUND.
    """

    camera_id: str
    policy: Policy
    params: CameraParams = CameraParams()
    teams: tuple[str, ...] = ()
    initial: Initial = "pre_buffer"
    prefix: str = "bwc"
    trust: TrustFile | None = None
    limits: Limits = Limits()

    @property
    def auth(self) -> str:
        """``signed`` or ``none``: how the camera authenticates commands."""
        return "none" if self.trust is None else "signed"


@runtime_checkable
class CameraNode(Protocol):
    camera_id: str

    def subscriptions(self) -> list[str]:
        """Topic filters to subscribe to (QoS 1)."""
        ...

    def start(self, now: float) -> list[Publish]:
        """Power-on: availability and the first retained state."""
        ...

    def on_message(self, topic: str, payload: bytes, now: float) -> list[Publish]:
        """Handle one delivery. Must never raise: bad input is NACKed."""
        ...

    def next_deadline(self) -> float | None:
        """When the node next needs :meth:`on_timer`, or ``None``."""
        ...

    def on_timer(self, now: float) -> list[Publish]:
        """Run every internal event due at or before ``now``."""
        ...

    def finish(self, now: float) -> list[Publish]:
        """End of observation: close open recordings at ``now`` and publish them ``open``."""
        ...


@runtime_checkable
class DurableNode(CameraNode, Protocol):
    """A node whose state survives a restart (optional; see the module docstring).

    Replaying the journal relies on the node being deterministic: the same calls with the same
    ``now`` leave it in the same state. A message the node only NACKs must change nothing but
    its duplicate table, so the runtime need not journal garbage.
    """

    def dump_state(self) -> bytes:
        """The node's complete state as bytes (between calls, never inside one)."""
        ...

    def load_state(self, data: bytes) -> None:
        """Take over a state written by :meth:`dump_state` of a node with the same setup."""
        ...

    def resume(self, down_since: float, now: float) -> list[Publish]:
        """Power on again at ``now`` after having stopped at ``down_since``."""
        ...


class AuditSource(Protocol):
    """A node that keeps an audit log the runtime can copy to disk (optional)."""

    def drain_audit(self) -> list[tuple[float, str, dict[str, Any]]]:
        """The audit entries ``(at, kind, data)`` since the last call, oldest first."""
        ...


@runtime_checkable
class AuditedNode(Protocol):
    """A node whose audit log (R-AUDIT) the bench can read: optional, and checked by P-AUDIT.

    The reference node has it; so has a node in a child process that accepted the ``audit``
    feature of the node protocol. It may be asked after :meth:`CameraNode.finish` too.
    """

    def audit_trail(self) -> AuditTrail:
        """The log as it stands; :class:`~controller.audit.NoAuditTrail` if there is none."""
        ...


ControllerFactory = Callable[[CameraSetup], CameraNode]


DEFAULT_FACTORY = "controller.reference:make_node"
