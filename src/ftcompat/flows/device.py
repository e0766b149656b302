"""The device check: the CUDA side of the cases that emulate CUDA on CPU, in one short run on a lent GPU.

The lent machine has torch, transformers, peft and accelerate, no network, and takes at most 64 MiB
with it. So: here, with PyPI, ``prepare`` downloads the wheels it lacks (bitsandbytes, each TRL the
``device`` combos pin, and what TRL needs that the image has not) into ``.ftcompat/device-check/``.
There, ``run`` records the device's own versions, unpacks the carried wheels offline into one
folder per combo (the device's packages stay untouched; the folder goes first on ``PYTHONPATH``),
runs each ``device`` combo of matrix.yaml through the normal harness, and writes
``results/gpu/<combo>.json``, which ``ftcompat render`` merges like any combo's cells. ``plan``
prints all of that, and the time it should take, without doing it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ftcompat.config import plan
from ftcompat.config.cases import CaseFile
from ftcompat.core.domain import Combo, Matrix
from ftcompat.core.errors import InputError, MachineError
from ftcompat.core.status import NOT_CHECKED
from ftcompat.env.device import HOME, WHEELS, DeviceSite, dist_of, wheel_files
from ftcompat.results.grid import Grid
from ftcompat.runner import run as runner

DEVICE_TAG = "device"
DEVICE_PYTHON = "3.12"  # the lent machine's python3 (KINDS.md: 3.12.3)
OUT = Path("results/gpu")
CARRY_LIMIT = 64 * 2**20  # what one device run takes with it, the working tree included
COMMAND_LIMIT_S = 600  # one device command
BUDGET_S = 900  # a session's device time, the machine's start and every call included
# The device image has no datasets (TRL imports it) and so none of its two pure-Python helpers; the
# rest of what datasets needs (pyarrow, pandas, xxhash, fsspec) is in the image.
SUPPORT = ("datasets==5.2.0", "dill==0.4.1", "multiprocess==0.70.19")
# Seconds the device spends that are not cases: the machine's start, the offline installs, and each
# combo's pytest start-up (xdist workers importing torch).
START_S, INSTALL_S, COMBO_S, CELL_FLOOR_S = 180, 20, 30, 5
# xdist workers there: 16 cores and one H200 hold eight tiny-model cases at once with room to spare.
DEVICE_WORKERS = 8


@dataclass(frozen=True)
class Step:
    """One device combo: what it installs over the device's packages, and the cells it runs."""

    combo: Combo
    requirements: tuple[str, ...]
    cells: tuple[str, ...]
    estimate_s: float


def device_combos(matrix: Matrix) -> list[Combo]:
    """The combos the device check runs: those tagged ``device``, in matrix order."""
    combos = [c for c in matrix.environments if DEVICE_TAG in c.tags]
    if not combos:
        raise InputError(f"{matrix.source}: no combo is tagged {DEVICE_TAG!r}; the device check has nothing to run")
    return combos


def requirements(combo: Combo) -> tuple[str, ...]:
    """What a combo installs over the device's own packages: its pinned versions, then SUPPORT."""
    pinned = tuple(f"{pkg}=={ver}" for pkg, ver in combo.pins.items() if ver is not None)
    return pinned + SUPPORT


def steps(matrix: Matrix, cases: dict[str, CaseFile], durations: dict[str, float]) -> list[Step]:
    """The device check's plan: each device combo, its requirements, cells and estimated seconds.

    A cell's estimate is the median CPU duration of its column in ``durations`` (the GPU is not
    slower on a tiny model), at least ``CELL_FLOOR_S``; ``DEVICE_WORKERS`` run at once.
    """
    out = []
    for combo in device_combos(matrix):
        cells = plan.planned_cells(matrix, combo, cases)
        each = [max(durations.get(c.column, 0.0), CELL_FLOOR_S) for c in cells]
        est = COMBO_S + max(max(each, default=0.0), sum(each) / DEVICE_WORKERS)
        out.append(Step(combo, requirements(combo), tuple(c.id for c in cells), est))
    return out


def column_durations(grid: Grid) -> dict[str, float]:
    """The median duration of each column over the cells of a grid that ran (not skipped)."""
    import statistics

    took: dict[str, list[float]] = {}
    for cell in grid.cells:
        if cell.status not in NOT_CHECKED:
            took.setdefault(cell.column, []).append(cell.duration_s or 0.0)
    return {col: statistics.median(v) for col, v in took.items()}


def tree_bytes(root: Path) -> int:
    """The size of what a device run sends besides the carried folder: git's tracked and untracked files."""
    try:
        listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return 0
    paths = (root / p for p in listed.decode().split("\0") if p)
    return sum(p.stat().st_size for p in paths if p.is_file())


def plan_text(steps_: list[Step], wheels: list[Path], tree: int) -> str:
    """What ``plan`` prints: the carry and its size, each combo's cells, the time, the command."""
    lines = ["device check plan", "", "carries (.ftcompat/device-check, named in the run's carry):"]
    wanted = sorted({r for s in steps_ for r in s.requirements})
    have = {dist_of(w): w for w in wheels}
    for req in wanted:
        w = have.get(req)
        lines.append(f"  {req:28} {_mb(w.stat().st_size) if w else 'missing: run scripts/device-check prepare'}")
    carried = sum(w.stat().st_size for w in wheels)
    total = carried + tree
    verdict = "fits" if total <= CARRY_LIMIT else "DOES NOT FIT"
    lines += [f"  wheels {_mb(carried)} + working tree {_mb(tree)} = {_mb(total)} of {_mb(CARRY_LIMIT)}: {verdict}",
              "", "runs (on the device's own torch, transformers, peft and accelerate):"]
    for s in steps_:
        pins = ", ".join(r for r in s.requirements if r.split("==")[0] in s.combo.pins)
        lines.append(f"  {s.combo.id} ({pins}): {len(s.cells)} cells, ~{s.estimate_s / 60:.1f} min")
        lines += [f"    {cid.split('::', 1)[1]}" for cid in s.cells]
    total_s = START_S + INSTALL_S * len(steps_) + sum(s.estimate_s for s in steps_)
    run_s = total_s - START_S
    rerun = "leaves room for one rerun on the warm machine" if total_s + run_s <= BUDGET_S else "NO room for a rerun"
    lines += ["", f"estimated device time: ~{total_s / 60:.1f} min (start ~{START_S // 60} min, "
              f"installs and cases ~{run_s / 60:.1f} min) of the session's {BUDGET_S // 60}: {rerun}; "
              f"one command may run {COMMAND_LIMIT_S // 60} min",
              "", "start it with the device tool:",
              f'  run(command="scripts/device-check run", carry=["{HOME}"], timeout_s={timeout_for(run_s)})',
              f"then copy the returned files into {OUT}/ and run `ftcompat render`."]
    return "\n".join(lines)


def timeout_for(run_s: float) -> int:
    """The command's time limit: the estimate and half again, within one command's limit."""
    return int(min(COMMAND_LIMIT_S, max(120, 1.5 * run_s)))


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def download_wheels(steps_: list[Step], wheels: Path = WHEELS, python: str = sys.executable) -> list[Path]:
    """Download every wheel the steps need, for the device's Linux x86-64, without dependencies."""
    wheels.mkdir(parents=True, exist_ok=True)
    # pip takes each --platform literally; these are the tags the device's glibc accepts.
    platforms = [a for tag in ("manylinux_2_28_x86_64", "manylinux_2_24_x86_64", "manylinux2014_x86_64")
                 for a in ("--platform", tag)]
    for req in sorted({r for s in steps_ for r in s.requirements}):
        if any(dist_of(w) == req for w in wheel_files(wheels)):
            continue
        done = subprocess.run([python, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                               *platforms, "--python-version", DEVICE_PYTHON, "-d", str(wheels), req],
                              capture_output=True, text=True)
        if done.returncode:
            raise MachineError(f"pip download {req} failed: {_last_line(done.stderr)}")
    return wheel_files(wheels)


def _last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("WARNING")]
    return lines[-1] if lines else "no output"


def versions_probe() -> str:
    """Python source printing the interpreter's stack versions and device as JSON (run in the device's python)."""
    return (
        "import json, importlib.metadata as m, platform\n"
        "def v(p):\n"
        "    try: return m.version(p)\n"
        "    except m.PackageNotFoundError: return None\n"
        "import torch\n"
        "print(json.dumps({'python': platform.python_version(), 'cuda': torch.version.cuda,\n"
        "  'device': torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,\n"
        "  'versions': {p: v(p) for p in ('torch', 'transformers', 'trl', 'peft', 'bitsandbytes',\n"
        "  'accelerate', 'datasets', 'tokenizers', 'huggingface_hub', 'safetensors', 'numpy', 'pyarrow',\n"
        "  'pytest', 'pytest-xdist')}}, sort_keys=True))\n"
    )


def probe_device(python: str, env: dict | None = None) -> dict:
    """The interpreter's own versions and CUDA device, read before anything is installed."""
    probe = subprocess.run([python, "-c", versions_probe()], capture_output=True, text=True, env=env)
    if probe.returncode:
        raise MachineError(f"could not read the device's versions with {python}: {_last_line(probe.stderr)}")
    return json.loads(probe.stdout)


def write_device(found: dict, out: Path) -> Path:
    """``out/device.json``: what the device had, beside the cells run on it."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "device.json"
    path.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    return path


def run_all(root: Path, matrix: Matrix, cases: dict[str, CaseFile], steps_: list[Step], out: Path,
            log: Callable[[str], None] = print, python: str = sys.executable) -> list[Path]:
    """Run each step's cells on the device site (its wheels unpacked beside the device's packages); return the files."""
    written = []
    workers = int(os.environ.get("FTCOMPAT_WORKERS") or DEVICE_WORKERS)
    for step in steps_:
        site = DeviceSite(root, step.combo, step.requirements, (root / HOME / "site" / step.combo.id).resolve(),
                          python, os.environ.get("PYTHONPATH", ""), workers)
        cell_file = out / f"{step.combo.id}.json"
        runner.run(site, runner.Job(root, matrix, cases, (cell_file,)), log)
        written.append(cell_file)
    return written


def hand_back(files: list[Path], dest: str | None) -> list[Path]:
    """Copy the written files into the device tool's $OUT, the only folder that comes back."""
    if not dest:
        return []
    Path(dest).mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(f, Path(dest) / f.name)) for f in files if f.is_file()]
