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

from ftcompat import install, plan
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
            "--disable-warnings", *map(str, case_files)]


def only_cases(combo: Combo, selectors: str | None) -> Combo:
    """Narrow a combo to the case globs in ``selectors`` (comma-separated), e.g. FTCOMPAT_CASES."""
    if not selectors:
        return combo
    wanted = tuple(s.strip() for s in selectors.split(",") if s.strip())
    return dataclasses.replace(combo, cases=wanted)


def run_cases(root: Path, matrix: Matrix, cases: dict[str, CaseFile], combo: Combo, python: str,
              out: Path, runner: Runner) -> list[dict]:
    """Run the combo's cases with ``python`` and return its completed cell records (also on disk)."""
    planned = plan.planned_cells(matrix, combo, cases)
    ran = set(plan.combo_cases(matrix, combo))
    # A run of some cases only (FTCOMPAT_CASES) keeps the earlier results of the others.
    kept = [r for r in read_cells(out) if r["case"] not in ran]
    work = root / WORK / "work" / combo.id
    plan_file = root / WORK / "plans" / f"{combo.id}.json"
    atomic_write(plan_file, dumps(plan.harness_plan(matrix, combo, out, work)))
    files = [cases[c].path for c in plan.combo_cases(matrix, combo)]
    # The harness writes beside the combo's file, which is replaced only once the run is over: a
    # run stopped half-way (Ctrl-C, a killed job) leaves the previous results whole.
    running = out.with_name(f".{out.stem}.running.json")
    running.unlink(missing_ok=True)
    # Exit code 1 (a case failed) and 2-5 (interrupted, crashed) are results, not errors: what the
    # harness wrote stays, and cells it never reached are filled in below.
    runner(pytest_args(python, root, plan_file, running, files),
           env={"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")})
    records = complete(read_cells(running), planned, combo,
                       "no result recorded: the harness stopped before this cell (see the log)")
    running.unlink(missing_ok=True)
    records = rerun_transient(records, cases, runner,
                              lambda nodes, dest: pytest_args(python, root, plan_file, dest, nodes), running)
    write_cells(out, combo.id, records + kept)
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    runner.log(f"{combo.id}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return records


def node_id(case: CaseFile, record: dict) -> str:
    """The pytest node id of a cell: ``<case file>::test_<variant>[<model>]``."""
    model = f"[{record['model']}]" if record.get("model") else ""
    return f"{case.path}::test_{record['variant']}{model}"


def rerun_transient(records: list[dict], cases: dict[str, CaseFile], runner: Runner,
                    command: Callable[[list[str], Path], list[str]], scratch: Path) -> list[dict]:
    """Run once more every cell that failed with a transient error; a pass then makes it ``flaky``."""
    todo = {r["id"] for r in records if r["status"] in ("fail", "error")
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
    result = install.install(venv, combo, root, log=runner.log)
    if not result.ok:
        runner.log("\n".join(result.output.strip().splitlines()[-40:]))
        return not_installable(matrix, cases, combo, out, result.output)
    runner.log(result.output.strip().splitlines()[-1] if result.output.strip() else "installed")
    run_cases(root, matrix, cases, combo, str(venv / "bin" / "python"), out, runner)
    return None
