"""The plugin's options, read once per session into :class:`Settings` (kept in ``config.stash``).

Every option has a command-line form and an ini form (``pytest.ini``, ``pyproject.toml``'s
``[tool.pytest.ini_options]``, ...); the command line wins. Paths on the command line are
relative to the folder pytest runs in, paths in an ini file to that file's folder, and the
defaults to the rootdir — so a CI job finds the same folders whichever way they were given.

==========================  =======================  =============================================
command line                ini                      meaning (default)
==========================  =======================  =============================================
``--bwcsim-controller``     ``bwcsim_controller``    controller under test, ``module:factory``
                                                     or ``exec:COMMAND``
                                                     (``controller.reference:make_node``)
``--bwcsim-properties``     ``bwcsim_properties``    property suites to collect: IDs, ``all`` or
                                                     ``none`` (``all`` when ``--bwcsim-controller``
                                                     is on the command line, else ``none``)
``--bwcsim-save``           ``bwcsim_save``          folder for shrunk counterexamples
                                                     (``bwcsim-failures``)
``--bwcsim-artifacts``      ``bwcsim_artifacts``     folder for the report and timeline of each
                                                     failing scenario file (``bwcsim-artifacts``)
(none)                      ``bwcsim_scenarios``     globs of scenario files to collect, or
                                                     ``none`` (any ``*.yaml``/``*.yml`` that says
                                                     ``version: 1`` and has a ``timeline:``)
(none)                      ``bwcsim_attachments``   how ``[[ATTACHMENT|path]]`` lines name files:
                                                     ``relative`` to the rootdir (GitLab) or
                                                     ``absolute`` (Jenkins) (``relative``)
==========================  =======================  =============================================

Naming a controller on the command line asks for it to be searched, so it switches the
property suites on; a controller named in the ini file only replays the scenario files, which
keeps the run on every push fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from controller.errors import BwcError, InvalidInput
from controller.node import DEFAULT_FACTORY, ControllerFactory

from .suites import PROPERTY_IDS

DEFAULT_SAVE = "bwcsim-failures"
DEFAULT_ARTIFACTS = "bwcsim-artifacts"


class ControllerUnavailable(Exception):
    """The controller spec cannot be resolved; the message is one line naming what to fix."""


@dataclass(slots=True)
class Settings:
    """Everything the plugin was told, resolved (see the module docstring)."""

    controller: str = DEFAULT_FACTORY
    controller_on_command_line: bool = False
    properties: tuple[str, ...] = ()
    save_dir: Path = Path(DEFAULT_SAVE)
    artifacts_dir: Path = Path(DEFAULT_ARTIFACTS)
    #: ``None``: recognise scenario files by their content; ``()``: collect none.
    scenario_globs: tuple[str, ...] | None = None
    absolute_attachments: bool = False
    rootdir: Path = Path()
    invocation_dir: Path = Path()
    saved: list[tuple[str, str]] = field(default_factory=list)  # (nodeid, saved line)
    failed_scenarios: int = 0
    _factory: ControllerFactory | None = None
    _problem: str | None = None

    def factory(self) -> ControllerFactory:
        """The controller factory, resolved on first use (``ControllerUnavailable`` if it cannot)."""
        if self._factory is None and self._problem is None:
            import sys

            from sim.nodes import load_factory

            # An adapter beside the ini file imports even when pytest runs from a sub-folder
            # (load_factory itself looks in the folder pytest runs in first).
            if str(self.rootdir) not in sys.path:
                sys.path.append(str(self.rootdir))
            try:
                self._factory = load_factory(self.controller)
            except BwcError as exc:
                reason = exc.message if isinstance(exc, InvalidInput) else str(exc)
                self._problem = f"bwcsim controller {self.controller!r}: {reason}"
        if self._factory is None:
            raise ControllerUnavailable(self._problem)
        return self._factory

    def attachment(self, path: Path) -> str:
        """The ``[[ATTACHMENT|...]]`` line for ``path``, in the form ``bwcsim_attachments`` asks."""
        if self.absolute_attachments:
            return f"[[ATTACHMENT|{path.resolve()}]]"
        try:
            name = path.resolve().relative_to(self.rootdir.resolve()).as_posix()
        except ValueError:
            name = str(path.resolve())
        return f"[[ATTACHMENT|{name}]]"

    def shown(self, path: Path) -> Path:
        """``path`` as a person running pytest would type it: relative to where pytest runs."""
        try:
            return Path(os.path.relpath(path, self.invocation_dir))
        except ValueError:  # another drive
            return path


SETTINGS = pytest.StashKey[Settings]()


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("bwcsim", "bwcsim: scenario files and property suites")
    group.addoption(
        "--bwcsim-controller", dest="bwcsim_controller", default=None, metavar="SPEC",
        help=("controller under test, module:factory or exec:COMMAND (default: ini "
              f"bwcsim_controller, else {DEFAULT_FACTORY}); naming one here also runs the "
              "property suites"),
    )
    group.addoption(
        "--bwcsim-properties", dest="bwcsim_properties", default=None, metavar="IDS",
        help=("property suites to run: comma-separated IDs (" + ", ".join(PROPERTY_IDS)
              + "), all or none (default: all with --bwcsim-controller, else none)"),
    )
    group.addoption(
        "--bwcsim-save", dest="bwcsim_save", default=None, metavar="DIR",
        help=f"folder for shrunk counterexamples of a falsified property (default: {DEFAULT_SAVE})",
    )
    group.addoption(
        "--bwcsim-artifacts", dest="bwcsim_artifacts", default=None, metavar="DIR",
        help=("folder for the JSON report and HTML timeline of each failing scenario file "
              f"(default: {DEFAULT_ARTIFACTS})"),
    )
    parser.addini("bwcsim_controller", "controller under test, module:factory or exec:COMMAND",
                  default="")
    parser.addini("bwcsim_properties", "property suites to run: IDs, all or none", default="")
    parser.addini("bwcsim_save", "folder for shrunk counterexamples", default="")
    parser.addini("bwcsim_artifacts", "folder for failing scenarios' reports and timelines",
                  default="")
    parser.addini("bwcsim_scenarios",
                  "globs (relative to the rootdir) of scenario files to collect, or none",
                  type="args", default=[])
    parser.addini("bwcsim_attachments",
                  "[[ATTACHMENT|path]] lines name files relative to the rootdir or absolute",
                  default="relative")


def _properties(value: str, default: tuple[str, ...], where: str) -> tuple[str, ...]:
    words = [w.strip().upper() for w in value.replace(",", " ").split()]
    if not words:
        return default
    if words == ["ALL"]:
        return PROPERTY_IDS
    if words == ["NONE"]:
        return ()
    unknown = [w for w in words if w not in PROPERTY_IDS]
    if unknown:
        raise pytest.UsageError(
            f"{where}: unknown property {unknown[0]!r} (known: {', '.join(PROPERTY_IDS)}, all, none)"
        )
    return tuple(p for p in PROPERTY_IDS if p in words)


def read_settings(config: pytest.Config) -> Settings:
    """Resolve the options of this session (``pytest.UsageError`` on a bad value)."""
    invocation = Path(config.invocation_params.dir)
    rootdir = Path(config.rootpath)
    ini_dir = Path(config.inipath).parent if config.inipath is not None else rootdir

    def folder(option: str, ini: str, default: str) -> Path:
        given = config.getoption(option)
        if given:
            return invocation / str(given)
        value = str(config.getini(ini) or "")
        return ini_dir / value if value else rootdir / default

    cli_controller = config.getoption("bwcsim_controller")
    controller = cli_controller or str(config.getini("bwcsim_controller") or "") or DEFAULT_FACTORY
    on_command_line = cli_controller is not None
    default_props = PROPERTY_IDS if on_command_line else ()
    cli_props = config.getoption("bwcsim_properties")
    if cli_props is not None:
        props = _properties(cli_props, default_props, "--bwcsim-properties")
    else:
        props = _properties(str(config.getini("bwcsim_properties") or ""), default_props,
                            "ini bwcsim_properties")
    globs = [str(g) for g in config.getini("bwcsim_scenarios")]
    scenario_globs: tuple[str, ...] | None
    if not globs:
        scenario_globs = None
    elif [g.lower() for g in globs] == ["none"]:
        scenario_globs = ()
    else:
        scenario_globs = tuple(globs)
    attachments = str(config.getini("bwcsim_attachments") or "relative").strip().lower()
    if attachments not in ("relative", "absolute"):
        raise pytest.UsageError(
            f"ini bwcsim_attachments: {attachments!r} is not one of relative, absolute")
    return Settings(
        controller=controller,
        controller_on_command_line=on_command_line,
        properties=props,
        save_dir=folder("bwcsim_save", "bwcsim_save", DEFAULT_SAVE),
        artifacts_dir=folder("bwcsim_artifacts", "bwcsim_artifacts", DEFAULT_ARTIFACTS),
        scenario_globs=scenario_globs,
        absolute_attachments=attachments == "absolute",
        rootdir=rootdir,
        invocation_dir=invocation,
    )


__all__ = ["SETTINGS", "ControllerUnavailable", "Settings", "add_options", "read_settings"]
