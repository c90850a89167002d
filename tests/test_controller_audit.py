"""The append-only, hash-chained audit log (R-AUDIT)."""

from __future__ import annotations

import msgspec
import pytest
from camera_driver import ALLOWED_REASON, CAM, CameraDriver, NodeDriver
from hypothesis import example, given, settings
from hypothesis import strategies as st

from controller.audit import (
    AuditEntry,
    AuditLog,
    NoAuditTrail,
    canonical,
    entry_hash,
    genesis,
    trail_of,
    verify,
)

pytestmark = pytest.mark.req("R-AUDIT")


def busy_camera() -> CameraDriver:
    """A shift with a bit of everything: states, accepted and refused messages, alerts,
    a deactivation and its end."""
    drv = CameraDriver(battery_s=2000, low_battery_s=1500)
    drv.start(100, "patrol", "p-1", ts=10)                 # late_trigger
    drv.send(150, "button", action="stop")                 # refused
    drv.send(200, "deactivate", reason=ALLOWED_REASON, actor="ofc-7")
    drv.send(250, "reactivate")
    drv.advance(600)                                       # low_battery
    drv.end(700, "p-1")
    drv.send(800, "dock")
    return drv


def test_log_records_every_kind_of_thing_with_sim_time() -> None:
    drv = busy_camera()
    entries = drv.camera.audit.entries
    kinds = {e.kind for e in entries}
    assert {"power_on", "state", "accepted", "refused", "alert", "deactivation",
            "deactivation_end", "recording_open", "segment_close"} <= kinds
    by_kind = {(e.kind, e.at) for e in entries}
    assert ("refused", 150) in by_kind and ("deactivation", 200) in by_kind
    assert ("deactivation_end", 250) in by_kind
    assert [e.data["kind"] for e in entries if e.kind == "alert"] == ["late_trigger", "low_battery"]
    states = [(e.at, e.data["from"], e.data["to"]) for e in entries if e.kind == "state"]
    assert states == [(100, "pre_buffer", "recording"), (200, "recording", "pre_buffer"),
                      (250, "pre_buffer", "recording"), (700, "recording", "pre_buffer"),
                      (800, "pre_buffer", "docked")]
    assert [e.at for e in entries] == sorted(e.at for e in entries), "time never goes back"
    assert [e.seq for e in entries] == list(range(len(entries)))


def test_refused_bytes_and_redeliveries_are_logged() -> None:
    drv = NodeDriver()
    drv.raw(5, b"junk")
    drv.raw(6, '{"id": 1, "type": "dock"}')
    drv.raw(7, '{"id": 1, "type": "dock"}')
    tail = [(e.kind, e.at) for e in drv.camera.audit.entries][-5:]
    assert ("refused", 5) in tail and ("accepted", 6) in tail and ("duplicate", 7) in tail


def test_intact_chain_verifies_up_to_its_head() -> None:
    log = busy_camera().camera.audit
    assert verify(CAM, log.entries) is None
    assert verify(CAM, log.entries, head=log.head) is None
    assert verify(CAM, []) is None


def tampered(entries: tuple[AuditEntry, ...], how: str) -> list[AuditEntry]:
    out = list(entries)
    i = len(out) // 2
    if how == "edit-data":
        out[i] = msgspec.structs.replace(out[i], data={**out[i].data, "forged": True})
    elif how == "edit-time":
        out[i] = msgspec.structs.replace(out[i], at=out[i].at + 1)
    elif how == "edit-kind":
        out[i] = msgspec.structs.replace(out[i], kind="accepted")
    elif how == "drop":
        del out[i]
    elif how == "swap":
        out[i], out[i + 1] = out[i + 1], out[i]
    elif how == "insert":
        e = out[i]
        out.insert(i, AuditEntry(e.seq, e.at, "accepted", {}, e.prev,
                                 entry_hash(e.prev, e.seq, e.at, "accepted", {})))
    return out


@pytest.mark.parametrize("how", ["edit-data", "edit-time", "edit-kind", "drop", "swap", "insert"])
def test_any_tampering_breaks_the_chain_where_it_happened(how: str) -> None:
    entries = busy_camera().camera.audit.entries
    i = len(entries) // 2
    broken_at = verify(CAM, tampered(entries, how))
    assert broken_at is not None
    assert broken_at == (i + 1 if how == "insert" else i)


def test_in_place_edit_of_a_logged_dict_is_detected() -> None:
    log = busy_camera().camera.audit
    log.entries[3].data["sneaky"] = 1
    assert verify(CAM, log.entries) == 3


def test_cut_off_tail_is_detected_against_the_head() -> None:
    log = busy_camera().camera.audit
    cut = log.entries[:-2]
    assert verify(CAM, cut) is None, "a shorter chain is consistent with itself..."
    assert verify(CAM, cut, head=log.head) == len(cut), "...but does not end at the head"


def test_rewritten_chain_is_detected_against_the_head() -> None:
    """Editing an entry and recomputing every hash after it fools the chain alone."""
    log = busy_camera().camera.audit
    forged = AuditLog(CAM)
    for e in log.entries:
        data = {**e.data, "reason": "forged"} if e.kind == "deactivation" else e.data
        forged.append(e.at, e.kind, data)
    assert verify(CAM, forged.entries) is None
    assert verify(CAM, forged.entries, head=log.head) is not None


def test_logs_of_two_cameras_cannot_be_swapped() -> None:
    log = busy_camera().camera.audit
    assert genesis("cam-1") != genesis("cam-2")
    assert verify("cam-2", log.entries) == 0


def test_log_is_append_only_from_outside() -> None:
    log = busy_camera().camera.audit
    entries = log.entries
    assert isinstance(entries, tuple)
    with pytest.raises(AttributeError):
        entries[0].kind = "x"  # type: ignore[misc]


# ------------------------------------------------------------------ the canonical form, as documented


def _documented_float(value: float) -> str:
    """The float layout the docstring of controller.audit spells out for other languages, from
    the shortest digits (Python's repr finds the same ones) and the position of the point."""
    if value == 0.0:
        return repr(value)  # 0.0 or -0.0
    sign, text = ("-", repr(-value)) if value < 0 else ("", repr(value))
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    point = len(whole) + int(exponent or 0) - (len(whole + fraction) - len(digits))
    digits = digits.rstrip("0") or "0"
    n = len(digits)
    if n <= point <= 16:
        out = digits + "0" * (point - n) + ".0"
    elif 0 < point <= 16:
        out = digits[:point] + "." + digits[point:]
    elif -5 < point <= 0:
        out = "0." + "0" * -point + digits
    else:
        out = (digits if n == 1 else digits[0] + "." + digits[1:]) + f"e{point - 1}"
    return sign + out


@given(value=st.floats(allow_nan=False, allow_infinity=False))
@settings(max_examples=2000)
@example(value=1e16)
@example(value=1e15)
@example(value=1e-5)
@example(value=1.5e-7)
@example(value=5e-324)
@example(value=0.1 + 0.2)
@example(value=-0.0)
def test_the_documented_float_layout_is_what_the_hash_covers(value: float) -> None:
    text = _documented_float(value)
    assert canonical("p", 0, value, "k", {}) == f'["p",0,{text},"k",{{}}]'.encode()
    assert float(text) == value


def test_the_canonical_text_sorts_keys_and_escapes_only_what_json_must() -> None:
    data = {"b": 1, "a": "x\"\\\x01\x7f\u2028é/", "A": [True, None, 2.5]}
    assert canonical("p", 3, 12.0, "kind", data) == (
        '["p",3,12.0,"kind",{"A":[true,null,2.5],"a":"x\\"\\\\\\u0001\x7f\u2028é/","b":1}]'
    ).encode()


def test_trail_of_reads_a_reference_node_and_says_why_it_cannot_read_another() -> None:
    drv = NodeDriver()
    drv.raw(5, '{"id":"m-1","type":"dock"}')
    trail = trail_of(drv.node)
    assert trail == drv.camera.audit.trail() and trail.camera_id == CAM
    assert verify(CAM, trail.entries, head=trail.head) is None

    class Opaque:
        pass

    with pytest.raises(NoAuditTrail, match="Opaque"):
        trail_of(Opaque())


# ------------------------------------------------------------------ the lazy chain equals the eager one


class _EagerTee(AuditLog):
    """The camera's log, with beside it the chain computed eagerly at every append (as the log
    did before hashing became lazy); ``settle_every`` reads the head every n appends, so the
    lazy chain is also settled at many points of the run, not only at the end."""

    __slots__ = ("eager", "eager_head")
    made: list[_EagerTee] = []  # noqa: RUF012 - the tees one test created, in order
    settle_every = 0

    def __init__(self, camera_id: str) -> None:
        super().__init__(camera_id)
        self.eager: list[AuditEntry] = []
        self.eager_head = genesis(camera_id)
        _EagerTee.made.append(self)

    def append(self, at: float, kind: str, data: dict[str, object]) -> None:
        super().append(at, kind, data)
        seq = len(self.eager)
        h = entry_hash(self.eager_head, seq, at, kind, data)
        self.eager.append(AuditEntry(seq, at, kind, data, self.eager_head, h))
        self.eager_head = h
        every = type(self).settle_every
        if every and len(self) % every == 0:
            assert self.head == h


@pytest.mark.parametrize("settle_every", [0, 1, 7])
def test_lazy_chain_is_the_eager_chain(monkeypatch: pytest.MonkeyPatch, settle_every: int) -> None:
    from controller import camera as camera_module
    from sim.fleet import plan_fleet, run_team

    monkeypatch.setattr(camera_module, "AuditLog", _EagerTee)
    monkeypatch.setattr(_EagerTee, "made", [])
    monkeypatch.setattr(_EagerTee, "settle_every", settle_every)
    busy_camera()
    run_team(plan_fleet(6, 4.0, seed=3)[0])  # a whole team's shift, every kind of entry
    assert len(_EagerTee.made) >= 3
    for log in _EagerTee.made:
        assert len(log) == len(log.eager) > 0
        assert log.entries == tuple(log.eager)
        assert log.head == log.eager_head
        assert log.trail().head == log.eager_head
        assert verify(log.camera_id, log.entries, head=log.head) is None


def test_lazy_chain_drains_and_restores_as_the_eager_one() -> None:
    drv = busy_camera()
    log = drv.camera.audit
    n = len(log)
    first = log.drain()  # hashes what was pending, hands it over
    assert len(first) == n and len(log) == n and log.entries == ()
    drv.send(900, "undock")  # appended, not hashed yet
    head, count = log._head, log._count  # what the camera's durable state saves
    assert count == len(log) > n
    rest = log.drain()
    assert [e.seq for e in first + rest] == list(range(count))
    assert verify(CAM, first + rest, head=head) is None
    restored = AuditLog(CAM)
    restored.append(0.0, "power_on", {"state": "docked"})  # pending when the state is loaded
    restored._head, restored._count = head, count
    assert restored.head == head and len(restored) == count
    restored.append(950.0, "restart", {})
    *_, entry = restored.drain()
    assert (entry.seq, entry.prev, entry.kind) == (count, head, "restart")
