"""Who sends a scenario's messages: test keys, the signed bytes, and what a camera must refuse.

Theory of operation
-------------------
Every event entry of a scenario has a sender (:class:`~sim.world.scenario.PrincipalSpec`). For a
scenario with ``auth: signed`` this module

* derives each principal's **test key** deterministically from its name
  (:func:`sim_key`), so the same scenario and seed give the same signatures and the same
  trace byte for byte (Ed25519 signatures are deterministic). These keys are public knowledge:
  they exist for simulation and tests and must never be deployed;
* builds the cameras' **trust file** from the trusted principals' public keys
  (:func:`trust_file`);
* turns each entry into its **wire bytes** (:func:`wire_messages`): the event body with the
  sender's sequence number (counted per sender in the order messages are sent, unless the entry
  sets ``seq:``) and ``to`` (its target), signed by the sender's key under the name it claims.
  A scripted redelivery (same id, same sender) repeats the first copy's bytes exactly, and a
  ``replay`` entry repeats an earlier message's bytes (with a fresh ``id``, its signature no
  longer matches).

With ``auth: none`` messages go out unsigned, exactly as before this module existed.

:func:`must_refuse` is the ground truth of SPEC §14 for the oracle: the entries a camera is
obliged to refuse — forgeries (an untrusted or mis-claimed signer, a sender whose role may not
send the event or not to this camera, a replay), commands from a principal that did not start
the activity they end (and is not ``dispatch``), a ``ts`` more than ``max_skew_s`` ahead on
arrival, and, with signatures, a re-used sequence number or a ``deactivate`` whose ``actor`` is
not its signer. The oracle treats those as nothing happening: they open no required window,
excuse no gap, and a camera that acts on one fails the verdict. An ``auth: none`` camera cannot
tell a forgery from a command, so a scenario that forges against one fails — which is the point
of showing it.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controller.principals import Principal, TrustFile, encode_public_key
from controller.trust import DISPATCH, Signed, sign

from .scenario import Scenario, TimelineEntry

__all__ = ["may_refuse", "must_refuse", "send_order", "sequence_numbers", "sim_key", "trust_file",
           "wire_messages"]

_encode = msgspec.json.encode
_signed_decoder = msgspec.json.Decoder(Signed)


@functools.lru_cache(maxsize=1024)
def sim_key(name: str) -> Ed25519PrivateKey:
    """The deterministic *test* key of principal ``name`` (public knowledge: never deploy it)."""
    seed = hashlib.sha256(b"bwcsim test key\0" + name.encode("utf-8")).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def trust_file(scenario: Scenario) -> TrustFile | None:
    """The trust file the scenario's cameras are provisioned with (``None``: ``auth: none``)."""
    if scenario.auth == "none":
        return None
    return TrustFile(version=1, principals=[
        Principal(name=p.name, role=p.role, camera=p.camera,
                  keys=[encode_public_key(sim_key(p.name).public_key())])
        for p in scenario.principals if p.trusted
    ])


def send_order(scenario: Scenario) -> list[TimelineEntry]:
    """The timeline in the order its messages go out (send time, then timeline order)."""
    return sorted(scenario.timeline, key=lambda e: (e.send_at, e.index))


def sequence_numbers(
    scenario: Scenario, order: Sequence[TimelineEntry] | None = None
) -> dict[int, int]:
    """Entry index → the sequence number its sender gives it.

    Each sender counts up from 1 in the order it sends; an entry's own ``seq:`` wins (and a
    higher one moves the count on); a scripted redelivery repeats the first copy's number.
    """
    counters: dict[str, int] = {}
    first: dict[tuple[str, str], int] = {}
    out: dict[int, int] = {}
    for e in send_order(scenario) if order is None else order:
        if e.event is None or e.sender is None:
            continue
        key = (e.sender, e.message_id)
        seq = first.get(key)
        if seq is None:
            seq = e.seq if e.seq is not None else counters.get(e.sender, 0) + 1
            counters[e.sender] = max(counters.get(e.sender, 0), seq)
            first[key] = seq
        out[e.index] = seq
    return out


def wire_messages(scenario: Scenario) -> dict[int, tuple[str, bytes]]:
    """Entry index → (topic, payload) of every entry that publishes something."""
    prefix = scenario.prefix
    out: dict[int, tuple[str, bytes]] = {}
    by_id: dict[str, int] = {}  # message id → first entry that sent it
    signed = scenario.auth != "none"
    replaying = any(e.replay_of is not None for e in scenario.timeline)
    # Send order matters only for sequence numbers and for which copy a replay repeats:
    # without either (every fleet shift) the timeline is walked as it stands, unsorted.
    order = send_order(scenario) if signed or replaying else scenario.timeline
    # Only signed bodies carry a sequence number.
    seqs = sequence_numbers(scenario, order) if signed else {}
    replays: list[TimelineEntry] = []
    for e in order:
        if e.fault is not None:
            continue
        if e.replay_of is not None:
            replays.append(e)
            continue
        if e.raw is not None:
            out[e.index] = (e.raw.topic, e.raw.payload_bytes)
        elif not signed:  # e.payload(prefix), written out: an event entry, one call fewer
            out[e.index] = (e.topic(prefix), _encode(e.body()))
        else:
            assert e.sender is not None  # the loader names one for every entry when signed
            body = _encode({**e.body(), "seq": seqs[e.index], "to": e.target})
            out[e.index] = (e.topic(prefix), sign(sim_key(e.sender), e.claims or e.sender, body))
        if replaying and e.event is not None:
            by_id.setdefault(e.message_id, e.index)
    for e in replays:
        assert e.replay_of is not None
        _, payload = out[by_id[e.replay_of]]
        if e.id is not None:
            payload = _with_id(payload, e.id)
        out[e.index] = (e.topic(prefix), payload)
    return out


def _with_id(payload: bytes, new_id: str) -> bytes:
    """The same message under a fresh id; a signed one keeps its (now wrong) signature."""
    try:
        envelope = _signed_decoder.decode(payload)
    except msgspec.DecodeError:
        body = msgspec.json.decode(payload)
        return _encode({**body, "id": new_id})
    body = msgspec.json.decode(envelope.body)
    return _encode(msgspec.structs.replace(envelope, body=_encode({**body, "id": new_id}).decode()))


def may_refuse(entry: TimelineEntry) -> bool:
    """Whether :func:`must_refuse` can hold ``entry`` against a camera at all: a replay, a
    message with a sender (its trust, role, starter or sequence number may fail) or with a
    ``ts`` (it may be ahead). When no entry of a scenario can be, no camera must refuse any."""
    return entry.replay_of is not None or entry.sender is not None or entry.ts is not None


def must_refuse(
    scenario: Scenario, camera: str, arrival: Callable[[int], float | None] | None = None,
    *, order: list[TimelineEntry] | None = None, seqs: dict[int, int] | None = None,
) -> dict[int, str]:
    """Entries ``camera`` is obliged to refuse under SPEC §14, each with the reason.

    ``arrival`` gives the time an entry reached the camera (for the ``ts`` skew), ``None`` if
    it never did; without it the send time stands in. ``order`` and ``seqs`` are
    :func:`send_order` and :func:`sequence_numbers` of the scenario, when the caller judges
    several cameras of it and computed them once.
    """
    policy = scenario.policy
    signed = scenario.auth == "signed"
    out: dict[int, str] = {}
    if order is None:
        order = send_order(scenario)
    if seqs is None:
        seqs = sequence_numbers(scenario, order)
    last_seq: dict[str, int] = {}
    sent: dict[tuple[str | None, str], int] = {}  # (sender, id) → first entry
    starters: dict[str, str | None] = {}
    for e in order:
        if camera not in scenario.targets(e) or e.raw is not None or e.fault is not None:
            continue
        if e.replay_of is not None:
            out[e.index] = f"a replay of {e.replay_of}"
            continue
        if (e.sender, e.message_id) in sent:
            continue  # a scripted redelivery: the first copy's fate is its fate
        sent[(e.sender, e.message_id)] = e.index
        why = _refusal(scenario, camera, e, seqs.get(e.index) if signed else None, starters, last_seq)
        if why is None and e.ts is not None:
            at = arrival(e.index) if arrival is not None else e.send_at
            if at is not None and e.ts > at + policy.max_skew_s:
                why = f"ts {e.ts:g} more than max_skew_s ahead"
        if why is not None:
            out[e.index] = why
            continue
        if e.sender is not None and signed:
            last_seq[e.sender] = seqs[e.index]
        aid = e.fields.get("activity_id")
        if e.event == "activity_start" and isinstance(aid, str):
            starters.setdefault(aid, e.sender)
        elif e.event == "activity_end" and isinstance(aid, str):
            starters.pop(aid, None)
    return out


def _refusal(
    scenario: Scenario, camera: str, e: TimelineEntry, seq: int | None,
    starters: dict[str, str | None], last_seq: dict[str, int],
) -> str | None:
    """Why ``camera`` must refuse entry ``e`` for its sender (``seq``: its number, if signed)."""
    if e.sender is None:
        return None  # auth: none and nobody in particular
    policy = scenario.policy
    who = scenario.principal(e.sender)
    if not who.trusted:
        return f"{who.name} is not trusted"
    if e.claims is not None and e.claims != e.sender:
        return f"signed by {e.sender} in the name of {e.claims}"
    assert e.event is not None
    if not policy.may_send(who.role, e.event):
        return f"role {who.role} may not send {e.event}"
    if who.role in policy.own_camera_roles and (who.camera != camera or e.camera != camera):
        return f"{who.name} may command only {who.camera}"
    aid = e.fields.get("activity_id")
    if e.event == "activity_end" and who.role != DISPATCH and isinstance(aid, str):
        starter = starters.get(aid)
        if aid in starters and starter is not None and starter != e.sender:
            return f"only {starter} or dispatch may end {aid}"
    if seq is not None:  # signed
        if e.event == "deactivate" and e.fields.get("actor") != e.sender:
            return f"actor is not the signer {e.sender}"
        last = last_seq.get(e.sender)
        if last is not None and seq <= last:
            return f"seq {seq} <= {last}, already spent"
    return None
