"""The live edge: the controller on a real (or simulated) MQTT broker, in asyncio.

:mod:`.bus` is one asynchronous bus interface with two implementations (the simulated broker
in loop time, and ``aiomqtt``); :mod:`.runtime` runs one camera node over a bus (outbox,
reconnects, timers); :mod:`.command` is ``bwcsim live``. This is the only place with sockets,
wall clocks and an event loop.
"""
