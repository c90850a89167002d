"""The live edge: the controller on a real (or simulated) MQTT broker, in asyncio.

:mod:`.bus` is one asynchronous bus interface with two implementations (the simulated broker
in loop time, and ``aiomqtt``); :mod:`.runtime` runs one camera node over a bus (outbox,
reconnects, timers); :mod:`.command` is ``bwcsim live``; :mod:`.clock` is the scaled clock and
power-on at a set time. Hardware in the loop plays scenarios against devices on a real broker:
:mod:`.hil` plays and :mod:`.observe` turns what it saw into a replay's observations,
:mod:`.devices` starts ``bwcsim live`` processes as devices, :mod:`.session` is what ``run/check
--live`` share. This is the only place with sockets, wall clocks and an event loop.
"""
