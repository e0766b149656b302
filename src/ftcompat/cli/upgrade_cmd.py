"""``ftcompat upgrade``: what breaks if this environment moves to a target, and how to keep it green."""

from __future__ import annotations

from pathlib import Path

from ftcompat.cli.common import root_of
from ftcompat.config.matrix import load
from ftcompat.core.errors import InputError, NoAnswer
from ftcompat.env import target
from ftcompat.flows import here, upgrade
from ftcompat.results import grid as grid_mod
from ftcompat.results import gridload
from ftcompat.triage import upgradeplan


def _before(args, matrix, root: Path, cases):
    """The current environment's one-row grid: read (--from) or run now in --python/--venv."""

    if args.from_grid:
        grid = gridload.load(args.from_grid)
        if len(grid.combos) != 1:
            raise InputError(f"--from {args.from_grid}: expected the one-row grid `ftcompat here` writes, "
                             f"found {len(grid.combos)} combos")
        return grid
    if not (args.python or args.venv):
        raise InputError("say which environment to upgrade: --python PATH, --venv DIR, or --from a grid "
                         "`ftcompat here` wrote")
    python = target.interpreter(args.python, args.venv)
    described = target.describe(python, root)
    env = target.environment(python, root, described["python"])
    combo = here.current_combo(cases, described)
    return here.run_here(matrix, root, combo, Path(args.out) / "current.json", python=str(python), env=env)


def cmd_upgrade(args) -> int:
    """Run the cases on a target (--to trl==0.24.0, or --to latest) and report flips, known issues and fixes."""

    latest, to = upgradeplan.parse_targets(args.to)
    matrix, root = load(args.matrix), root_of(args.matrix)
    cases = tuple(dict.fromkeys(s.split("[", 1)[0] for s in args.cases))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    before = _before(args, matrix, root, cases)
    result = upgrade.run(matrix, root, before, to, latest, args.cases, args.max_envs)
    text = "\n".join(upgrade.report(result, to, latest)) + "\n"
    print(text)
    (out / "UPGRADE.md").write_text(text, encoding="utf-8")
    if result.target_grid is not None:
        grid_mod.save(result.target_grid, out / "target.json")
    if not args.from_grid:
        grid_mod.save(before, out / "current.json")
    print(f"wrote {out / 'UPGRADE.md'} and {out / 'target.json'}")
    if not result.green and result.extra is None:
        raise NoAnswer("no set of extra pins keeps every selected cell green with the target; see UPGRADE.md")
    return 0


def register(sub) -> None:
    """Add ``upgrade``."""
    p = sub.add_parser("upgrade", help=cmd_upgrade.__doc__)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--python", metavar="PATH", help="the current environment's interpreter (nothing is "
                                                        "installed into it)")
    where.add_argument("--venv", metavar="DIR", help="the current environment (its bin/python)")
    where.add_argument("--from", dest="from_grid", metavar="GRID", help="the grid `ftcompat here` wrote for it")
    p.add_argument("--to", nargs="+", required=True, metavar="PIN",
                   help="`latest`, or exact pins of stack packages, e.g. trl==0.24.0")
    p.add_argument("--cases", nargs="+", default=["*"], help="cases that must keep passing (default: all)")
    p.add_argument("--max-envs", type=int, default=4, help="environments the search for extra pins may build")
    p.add_argument("--out", default="results/upgrade", help="folder for UPGRADE.md and the grids")
    p.set_defaults(func=cmd_upgrade)
