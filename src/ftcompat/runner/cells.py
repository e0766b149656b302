"""The run stage: a combo's cells under the harness in a prepared environment, leaving a complete cell file.

Only the one runner (``runner.run``) calls it. Cells whose result is current come from the cache,
a killed run's finished cells are kept and the rest resumed, transient failures run once more. The
caller says how to log and how to run a command; this module does not care who does it.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ftcompat.config import plan
from ftcompat.config.cases import CaseFile
from ftcompat.core.cellfile import RESULTS_UNWRITABLE, atomic_write, dumps, read_cells, write_cells
from ftcompat.core.domain import Cell, Combo, Matrix
from ftcompat.core.health import EnvReport
from ftcompat.core.outcome import is_transient
from ftcompat.core.paths import STAGED_CASES
from ftcompat.core.plan import PlannedHandoff
from ftcompat.core.record import Record
from ftcompat.core.status import RERUN_IF_TRANSIENT, Status
from ftcompat.env.base import Built
from ftcompat.results.grid import complete
from ftcompat.runner import cache
from ftcompat.runner.setbacks import results_unwritable

WORK = Path(".ftcompat")
STOP_WAIT = 60.0  # seconds the harness gets after Ctrl-C to write what it finished


def _signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to a process group that may be gone already."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Shell:
    """How the run stage talks to the world: print a line, run a command (in the project folder)."""

    log: Callable[[str], None] = print
    run: Callable[..., int | None] | None = None
    env: dict = dataclasses.field(default_factory=dict)  # for every command, e.g. the harness's PYTHONPATH
    # The project folder: a case's relative paths land there, never in nox's folder (for a wheel install,
    # inside the installed package). A ``run`` of its own chooses its own.
    cwd: Path | None = None

    def __call__(self, cmd: list[str], env: dict) -> int:
        """Run ``cmd`` and return its exit status; exit codes are results here, never exceptions."""
        env = {**self.env, **env}
        if self.run is not None:
            return self.run(*cmd, env=env) or 0
        self.log(" ".join(cmd))
        # A group of its own, ended after the harness: a process a case started and left running (a data
        # loader's worker, a server) must not outlive the run. Ctrl-C is handed on to the group, so the
        # harness still writes what it finished before it stops.
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=self.cwd, start_new_session=True)
        try:
            return proc.wait()
        except BaseException:
            _signal_group(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=STOP_WAIT)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
            raise
        finally:
            _signal_group(proc.pid, signal.SIGKILL)


def workers(env: Mapping[str, str] | None = None) -> str:
    """Return the number of xdist workers: FTCOMPAT_WORKERS (the environment's, else ours), else up to 2."""
    return (env or {}).get("FTCOMPAT_WORKERS") or os.environ.get("FTCOMPAT_WORKERS") \
        or str(min(2, os.cpu_count() or 1))


def pytest_args(python: str, root: Path, plan_file: Path, out: Path, case_files: list[Path],
                n_workers: str | None = None) -> list[str]:
    """Return the harness command line run inside the target environment."""
    ini = plan_file.with_suffix(".ini")
    ini.write_text("[pytest]\naddopts =\n")
    return [python, "-m", "pytest", "-p", "ftcompat.harness.plugin", "-p", "no:cacheprovider",
            "-c", str(ini), "--rootdir", str(root), "--ftcompat-plan", str(plan_file),
            "--ftcompat-out", str(out), "-n", n_workers or workers(), "-q", "-rN", "--tb=line",
            # Output goes to per-worker logs (the harness keeps each failing cell's tail); a crashed or
            # timed-out worker is replaced as often as it takes to finish the combo.
            "--capture=no", "--max-worker-restart", "1000",
            # A case file that raises at import is that case's cells (the harness records them), not
            # the end of the run for every other case.
            "--continue-on-collection-errors",
            "--disable-warnings", *map(str, case_files)]


def run_cases(root: Path, matrix: Matrix, cases: Mapping[str, CaseFile], combo: Combo, built: Built,
              out: Path, shell: Shell, cached: bool = True, environment: EnvReport | None = None,
              handoff: PlannedHandoff | None = None) -> list[Record]:
    """Run the combo's cells that have no current result and return its records (also on disk).

    The result cache needs the environment's resolved versions (``built.versions``): without them, or
    with ``cached`` off, every cell runs. A leftover of an interrupted run is folded in first, so a
    rerun resumes.
    """
    versions = built.versions if cached else None
    shell = dataclasses.replace(shell, env={**built.env, **shell.env})
    planned = plan.planned_cells(matrix, combo, cases)
    ran = set(plan.combo_cases(matrix, combo))
    cases = staged(root, {c: cases[c] for c in ran})
    running = out.with_name(f".{out.stem}.running.json")
    previous = merged(read_cells(out, shell.log), read_cells(running, shell.log))
    # A run of some cases only (FTCOMPAT_CASES) keeps the earlier results of the others.
    kept = [r for r in previous if r.case not in ran]
    work = root / WORK / "work" / combo.id
    plan_file = root / WORK / "plans" / f"{combo.id}.json"
    env_note = environment or EnvReport()
    the_plan = plan.harness_plan(matrix, combo, out, work, cases, env_note.health, handoff)
    wanted = cache.keys(planned, {c: cases[c].path for c in ran}, versions, combo.python, the_plan) \
        if versions else {}
    atomic_write(plan_file, dumps(dataclasses.replace(the_plan, cache_keys=wanted).to_json()))
    reused = cache.hits([r for r in previous if r.case in ran], wanted)
    todo = longest_first([c for c in planned if c.id not in {r.id for r in reused}], previous)
    if reused:
        shell.log(f"{combo.id}: {len(reused)} cell(s) unchanged since their last run (cached; "
                   f"FTCOMPAT_FORCE=1 runs them again), {len(todo)} to run")
    fresh = _run(root, cases, combo, built.python, plan_file, out, todo, shell, merged(previous, reused)) \
        if todo else []
    records = reused + fresh
    write_cells(out, combo.id, records + kept, env_note.to_json() if environment else None)
    running.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    for r in records:
        counts[r.status.value] = counts.get(r.status.value, 0) + 1
    shell.log(f"{combo.id}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
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
         todo: list, shell: Shell, previous: list[Record]) -> list[Record]:
    """Run the cells in ``todo`` with the harness and return their completed records."""
    running = out.with_name(f".{out.stem}.running.json")

    def command(nodes, dest):
        return pytest_args(python, root, plan_file, dest, nodes, workers(shell.env))

    nodes = [node_id(cases[c.case], c) for c in todo]
    running.unlink(missing_ok=True)
    try:
        # Exit code 1 (a case failed) and 2-5 (interrupted, crashed) are results, not errors: what the
        # harness wrote stays, and cells it never reached are filled in below.
        code = shell(command(nodes, running), env={"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")})
        if code == RESULTS_UNWRITABLE:  # the harness said why; nothing more is run or written
            raise results_unwritable(out)
    except BaseException:
        # Ctrl-C or a killed session: keep every finished cell next to the earlier results, so the
        # same command resumes with only what is missing.
        write_cells(out, combo.id, merged(previous, read_cells(running, shell.log)))
        running.unlink(missing_ok=True)
        raise
    records = complete(read_cells(running, shell.log), todo, combo,
                       "no result recorded: the harness stopped before this cell (see the log)")
    running.unlink(missing_ok=True)
    return rerun_transient(records, cases, shell, command, running)


def longest_first(cells: list, previous: list[Record]) -> list:
    """Cells ordered by their last duration, longest (and never timed) first.

    xdist hands cases out in this order, so the long ones start at once and the short ones fill
    the gaps, instead of one worker finishing a long case alone at the end.
    """
    took = {r.id: r.duration_s or 0.0 for r in previous}
    return sorted(cells, key=lambda c: -took.get(c.id, float("inf")))


def merged(*groups: Iterable[Record]) -> list[Record]:
    """Records by id, later groups replacing earlier ones."""
    by_id: dict[str, Record] = {}
    for group in groups:
        by_id.update({r.id: r for r in group})
    return list(by_id.values())


def node_id(case: CaseFile, cell: Cell | Record) -> str:
    """The pytest node id of a cell: ``<case file>::test_<variant>[<model>]``."""
    model = f"[{cell.model}]" if cell.model else ""
    return f"{case.path}::test_{cell.variant}{model}"


def rerun_transient(records: list[Record], cases: dict[str, CaseFile], shell: Shell,
                    command: Callable[[list[str], Path], list[str]], scratch: Path) -> list[Record]:
    """Run once more every cell that failed with a transient error; a pass then makes it ``flaky``."""
    # A timeout is not retried: a hang would cost its whole limit again. A machine failure is not a
    # cell's failure: it was never run.
    todo = {r.id for r in records if r.status in RERUN_IF_TRANSIENT and r.exc_type != "MachineError"
            and is_transient(f"{r.signature} {r.message}")}
    if not todo:
        return records
    shell.log(f"{len(todo)} cell(s) failed with a transient error (out of memory, timeout, killed worker); "
               "running them once more")
    nodes = [node_id(cases[r.case], r) for r in records if r.id in todo and r.case in cases]
    scratch.unlink(missing_ok=True)
    code = shell(command(nodes, scratch), env={"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")})
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
