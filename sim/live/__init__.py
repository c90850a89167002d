"""The live edge: the controller on a real (or simulated) MQTT broker, in asyncio.

:mod:`.bus` is one asynchronous bus interface with two implementations (the simulated broker
in loop time, and ``aiomqtt`` speaking MQTT 5 or 3.1.1); :mod:`.runtime` runs one camera node over
a bus (reconnects, timers, batches committed before they are released, faults reported);
:mod:`.outbox` keeps what is to be published by value, :mod:`.limits` rate-limits senders,
:mod:`.store` is the camera's durable state (SQLite WAL) and :mod:`.auditfile` its hash-chained
audit file; :mod:`.brokerconfig` writes a Mosquitto configuration from a deployment file;
:mod:`.keys` makes signing identities and trust files; :mod:`.clock` is the scaled clock and
power-on at a set time; :mod:`.command` is ``bwcsim live``.

Hardware in the loop plays scenarios against devices on a real broker: :mod:`.hil` plays and
:mod:`.observe` turns what it saw into a replay's observations, :mod:`.devices` starts ``bwcsim
live`` processes as devices, :mod:`.session` is what ``run/check --live`` share.

This is the only place with sockets, wall clocks and an event loop.
"""
