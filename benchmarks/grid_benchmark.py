"""Time the grid four ways on one machine: cold, warm, fully cached, and a naive venv+pip baseline.

Usage (from the repository root, with the interpreter ftcompat's dev tools are installed in):

    python benchmarks/grid_benchmark.py --dry-run                       # print the plan, run nothing
    python benchmarks/grid_benchmark.py --combos torch2.13-cpu "tf4.57.6*"

Phases, all in a fresh copy of the project (tracked and untracked, not ignored, files) under a
scratch folder, so the checkout's own .nox, .ftcompat and results are never touched:

1. cold: no environments, no results; ``nox -s <combo>`` per combo (so each combo's cold time is
   known), then ``nox -s render``. uv's download cache stays as it is unless --cold-uv-cache, which
   points UV_CACHE_DIR at an empty folder for every phase.
2. warm: the environments are there; ``FTCOMPAT_FORCE=1 nox -s <combos> render`` runs every cell again.
3. cached: the same command without FTCOMPAT_FORCE: cells whose inputs did not change are reused.
4. add: one more combo (a copy of --add-combo under a new id) is added to matrix.yaml and the
   grid is run again; compared with that combo's own cold time.
5. naive: per combo a fresh ``python -m venv`` + ``pip install`` of the pins (pip honours
   PIP_FIND_LINKS itself), then one ``python -m pytest cases/<case>.py`` process per case, no xdist.
   By default pip's download cache is warmed first (untimed, ``pip download``), as uv's is for the
   others; --naive-cold-pip leaves it as it is.

It prints a table of the times and ratios with the machine, and writes benchmarks/results-<date>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import fnmatch
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("cold", "warm", "cached", "add", "naive")
TIMED = set(PHASES)
NAIVE_TOOLS = ("pytest",)  # what a team's test env needs besides the pins; no xdist in the naive lane


@dataclass
class Step:
    """One thing the benchmark does: a command (timed unless ``phase`` is ``setup``) or a Python action."""

    phase: str
    label: str
    argv: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    combo: str | None = None
    action: Callable[[], None] | None = None
    ok_codes: tuple[int, ...] = (0,)

    @property
    def timed(self) -> bool:
        """Setup and cleanup steps are not part of any phase's time."""
        return self.phase in TIMED

    def shown(self) -> str:
        """The step as the dry run prints it."""
        env = " ".join(f"{k}={v}" for k, v in sorted(self.env.items()))
        what = " ".join(self.argv) if self.argv else f"({self.label})"
        return f"[{self.phase}] {env + ' ' if env else ''}{what}"


@dataclass(frozen=True)
class Timing:
    """How long one step took and how it ended."""

    phase: str
    label: str
    seconds: float
    rc: int
    combo: str | None = None
    ok: bool = True


@dataclass(frozen=True)
class Layout:
    """Where the benchmark works: the project copy, naive envs, logs, and uv's cache if fresh."""

    scratch: Path

    @property
    def project(self) -> Path:
        """The fresh copy of the project the ftcompat phases run in."""
        return self.scratch / "project"

    @property
    def naive(self) -> Path:
        """Per-combo folders of the naive baseline (venv, plan, tiny-model work dir)."""
        return self.scratch / "naive"

    @property
    def logs(self) -> Path:
        """One log file per step."""
        return self.scratch / "logs"

    @property
    def uv_cache(self) -> Path:
        """The empty uv cache --cold-uv-cache uses."""
        return self.scratch / "uv-cache"


def select(combos, globs: list[str] | None) -> list:
    """The combos the benchmark runs: those matching a glob, else the default (cpu-tagged) grid."""
    if not globs:
        return [c for c in combos if "cpu" in c.tags]
    picked = [c for c in combos if any(fnmatch.fnmatchcase(c.id, g) for g in globs)]
    if not picked:
        known = ", ".join(c.id for c in combos)
        raise SystemExit(f"--combos {' '.join(globs)}: matches no combo in matrix.yaml (combos: {known})")
    return picked


def added_id(base: str, taken: set[str]) -> str:
    """A new combo id for the 'add one combo' phase that no combo uses yet."""
    new, n = f"{base}-added", 1
    while new in taken:
        n += 1
        new = f"{base}-added{n}"
    return new


def nox_argv(python: str, sessions: list[str]) -> list[str]:
    """The nox command line that runs these sessions of the project's noxfile."""
    return [python, "-m", "nox", "-f", "noxfile.py", "-s", *sessions]


def naive_steps(combo, layout: Layout, case_files: list[str], venv_python: str, warm_pip: bool) -> list[Step]:
    """Steps of the naive lane for one combo: venv, pip install, one pytest process per case."""
    home = layout.naive / combo.id
    venv = home / "venv"
    py = str(venv / "bin" / "python")
    reqs = combo.requirements() + list(NAIVE_TOOLS)
    steps = [Step("setup", f"{combo.id}: clear its naive folder",
                  action=lambda: shutil.rmtree(venv, ignore_errors=True), combo=combo.id)]
    if warm_pip:
        steps.append(Step("setup", f"{combo.id}: warm pip's download cache (untimed)",
                          [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q",
                           "-d", str(home / "downloads"), *reqs], combo=combo.id))
        steps.append(Step("setup", f"{combo.id}: drop the downloaded files (pip's cache keeps them)",
                          action=lambda: shutil.rmtree(home / "downloads", ignore_errors=True), combo=combo.id))
    steps += [
        Step("naive", f"{combo.id}: python -m venv", [venv_python, "-m", "venv", str(venv)], combo=combo.id),
        Step("naive", f"{combo.id}: pip install pins", [py, "-m", "pip", "install", "--disable-pip-version-check",
                                                        "-q", *reqs], combo=combo.id),
        Step("naive", f"{combo.id}: pip install the test package",
             [py, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-deps", "-e",
              str(layout.project)], combo=combo.id),
    ]
    for case in case_files:
        steps.append(Step("naive", f"{combo.id}: pytest {case}",
                          [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "ftcompat.harness.plugin",
                           "--ftcompat-plan", str(home / "plan.json"), case],
                          # pytest's 1 means a case failed: a result, as it is for ftcompat.
                          env={"HF_HUB_OFFLINE": "1"}, cwd=layout.project, combo=combo.id, ok_codes=(0, 1)))
    steps.append(Step("setup", f"{combo.id}: remove its naive venv (disk)",
                      action=lambda: shutil.rmtree(home, ignore_errors=True), combo=combo.id))
    return steps


def build_plan(matrix, combos: list, layout: Layout, *, python: str = sys.executable,
               venv_python: str = "python3.11", phases=PHASES, add_base: str | None = None,
               cold_uv_cache: bool = False, warm_pip: bool = True, source: Path = ROOT) -> list[Step]:
    """Every step of the benchmark, in order; preparation and cleanup are untimed ``setup`` steps."""
    from ftcompat.config.plan import combo_cases

    ids = [c.id for c in combos]
    env = {"UV_CACHE_DIR": str(layout.uv_cache)} if cold_uv_cache else {}
    project = layout.project
    steps = [Step("setup", f"copy the project's files to {project} (no .nox, .ftcompat, cells)",
                  action=lambda: copy_project(source, project))]
    if "cold" in phases:
        for cid in ids:
            steps.append(Step("cold", f"{cid}: build its env and run it", nox_argv(python, [cid]),
                              {**env, "FTCOMPAT_FORCE": "1"}, project, cid))
        steps.append(Step("cold", "render", nox_argv(python, ["render"]), env, project))
    if "warm" in phases:
        steps.append(Step("warm", "every cell again", nox_argv(python, [*ids, "render"]),
                          {**env, "FTCOMPAT_FORCE": "1"}, project))
    if "cached" in phases:
        steps.append(Step("cached", "the same grid again", nox_argv(python, [*ids, "render"]), env, project))
    if "add" in phases:
        base = add_base or ids[0]
        new = added_id(base, {c.id for c in matrix.combos})
        steps.append(Step("setup", f"add combo {new} (a copy of {base}) to the copy's matrix.yaml",
                          action=lambda: add_combo(project / "matrix.yaml", base, new), combo=new))
        steps.append(Step("add", f"the grid plus new combo {new}", nox_argv(python, [*ids, new, "render"]),
                          env, project, new))
    if "naive" in phases:
        for combo in combos:
            files = [f"cases/{c}.py" for c in combo_cases(matrix, combo)]
            steps.append(Step("setup", f"{combo.id}: write the harness plan the cases' fixtures read",
                              action=lambda c=combo: write_naive_plan(matrix, c, layout), combo=combo.id))
            steps += naive_steps(combo, layout, files, venv_python, warm_pip)
    return steps


def copy_project(source: Path, dest: Path) -> None:
    """Copy the checkout's tracked and untracked-but-not-ignored files, without any cell results."""
    listed = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=source,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = source / rel
        if rel.startswith("results/cells/") or not src.is_file() or src.is_symlink():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)
    (dest / "results" / "cells").mkdir(parents=True, exist_ok=True)


def add_combo(matrix_path: Path, base: str, new: str) -> None:
    """Append a copy of combo ``base`` under id ``new`` to matrix.yaml (comments are not kept)."""
    import yaml

    data = yaml.safe_load(matrix_path.read_text(encoding="utf-8"))
    original = next(c for c in data["combos"] if c["id"] == base)
    copy = {**original, "id": new, "description": f"benchmark: a copy of {base} added to a cached grid"}
    data["combos"].append(copy)
    matrix_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def write_naive_plan(matrix, combo, layout: Layout) -> None:
    """The plan the harness plugin reads for its ``model`` fixture; no output file (nothing recorded)."""
    from ftcompat.config.plan import harness_plan

    home = layout.naive / combo.id
    home.mkdir(parents=True, exist_ok=True)
    plan = dataclasses.replace(harness_plan(matrix, combo, home / "unused.json", home / "work"), out=None)
    (home / "plan.json").write_text(json.dumps(plan.to_json(), indent=2), encoding="utf-8")


def run_steps(steps: list[Step], logs: Path, execute: Callable[[Step, Path], int] | None = None,
              clock: Callable[[], float] = time.monotonic, echo=print) -> list[Timing]:
    """Run the steps in order, each command's output in its own log; return the timed steps' timings."""
    execute = execute or _execute
    timings = []
    for n, step in enumerate(steps):
        if step.action is not None:
            step.action()
            continue
        log = logs / f"{n:03d}-{step.phase}.log"
        echo(f"{step.shown()}", flush=True)
        started = clock()
        rc = execute(step, log)
        seconds = clock() - started
        ok = rc in step.ok_codes
        if not ok:
            echo(f"  exit status {rc}; see {log}", flush=True)
        if step.timed:
            timings.append(Timing(step.phase, step.label, round(seconds, 2), rc, step.combo, ok))
            echo(f"  {seconds:.1f} s", flush=True)
    return timings


def _execute(step: Step, log: Path) -> int:
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **step.env}
    # nox picks its venv backend by finding uv on PATH: the one beside this interpreter.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    with log.open("w", encoding="utf-8") as fh:
        fh.write(step.shown() + "\n")
        fh.flush()
        return subprocess.run(step.argv, cwd=step.cwd, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode


def summarize(timings: list[Timing], add_base: str | None = None) -> dict:
    """Totals per phase, each combo's cold time, and the ratios the issue's targets are about."""
    totals: dict[str, float] = {}
    for t in timings:
        totals[t.phase] = round(totals.get(t.phase, 0.0) + t.seconds, 2)
    cold_by_combo = {t.combo: t.seconds for t in timings if t.phase == "cold" and t.combo}
    failed = [f"{t.phase}: {t.label} (exit {t.rc})" for t in timings if not t.ok]
    ratios = {}
    if totals.get("warm") and totals.get("naive"):
        ratios["naive_over_warm"] = round(totals["naive"] / totals["warm"], 2)
    if totals.get("cold") and totals.get("warm"):
        ratios["cold_over_warm"] = round(totals["cold"] / totals["warm"], 2)
    if totals.get("cold") and totals.get("naive"):
        ratios["naive_over_cold"] = round(totals["naive"] / totals["cold"], 2)
    base = add_base or next(iter(cold_by_combo), None)
    if totals.get("add") and base in cold_by_combo and cold_by_combo[base]:
        ratios["add_over_own_cold"] = round(totals["add"] / cold_by_combo[base], 2)
    targets = {}
    if "cached" in totals:
        targets["cached_under_30s"] = totals["cached"] < 30
    if "naive_over_warm" in ratios:
        targets["warm_3x_faster_than_naive"] = ratios["naive_over_warm"] >= 3
    return {"totals": totals, "cold_by_combo": cold_by_combo, "ratios": ratios, "targets": targets,
            "add_base": base if "add" in totals else None, "failed_steps": failed}


def machine_info() -> dict:
    """CPU model, cores and RAM of this machine, and the Python that ran the benchmark."""
    cpu, ram = platform.processor() or platform.machine(), None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:  # not Linux: keep what platform says
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "cores": cores, "ram_gib": ram, "os": platform.platform(),
            "python": platform.python_version()}


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds:.1f} s ({seconds / 60:.1f} min)"


def format_report(summary: dict, machine: dict, combos: list[str], notes: list[str] = ()) -> str:
    """The table the benchmark prints: each phase's time, its ratio to warm, and the targets."""
    from tabulate import tabulate

    totals, ratios = summary["totals"], summary["ratios"]
    warm = totals.get("warm")
    what = {"cold": "no envs, no results (nox per combo + render)",
            "warm": "envs present, every cell run again (FTCOMPAT_FORCE=1)",
            "cached": "the same grid again, cells reused",
            "add": f"cached grid + one new combo (a copy of {summary.get('add_base')})",
            "naive": "fresh venv + pip install per combo, one pytest process per case"}
    rows = [[p, what[p], _fmt(totals[p]), f"{totals[p] / warm:.2f}x" if warm else "-"]
            for p in PHASES if p in totals]
    lines = [f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram_gib']} GiB RAM "
             f"({machine['os']}, Python {machine['python']})",
             f"combos: {', '.join(combos)}", "",
             tabulate(rows, headers=["phase", "what", "time", "vs warm"]), ""]
    for cid, s in summary["cold_by_combo"].items():
        lines.append(f"cold time of {cid}: {_fmt(s)}")
    labels = {"naive_over_warm": "naive / warm (target >= 3)", "cold_over_warm": "cold / warm",
              "naive_over_cold": "naive / cold",
              "add_over_own_cold": "adding one combo / that combo's own cold time (target close to 1)"}
    for key, label in labels.items():
        if key in ratios:
            lines.append(f"{label}: {ratios[key]:.2f}")
    for key, ok in summary["targets"].items():
        lines.append(f"target {key}: {'met' if ok else 'NOT met'}")
    for failed in summary["failed_steps"]:
        lines.append(f"step failed: {failed}")
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    """The benchmark's command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--combos", nargs="+", metavar="GLOB", help="combo id globs (default: the default cpu grid)")
    p.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}")
    p.add_argument("--add-combo", metavar="ID", help="combo copied for the 'add one combo' phase (default: first)")
    p.add_argument("--scratch", type=Path, help="work folder (default /work/scratch/grid-benchmark/<time> "
                   "or $TMPDIR); must be on the same filesystem as uv's cache for hard links")
    p.add_argument("--cold-uv-cache", action="store_true", help="use an empty UV_CACHE_DIR in every phase")
    p.add_argument("--naive-cold-pip", action="store_true", help="do not warm pip's cache before the naive lane")
    p.add_argument("--venv-python", default=None, help="interpreter for the naive venvs (default python<combo's>)")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder afterwards")
    p.add_argument("--out", type=Path, help="results JSON (default benchmarks/results-<date>.json)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and run nothing")
    return p.parse_args(argv)


def default_scratch(now: dt.datetime) -> Path:
    """A fresh scratch folder; /work/scratch when it exists (same disk as uv's cache here)."""
    base = Path("/work/scratch") if Path("/work/scratch").is_dir() else Path(os.environ.get("TMPDIR", "/tmp"))
    return base / "grid-benchmark" / now.strftime("%Y%m%d-%H%M%S")


def main(argv=None) -> int:
    """Plan, run, summarise and record the benchmark."""
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from ftcompat.config.matrix import load

    phases = tuple(p.strip() for p in args.phases.split(",") if p.strip())
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        raise SystemExit(f"--phases: unknown phase(s) {', '.join(unknown)}; choose from {', '.join(PHASES)}")
    matrix = load(ROOT / "matrix.yaml")
    combos = select(matrix.combos, args.combos)
    ids = [c.id for c in combos]
    if args.add_combo and args.add_combo not in ids:
        raise SystemExit(f"--add-combo {args.add_combo}: not among the benchmarked combos ({', '.join(ids)})")
    now = dt.datetime.now()
    layout = Layout(args.scratch or default_scratch(now))
    venv_python = args.venv_python or f"python{combos[0].python}"
    steps = build_plan(matrix, combos, layout, venv_python=venv_python, phases=phases, add_base=args.add_combo,
                       cold_uv_cache=args.cold_uv_cache, warm_pip=not args.naive_cold_pip)
    notes = [f"uv's download cache: {'empty (--cold-uv-cache)' if args.cold_uv_cache else 'warm (as found)'}",
             f"pip's download cache for the naive lane: {'as found' if args.naive_cold_pip else 'warmed first'}"]
    if args.dry_run:
        print(f"scratch: {layout.scratch}\ncombos: {', '.join(ids)}")
        print("\n".join(s.shown() for s in steps))
        print("\n".join(f"note: {n}" for n in notes))
        return 0
    layout.scratch.mkdir(parents=True, exist_ok=False)
    started = time.monotonic()
    timings = run_steps(steps, layout.logs)
    summary = summarize(timings, args.add_combo)
    machine = machine_info()
    print()
    print(format_report(summary, machine, ids, notes))
    out = args.out or ROOT / "benchmarks" / f"results-{now.strftime('%Y-%m-%d')}.json"
    record = {"schema": "ftcompat-benchmark/1", "started_at": now.isoformat(timespec="seconds"),
              "wall_s": round(time.monotonic() - started, 1), "machine": machine, "combos": ids,
              "phases": list(phases), "notes": notes, "summary": summary,
              "steps": [dataclasses.asdict(t) for t in timings], "logs": str(layout.logs)}
    out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {out}")
    if not args.keep:  # the logs stay; the copies and environments go (disk)
        for name in ("project", "naive", "uv-cache"):
            shutil.rmtree(layout.scratch / name, ignore_errors=True)
    return 1 if summary["failed_steps"] else 0


if __name__ == "__main__":
    sys.exit(main())
