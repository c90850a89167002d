"""The command line is consistent, whatever commands it has (SPEC §9).

Every rule here is checked over the commands ``bwcsim --help`` lists at the time the test runs,
so a command added later is held to the same rules without editing this file — except the
one decision only its author can make: a command that never runs a controller is named in
:data:`CONTROLLER_FREE`.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from sim.cli import app

pytestmark = pytest.mark.req("CLI")

ROOT = Path(__file__).resolve().parents[1]
WIDE = {"COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"}

#: Commands (or groups of commands) that never run a controller, so take no ``--controller``.
CONTROLLER_FREE = {"chart", "schema", "trace-reqs", "keys", "policy", "audit", "broker-config"}

#: Options whose values are a fixed set: each must be a choice that ``--help`` lists.
ENUMERATED = {
    ("run", "--report"): {"json", "text"},
    ("fleet", "--report"): {"json", "text"},
    ("live", "--initial"): {"docked", "standby", "pre_buffer"},
    ("live", "--log-format"): {"text", "json"},
    ("live", "--log-level"): {"debug", "info", "warning", "error"},
    ("live", "--clock"): {"unix", "run"},
    ("chart", "--format"): {"mermaid"},
    ("schema", "--format"): {"json", "yaml"},
    ("trace-reqs", "--format"): {"text", "markdown", "json"},
    ("policy show", "--format"): {"text", "markdown", "json"},
    ("live", "--mqtt-version"): {"5", "3.1.1", "auto"},
    ("broker-config", "--backend"): {"dynsec", "acl"},
}


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def help_order() -> list[str]:
    """The command names in the order ``bwcsim --help`` shows them (every panel of commands)."""
    names: list[str] = []
    panel = ""
    for line in _help().splitlines():
        if line.startswith("╭─"):
            panel = line.strip("╭─ ╮").split(" ─")[0].strip("─ ")
        elif panel != "Options" and (match := re.match(r"│ ([a-z][a-z0-9-]*)\s{2,}", line)):
            names.append(match.group(1))
    return names


def readme_order() -> list[str]:
    """The commands of the README's command table, in its order.

    A command may have more than one row (``run`` and ``run --live``); its rows must then be
    next to each other, and it counts once.
    """
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `bwcsim ([a-z][a-z0-9-]*)", section, flags=re.MULTILINE)
    names = [name for i, name in enumerate(rows) if i == 0 or rows[i - 1] != name]
    assert len(names) == len(set(names)), f"a command's README rows are apart: {rows}"
    return names


def _commands() -> dict[str, Any]:
    """Top-level commands and groups by name, in help order."""
    group: Any = typer.main.get_command(app)
    return {name: group.get_command(None, name) for name in group.list_commands(None)}


def _leaves() -> dict[str, Any]:
    """Every command that runs something, sub-commands of groups included (``keys new``)."""
    found: dict[str, Any] = {}

    def walk(prefix: str, command: Any) -> None:
        if hasattr(command, "list_commands"):
            for name in command.list_commands(None):
                walk(f"{prefix} {name}".strip(), command.get_command(None, name))
        else:
            found[prefix] = command

    for name, command in _commands().items():
        walk(name, command)
    return found


def _all_paths() -> list[str]:
    """Every command path with a --help of its own: the groups and the leaves."""
    return sorted({*_commands(), *_leaves()})


def test_help_lists_every_command_and_the_readme_table_follows_its_order() -> None:
    order = help_order()
    assert set(order) == set(_commands()), "every command appears once in bwcsim --help"
    assert readme_order() == order, (
        "README's command table must list the commands in the order `bwcsim --help` shows "
        f"them:\n  help:   {order}\n  README: {readme_order()}"
    )


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"bwcsim {version('bwcsim')}\n"
    assert "--version" in _help()


@pytest.mark.parametrize("command", ["", *_all_paths()])
def test_help_shows_no_value_placeholder_after_a_flag(command: str) -> None:
    text = _help(*command.split())
    assert "<bool>" not in text
    assert re.search(r"--help\s{2,}Show this message", text), text


def test_every_command_that_runs_a_controller_takes_controller() -> None:
    for name, command in _leaves().items():
        opts = {opt for param in command.params for opt in getattr(param, "opts", [])}
        if name.split()[0] in CONTROLLER_FREE or name in CONTROLLER_FREE:
            assert "--controller" not in opts, f"{name} takes --controller: remove it from CONTROLLER_FREE"
        else:
            assert "--controller" in opts, (
                f"bwcsim {name} takes no --controller: add `controller: ControllerOpt` (sim/cli.py), "
                "or list the command in CONTROLLER_FREE if it never runs a controller"
            )


@pytest.mark.parametrize(("command", "option"), sorted(ENUMERATED))
def test_enumerated_options_show_their_choices_and_refuse_others(command: str, option: str) -> None:
    choices = ENUMERATED[(command, option)]
    shown = re.search(rf"{re.escape(option)}\s+<([^>]+)>", _help(*command.split()))
    assert shown is not None and set(shown.group(1).split("|")) == choices
    required = {"live": ["--broker", "mqtt://127.0.0.1:1", "--camera", "c"],
                "fleet": ["--cameras", "2", "--hours", "1"], "run": ["x.yaml"],
                "policy show": ["dhs-2023"],
                "broker-config": ["deployment.yaml", "--out", "out"]}.get(command, [])
    result = CliRunner().invoke(app, [*command.split(), *required, option, "no-such-choice"], env=WIDE)
    assert result.exit_code == 2
    assert option in result.output and "Traceback" not in result.output


@pytest.mark.req("CLI", "P-NOMISS")
def test_fleet_runs_the_named_controller_in_every_worker() -> None:
    """``fleet --controller``: the spec reaches each worker process, which resolves it itself."""

    def fleet(*extra: str) -> dict[str, object]:
        result = CliRunner().invoke(app, ["fleet", "--cameras", "8", "--hours", "2", "--seed", "3",
                                          "--report", "json", *extra])
        assert result.exit_code in (0, 1), result.output
        doc: dict[str, object] = json.loads(result.stdout)
        return doc

    reference = fleet()
    broken = fleet("--controller", "broken_controllers:no_refcount")
    in_workers = fleet("--controller", "broken_controllers:no_refcount", "--workers", "2")
    assert reference["verdict"] == "pass"
    assert broken["verdict"] == "fail" and broken["controller"] == "broken_controllers:no_refcount"
    assert in_workers == broken
    # A child process per worker, started by the worker itself.
    served = f"exec:{sys.executable} -m controller.serve"
    over_stdio = fleet("--controller", served, "--workers", "2")
    assert over_stdio["controller"] == served
    assert {**over_stdio, "controller": None} == {**reference, "controller": None}


def test_fleet_refuses_a_controller_it_cannot_load_before_running() -> None:
    result = CliRunner().invoke(app, ["fleet", "--cameras", "2", "--hours", "1",
                                      "--controller", "no_such_module:make"])
    assert result.exit_code == 2
    assert "cannot import 'no_such_module'" in result.output
