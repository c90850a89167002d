"""What people and machines read of a run: the JSON/text report and the pictures.

:mod:`.report` turns a replay into the SPEC §9 report dict; :mod:`.model` turns the replay, the
report and the trace into one :class:`~sim.views.model.RunView`; the renderers (:mod:`.text`,
:mod:`.timeline`, :mod:`.waveform`, :mod:`.perfetto`) read only that view model, and
:mod:`.files` writes the files a command asked for. Imports point from the files writer to the
renderers to the view model to the world, never back. :mod:`.projector` is the timeline
drawn for a room.

Beside the pictures: :mod:`.compare` sets two reports side by side (``bwcsim diff``, the
studio's "what if"), :mod:`.playback` pauses a replay at a moment (the studio's cursor),
:mod:`.words` explains refusals in plain words and :mod:`.vocabulary` lists the words a scenario
may use under a policy (``bwcsim policy``, ``docs/vocabulary.md``). Nothing here runs a replay
of its own or reads a clock: every output is a function of the run it is given (P-DET).
"""
