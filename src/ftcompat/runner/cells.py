"""Run one combo's cases in a given interpreter and leave a complete cell file behind.

Shared by the nox sessions (one pinned env per combo), ad-hoc pins and the current environment.
The caller says how to log and how to run a command; this module does not care whether nox does it.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ftcompat.config import plan
from ftcompat.config.cases import CaseFile
from ftcompat.core.cellfile import RESULTS_UNWRITABLE, atomic_write, dumps, read_cells, write_cells
from ftcompat.core.domain import Cell, Combo, Matrix
from ftcompat.core.errors import MachineError, NotInstallable
from ftcompat.core.outcome import is_transient
from ftcompat.core.paths import STAGED_CASES
from ftcompat.core.record import Record
from ftcompat.core.selector import match
from ftcompat.core.status import RERUN_IF_TRANSIENT, Status
from ftcompat.env import build, locks, preflight, resolved
from ftcompat.results.grid import complete
from ftcompat.runner import cache
from ftcompat.runner.setbacks import machine_failure, not_installable, results_unwritable

WORK = Path(".ftcompat")


@dataclass
class Runner:
    """How to talk to the world: print a line, run a command (cwd = project root)."""

    log: Callable[[str], None] = print
    run: Callable[..., int | None] | None = None
    env: dict = dataclasses.field(default_factory=dict)  # for every command, e.g. the harness's PYTHONPATH

    def __call__(self, cmd: list[str], env: dict) -> int:
        """Run ``cmd`` and return its exit status; exit codes are results here, never exceptions."""
        env = {**self.env, **env}
        if self.run is not None:
            return self.run(*cmd, env=env) or 0
        self.log(" ".join(cmd))
        return subprocess.run(cmd, env={**os.environ, **env}, check=False).returncode


def workers() -> str:
    """Return the number of xdist workers: FTCOMPAT_WORKERS, else up to 2 (each case in a process)."""
    return os.environ.get("FTCOMPAT_WORKERS") or str(min(2, os.cpu_count() or 1))


def pytest_args(python: str, root: Path, plan_file: Path, out: Path, case_files: list[Path]) -> list[str]:
    """Return the harness command line run inside the target environment."""
    ini = plan_file.with_suffix(".ini")
    ini.write_text("[pytest]\naddopts =\n")
    return [python, "-m", "pytest", "-p", "ftcompat.harness.plugin", "-p", "no:cacheprovider",
            "-c", str(ini), "--rootdir", str(root), "--ftcompat-plan", str(plan_file),
            "--ftcompat-out", str(out), "-n", workers(), "-q", "-rN", "--tb=line",
            # Output goes to per-worker logs (the harness keeps each failing cell's tail); a crashed or
            # timed-out worker is replaced as often as it takes to finish the combo.
            "--capture=no", "--max-worker-restart", "1000",
            "--disable-warnings", *map(str, case_files)]


def only_cases(matrix: Matrix, combo: Combo, selectors: str | None) -> Combo:
    """Narrow a combo to its cases that match the globs in ``selectors`` (comma-separated), e.g. FTCOMPAT_CASES.

    A glob that matches no case of the matrix is a typo and is refused, naming the closest case ids.
    """
    if not selectors:
        return combo
    wanted = plan.case_selectors(selectors, matrix)
    ids = [c for c in plan.combo_cases(matrix, combo) if any(match(s, c) for s in wanted)]
    return dataclasses.replace(combo, cases=tuple(ids))


def run_cases(root: Path, matrix: Matrix, cases: dict[str, CaseFile], combo: Combo, python: str,
              out: Path, runner: Runner, versions: dict | None = None) -> list[Record]:
    """Run the combo's cells that have no current result and return its records (also on disk).

    ``versions`` are the environment's resolved versions, for the result cache; without them every
    cell runs. A leftover of an interrupted run is folded in first, so a rerun resumes.
    """
    planned = plan.planned_cells(matrix, combo, cases)
    ran = set(plan.combo_cases(matrix, combo))
    cases = staged(root, {c: cases[c] for c in ran})
    running = out.with_name(f".{out.stem}.running.json")
    previous = merged(read_cells(out, runner.log), read_cells(running, runner.log))
    # A run of some cases only (FTCOMPAT_CASES) keeps the earlier results of the others.
    kept = [r for r in previous if r.case not in ran]
    work = root / WORK / "work" / combo.id
    plan_file = root / WORK / "plans" / f"{combo.id}.json"
    the_plan = plan.harness_plan(matrix, combo, out, work)
    wanted = cache.keys(planned, {c: cases[c].path for c in ran}, versions, combo.python, the_plan) \
        if versions else {}
    the_plan["cache_keys"] = wanted
    atomic_write(plan_file, dumps(the_plan))
    reused = cache.hits([r for r in previous if r.case in ran], wanted)
    todo = longest_first([c for c in planned if c.id not in {r.id for r in reused}], previous)
    if reused:
        runner.log(f"{combo.id}: {len(reused)} cell(s) unchanged since their last run (cached; "
                   f"FTCOMPAT_FORCE=1 runs them again), {len(todo)} to run")
    fresh = _run(root, cases, combo, python, plan_file, out, todo, runner, merged(previous, reused)) if todo else []
    records = reused + fresh
    write_cells(out, combo.id, records + kept)
    running.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    for r in records:
        counts[r.status.value] = counts.get(r.status.value, 0) + 1
    runner.log(f"{combo.id}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return records


def staged(root: Path, cases: dict[str, CaseFile]) -> dict[str, CaseFile]:
    """The cases with every file outside ``root`` copied under it (``STAGED_CASES``), so pytest's node ids
    are paths under its rootdir: distinct per case, and the case id is the file's name."""
    out = {}
    for cid, case in cases.items():
        if Path(case.path).resolve().is_relative_to(Path(root).resolve()):
            out[cid] = case
            continue
        copy = Path(root) / STAGED_CASES / Path(case.path).name
        text = Path(case.path).read_bytes()
        if not copy.is_file() or copy.read_bytes() != text:
            copy.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(copy, text.decode("utf-8"))
        out[cid] = dataclasses.replace(case, path=copy)
    return out


def _run(root: Path, cases: dict[str, CaseFile], combo: Combo, python: str, plan_file: Path, out: Path,
         todo: list, runner: Runner, previous: list[Record]) -> list[Record]:
    """Run the cells in ``todo`` with the harness and return their completed records."""
    running = out.with_name(f".{out.stem}.running.json")

    def command(nodes, dest):
        return pytest_args(python, root, plan_file, dest, nodes)

    nodes = [node_id(cases[c.case], c) for c in todo]
    running.unlink(missing_ok=True)
    try:
        # Exit code 1 (a case failed) and 2-5 (interrupted, crashed) are results, not errors: what the
        # harness wrote stays, and cells it never reached are filled in below.
        code = runner(command(nodes, running), env={"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")})
        if code == RESULTS_UNWRITABLE:  # the harness said why; nothing more is run or written
            raise results_unwritable(out)
    except BaseException:
        # Ctrl-C or a killed session: keep every finished cell next to the earlier results, so the
        # same command resumes with only what is missing.
        write_cells(out, combo.id, merged(previous, read_cells(running, runner.log)))
        running.unlink(missing_ok=True)
        raise
    records = complete(read_cells(running, runner.log), todo, combo,
                       "no result recorded: the harness stopped before this cell (see the log)")
    running.unlink(missing_ok=True)
    return rerun_transient(records, cases, runner, command, running)


def longest_first(cells: list, previous: list[Record]) -> list:
    """Cells ordered by their last duration, longest (and never timed) first.

    xdist hands cases out in this order, so the long ones start at once and the short ones fill
    the gaps, instead of one worker finishing a long case alone at the end.
    """
    took = {r.id: r.duration_s or 0.0 for r in previous}
    return sorted(cells, key=lambda c: -took.get(c.id, float("inf")))


def merged(*groups: list[Record]) -> list[Record]:
    """Records by id, later groups replacing earlier ones."""
    by_id: dict[str, dict] = {}
    for group in groups:
        by_id.update({r.id: r for r in group})
    return list(by_id.values())


def node_id(case: CaseFile, cell: Cell | Record) -> str:
    """The pytest node id of a cell: ``<case file>::test_<variant>[<model>]``."""
    model = f"[{cell.model}]" if cell.model else ""
    return f"{case.path}::test_{cell.variant}{model}"


def rerun_transient(records: list[Record], cases: dict[str, CaseFile], runner: Runner,
                    command: Callable[[list[str], Path], list[str]], scratch: Path) -> list[Record]:
    """Run once more every cell that failed with a transient error; a pass then makes it ``flaky``."""
    # A timeout is not retried: a hang would cost its whole limit again. A machine failure is not a
    # cell's failure: it was never run.
    todo = {r.id for r in records if r.status in RERUN_IF_TRANSIENT and r.exc_type != "MachineError"
            and is_transient(f"{r.signature} {r.message}")}
    if not todo:
        return records
    runner.log(f"{len(todo)} cell(s) failed with a transient error (out of memory, timeout, killed worker); "
               "running them once more")
    nodes = [node_id(cases[r.case], r) for r in records if r.id in todo and r.case in cases]
    scratch.unlink(missing_ok=True)
    code = runner(command(nodes, scratch), env={"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")})
    if code == RESULTS_UNWRITABLE:
        raise results_unwritable(scratch)
    again = {r.id: r for r in read_cells(scratch)}
    scratch.unlink(missing_ok=True)
    return [settle(r, again.get(r.id)) if r.id in todo else r for r in records]


def settle(first: Record, second: Record | None) -> Record:
    """One cell's record after its rerun: flaky when the rerun passed, else the rerun's failure."""
    if second is None:
        return first.with_(reruns=1, rerun_status=None)
    if second.status == Status.PASS:
        return first.with_(status=Status.FLAKY, reruns=1, rerun_status=Status.PASS,
                           signature=f"flaky: {first.signature}; passed when run again",
                           duration_s=round(first.duration_s + second.duration_s, 3))
    return second.with_(reruns=1, rerun_status=second.status, first_signature=first.signature)


@dataclass(frozen=True)
class Built:
    """A combo's environment after ``build_env``: its resolved versions, or why the pins were refused."""

    versions: dict | None = None
    refused: str | None = None  # the installer's reason; the planned cells already say not-installable


def build_env(root: Path, matrix: Matrix, cases: dict[str, CaseFile], combo: Combo, venv: Path, out: Path,
              runner: Runner, protected: tuple[str, ...] | None = None) -> Built:
    """Install the combo into ``venv`` (or reuse it) and return its resolved versions.

    Before a new environment is built, older ones may be evicted to keep the cap (``envcap``; the
    envs of ``protected`` combos, default the matrix's, never). Pins that cannot install are a
    result: the planned cells say so and ``refused`` says why. A machine failure keeps the earlier
    results and is raised as ``MachineError`` for the caller to stop on. Call it under the combo's lock.
    """
    from ftcompat.env import evict

    try:
        if not build.can_reuse(venv, combo, dict(os.environ), root):
            # A typo'd version says so in one line, instead of as a resolver dump after a slow install.
            reason = preflight.pins_problem(combo)
            if reason:
                raise NotInstallable(reason)
            evict.enforce(root, protected or [c.id for c in matrix.combos], keep=venv, log=runner.log)
        result = build.install(venv, combo, root, log=runner.log)
        evict.touch(venv)
    except NotInstallable as exc:
        runner.log("\n".join((exc.detail or exc.message).strip().splitlines()[-40:]))
        return Built(refused=not_installable(matrix, cases, combo, out, exc, root))
    except MachineError as exc:
        machine_failure(matrix, cases, combo, out, exc, root, runner.log)
        raise
    runner.log(result.output.strip().splitlines()[-1] if result.output.strip() else "installed")
    return Built(versions=build.read_stamp(venv).get("resolved") or resolved.resolved(venv))


def install_and_run(root: Path, matrix: Matrix, cases: dict[str, CaseFile], combo: Combo, venv: Path,
                    out: Path, runner: Runner, protected: tuple[str, ...] | None = None) -> str | None:
    """Under the combo's lock, build its environment and run its cases; the reason when it is not installable.

    The combo pipeline's ``lock_combo``, ``build_environment`` and ``run_harness`` in one call, for
    ad-hoc pins and the benchmarks.
    """
    with locks.combo_lock(root, combo.id, runner.log):
        built = build_env(root, matrix, cases, combo, venv, out, runner, protected)
        if built.refused is None:
            run_cases(root, matrix, cases, combo, str(venv / "bin" / "python"), out, runner, built.versions)
    return built.refused
