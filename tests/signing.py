"""Helpers for tests that speak to a camera with signed commands (SPEC §14).

:func:`signed_node` builds a reference node provisioned with a trust file of test principals;
:class:`Sender` signs event bodies the way a dispatch console, a supervisor or a paired device
would, counting its own sequence numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import msgspec

from controller.bounds import Limits
from controller.codec import decode_outbound
from controller.messages import Ack, StateReport
from controller.node import CameraSetup, Publish
from controller.policy import Policy, load_policy
from controller.principals import Principal, TrustFile, encode_public_key
from controller.reference import ReferenceNode
from controller.trust import sign
from sim.world.senders import sim_key

DHS = load_policy("dhs-2023")
CAM = "cam-1"
TEAM = "sr-1"
EVENT = f"bwc/{CAM}/event"
TEAM_EVENT = f"bwc/team/{TEAM}/event"

#: name → (role, camera)
PRINCIPALS: dict[str, tuple[str, str | None]] = {
    "dispatch": ("dispatch", None),
    "dispatch-2": ("dispatch", None),
    "supervisor": ("supervisor", None),
    "officer-cam-1": ("officer", CAM),
    "officer-cam-2": ("officer", "cam-2"),
    "device-cam-1": ("device", CAM),
}


def trust(names: dict[str, tuple[str, str | None]] | None = None) -> TrustFile:
    chosen = PRINCIPALS if names is None else names
    return TrustFile(version=1, principals=[
        Principal(name=n, role=r, camera=c, keys=[encode_public_key(sim_key(n).public_key())])
        for n, (r, c) in chosen.items()
    ])


def signed_node(
    policy: Policy = DHS, limits: Limits | None = None, trust_file: TrustFile | None = None,
    signed: bool = True,
) -> ReferenceNode:
    node = ReferenceNode(CameraSetup(
        camera_id=CAM, policy=policy, teams=(TEAM,),
        trust=(trust_file or trust()) if signed else None, limits=limits or Limits(),
    ))
    node.start(0.0)
    return node


@dataclass
class Sender:
    """A principal that signs with its test key (or another's name, to forge)."""

    name: str
    seq: int = 0

    def body(self, msg_id: str | int, event_type: str, to: str = CAM, seq: int | None = None,
             **fields: Any) -> bytes:
        if seq is None:
            self.seq += 1
            seq = self.seq
        return msgspec.json.encode({"id": msg_id, "type": event_type, **fields, "seq": seq, "to": to})

    def signed(self, body: bytes, claims: str | None = None) -> bytes:
        return sign(sim_key(self.name), claims or self.name, body)

    def command(self, msg_id: str | int, event_type: str, to: str = CAM, seq: int | None = None,
                claims: str | None = None, **fields: Any) -> bytes:
        return self.signed(self.body(msg_id, event_type, to, seq, **fields), claims)


def acks(pubs: list[Publish]) -> list[Ack]:
    return [m for p in pubs if p.topic.endswith("/ack")
            for m in [decode_outbound("ack", p.payload)] if isinstance(m, Ack)]


def ack(pubs: list[Publish]) -> Ack:
    (only,) = acks(pubs)
    return only


def states(pubs: list[Publish]) -> list[StateReport]:
    return [m for p in pubs if p.topic.endswith("/state")
            for m in [decode_outbound("state", p.payload)] if isinstance(m, StateReport)]


def envelope(payload: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(payload)
    return doc
