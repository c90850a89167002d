"""The simulated world: virtual time, the in-memory broker, scenarios, the replay and the oracle.

Data flows one way: a scenario file is validated (:mod:`.scenario`) into a :class:`Scenario`;
:mod:`.replay` puts its timeline on a :mod:`.scheduler` heap and its cameras' nodes on a
:mod:`.broker`, runs to ``end`` and collects what each camera published; :mod:`.oracle` compares
that footage with the ground-truth required windows and gives every missed second one cause.
Nothing here draws pictures, searches, or touches a socket.
"""
