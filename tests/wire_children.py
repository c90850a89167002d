"""Child processes that misbehave on the node protocol, for the host's error handling tests.

    python tests/wire_children.py MODE [EVENT_TYPE]

Each serves the reference controller over the protocol (:class:`controller.wire.NodeServer`)
and misbehaves in one way, either at the handshake or when a ``deliver`` request carries an
event of type ``EVENT_TYPE`` (default ``dock``) -- a property of the scenario, not of the
child's history, so the fuzzer can shrink a scenario down to the event that sets it off.

Modes on a matching delivery: ``crash`` (SIGSEGV), ``exit`` (status 3), ``hang``,
``garbage`` (a debugging line on stdout), ``order`` (the answer carries another seq),
``error`` (an error answer), ``partial`` (half an answer, then exit), ``bad-answer`` (a well
formed object that is not a step answer), ``stuck`` (from then on every step answer asks to be
woken at the very time of its request). At the handshake: ``die-at-start``, ``old-protocol``,
``refuse-hello``, ``silent`` (never answers). And one that behaves, as a child written before
protocol features were: ``no-features`` answers the handshake without the field and frees a
node on ``finish``.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import msgspec

from controller.reference import make_node
from controller.wire import (
    Deliver,
    ErrorAnswer,
    Hello,
    HelloAnswer,
    NodeServer,
    Timer,
    decode_request,
    encode,
)


def _event_type(payload: bytes) -> str | None:
    try:
        doc = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        return None
    return doc.get("type") if isinstance(doc, dict) else None


def main() -> int:
    mode = sys.argv[1]
    trigger = sys.argv[2] if len(sys.argv) > 2 else "dock"
    out = sys.stdout.buffer
    sys.stderr.write(f"wire child {mode} on {trigger}: ready\n")
    sys.stderr.flush()
    if mode == "die-at-start":
        sys.stderr.write("cannot open /dev/camera0: no such device\n")
        return 1
    server = NodeServer(make_node, f"misbehaving {mode}")
    stuck = False
    for line in sys.stdin.buffer:
        req = decode_request(line)
        if stuck and isinstance(req, (Deliver, Timer)):
            answer = msgspec.json.decode(server.answer(line))
            answer["deadline"] = req.now
            out.write(msgspec.json.encode(answer) + b"\n")
            out.flush()
            continue
        if isinstance(req, Hello):
            if mode == "silent":
                time.sleep(3600)
            if mode == "old-protocol":
                out.write(b'{"seq":0,"protocol":0,"name":"old","max_cameras":null}\n')
                out.flush()
                continue
            if mode == "no-features":
                out.write(encode(HelloAnswer(seq=req.seq, protocol=req.protocol, name="before features")))
                out.flush()
                continue
            if mode == "refuse-hello":
                out.write(encode(ErrorAnswer(seq=req.seq, error="I only speak protocol 0")))
                out.flush()
                continue
        if isinstance(req, Deliver) and _event_type(req.payload) == trigger:
            sys.stderr.write(f"handling {trigger} at t={req.now:g}\n")
            sys.stderr.flush()
            if mode == "crash":
                os.kill(os.getpid(), signal.SIGSEGV)
            if mode == "exit":
                return 3
            if mode == "hang":
                time.sleep(3600)
            if mode == "garbage":
                out.write(b"DEBUG: got a dock, undocking the flux capacitor\n")
                out.flush()
                continue
            if mode == "order":
                answer = server.answer(line).replace(f'"seq":{req.seq},'.encode(),
                                                     f'"seq":{req.seq + 1},'.encode(), 1)
                out.write(answer)
                out.flush()
                continue
            if mode == "error":
                out.write(encode(ErrorAnswer(seq=req.seq, error="assertion failed: state != DOCKED")))
                out.flush()
                continue
            if mode == "partial":
                out.write(f'{{"seq":{req.seq},"publish":['.encode())
                out.flush()
                return 0
            if mode == "stuck":
                stuck = True
            if mode == "bad-answer":
                out.write(f'{{"seq":{req.seq},"published":[],"deadline":null}}\n'.encode())
                out.flush()
                continue
        out.write(server.answer(line))
        out.flush()
        if server.done:
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
