"""``ftcompat bisect``'s real step runner (a fresh environment per step), and reading its two sides.

The search itself is ``triage.bisector``; each step here is the one runner over a ``StepVenv``;
``cli.bisect_cmd`` drives it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ftcompat.config.cases import cases_of
from ftcompat.config.plan import planned_cells
from ftcompat.core.cellfile import atomic_write, dumps
from ftcompat.core.clock import name_stamp, utc_now
from ftcompat.core.domain import STACK, Combo, Matrix, frozen_map
from ftcompat.core.record import Record
from ftcompat.core.redact import redact
from ftcompat.core.selector import match, match_column
from ftcompat.core.status import Status
from ftcompat.core.versions import key as version_key
from ftcompat.env import releases
from ftcompat.env.venv import StepVenv
from ftcompat.flows.adhoc import parse_pins
from ftcompat.results import gridload
from ftcompat.runner import run as runner
from ftcompat.runner.cells import WORK
from ftcompat.triage import report
from ftcompat.triage.bisectdoc import to_json, to_markdown
from ftcompat.triage.bisector import Bisector
from ftcompat.triage.trials import BisectError, CellRun, Result, Trial, Verdict, differing


@dataclass
class EnvRunner:
    """Install the pins in a new venv under ``base/<step>/`` and run the case ``runs`` times in it."""

    matrix: Matrix
    root: Path
    case_ids: tuple[str, ...]
    selector: str
    base: Path
    runs: int = 2
    python: str = "3.11"
    keep_envs: bool = False
    log: Callable[[str], None] = print
    count: int = 0
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict)  # for packages pinned at a commit

    def __call__(self, pins: dict, runs: int | None = None) -> Trial:
        """Build the step's environment, run the case (``runs`` times, else the runner's), return the cells per run."""
        rounds = runs or self.runs
        self.count += 1
        step_dir = self.base / f"{self.count:02d}"
        step_dir.mkdir(parents=True, exist_ok=True)
        combo = self.combo(pins, f"bisect-{self.base.name}-{self.count:02d}")
        started = time.monotonic()
        with (step_dir / "log.txt").open("a", encoding="utf-8") as fh:
            def log(line: str) -> None:
                print(redact(line), file=fh, flush=True)

            def run(*cmd: str, env: dict) -> int:
                proc = subprocess.run(cmd, env={**os.environ, **env}, stdout=subprocess.PIPE, cwd=self.root,
                                      stderr=subprocess.STDOUT, text=True, check=False)
                fh.write(redact(proc.stdout or ""))
                fh.flush()
                return proc.returncode

            matrix = dataclasses.replace(self.matrix, combos=(combo,))
            outs = tuple(step_dir / "cells" / f"run{k + 1}.json" for k in range(rounds))
            # A machine failure (full disk, no index) is not an untestable release: it stops the
            # bisection (MachineError), where a release that cannot be installed is skipped.
            step_env = StepVenv(self.root, combo, step_dir / "venv", tuple(c.id for c in self.matrix.combos),
                                self.keep_envs)
            outcome = runner.run(step_env,
                                 runner.Job(self.root, matrix, cases_of(matrix), outs, cached=False, command=run),
                                 log)
        self._cleanup(combo.id)
        shown = frozen_map({"dir": self._shown(step_dir)})
        if outcome.refused is not None:
            return Trial(reason=outcome.refused, install_s=time.monotonic() - started, env=shown)
        selected = tuple(tuple(self._selected(list(records))) for records in outcome.rounds)
        env = next((e for e in map(_env_of, outcome.rounds) if e), {})
        return Trial(selected, "", outcome.prepare_s, outcome.round_s, frozen_map({**env, **shown}))

    def _shown(self, path: Path) -> str:
        """The step folder relative to the project, so the JSON carries no machine's paths."""
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    def combo(self, pins: Mapping, combo_id: str) -> Combo:
        """The step's combo: these pins, only the selected cases."""
        sources = {p: s for p, s in self.sources.items() if p in pins}
        return Combo(combo_id, self.python, frozen_map(pins), ("bisect",), self.case_ids, "bisection step",
                     sources=frozen_map(sources))

    def _selected(self, records: list[Record]) -> list[CellRun]:
        return [CellRun(r.column, r.status, r.signature or "")
                for r in sorted(records, key=lambda r: r.id) if match_column(self.selector, r.column)]

    def _cleanup(self, combo_id: str) -> None:
        # The step's plan and tiny-model work dir are per step: leave .ftcompat/plans as it was.
        for path in (self.root / WORK / "plans" / f"{combo_id}.json",
                     self.root / WORK / "plans" / f"{combo_id}.ini"):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.root / WORK / "work" / combo_id, ignore_errors=True)


def _env_of(records: Sequence[Record]) -> dict:
    for r in records:
        env = r.env or {}
        if r.status != Status.NOT_INSTALLABLE and env.get("versions"):
            return {"versions": env.get("versions"), "device": env.get("device"), "python": env.get("python")}
    return {}


# ---------------------------------------------------------------------------------------------
# What the command line needs


def side_pins(pins: list[str] | None, combo_id: str | None, grid_path: str, side: str) -> dict:
    """One side's pins from ``--good``/``--bad`` or from a grid combo's resolved versions."""
    if bool(pins) == bool(combo_id):
        raise BisectError(f"give the {side} side as --{side} PKG==VER ... or --{side}-combo ID (one of them)")
    if pins:
        try:
            return parse_pins(pins)
        except ValueError as exc:
            raise BisectError(str(exc)) from None
    assert combo_id is not None  # one of the two was given, checked above
    return combo_pins(grid_path, combo_id)


def combo_pins(grid_path: str, combo_id: str) -> dict:
    """The six stack packages' versions a grid combo resolved to (its pins where it did not run)."""
    import difflib


    if not Path(grid_path).exists():
        raise BisectError(f"{grid_path}: no such grid; run `nox` first or pass --grid")
    combos = {c["id"]: c for c in gridload.load(grid_path).combos}
    if combo_id not in combos:
        near = difflib.get_close_matches(combo_id, list(combos), n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else f"; combos: {', '.join(combos)}"
        raise BisectError(f"unknown combo {combo_id!r} in {grid_path}{hint}")
    combo = combos[combo_id]
    resolved = combo.get("resolved") or {}
    pins = {}
    for pkg in STACK:
        version = resolved.get(pkg) or (combo.get("pins") or {}).get(pkg)
        if not version:
            raise BisectError(f"combo {combo_id!r} has no resolved {pkg} in {grid_path} (did it run?)")
        # ``2.13.0+cpu`` pins as ``2.13.0``: the same release, and PyPI has no local builds.
        pins[pkg] = str(version_key(version))
    return pins


def select_cases(matrix, root: Path, selector: str) -> tuple[str, ...]:
    """Case ids whose cells the selector picks; a clear error when it picks none."""
    case_glob = selector.split("[", 1)[0]
    ids = tuple(c for c in matrix.cases if match(case_glob, c))
    if not ids:
        raise BisectError(f"{selector!r} matches no case in {matrix.source}; cases: {', '.join(matrix.cases)}")
    probe = Combo("probe", "3.11", frozen_map({}), ("bisect",), ids)
    columns = [c.column for c in planned_cells(matrix, probe, cases_of(matrix))]
    if not any(match_column(selector, c) for c in columns):
        raise BisectError(f"{selector!r} matches no cell; the case's cells are: {', '.join(columns)}")
    return ids


def check_sides(good: Mapping, bad: Mapping) -> list[str]:
    """The differing packages, each pinned on both sides; else a clear error."""
    diff = differing(good, bad)
    if not diff:
        raise BisectError("no package differs between --good and --bad: nothing to bisect")
    loose = [p for p in diff if not good.get(p) or not bad.get(p)]
    if loose:
        raise BisectError(f"pin {', '.join(loose)} on both sides: a bisection needs two versions to search between")
    return diff


def default_out(selector: str, result: Result) -> Path:
    """results/bisect/<case>-<pkg>.json, with the selector made file-name safe."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", selector).strip("-")
    return Path("results/bisect") / f"{slug}-{'+'.join(result.culprit) or 'none'}.json"


def write(doc: Mapping, out: Path) -> Path:
    """Write the JSON (sorted keys) and the Markdown beside it; return the JSON path."""
    atomic_write(out, dumps(doc))
    atomic_write(out.with_suffix(".md"), to_markdown(doc))
    return out


def refresh_report(path: Path, reports: Path | None = None, log=print) -> list[Path]:
    """Rewrite the bug reports (results/reports) about this bisection's cell with its result."""
    return report.refresh_with_bisection(path, reports or report.REPORTS, log=log)


def device_of(bisector: Bisector) -> str | None:
    """The device the bisection's steps ran on, as ``name (type)``, from the first step that says."""
    for step in bisector.steps:
        device = (step.trial.env or {}).get("device")
        if device:
            if isinstance(device, Mapping):
                return f"{device.get('name')} ({device.get('type')})"
            return str(device)
    return None


@dataclass(frozen=True)
class Ask:
    """A release bisection as asked: the cell, both sides' pins, and how to run each step."""

    cell: str  # a column selector, e.g. "phi3_generate[remote_seen_tokens@tiny-phi3]"
    good: Mapping[str, str | None]
    bad: Mapping[str, str | None]
    runs: int = 2
    python: str = "3.11"
    keep_envs: bool = False
    pre: bool = False
    out: Path | None = None
    report: bool = False


@dataclass(frozen=True)
class Answer:
    """What a bisection found: its document (JSON and Markdown written to ``out``) and the verdict."""

    doc: Mapping
    out: Path
    result: Result


def flow(matrix: Matrix, root: Path, ask: Ask, log: Callable[[str], None] = print) -> Answer:
    """``ftcompat bisect``: a step environment per release (the one runner over ``StepVenv``) until one flips."""
    if ask.runs < 1:
        raise BisectError("--runs must be at least 1")
    check_sides(ask.good, ask.bad)
    steps = EnvRunner(matrix, root, select_cases(matrix, root, ask.cell), ask.cell,
                      root / WORK / "bisect" / name_stamp(), ask.runs, ask.python, ask.keep_envs)
    index = releases.index_url()
    log(f"bisecting {ask.cell}: steps under {steps.base}")
    started, started_at = time.monotonic(), utc_now()
    bisector = Bisector(steps, releases.lister(ask.pre, index), dict(ask.good), dict(ask.bad), log=log)
    result = bisector.run()  # a BisectError here comes before any environment is built
    meta = {"run_id": steps.base.name, "index": index, "runs_per_step": ask.runs, "pre_releases": ask.pre,
            "duration_s": round(time.monotonic() - started, 1), "device": device_of(bisector),
            "python": ask.python, "started_at": started_at}
    doc = to_json(ask.cell, bisector, result, meta)
    out = write(doc, ask.out or default_out(ask.cell, result))
    if result.verdict == Verdict.FOUND and ask.report:
        refresh_report(out, log=log)
    return Answer(doc, out, result)
