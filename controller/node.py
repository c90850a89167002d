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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol, runtime_checkable

import msgspec

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


ControllerFactory = Callable[[CameraSetup], CameraNode]


DEFAULT_FACTORY = "controller.reference:make_node"
