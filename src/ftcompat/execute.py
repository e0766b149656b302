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

from ftcompat import cache, envcheck, install, plan, preflight
from ftcompat.cases import CaseFile
from ftcompat.domain import Combo, Matrix
from ftcompat.grid import complete, missing_record, read_cells
from ftcompat.harness.cellfile import atomic_write, dumps, write_cells
from ftcompat.outcome import Status, is_transient

WORK = Path(".ftcompat")


@dataclass
class Runner:
    """How to talk to the world: print a line, run a command (cwd = project root)."""

    log: Callable[[str], None] = print
    run: Callable[..., object] | None = None

    def __call__(self, cmd: list[str], env: dict) -> None:
        """Run ``cmd``; exit codes are results here, never exceptions."""
        if self.run is not None:
            self.run(*cmd, env=env)
            return
        subprocess.run(cmd, env={**os.environ, **env}, check=False)


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


def only_cases(combo: Combo, selectors: str | None) -> Combo:
    """Narrow a combo to the case globs in ``selectors`` (comma-separated), e.g. FTCOMPAT_CASES."""
    if not selectors:
        return combo
    wanted = tuple(s.strip() for s in selectors.split(",") if s.strip())
    return dataclasses.replace(combo, cases=wanted)


def run_cases(root: Path, matrix: Matrix, cases: dict[str, CaseFile], combo: Combo, python: str,
              out: Path, runner: Runner, versions: dict | None = None) -> list[dict]:
    """Run the combo's cells that have no current result and return its records (also on disk).

    ``versions`` are the environment's resolved versions, for the result cache; without them every
    cell runs. A leftover of an interrupted run is folded in first, so a rerun resumes.
    """
    planned = plan.planned_cells(matrix, combo, cases)
    ran = set(plan.combo_cases(matrix, combo))
    running = out.with_name(f".{out.stem}.running.json")
    previous = merged(read_cells(out, runner.log), read_cells(running, runner.log))
    # A run of some cases only (FTCOMPAT_CASES) keeps the earlier results of the others.
    kept = [r for r in previous if r["case"] not in ran]
    work = root / WORK / "work" / combo.id
    plan_file = root / WORK / "plans" / f"{combo.id}.json"
    the_plan = plan.harness_plan(matrix, combo, out, work)
    wanted = cache.keys(planned, {c: cases[c].path for c in ran}, versions, combo.python, the_plan) \
        if versions else {}
    the_plan["cache_keys"] = wanted
    atomic_write(plan_file, dumps(the_plan))
    reused = cache.hits([r for r in previous if r["case"] in ran], wanted)
    todo = longest_first([c for c in planned if c.id not in {r["id"] for r in reused}], previous)
    if reused:
        runner.log(f"{combo.id}: {len(reused)} cell(s) unchanged since their last run (cached; "
                   f"FTCOMPAT_FORCE=1 runs them again), {len(todo)} to run")
    fresh = _run(root, cases, combo, python, plan_file, out, todo, runner, merged(previous, reused)) if todo else []
    records = reused + fresh
    write_cells(out, combo.id, records + kept)
    running.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    runner.log(f"{combo.id}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return records


def _run(root: Path, cases: dict[str, CaseFile], combo: Combo, python: str, plan_file: Path, out: Path,
         todo: list, runner: Runner, previous: list[dict]) -> list[dict]:
    """Run the cells in ``todo`` with the harness and return their completed records."""
    running = out.with_name(f".{out.stem}.running.json")

    def command(nodes, dest):
        return pytest_args(python, root, plan_file, dest, nodes)

    nodes = [node_id(cases[c.case], {"variant": c.variant, "model": c.model}) for c in todo]
    running.unlink(missing_ok=True)
    try:
        # Exit code 1 (a case failed) and 2-5 (interrupted, crashed) are results, not errors: what the
        # harness wrote stays, and cells it never reached are filled in below.
        runner(command(nodes, running), env={"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")})
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


def longest_first(cells: list, previous: list[dict]) -> list:
    """Cells ordered by their last duration, longest (and never timed) first.

    xdist hands cases out in this order, so the long ones start at once and the short ones fill
    the gaps, instead of one worker finishing a long case alone at the end.
    """
    took = {r["id"]: r.get("duration_s") or 0.0 for r in previous}
    return sorted(cells, key=lambda c: -took.get(c.id, float("inf")))


def merged(*groups: list[dict]) -> list[dict]:
    """Records by id, later groups replacing earlier ones."""
    by_id: dict[str, dict] = {}
    for group in groups:
        by_id.update({r["id"]: r for r in group})
    return list(by_id.values())


def node_id(case: CaseFile, record: dict) -> str:
    """The pytest node id of a cell: ``<case file>::test_<variant>[<model>]``."""
    model = f"[{record['model']}]" if record.get("model") else ""
    return f"{case.path}::test_{record['variant']}{model}"


def rerun_transient(records: list[dict], cases: dict[str, CaseFile], runner: Runner,
                    command: Callable[[list[str], Path], list[str]], scratch: Path) -> list[dict]:
    """Run once more every cell that failed with a transient error; a pass then makes it ``flaky``."""
    # A timeout is not retried: a hang would cost its whole limit again.
    todo = {r["id"] for r in records if r["status"] in ("fail", "error", "crash")
            and is_transient(f"{r.get('signature')} {r.get('message')}")}
    if not todo:
        return records
    runner.log(f"{len(todo)} cell(s) failed with a transient error (out of memory, timeout, killed worker); "
               "running them once more")
    nodes = [node_id(cases[r["case"]], r) for r in records if r["id"] in todo and r["case"] in cases]
    scratch.unlink(missing_ok=True)
    runner(command(nodes, scratch), env={"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")})
    again = {r["id"]: r for r in read_cells(scratch)}
    scratch.unlink(missing_ok=True)
    return [settle(r, again.get(r["id"])) if r["id"] in todo else r for r in records]


def settle(first: dict, second: dict | None) -> dict:
    """One cell's record after its rerun: flaky when the rerun passed, else the rerun's failure."""
    if second is None:
        return {**first, "reruns": 1, "rerun_status": None}
    if second["status"] == Status.PASS.value:
        return {**first, "status": Status.FLAKY.value, "reruns": 1, "rerun_status": "pass",
                "signature": f"flaky: {first.get('signature')}; passed when run again",
                "duration_s": round(first.get("duration_s", 0) + second.get("duration_s", 0), 3)}
    return {**second, "reruns": 1, "rerun_status": second["status"], "first_signature": first.get("signature")}


def not_installable(matrix: Matrix, cases: dict[str, CaseFile], combo: Combo, out: Path,
                    output: str) -> str:
    """Record every planned cell as not-installable with the installer's reason; return the reason."""
    reason = install.failure_summary(output)
    tail = "\n".join(output.strip().splitlines()[-40:])
    planned = plan.planned_cells(matrix, combo, cases)
    write_cells(out, combo.id, [missing_record(c, combo, Status.NOT_INSTALLABLE, reason, tail)
                                for c in planned])
    return reason


def install_and_run(root: Path, matrix: Matrix, cases: dict[str, CaseFile], combo: Combo, venv: Path,
                    out: Path, runner: Runner) -> str | None:
    """Install the combo into ``venv`` and run its cases; return the reason when it is not installable."""
    if not install.can_reuse(venv, combo, dict(os.environ), root):
        # A typo'd version says so in one line, instead of as a resolver dump after a slow install.
        reason = preflight.pins_problem(combo)
        if reason:
            runner.log(reason)
            return not_installable(matrix, cases, combo, out, reason)
    result = install.install(venv, combo, root, log=runner.log)
    if not result.ok:
        runner.log("\n".join(result.output.strip().splitlines()[-40:]))
        return not_installable(matrix, cases, combo, out, result.output)
    runner.log(result.output.strip().splitlines()[-1] if result.output.strip() else "installed")
    versions = install.read_stamp(venv).get("resolved") or envcheck.resolved(venv)
    run_cases(root, matrix, cases, combo, str(venv / "bin" / "python"), out, runner, versions)
    return None
