"""``ftcompat upgrade``: what breaks if this environment moves to a target, and how to keep it green."""

from __future__ import annotations

from pathlib import Path

from ftcompat.cli.common import root_of
from ftcompat.config.matrix import load
from ftcompat.core.errors import NoAnswer
from ftcompat.flows import handoff, upgrade
from ftcompat.triage import upgradeplan


def cmd_upgrade(args) -> int:
    """Run the cases on a target (--to trl==0.24.0, or --to latest) and report flips, known issues and fixes."""
    latest, to = upgradeplan.parse_targets(args.to)
    matrix, root = load(args.matrix), root_of(args.matrix)
    cases = tuple(dict.fromkeys(s.split("[", 1)[0] for s in args.cases))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    before = upgrade.current_grid(matrix, root, cases, args.from_grid, args.python, args.venv, out)
    # The environment itself (not a grid of it) can also save what the target must load: the handoff cases.
    current = handoff.SideSpec("from", python=args.python, venv=args.venv) if not args.from_grid else None
    written = upgrade.flow(matrix, root, before, to, latest, args.cases, args.max_envs, out, not args.from_grid,
                           current)
    print(written.text)
    print(f"wrote {', '.join(map(str, written.files))}")
    if not written.result.green and written.result.extra is None:
        handoff_broke = set(written.result.regressions) & set(written.result.handoff)
        raise NoAnswer("the target fails cells that passed before, and no set of extra pins keeps them green"
                       + (" (it cannot load what the current environment saves)" if handoff_broke else "")
                       + "; see UPGRADE.md")
    if written.result.green:
        print("no regressions" + (f" ({len(written.result.both)} selected cell(s) fail on both sides, listed apart)"
                                  if written.result.both else ""))
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
