"""The bench around the controller: the simulated world, its views, the searches, the fleet and
the live edge, one sub-package per layer (imports point down; ``docs/architecture.md``)."""
