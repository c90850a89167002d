"""The simulated world: virtual time, the in-memory broker, scenarios, the replay and the oracle.

Data flows one way: a scenario file is validated (:mod:`.scenario`) into a :class:`Scenario`;
:mod:`.replay` puts its timeline on a :mod:`.scheduler` heap and its cameras' nodes on a
:mod:`.broker`, runs to ``end`` and collects what each camera published; :mod:`.oracle` compares
that footage with the ground-truth required windows and gives every missed second one cause.
:mod:`.senders` says who sends each timeline message and signs it under ``auth: signed``;
:mod:`.whatif` edits a scenario's text field by field (``run --set``, ``diff``, the studio).
:func:`~sim.world.replay.judge_run` is the judging half of the replay alone, which a live run
(:mod:`sim.live.observe`) feeds with what real devices did. Nothing here draws pictures,
searches, or touches a socket.
"""
