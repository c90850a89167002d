"""Mutation score of ``controller/`` under what a firmware team gets: property suites + scenario library.

Runs mutmut (``pip install -e '.[mutation]'``; configured in ``[tool.mutmut]`` of pyproject.toml)
with ``tests/properties`` and ``tests/test_scenarios.py`` (the scenario library and the
conformance floor) as the test command, never the unit tests, under the derandomized
``dev``-depth hypothesis profile of ``bench/mutation_profile.py``. Prints the score, every
surviving mutant (``file:line`` and its diff) and the mutants set aside as equivalent by
``bench/mutation_equivalents.yaml`` (each with its reason).

A whole run over ``controller/`` takes hours on two cores; ``--modules``, ``--max-mutants`` (a
random sample with a fixed ``--seed``) and ``--budget`` (seconds, after which mutmut is stopped
and what was judged is scored) bound it. A sampled score is printed with its 95% Wilson
interval. The nightly job runs it whole (docs/ci.md).

    python bench/mutation.py [--modules camera,policy] [--max-mutants N] [--seed S]
                             [--budget SECONDS] [--jobs N] [--json] [--keep]
    python bench/mutation.py ... --report-only          # score what mutants/ holds, run nothing
    python bench/mutation.py ... --mutants NAME,NAME    # judge these again (after closing a gap)

Exit status: 0 when the score (equivalents set aside) reaches ``--fail-under`` (default 0, so
the script only measures unless asked), 1 below it, 2 on a usage or set-up error.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
EQUIVALENTS = ROOT / "bench" / "mutation_equivalents.yaml"
PACKAGE = "controller"

#: mutmut's exit codes, grouped the way the score counts them.
KILLED = {1, 3, 36, -24, 24, 152, 255, 37}  # a failing test, a timeout or the type checker
SURVIVED = {0}
NO_TESTS = {5, 33}

_GENERATE = """
from mutmut.__main__ import create_mutants, copy_src_dir, copy_also_copy_files, setup_source_paths
from mutmut.__main__ import set_mutant_under_test
set_mutant_under_test("mutant_generation")
copy_src_dir(); copy_also_copy_files(); setup_source_paths()
create_mutants({jobs})
"""


class SetupError(Exception):
    """Something the run needs is missing; the message says what."""


@dataclass
class Mutant:
    name: str
    module: str  # "controller/camera.py"
    exit_code: int | None = None
    diff: str = ""
    line: int = 0
    reason: str = ""  # why it is equivalent, from the equivalents file

    @property
    def status(self) -> str:
        if self.exit_code is None:
            return "not checked"
        if self.exit_code in KILLED:
            return "killed"
        if self.exit_code in SURVIVED | NO_TESTS and self.reason:
            return "equivalent"
        if self.exit_code in SURVIVED:
            return "survived"
        if self.exit_code in NO_TESTS:
            return "no tests"
        return "suspicious"


@dataclass
class Outcome:
    mutants: list[Mutant]
    population: int
    elapsed_s: float
    stale_equivalents: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for m in self.mutants if m.status == status)

    @property
    def judged(self) -> int:
        """Mutants the score counts: killed + survived (+ no tests, which no test can kill)."""
        return self.count("killed") + self.count("survived") + self.count("no tests")

    @property
    def score(self) -> float | None:
        return self.count("killed") / self.judged if self.judged else None


def wilson(killed: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion ``killed / n``."""
    if n == 0:
        return (0.0, 1.0)
    p = killed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _env() -> dict[str, str]:
    bench = str(ROOT / "bench")
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{bench}{os.pathsep}{path}" if path else bench}


def generate(jobs: int) -> None:
    """Copy the project into ``mutants/`` and write every mutant (unchanged files are skipped)."""
    proc = subprocess.run([sys.executable, "-c", _GENERATE.format(jobs=jobs)], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SetupError(f"mutmut could not generate the mutants:\n{proc.stderr[-2000:]}")


def _meta_files() -> list[Path]:
    return sorted((MUTANTS / PACKAGE).rglob("*.py.meta"))


def read_results() -> dict[str, int | None]:
    """Every mutant mutmut knows of, with its exit code (``None``: not run yet)."""
    out: dict[str, int | None] = {}
    for meta in _meta_files():
        data = json.loads(meta.read_text("utf-8"))
        out.update(data.get("exit_code_by_key", {}))
    return out


def module_of(name: str) -> str:
    """``controller.camera.xǁCameraǁ_stop__mutmut_3`` → ``controller/camera.py``."""
    dotted = name.split("__mutmut_")[0]
    parts = dotted.split(".")
    return "/".join(parts[:-1]) + ".py"


def _function_line(module: str, name: str) -> int:
    """The line of the ``def`` a mutant changes, in the original source."""
    func = name.split("__mutmut_")[0].split(".")[-1]
    if func.startswith("xǁ"):
        _, cls, meth = func.split("ǁ")
        path: list[str] = [cls, meth]
    else:
        path = [func.removeprefix("x_")]
    tree = ast.parse((ROOT / module).read_text("utf-8"))
    body: list[ast.stmt] = tree.body
    line = 0
    for part in path:
        for node in body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.name == part:
                line = node.lineno
                # decorators sit above the def line; mutmut's diff starts at the def
                body = node.body
                break
        else:
            return 0
    return line


def describe(mutant: Mutant) -> None:
    """Fill in the mutant's diff and the source line it changes."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        mutant.diff = get_diff_for_mutant(mutant.name, path=Path(mutant.module))
    finally:
        os.chdir(cwd)
    start = _function_line(mutant.module, mutant.name)
    offset = 0
    for text in mutant.diff.splitlines():
        if text.startswith("@@"):
            offset = int(text.split()[1].split(",")[0].lstrip("-")) - 1
            continue
        if text.startswith(("---", "+++")):
            continue
        if text.startswith("-"):
            break
        if text.startswith(" "):
            offset += 1
    mutant.line = start + offset if start else 0


def changed_line(diff: str) -> str:
    """The mutated line as mutmut wrote it (the first ``+`` line), stripped."""
    for text in diff.splitlines():
        if text.startswith("+") and not text.startswith("+++"):
            return text[1:].strip()
    return ""


def load_equivalents(path: Path) -> list[dict[str, str]]:
    """The reviewed equivalent mutants: ``mutant``, ``mutated`` (the changed line), ``reason``."""
    if not path.is_file():
        return []
    data = yaml.safe_load(path.read_text("utf-8")) or {}
    entries = data.get("equivalent", []) if isinstance(data, dict) else []
    out: list[dict[str, str]] = []
    for i, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) and entry[k]
                                                  for k in ("mutant", "mutated", "reason")):
            raise SetupError(f"{path}: entry {i}: needs the strings mutant, mutated and reason")
        out.append({k: entry[k] for k in ("mutant", "mutated", "reason")})
    return out


def run_mutmut(names: list[str], jobs: int, budget: float | None) -> None:
    """``mutmut run`` on ``names`` in its own process group, stopped at ``budget`` seconds."""
    cmd = [sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *names]
    log = (MUTANTS / "mutation-run.log").open("w")
    with log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _test_command() -> list[str]:
    """The test command of ``[tool.mutmut]`` in pyproject.toml: plugins, then the test selection."""
    import tomllib

    conf = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["mutmut"]
    return [*conf.get("pytest_add_cli_args", []), *conf.get("pytest_add_cli_args_test_selection", [])]


def judge_fresh(names: list[str], deadline: float | None) -> dict[str, int]:
    """Judge ``names`` (mutmut's survivors) again, each in a fresh interpreter; returns the kills.

    mutmut forks each mutant's test run from a process that has already imported
    ``controller/``, so a mutant in code that runs at import time (the state table compiled
    once per process, ``controller.camera._MACHINE``) is never switched on there and survives
    whatever the tests do. A fresh ``pytest`` with ``MUTANT_UNDER_TEST`` set imports the mutant
    from the start. A failing test or a failing collection kills it (exit 1 is written to
    mutmut's record, so ``--report-only`` scores it the same); a run past ``deadline`` is left
    as mutmut judged it.
    """
    kills: dict[str, int] = {}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", *_test_command()]
    with (MUTANTS / "mutation-run.log").open("a") as log:
        for name in names:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 1:
                break
            proc = subprocess.Popen(cmd, cwd=MUTANTS, env={**_env(), "MUTANT_UNDER_TEST": name},
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
            try:
                code = proc.wait(timeout=left)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
            if code in (1, 2):  # a test failed, or collecting them did (the import crashed)
                kills[name] = 1
                log.write(f"killed in a fresh process (pytest exit {code}): {name}\n")
            else:
                log.write(f"survived in a fresh process too (pytest exit {code}): {name}\n")
    _record(kills)
    return kills


def _record(codes: dict[str, int]) -> None:
    """Write verdicts into mutmut's per-module records."""
    if not codes:
        return
    for meta in _meta_files():
        data = json.loads(meta.read_text("utf-8"))
        known = data.get("exit_code_by_key", {})
        if set(codes) & set(known):
            known.update({n: c for n, c in codes.items() if n in known})
            meta.write_text(json.dumps(data, indent=4), "utf-8")


def select(all_names: list[str], modules: list[str], max_mutants: int | None, seed: int) -> list[str]:
    """The mutants of ``modules`` (all of ``controller/`` when empty), sampled with ``seed``."""
    wanted = {f"{PACKAGE}/{m.removesuffix('.py')}.py" for m in modules}
    names = sorted(n for n in all_names if not wanted or module_of(n) in wanted)
    if max_mutants is not None and max_mutants < len(names):
        names = sorted(random.Random(seed).sample(names, max_mutants))
    return names


def measure(args: argparse.Namespace) -> Outcome:
    try:
        import mutmut  # noqa: F401
    except ImportError as exc:
        raise SetupError("mutmut is not installed: pip install -e '.[mutation]'") from exc
    started = time.monotonic()
    if not args.report_only:
        generate(args.jobs)
    all_names = list(read_results())
    if not all_names:
        raise SetupError(f"mutmut wrote no mutants under {MUTANTS / PACKAGE}")
    known = {module_of(n) for n in all_names}
    for m in args.modules:
        if f"{PACKAGE}/{m.removesuffix('.py')}.py" not in known:
            raise SetupError(f"--modules: {m!r} has no mutants (known: "
                             f"{', '.join(sorted(Path(k).stem for k in known))})")
    names = select(all_names, args.modules, args.max_mutants, args.seed)
    population = len(select(all_names, args.modules, None, args.seed))
    unknown = sorted(set(args.mutants) - set(all_names))
    if unknown:
        raise SetupError(f"--mutants: no such mutant: {', '.join(unknown)}")
    if not args.report_only:
        if args.keep:  # judge only what has no verdict yet, and what --mutants names again
            verdicts = read_results()
            to_run = sorted({n for n in names if verdicts.get(n) is None} | set(args.mutants))
        else:
            _forget(names)
            to_run = sorted(set(names) | set(args.mutants))
        budget = None if args.budget is None else max(1.0, args.budget - (time.monotonic() - started))
        if to_run:
            run_mutmut(to_run, args.jobs, budget)
            if not args.no_fresh:
                verdicts = read_results()
                survivors = [n for n in to_run if verdicts.get(n) in SURVIVED]
                deadline = None if args.budget is None else started + args.budget
                judge_fresh(survivors, deadline)
    results = read_results()
    mutants = [Mutant(name=n, module=module_of(n), exit_code=results.get(n)) for n in names]
    equivalents = load_equivalents(args.equivalents)
    by_name = {e["mutant"]: e for e in equivalents}
    stale: list[str] = []
    for m in mutants:
        if m.exit_code in SURVIVED | NO_TESTS or m.name in by_name:
            describe(m)
        entry = by_name.get(m.name)
        if entry is not None:
            if changed_line(m.diff) == entry["mutated"].strip():
                m.reason = entry["reason"]
            else:
                stale.append(f"{m.name}: the file says {entry['mutated']!r}, mutmut now changes "
                             f"{changed_line(m.diff)!r}")
    return Outcome(mutants=mutants, population=population,
                   elapsed_s=time.monotonic() - started, stale_equivalents=stale)


def _forget(names: list[str]) -> None:
    """Clear earlier verdicts of ``names`` so this run judges them afresh."""
    wanted = set(names)
    for meta in _meta_files():
        data = json.loads(meta.read_text("utf-8"))
        codes = data.get("exit_code_by_key", {})
        if wanted & set(codes):
            for n in wanted & set(codes):
                codes[n] = None
            meta.write_text(json.dumps(data, indent=4), "utf-8")


def report(outcome: Outcome, args: argparse.Namespace) -> dict[str, Any]:
    sampled = len(outcome.mutants) < outcome.population
    killed, judged = outcome.count("killed"), outcome.judged
    low, high = wilson(killed, judged)
    return {
        "bench": "mutation",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "tool": _tool_version(),
        "scope": args.modules or ["all of controller/"],
        "test_command": "tests/properties + tests/test_scenarios.py (scenario library, conformance)",
        "population": outcome.population,
        "sample": len(outcome.mutants),
        "seed": args.seed if sampled else None,
        "killed": killed,
        "survived": outcome.count("survived"),
        "equivalent": outcome.count("equivalent"),
        "no_tests": outcome.count("no tests"),
        "not_checked": outcome.count("not checked"),
        "suspicious": outcome.count("suspicious"),
        "score": outcome.score,
        "interval_95": [low, high] if sampled else None,
        "elapsed_s": round(outcome.elapsed_s, 1),
        "survivors": [{"mutant": m.name, "at": f"{m.module}:{m.line}", "diff": m.diff}
                      for m in outcome.mutants if m.status in ("survived", "no tests")],
        "equivalents": [{"mutant": m.name, "at": f"{m.module}:{m.line}", "reason": m.reason}
                        for m in outcome.mutants if m.status == "equivalent"],
        "stale_equivalents": outcome.stale_equivalents,
    }


def _tool_version() -> str:
    from importlib.metadata import version

    return f"mutmut {version('mutmut')}"


def print_text(doc: dict[str, Any]) -> None:
    for s in doc["survivors"]:
        print(f"SURVIVED {s['at']}  {s['mutant']}")
        print("\n".join("    " + line for line in s["diff"].splitlines()))
    for e in doc["equivalents"]:
        print(f"equivalent {e['at']}  {e['mutant']}: {e['reason']}")
    for s in doc["stale_equivalents"]:
        print(f"stale equivalent entry (review it again): {s}")
    print()
    print(f"tool {doc['tool']}, {doc['date']}; scope {', '.join(doc['scope'])}; "
          f"test command: {doc['test_command']}")
    print(f"mutants: population {doc['population']}, sample {doc['sample']}"
          + (f" (seed {doc['seed']})" if doc["seed"] is not None else "")
          + f"; killed {doc['killed']}, survived {doc['survived']}, equivalent {doc['equivalent']}, "
          f"no tests {doc['no_tests']}, not judged in the budget {doc['not_checked']}, "
          f"suspicious {doc['suspicious']}; {doc['elapsed_s']} s")
    if doc["score"] is None:
        print("mutation score: n/a (no mutant judged)")
        return
    line = f"mutation score (equivalents set aside): {100 * doc['score']:.1f}%"
    if doc["interval_95"] is not None:
        low, high = doc["interval_95"]
        line += f" (95% interval {100 * low:.1f}-{100 * high:.1f}% of all of {doc['population']})"
    print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=lambda s: [m for m in s.split(",") if m], default=[],
                        help="comma-separated controller modules (camera,policy,...); default all")
    parser.add_argument("--max-mutants", type=int, default=None, help="random sample of this size")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--budget", type=float, default=None, help="stop mutmut after this many s")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel mutants")
    parser.add_argument("--equivalents", type=Path, default=EQUIVALENTS)
    parser.add_argument("--fail-under", type=float, default=0.0, help="minimum score, percent")
    parser.add_argument("--keep", action="store_true",
                        help="keep the verdicts mutants/ holds; run only the mutants without one")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: score the verdicts mutants/ holds for the same selection")
    parser.add_argument("--mutants", type=lambda s: [m for m in s.split(",") if m], default=[],
                        help="judge these mutants again too (comma-separated names), e.g. survivors "
                             "after closing a gap; with --keep, only they and the unjudged run")
    parser.add_argument("--no-fresh", action="store_true",
                        help="do not judge mutmut's survivors again in a fresh interpreter "
                             "(needed for mutants in code that runs at import time)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        outcome = measure(args)
    except SetupError as exc:
        print(f"mutation: {exc}", file=sys.stderr)
        return 2
    doc = report(outcome, args)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_text(doc)
    score = doc["score"]
    return 0 if score is not None and 100 * score >= args.fail_under else 1


if __name__ == "__main__":
    sys.exit(main())
