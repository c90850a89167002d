"""Hypothesis settings profiles shared by the test suites and the ``bwcsim fuzz`` command.

Three depths of search, chosen by the ``HYPOTHESIS_PROFILE`` environment variable:

* ``dev`` (the default): a few dozen examples per property, seconds per suite, for editing.
* ``ci``: thousands of examples, derandomized (the same examples every run, so a red build
  always reproduces); a failure prints the reproduction blob, so the exact falsifying example
  can be replayed with ``@reproduce_failure`` from the CI log alone.
* ``nightly``: a deep search for scheduled runs.

No profile sets a deadline: the simulator runs in virtual time, and a wall-clock deadline would
make results depend on how busy the machine is, not on the controller.
"""

from __future__ import annotations

import os

from hypothesis import settings

PROFILE_ENV = "HYPOTHESIS_PROFILE"
DEFAULT_PROFILE = "dev"

#: Examples per property for each profile; the single source for docs and the CLI.
PROFILE_EXAMPLES: dict[str, int] = {"dev": 50, "ci": 2000, "nightly": 20000}


def profile_settings() -> dict[str, settings]:
    """The ``dev``, ``ci`` and ``nightly`` settings, by name.

    Built on hypothesis' ``default`` profile, not on whatever is active: hypothesis loads its own
    ``ci`` profile by itself on a CI machine, and ours must not inherit from it.
    """
    base = settings.get_profile("default")
    return {
        "dev": settings(base, max_examples=PROFILE_EXAMPLES["dev"], deadline=None),
        # CI explores the same examples on every run (derandomized, no example database), so a
        # red build always reproduces and a green one is not luck; fresh ground is the nightly
        # profile's and `bwcsim fuzz --seed`'s job.
        "ci": settings(base, max_examples=PROFILE_EXAMPLES["ci"], deadline=None, print_blob=True,
                       derandomize=True, database=None),
        "nightly": settings(base, max_examples=PROFILE_EXAMPLES["nightly"], deadline=None,
                            print_blob=True),
    }


def register_profiles() -> None:
    """Register the ``dev``, ``ci`` and ``nightly`` profiles with hypothesis (idempotent).

    Under these bare names, for this repository's own suites and ``bwcsim fuzz``; the pytest
    plugin registers them as ``bwcsim-dev``, ``bwcsim-ci``, ``bwcsim-nightly`` in any repository.
    """
    for name, profile in profile_settings().items():
        settings.register_profile(name, profile)


def load_profile(name: str | None = None) -> str:
    """Register the profiles and make one of them current; return its name.

    ``name`` defaults to ``$HYPOTHESIS_PROFILE``, then to ``dev``. An unknown name raises
    :class:`ValueError` listing the known ones, rather than hypothesis' bare lookup error.
    """
    register_profiles()
    chosen = name if name is not None else os.environ.get(PROFILE_ENV, "") or DEFAULT_PROFILE
    if chosen not in PROFILE_EXAMPLES:
        known = ", ".join(PROFILE_EXAMPLES)
        raise ValueError(f"unknown hypothesis profile {chosen!r} (known: {known})")
    settings.load_profile(chosen)
    return chosen
