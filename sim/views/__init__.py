"""What people and machines read of a run: the JSON/text report and the pictures.

:mod:`.report` turns a replay into the SPEC §9 report dict; :mod:`.model` turns the replay, the
report and the trace into one :class:`~sim.views.model.RunView`; the renderers (:mod:`.text`,
:mod:`.timeline`, :mod:`.waveform`, :mod:`.perfetto`) read only that view model, and
:mod:`.files` writes the files a command asked for. Imports point from the files writer to the
renderers to the view model to the world, never back.
"""
