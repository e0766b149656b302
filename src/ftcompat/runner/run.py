"""The one runner: a combo's cases run in an environment its kind prepares, under the combo's lock.

Every command reaches the harness through ``run``: the grid's nox sessions, ``adhoc``, ``here``,
``pins --search``, ``upgrade``, ``bisect`` and the device check differ only in the ``Environment``
they hand it and what they do with the ``Outcome``. It is the only caller of the build stage
(``Environment.prepare``) and the run stage (``cells.run_cases``); a test holds it to that.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ftcompat.config.cases import CaseFile
from ftcompat.core.domain import Matrix
from ftcompat.core.errors import MachineError, NotInstallable
from ftcompat.core.health import EnvReport
from ftcompat.core.plan import PlannedHandoff
from ftcompat.core.record import Record
from ftcompat.env import health, locks
from ftcompat.env.base import Built, Environment, Log
from ftcompat.runner import cells, repairs, setbacks


@dataclass(frozen=True)
class Job:
    """What to run in an environment: the config's cases, where the cells go, how often, how."""

    root: Path  # the project: .ftcompat/ (plans, locks, work) lives here
    matrix: Matrix
    cases: Mapping[str, CaseFile]
    outs: tuple[Path, ...]  # one cell file per round (a bisection step runs its cells more than once)
    cached: bool = True  # take unchanged cells from the result cache
    command: Callable[..., int | None] | None = None  # run commands another way (a bisection step's log)
    env: Mapping[str, str] = field(default_factory=dict)  # for every harness command, over the environment's
    repair: str | None = "cap"  # how a kind that resolved the unpinned packages itself repairs a broken import
    handoff: PlannedHandoff | None = None  # the half of a handoff these cells play (``flows.handoff``)


@dataclass(frozen=True)
class Outcome:
    """What a run gave: the environment as built, each round's records, or why the pins were refused."""

    built: Built | None = None
    rounds: tuple[tuple[Record, ...], ...] = ()
    refused: str | None = None  # the installer's reason; the cells already say not-installable
    prepare_s: float = 0.0  # seconds the environment took to prepare (an install, or a reuse check)
    round_s: tuple[float, ...] = ()  # seconds each round's cells took
    environment: EnvReport = EnvReport()  # the health probe's answer and the repair, if one was made

    @property
    def records(self) -> tuple[Record, ...]:
        """The last round's records."""
        return self.rounds[-1] if self.rounds else ()


def run(environment: Environment, job: Job, log: Log = print) -> Outcome:
    """Prepare the environment, run the job's cells in it (each round), release it; return what happened.

    Pins that cannot install are a result: the planned cells say so and ``refused`` says why. A
    machine failure keeps the earlier results, is written into the cells and raised as ``MachineError``.
    """
    combo = environment.combo
    report = EnvReport()
    with locks.combo_lock(job.root, combo.id, log):
        started = time.monotonic()
        try:
            try:
                built = environment.prepare(log)
            except NotInstallable as exc:
                log("\n".join((exc.detail or exc.message).strip().splitlines()[-40:]))
                reason = setbacks.not_installable(job.matrix, dict(job.cases), combo, job.outs[0], exc, job.root)
                return Outcome(refused=reason, prepare_s=time.monotonic() - started)
            except MachineError as exc:
                setbacks.machine_failure(job.matrix, dict(job.cases), combo, job.outs[0], exc, job.root, log)
                raise
            report = EnvReport(health.check(job.root, built, needs(job.cases), log))
            if not report.health.ok and environment.repairs and job.repair:
                environment, built, report = repairs.repair_env(environment, built, report.health, job.repair,
                                                                job.root, needs(job.cases), log)
            prepare_s = time.monotonic() - started
            shell = cells.Shell(log=log, run=job.command, env=dict(job.env), cwd=job.root)
            rounds, round_s = [], []
            for out in job.outs:
                t0 = time.monotonic()
                rounds.append(tuple(cells.run_cases(job.root, job.matrix, job.cases, environment.combo, built, out,
                                                    shell, cached=job.cached, environment=report,
                                                    handoff=job.handoff)))
                round_s.append(time.monotonic() - t0)
        finally:
            environment.release()
    return Outcome(built=built, rounds=tuple(rounds), prepare_s=prepare_s, round_s=tuple(round_s),
                   environment=report)


def needs(cases: Mapping[str, CaseFile]) -> tuple[str, ...]:
    """The modules the cases declare beside the stack's (``NEEDS``), for the health probe."""
    return tuple(sorted({m for c in cases.values() for m in c.needs}))
