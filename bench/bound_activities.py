"""Cost of one event against the number of open activities (R-BOUND), and of a signed command.

A camera is given ``n`` open required activities (the cap raised for the measurement), then
fed a mix of events that do not change the set of open windows — a button press, a device
signal, a refused stop, a redelivery, garbage — and the time per event is compared with the
same events on a camera holding 10 open activities, measured in the same run. O(log n) per
event means the ratio stays near 1 however large ``n`` gets (the code before this bound cost
9 ms per event at 20,000). Events that *add* an activity are shown too: their retained state
lists every open activity, so they pay a linear encoding, in C, bounded in practice by the cap
of 256.

A second figure: the cost of verifying a signed command (Ed25519) next to the same command
unsigned, both through the reference node.

    python bench/bound_activities.py [--quick] [--repeat N] [--json]
"""

from __future__ import annotations

import json
import sys

import measure

from controller.bounds import Limits
from controller.node import CameraSetup
from controller.policy import load_policy
from controller.reference import ReferenceNode

DHS = load_policy("dhs-2023")
EVENT = "bwc/cam-1/event"


def _ev(msg_id: str, etype: str, **fields: object) -> bytes:
    return json.dumps({"id": msg_id, "type": etype, **fields}).encode()


def _node(n_open: int) -> tuple[ReferenceNode, float]:
    node = ReferenceNode(CameraSetup(camera_id="cam-1", policy=DHS,
                                     limits=Limits(max_open_activities=n_open + 100_000)))
    node.start(0.0)
    t = 1.0
    for i in range(n_open):
        node.on_message(EVENT, _ev(f"s-{i}", "activity_start", activity="patrol", activity_id=f"p-{i}"), t)
        t += 1e-4
    return node, t


def per_event_us(n_open: int, events: int, adding: bool) -> float:
    node, t = _node(n_open)
    mix = [_ev("b", "button", action="start"), _ev("s", "signal", source="taser"),
           _ev("x", "button", action="stop"), b"not json"]
    payloads = ([_ev(f"n-{i}", "activity_start", activity="patrol", activity_id=f"n-{i}")
                 for i in range(events)] if adding else
                [mix[i % 4] if i % 4 else _ev(f"b-{i}", "button", action="start") for i in range(events)])
    on_message = node.on_message

    def feed() -> None:
        at = t
        for p in payloads:
            at += 0.01
            on_message(EVENT, p, at)

    return measure.timed(feed) / events * 1e6


def signed_vs_plain_us(events: int) -> tuple[float, float]:
    sys.path.insert(0, str(measure.ROOT / "tests"))
    from signing import Sender, trust

    dispatch = Sender("dispatch")
    signed = [dispatch.command(f"m-{i}", "signal", source="taser", seq=i + 1) for i in range(events)]
    plain = [_ev(f"m-{i}", "signal", source="taser") for i in range(events)]
    out = []
    for payloads, tf in ((signed, trust()), (plain, None)):
        node = ReferenceNode(CameraSetup(camera_id="cam-1", policy=DHS, trust=tf))
        node.start(0.0)

        def feed(node: ReferenceNode = node, payloads: list[bytes] = payloads) -> None:
            for i, p in enumerate(payloads):
                node.on_message(EVENT, p, 1.0 + i * 0.01)

        out.append(measure.timed(feed) / events * 1e6)
    return out[0], out[1]


def main() -> None:
    args = measure.parser(__doc__.splitlines()[0]).parse_args()
    repeat = args.repeat or (2 if args.quick else 5)
    sizes = (10, 1_000) if args.quick else (10, 1_000, 20_000)
    events = 200 if args.quick else 2_000
    rows: list[measure.Row] = []
    for adding in (False, True):
        base = min(per_event_us(sizes[0], events, adding) for _ in range(repeat))
        what = "new activity" if adding else "button/signal/stop/garbage"
        for n in sizes[1:]:
            cost = min(per_event_us(n, events, adding) for _ in range(repeat))
            rows.append(measure.Row(
                f"{what}, {n:,} open activities", cost, "us/event",
                baseline=f"{sizes[0]} open: {measure.fmt(base)} us/event", ratio=cost / base,
                ratio_of=f"cost at {n:,} / cost at {sizes[0]}",
                target="~1 (O(log n))" if not adding else "",
                met=(cost / base < 2.0) if not adding else None,
            ))
    signed, plain = (min(x) for x in zip(*(signed_vs_plain_us(events) for _ in range(repeat)), strict=True))
    rows.append(measure.Row("signed command (Ed25519 verify)", signed, "us/event",
                            baseline=f"unsigned: {measure.fmt(plain)} us/event", ratio=signed / plain,
                            ratio_of="signed / unsigned"))
    measure.emit("bound_activities", rows, args.json, [f"{events} events per figure, best of {repeat}"])


if __name__ == "__main__":
    main()
