"""``ftcompat adhoc``, ``here``, ``disk`` and ``clean``: running outside the matrix, and the environments' disk."""

from __future__ import annotations

import json
from pathlib import Path

from ftcompat.cli.common import add_repair, add_source, repair_method, root_of
from ftcompat.config.matrix import load
from ftcompat.core.errors import MachineError, NotInstallable
from ftcompat.core.status import FAILING, NOT_CHECKED, Status
from ftcompat.env import disk, evict, uvcache
from ftcompat.env.inodes import human
from ftcompat.flows import adhoc, doctor, handoff, here
from ftcompat.results import render


def _shown(grid, out: Path) -> int:
    """Print a grid ftcompat just ran and where it went; pins that cannot install are exit 3 (NotInstallable)."""
    print(render.terminal(grid))
    print(f"\nwrote {out}")
    refused = [c for c in grid.cells if c.status == Status.NOT_INSTALLABLE]
    if refused:
        raise NotInstallable(f"{refused[0].combo}: {refused[0].signature}")
    return 0


def cmd_adhoc(args) -> int:
    """Run the cases on pins given on the command line (others: newest compatible) in a new env."""
    combo = adhoc.adhoc_combo(adhoc.parse_pins(args.pins), args.python, args.cases, args.floor, args.as_of, args.pre,
                              args.torch_backend)
    out = Path(args.out or f"results/adhoc/{combo.id}.json")
    grid = adhoc.flow(load(args.matrix), root_of(args.matrix), combo, out, repair=repair_method(args.repair),
                      yes=args.yes)
    return _shown(grid, out)


def cmd_handoff(args) -> int:
    """Make each handoff case's artifact in one environment (--from) and load it in another (--to)."""
    source = handoff.SideSpec("from", tuple(args.from_pins or ()), args.from_python, args.from_venv)
    dest = handoff.SideSpec("to", tuple(args.to_pins or ()), args.to_python, args.to_venv)
    out, grid = handoff.flow(load(args.matrix), root_of(args.matrix), source, dest, args.cases,
                             Path(args.out) if args.out else None, args.python, repair=repair_method(args.repair),
                             torch_backend=args.torch_backend, yes=args.yes)
    return _shown(grid, out)


def cmd_here(args) -> int:
    """Run the cases in an existing environment (this one, or --python/--venv) without changing it."""
    matrix, out = load(args.matrix), Path(args.out)
    combo, grid = here.flow(matrix, root_of(args.matrix), args.cases, out, args.python, args.venv)
    print(render.terminal(grid))
    print("\n".join(here_summary(matrix, combo, grid)))
    print(f"\nwrote {out}")
    return 0


def cmd_doctor(args) -> int:
    """Check that every module of an environment imports beside the others, and say what fixes one that does not."""
    found = doctor.flow(root_of(args.matrix), args.python, args.venv, args.verify, args.keep)
    if args.format == "json":
        print(json.dumps({"python": found.python, "health": found.health.to_json(), "fixed": found.fixed,
                          "advice": [{"root": a.defect.root, "modules": list(a.modules), "package": a.package,
                                      "change": a.change, "verified": a.verified, "kept": a.kept}
                                     for a in found.advice]}, indent=2, sort_keys=True))
    else:
        print("\n".join(doctor.report(found)))
    if found.health.error:
        raise MachineError(f"the health probe could not run in {found.python}: {found.health.error}")
    return 0 if found.ok else 1


def here_summary(matrix, combo, grid) -> list[str]:
    """The known issues an environment's versions fall in, with workarounds, and the cells that did not run."""
    hits = here.issues_affecting(matrix, dict(combo.pins))
    lines = ["", "Known issues that affect this environment's versions:" if hits else
             "No known issue in the registry matches this environment's versions."]
    for issue in hits:
        fix = f"\n    workaround: {issue.workaround}" if issue.workaround else ""
        lines.append(f"  - {issue.id}: {issue.summary}\n    {issue.url}{fix}")
    unrun = [c for c in grid.cells if c.status in NOT_CHECKED or (c.status in FAILING and c.status != Status.FAIL)]
    lines.append("" if unrun else "\nEvery cell ran to a verdict.")
    if unrun:
        lines.append("Cells that could not run to a verdict, and why:")
        lines += [f"  - {c.id.split('::', 1)[1]}: {c.status.value}: {c.signature or c.message or ''}".rstrip()
                  for c in unrun]
    return lines


def disk_table(rep: disk.Report, root: Path) -> str:
    """The ``ftcompat disk`` table: one row per env, then the total and uv's cache."""
    from tabulate import tabulate

    rows = [[disk.shown(root, e.path), e.kind, e.used_by, human(e.sizes.apparent), human(e.sizes.disk),
             human(e.sizes.own), human(e.sizes.shared_uv)] for e in rep.envs]
    rows.append(["total (hard links counted once)", "", f"{sum(e.orphan for e in rep.envs)} orphan(s)",
                 human(rep.total.apparent), human(rep.total.disk), human(rep.total.own),
                 human(rep.total.shared_uv)])
    if rep.uv_cache_sizes is not None:
        rows.append([f"uv cache: {rep.uv_cache}", "", "", human(rep.uv_cache_sizes.apparent),
                     human(rep.uv_cache_sizes.disk), "", ""])
    heads = ["environment", "kind", "used by", "apparent", "on disk", "own (freed if removed)",
             "shared with uv cache"]
    return tabulate(rows, headers=heads, disable_numparse=True)


def _disk_json(rep: disk.Report, root: Path) -> dict:

    return {"envs": [{"path": disk.shown(root, e.path), "kind": e.kind, "combo": e.combo, "used_by": e.used_by,
                      "note": e.note, **e.sizes.__dict__} for e in rep.envs],
            "total": rep.total.__dict__, "uv_cache": str(rep.uv_cache) if rep.uv_cache else None,
            "uv_cache_sizes": rep.uv_cache_sizes.__dict__ if rep.uv_cache_sizes else None,
            "uv_cache_prunable": dict(zip(("bytes", "entries"), uvcache.prunable(rep.uv_cache), strict=True)),
            "cap": evict.cap(root), "own_total": rep.total.own}


def _disk_summary(rep: disk.Report, root: Path, scanned_uv: bool) -> list[str]:

    lines = []
    if rep.total.shared_other:
        lines.append(f"{human(rep.total.shared_other)} of the total is hard-linked from outside these envs and "
                     "uv's cache")
    if rep.uv_cache_sizes is not None:
        together = rep.uv_cache_sizes.disk + rep.total.own + rep.total.shared_other
        lines.append(f"environments and uv's cache together: {human(together)} on disk")
    if rep.uv_cache is None and scanned_uv:
        lines.append("uv's cache: not found (no uv); 'shared with uv cache' counts nothing")
    elif rep.uv_cache is not None:
        size, entries = uvcache.prunable(rep.uv_cache)
        lines.append(f"`uv cache prune` would free about {human(size)} ({entries} dangling entries; "
                     "`ftcompat clean --prune-uv-cache` runs it)" if entries else "`uv cache prune` would free nothing")
    limit = evict.cap(root)
    lines.append(f"cap on what the environments hold of their own: {human(limit)} (FTCOMPAT_ENV_CAP); "
                 f"now {human(rep.total.own)}" if limit else "no cap on the environments (FTCOMPAT_ENV_CAP=0)")
    return lines


def cmd_disk(args) -> int:
    """Report disk use per environment ftcompat made and in total, uv's cache, and the cap."""
    root, matrix = root_of(args.matrix), load(args.matrix)
    rep = disk.report(root, matrix, uv_cache=not args.no_uv_cache)
    if args.format == "json":
        print(json.dumps(_disk_json(rep, root), indent=2))
        return 0
    print(disk_table(rep, root))
    print("\n".join(_disk_summary(rep, root, not args.no_uv_cache)))
    return 0


def cmd_clean(args) -> int:
    """Remove environments no combo in the config uses (--all: every one ftcompat made); print what it freed."""
    root, matrix = root_of(args.matrix), load(args.matrix)
    disk.clean(root, [c.id for c in matrix.combos], dry_run=args.dry_run, everything=args.all,
               config=Path(matrix.source).name)
    if args.prune_uv_cache:
        size, entries = uvcache.prunable(disk.uv_cache_dir())
        if args.dry_run:
            print(f"would run `uv cache prune`: about {human(size)} in {entries} dangling entries")
        elif uvcache.prune():
            raise MachineError("`uv cache prune` failed (its output is above); what clean removed stays removed")
    return 0


def register(sub) -> None:
    """Add ``adhoc``, ``here``, ``doctor``, ``disk`` and ``clean``."""
    p = sub.add_parser("adhoc", help=cmd_adhoc.__doc__)
    p.add_argument("pins", nargs="*", help="PACKAGE==VERSION pins, e.g. transformers==4.53.3 trl==0.19.1, or "
                                           "PACKAGE@GITREF for a branch, tag or commit (trl@main)")
    add_source(p)
    p.add_argument("--python", default="3.11", help="Python version for the env (default 3.11)")
    p.add_argument("--cases", nargs="+", default=["*"], help="case id globs (default: all)")
    p.add_argument("--out", help="grid JSON to write (default results/adhoc/<id>.json)")
    p.add_argument("--floor", action="store_true",
                   help="unpinned packages take the lowest versions the pins' metadata allows")
    p.add_argument("--as-of", metavar="DATE", help="resolve as a plain install would have on DATE")
    p.add_argument("--pre", action="store_true",
                   help="unpinned stack packages take their newest pre-release (rc, dev) where one is newer")
    add_repair(p)
    p.add_argument("--torch-backend", metavar="BUILD",
                   help="take torch's BUILD (cpu, cu126, rocm6.4, xpu, auto) from PyTorch's own index, through "
                        "uv's --torch-backend (default: PyPI's torch, the CUDA build on Linux, or a wheel your "
                        "find-links hold)")
    p.add_argument("--yes", action="store_true",
                   help="go on with a large download of torch's CUDA build on a machine without a GPU "
                        "(otherwise said first, exit 2)")
    p.set_defaults(func=cmd_adhoc)
    p = sub.add_parser("handoff", help=cmd_handoff.__doc__)
    for side, what in (("from", "the producer: the environment that trains and saves"),
                       ("to", "the consumer: the environment that loads and serves")):
        p.add_argument(f"--{side}", dest=f"{side}_pins", nargs="+", metavar="PIN",
                       help=f"{what}, as PACKAGE==VERSION pins (others: newest compatible), in an ad-hoc env")
        p.add_argument(f"--{side}-venv", metavar="DIR", help=f"{what}: an existing virtual environment "
                                                             "(nothing is installed or written inside it)")
        p.add_argument(f"--{side}-python", metavar="PATH", help=f"{what}: an existing interpreter (as --{side}-venv)")
    p.add_argument("--cases", nargs="+", default=["*"], help="handoff case id globs (default: all)")
    add_source(p)
    p.add_argument("--out", help="grid JSON to write (default results/handoff/<from>~<to>.json)")
    p.add_argument("--python", default="3.11", help="Python version of the ad-hoc sides (default 3.11)")
    p.add_argument("--torch-backend", metavar="BUILD", help="the ad-hoc sides' torch build, as for adhoc")
    add_repair(p)
    p.add_argument("--yes", action="store_true", help="go on with a large CUDA download, as for adhoc")
    p.set_defaults(func=cmd_handoff)
    p = sub.add_parser("here", help=cmd_here.__doc__)
    p.add_argument("--cases", nargs="+", default=["*"], help="case id globs (default: all)")
    p.add_argument("--out", default="results/current.json", help="grid JSON to write (default results/current.json)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--python", metavar="PATH", help="the interpreter of the environment to check (nothing is "
                                                        "installed into it; default: this one)")
    where.add_argument("--venv", metavar="DIR", help="the virtual environment to check (its bin/python)")
    p.set_defaults(func=cmd_here)
    p = sub.add_parser("doctor", help=cmd_doctor.__doc__)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--python", metavar="PATH", help="the interpreter of the environment to check (default: this "
                                                        "one); nothing inside its environment is changed")
    where.add_argument("--venv", metavar="DIR", help="the virtual environment to check (its bin/python)")
    p.add_argument("--verify", action="store_true",
                   help="check each fix in a copy of the environment (uv), finding the newest release that imports")
    p.add_argument("--keep", action="store_true", help="keep the copy --verify made (under .ftcompat/doctor/)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(func=cmd_doctor)
    p = sub.add_parser("disk", help=cmd_disk.__doc__)
    p.add_argument("--no-uv-cache", action="store_true",
                   help="do not scan uv's cache (faster; 'shared with uv cache' is then unknown)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_disk)
    p = sub.add_parser("clean", help=cmd_clean.__doc__)
    p.add_argument("--dry-run", action="store_true", help="say what would be removed and freed; remove nothing")
    p.add_argument("--all", action="store_true",
                   help="remove every environment ftcompat made, used or not (never results/ or uv's cache)")
    p.add_argument("--prune-uv-cache", action="store_true",
                   help="then run `uv cache prune`: drop uv's dangling cache entries (what `ftcompat disk` lists)")
    p.set_defaults(func=cmd_clean)
