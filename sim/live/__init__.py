"""The live edge: the controller on a real (or simulated) MQTT broker, in asyncio.

:mod:`.bus` is one asynchronous bus interface with two implementations (the simulated broker
in loop time, and ``aiomqtt`` speaking MQTT 5 or 3.1.1); :mod:`.runtime` runs one camera node over
a bus (reconnects, timers, batches committed before they are released, faults reported);
:mod:`.outbox` keeps what is to be published by value, :mod:`.limits` rate-limits senders,
:mod:`.store` is the camera's durable state (SQLite WAL) and :mod:`.auditfile` its hash-chained
audit file; :mod:`.brokerconfig` writes a Mosquitto configuration from a deployment file;
:mod:`.keys` makes signing identities and trust files; :mod:`.command` is ``bwcsim live``. This
is the only place with sockets, wall clocks and an event loop.
"""
