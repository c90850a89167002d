"""Every command the README shows works in a fresh clone, which holds everything it links to.

The clone is a copy of the files git tracks (plus new, not yet ignored ones) in a temporary
folder named ``bwcsim``, with nothing beside it: no ``../shared``, no virtual environment, no
build output. The package under test is imported from the copy (``PYTHONPATH``), the console
scripts come from the environment running this test.

Each shell command of the README's ``sh`` and ``console`` blocks is run there with bash, in the
README's order (later commands use what earlier ones wrote: ``failures/``, the key files, the
broker configuration), and must exit 0 — or 1 for the commands that run a deliberately broken
controller (:data:`BROKEN_CONTROLLERS`), which show a failure being caught. Commands that cannot
run as written are in one of the lists below, each with the reason and what is checked instead;
a command the README drops must leave these lists too (a test says so), and every other command
is run as written.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer.main

from sim.cli import app
from sim.search.profiles import PROFILE_EXAMPLES

pytestmark = pytest.mark.req("DOCS-README")

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

#: Installing into the environment that runs this test would change it under the other tests;
#: the text must be exactly the install command CI runs (``.ci/run``).
INSTALL = "pip install -e '.[test]'"

#: Run as another command, in the same place of the sequence: README command → (instead, why).
RUN_INSTEAD: dict[str, tuple[str, str]] = {
    "pytest": (
        "pytest --collect-only -q",
        "the whole suite is what CI runs; here every test module must import and collect in a "
        "fresh clone without ../shared",
    ),
    "bwcsim fuzz --examples 2000 --seed 7": (
        "bwcsim fuzz --examples 50 --seed 7",
        "2,000 examples take a minute; the same search with a smaller budget (.ci/run runs the "
        "full one)",
    ),
    "bwcsim explore --depth 6": (
        "bwcsim explore --depth 4",
        "depth 6 is ~16,000 sequences; the same exploration, shallower",
    ),
    "mosquitto -c broker/mosquitto.conf": (
        "test -s broker/mosquitto.conf",
        "starting a second broker is tests/test_broker_config.py's job; the configuration the "
        "previous command wrote must be there",
    ),
}

#: Commands for a broker, devices or a firmware team's own repository: their command and every
#: option they use must exist (parsed by the command's own parser, without running it).
OPTIONS_ONLY: dict[str, str] = {
    "pytest tests/properties": "the property suites; `pytest` (above) collects them",
    "HYPOTHESIS_PROFILE=ci pytest tests/properties": "2,000 examples per property: CI's run",
    "HYPOTHESIS_PROFILE=nightly pytest tests/properties": "20,000 examples per property",
    "pytest --controller=exec:examples/c-controller/bwc-fixed tests/properties":
        "the property suites on the C example: CI's run (.ci/run)",
    "pytest --junit-xml=out/scenarios.xml":
        "run in a firmware team's repository (tests/test_pytest_plugin_user.py does that)",
    "pytest --bwcsim-controller my_fw.adapter:make_node --hypothesis-profile=bwcsim-ci":
        "names a team's own adapter module (tests/test_pytest_plugin_user.py runs one)",
    "bwcsim live --broker mqtt://127.0.0.1:1883 --camera cam-1 --team sr-1":
        "runs until Ctrl-C on a broker (tests/test_live_cli.py runs it on a private Mosquitto)",
    "bwcsim live --broker mqtt://127.0.0.1:1883 --camera cam-1 --trust trust.yaml":
        "runs until Ctrl-C on a broker (tests/test_keys_cli.py and tests/test_live_edge.py)",
    "bwcsim run scenarios/dock_during_warrant.yaml --live mqtt://lab-broker:1883 "
    "--camera-map cam-1=BWC-0042 --timeline run.html":
        "needs the lab's broker and a camera BWC-0042 on it",
    "bwcsim check scenarios --live mqtt://127.0.0.1:1883 --spawn --speed 200 --jobs 8 "
    "--junit live.xml":
        "the two-minute hardware-in-the-loop proof, run by tests/test_hil_live.py on a private "
        "Mosquitto",
}

#: Commands of other programs that talk to a running broker and camera: not run. A ``$(...)``
#: in them is run (it is bwcsim's part of the command).
NOT_RUN: dict[str, str] = {
    "mosquitto_pub -t bwc/cam-1/event -q 1 -m "
    """'{"id":"e1","type":"activity_start","activity":"arrest_warrant","activity_id":"w-17"}'""":
        "publishes to a camera running on a broker",
    "mosquitto_sub -t 'bwc/cam-1/#' -v": "listens to a camera running on a broker",
    "mosquitto_pub -q 1 -t bwc/cam-1/event -m \"$(bwcsim keys sign dispatch.key.yaml --to cam-1 "
    """'{"id":"e1","type":"activity_start","activity":"arrest_warrant","activity_id":"w-17"}')\"""":
        "publishes to a camera running on a broker; the signing command inside is run",
}

#: A server: started on a free port (the default 8765 may be taken), asked for its page, stopped.
SERVERS = {"bwcsim studio": "--port"}

#: Commands that run a deliberately broken controller demonstrate a failure being caught: the
#: search finds it (and saves it), the replay of what was saved fails. They must exit 1.
BROKEN_CONTROLLERS = ("broken_controllers:", "exec:examples/c-controller/bwc-naive")
BROKEN_EXIT = 1

#: Files in the clone that may say ``../shared`` (neither needs the folder to exist).
MAY_SAY_SHARED = {
    "sim/spec/traceability.py": "how a path outside the repository is shown",
    "tests/test_traceability.py": "a scenario outside a scratch repository",
    "tests/test_readme_commands.py": "this test",
    "tests/test_architecture_doc.py": "its checker refuses such a path",
}

#: Programs needed only by the C example's commands (``make -C examples/c-controller``).
C_TOOLS = ("make", "cc", "pkg-config")
C_EXAMPLE = "examples/c-controller"


# ------------------------------------------------------------------------------- the README


def readme_commands(text: str) -> list[str]:
    """The shell commands of the ``sh`` and ``console`` blocks, in order, without comments."""
    commands: list[str] = []
    for lang, body in re.findall(r"^```(sh|console)\n(.*?)^```", text, re.S | re.M):
        body = body.replace("\\\n", " ")
        for line in body.splitlines():
            if lang == "console":
                if not line.startswith("$ "):
                    continue  # output
                line = line[2:]
            line = re.sub(r" {2,}", " ", re.sub(r"\s{2,}#.*$", "", line).strip())
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def readme_links(text: str) -> list[str]:
    """Relative link targets of the README (Markdown links and images), without anchors."""
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [t.split("#", 1)[0] for t in targets
            if not re.match(r"^[a-z]+:", t) and not t.startswith("#")]


def _bwcsim_command(words: list[str]) -> tuple[Any, list[str], str]:
    """The click command ``bwcsim WORDS...`` names, its arguments, and its name.

    Typed loosely: typer builds on click or on its own copy of it, depending on its version.
    """
    command: Any = typer.main.get_command(app)
    names = ["bwcsim"]
    args = words[1:]
    while hasattr(command, "list_commands") and args and not args[0].startswith("-"):
        sub = command.get_command(typer.Context(command), args[0])
        assert sub is not None, f"bwcsim has no command {' '.join([*names[1:], args[0]])!r}"
        command, names, args = sub, [*names, args[0]], args[1:]
    return command, args, " ".join(names)


def options_problems(line: str) -> list[str]:
    """What is wrong with a command that is not run: its command, options and their values."""
    words = shlex.split(line)
    env = {}
    while words and re.match(r"^[A-Z_]+=", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    problems = []
    if "HYPOTHESIS_PROFILE" in env and env["HYPOTHESIS_PROFILE"] not in PROFILE_EXAMPLES:
        problems.append(f"{line}: no hypothesis profile {env['HYPOTHESIS_PROFILE']!r}")
    if words[0] == "bwcsim":
        try:
            command, args, name = _bwcsim_command(words)
            command.make_context(name, args)  # parses and converts every option; runs nothing
        except Exception as exc:  # click's usage errors, or no such command
            problems.append(f"{line}: {exc}")
    elif words[0] == "pytest":
        for word in words[1:]:
            if word.startswith("--"):
                if word.split("=", 1)[0] not in pytest_options():
                    problems.append(f"{line}: pytest has no option {word.split('=', 1)[0]}")
            elif "/" in word and not (ROOT / word).exists():
                problems.append(f"{line}: no such path {word}")
    else:
        problems.append(f"{line}: only bwcsim and pytest commands are checked this way")
    return problems


@cache
def pytest_options() -> frozenset[str]:
    """Every long option ``pytest --help`` lists here, this repository's conftest included."""
    done = subprocess.run([sys.executable, "-m", "pytest", "--help", "tests"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return frozenset(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", done.stdout))


# ------------------------------------------------------------------------------ the clone


def _tracked_files() -> list[str]:
    try:
        done = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True, timeout=60,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout: {exc}")
    return [f for f in done.stdout.decode().split("\0") if f and (ROOT / f).is_file()]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh copy of the repository, alone in its folder."""
    target = tmp_path_factory.mktemp("fresh") / "bwcsim"
    for name in _tracked_files():
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest)
    assert not (target.parent / "shared").exists()
    return target


def _env(clone: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BWCSIM_", "HYPOTHESIS_", "PYTEST_")) and k != "PYTHONPATH"}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = str(clone)
    env["HOME"] = str(clone.parent / "home")  # keys, state directories: never the user's
    (clone.parent / "home").mkdir(exist_ok=True)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _serve_once(line: str, clone: Path, env: dict[str, str]) -> str | None:
    """Start a server command on a free port, fetch its page, stop it; a problem or ``None``."""
    port = _free_port()
    argv = [*shlex.split(line), SERVERS[line], str(port)]
    with subprocess.Popen(argv, cwd=clone, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    return f"{line}: exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
                        body = page.read().decode("utf-8", "replace")
                    return None if "<html" in body.lower() else f"{line}: page {body[:80]!r}"
                except urllib.error.HTTPError as exc:
                    return f"{line}: GET / answered {exc.code}"
                except OSError:
                    time.sleep(0.2)  # not listening yet
            return f"{line}: no page within 60 s"
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _c_tools_missing() -> list[str]:
    missing = [tool for tool in C_TOOLS if shutil.which(tool) is None]
    if not missing and subprocess.run(["pkg-config", "--exists", "libcjson", "libcrypto"]).returncode:
        missing.append("libcjson-dev/libssl-dev")
    return missing


def _run_all(clone: Path) -> Iterator[str]:
    """Every README command in order, in the clone; yields what went wrong."""
    env = _env(clone)
    no_c = _c_tools_missing()
    for line in readme_commands(README.read_text("utf-8")):
        if no_c and C_EXAMPLE in line:
            continue  # the test says so at its end
        if line == INSTALL:
            continue  # checked by test_the_install_command_is_the_one_ci_runs
        if line in OPTIONS_ONLY:
            yield from options_problems(line)
            continue
        if line in SERVERS:
            problem = _serve_once(line, clone, env)
            if problem:
                yield problem
            continue
        if line in NOT_RUN:
            inner = re.findall(r"\$\((.*?)\)(?=\")", line)
            commands = inner
        else:
            commands = [RUN_INSTEAD.get(line, (line, ""))[0]]
        for command in commands:
            done = subprocess.run(["bash", "-c", command], cwd=clone, env=env, capture_output=True,
                                  text=True, timeout=300)
            want = BROKEN_EXIT if any(b in line for b in BROKEN_CONTROLLERS) else 0
            if done.returncode != want:
                tail = "\n".join((done.stderr or done.stdout).splitlines()[-6:])
                yield f"{command}: exit {done.returncode}, expected {want}\n{tail}"


# ------------------------------------------------------------------------------------ tests


def test_every_readme_command_works_in_a_fresh_clone(clone: Path) -> None:
    problems = list(_run_all(clone))
    assert problems == []
    assert sorted((clone / "failures").glob("*.yaml")), "the searches saved what they found"
    assert (clone / "trust.yaml").is_file()
    for name in ("shift.html", "shift.jsonl", "shift.vcd", "shift.json"):
        assert (clone / name).stat().st_size > 0, name
    missing = _c_tools_missing()
    if missing:  # everything else passed; say what was not run
        pytest.skip(f"the C example's commands need {', '.join(missing)} (.ci/run installs them)")


def test_the_install_command_is_the_one_ci_runs() -> None:
    commands = readme_commands(README.read_text("utf-8"))
    assert commands[0] == INSTALL
    assert "pip install --quiet -e '.[test]'" in (ROOT / ".ci" / "run").read_text("utf-8")


def test_every_exception_is_a_readme_command() -> None:
    commands = readme_commands(README.read_text("utf-8"))
    listed = [*RUN_INSTEAD, *OPTIONS_ONLY, *NOT_RUN, *SERVERS]
    assert [c for c in listed if c not in commands] == []
    assert len([c for c in commands if any(b in c for b in BROKEN_CONTROLLERS)]) >= 4
    special = [*RUN_INSTEAD, *OPTIONS_ONLY, *NOT_RUN, *SERVERS]
    assert len(special) == len(set(special)), "one way of checking each command"


def test_the_readme_links_only_to_files_in_the_clone(clone: Path) -> None:
    text = README.read_text("utf-8")
    assert "../shared" not in text
    links = readme_links(text)
    assert len(links) > 10
    assert [link for link in links if not (clone / link).exists()] == []


def test_nothing_in_the_clone_needs_the_shared_folder(clone: Path) -> None:
    saying = []
    for path in clone.rglob("*"):
        if path.is_file() and path.suffix in {".py", ".md", ".yaml", ".yml", ".toml", ".cfg", ".txt", ""}:
            rel = path.relative_to(clone).as_posix()
            if "../shared" in path.read_text("utf-8", errors="replace") and rel not in MAY_SAY_SHARED:
                saying.append(rel)
    assert saying == []


def test_the_extractor_reads_blocks_continuations_and_console_prompts() -> None:
    text = (
        "```sh\nbwcsim a   # why\n# a comment\nbwcsim b \\\n    --x 1\n```\n"
        "```console\n$ bwcsim c --report json\n{\"out\": 1}\n```\n"
        "```python\nnot_a_command()\n```\n"
    )
    assert readme_commands(text) == ["bwcsim a", "bwcsim b --x 1", "bwcsim c --report json"]
    assert readme_links("[a](docs/x.md#y) ![i](docs/img/p.png) [w](https://e.org) [s](#top)") == [
        "docs/x.md", "docs/img/p.png"]
    assert options_problems("bwcsim live --broker mqtt://h:1 --camera c --no-such 1") != []
    assert options_problems("bwcsim run x.yaml --speed fast --live mqtt://h:1") != []
    assert options_problems("bwcsim keys new a --role officer --camera c") == []
    assert options_problems("HYPOTHESIS_PROFILE=weekly pytest tests/properties") != []
    assert options_problems("pytest --no-such-option tests/properties") != []
    assert options_problems("pytest tests/no_such_folder") != []
