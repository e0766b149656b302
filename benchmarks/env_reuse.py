"""What a second ad-hoc environment costs when it differs from a cached one only in trl.

Usage (from the repository root, with the interpreter ftcompat is installed in):

    python benchmarks/env_reuse.py --dry-run                  # the plan; runs nothing
    python benchmarks/env_reuse.py                            # trl 0.19.1, then 0.20.0, then the old way
    python benchmarks/env_reuse.py --first trl==0.19.1 --second trl==0.20.0 --no-baseline

It builds the environments ``ftcompat adhoc`` would for the two pin sets (every other stack package
unpinned, so resolved to the newest releases: for torch, a CUDA build of several GB from PyPI), the
way ``ftcompat adhoc`` builds them (``build.install``: resolve to a lock, check the space, sync),
and measures for each build the seconds, the bytes added to uv's cache, the bytes taken from the
disk and the environment's own bytes (what removing it frees). The baseline builds the second one
again the way ftcompat did before, ``uv pip install --upgrade``, which in uv implies ``--refresh``
and re-downloads and re-unpacks every wheel (astral-sh/uv#5943); ``--prune`` then runs
``uv cache prune`` to give that space back.

Environments go under /work/scratch/env-reuse/<time> (else $TMPDIR), on the same disk as uv's
cache so they are hard-linked as in real use; the checkout is not touched. Results are written to
benchmarks/env-reuse-<date>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from ftcompat.env import build, inodes, installer, uvcache  # noqa: E402
from ftcompat.env.venv import make_venv  # noqa: E402
from ftcompat.flows import adhoc  # noqa: E402

MB = 1e6


def cache_bytes(cache: Path | None) -> int:
    """Bytes uv's cache occupies on disk, each inode once."""
    return inodes.measure(inodes.scan(cache), set()).disk if cache else 0


def free_bytes(path: Path) -> int:
    """Free bytes on the disk of ``path``."""
    return shutil.disk_usage(path).free


def own_bytes(venv: Path, cache: Path | None) -> int:
    """What the environment holds of its own: not hard-linked from uv's cache."""
    return inodes.measure(inodes.scan(venv), inodes.inode_set(cache)).own


def measure_build(label: str, pins: list[str], where: Path, cache: Path | None, upgrade: bool = False) -> dict:
    """Build one ad-hoc environment and measure it."""
    combo = adhoc.adhoc_combo(adhoc.parse_pins(pins), f"{sys.version_info.major}.{sys.version_info.minor}")
    venv = where / f"{label}-{combo.id}" / "venv"
    make_venv(venv, combo.python)
    before_cache, before_free, started = cache_bytes(cache), free_bytes(where), time.monotonic()
    if upgrade:  # the old way: one `uv pip install --upgrade` of the requirements
        uv = installer.find_uv()
        env = dict(os.environ)
        installer.run([uv, "pip", "install", "--python", str(venv / "bin" / "python"), "--upgrade",
                       *installer.index_args(env, "uv"), *build.requirements(combo)], env, log=print)
        installer.run([uv, "pip", "install", "--python", str(venv / "bin" / "python"), "--no-deps", "-e",
                       str(ROOT)], env, log=print)
        lock = ()
    else:
        lock = build.install(venv, combo, ROOT, log=lambda line: print(f"  {line}"[:200])).lock
    seconds = time.monotonic() - started
    got = {"label": label, "pins": pins, "seconds": round(seconds, 1),
           "uv_cache_added_mb": round((cache_bytes(cache) - before_cache) / MB, 1),
           "disk_taken_mb": round((before_free - free_bytes(where)) / MB, 1),
           "env_own_mb": round(own_bytes(venv, cache) / MB, 1),
           "torch": next((x.split("==")[1] for x in lock if x.startswith("torch==")), None),
           "packages": len(lock) or None}
    print(f"{label}: {got['seconds']} s, uv cache +{got['uv_cache_added_mb']} MB, disk -{got['disk_taken_mb']} MB, "
          f"env's own {got['env_own_mb']} MB")
    return got


def machine() -> dict:
    """The machine the figures come from."""
    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    uv = installer.find_uv()
    uv_version = subprocess.run([uv, "--version"], capture_output=True, text=True).stdout.strip() if uv else None
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "uv": uv_version,
            "platform": platform.platform(terse=True)}


def main(argv=None) -> int:
    """Run the benchmark and write its JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--first", nargs="+", default=["trl==0.19.1"])
    p.add_argument("--second", nargs="+", default=["trl==0.20.0"])
    p.add_argument("--no-baseline", action="store_true", help="skip the old `uv pip install --upgrade` build")
    p.add_argument("--prune", action="store_true", help="run `uv cache prune` at the end")
    p.add_argument("--keep", action="store_true", help="keep the environments")
    p.add_argument("--dry-run", action="store_true")
    args = p.parse_args(argv)
    base = Path("/work/scratch") if Path("/work/scratch").parent.is_dir() else Path(tempfile.gettempdir())
    where = base / "env-reuse" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    plan = [("first", args.first, False), ("second", args.second, False)]
    if not args.no_baseline:
        plan.append(("second-with-upgrade", args.second, True))
    if args.dry_run:
        for label, pins, upgrade in plan:
            print(f"{label}: {' '.join(pins)} ({'uv pip install --upgrade' if upgrade else 'build.install'}) "
                  f"under {where}")
        return 0
    where.mkdir(parents=True)
    cache = uvcache.cache_dir()
    print(f"uv's cache: {cache}; environments under {where}")
    runs = [measure_build(label, pins, where, cache, upgrade) for label, pins, upgrade in plan]
    prunable_mb = round(uvcache.prunable(cache)[0] / MB, 1)
    print(f"`uv cache prune` would now free about {prunable_mb} MB")
    if args.prune:
        uvcache.prune()
    if not args.keep:
        shutil.rmtree(where)
    out = ROOT / "benchmarks" / f"env-reuse-{dt.date.today().isoformat()}.json"
    doc = {"schema": "ftcompat-env-reuse/1", "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "machine": machine(), "runs": runs, "prunable_after_mb": prunable_mb}
    out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
