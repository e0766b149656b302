"""Command line: validate the matrix, merge and render the grid."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ftcompat.config.cases import discover
from ftcompat.config.matrix import load, suggest
from ftcompat.core.errors import INTERRUPTED, FtcompatError, InputError, NoAnswer, NotInstallable
from ftcompat.results import grid as grid_mod
from ftcompat.results import page, render
from ftcompat.run import bisect_run, ciplan, disk
from ftcompat.triage.upstream import PROJECTS


def cmd_validate(args) -> int:
    """Validate matrix.yaml (and with --online, every pin against the index and the resolver)."""
    matrix = load(args.matrix)
    print(f"{args.matrix}: {len(matrix.combos)} combos, {len(matrix.models)} models, "
          f"{len(matrix.cases)} cases: {'valid; checking the pins online ...' if args.online else 'ok'}")
    if args.online:
        from ftcompat.run import preflight

        return preflight.validate_online(matrix)
    return 0


def cmd_render(args) -> int:
    """Merge results/cells into results/grid.json and render GRID.md and the terminal table."""
    from ftcompat.core.redact import redact
    from ftcompat.harness.cellfile import atomic_write
    from ftcompat.results import history
    from ftcompat.run import preflight

    matrix = load(args.matrix)
    results = Path(args.results)
    if not (results / "cells").is_dir():  # a typo must not render (and file in the history) an empty grid
        near = [p.name for p in results.parent.glob("*") if (p / "cells").is_dir()] if results.parent.is_dir() else []
        raise InputError(f"--results {args.results}: no {results / 'cells'} folder, so no combo has run there"
                         f"{suggest(results.name, near) if near else ''}; run `nox` (or a combo) first")
    preflight.check_writable(results)
    grid = grid_mod.merge(matrix, discover(Path(args.matrix).parent / "cases"), results / "cells")
    past = history.load_all(results / "history")
    grid = grid_mod.with_failing_since(grid, history.failing_since(grid.cells, grid.generated_at, past))
    grid_mod.save(grid, results / "grid.json")
    atomic_write(results / "GRID.md", render.markdown(grid))
    atomic_write(results / "index.html", redact(page.render_page(grid.to_dict())))
    print(render.terminal(grid))
    print(f"\nwrote {results / 'grid.json'}, {results / 'GRID.md'} and {results / 'index.html'}")
    if not args.no_history:
        print(f"kept a copy in {history.add(results / 'grid.json', Path(args.matrix), results / 'history')}")
    return 0


def cmd_diff(args) -> int:
    """Compare two grid JSON files: new failures, fixed, flaky flips, changes a moved release explains."""
    import json

    from ftcompat.results import diff

    old, new = (grid_mod.read_grid(p) for p in (args.old, args.new))
    result = diff.compare(old, new)
    print(diff.dumps(result) if args.format == "json" else diff.markdown(result))
    if args.issues:
        Path(args.issues).write_text(json.dumps(diff.issues(result), indent=2, sort_keys=True) + "\n",
                                     encoding="utf-8")
    return 0


def cmd_history(args) -> int:
    """Keep a grid in results/history/, or list the kept ones."""
    from ftcompat.results import history

    where = Path(args.history)
    if args.action == "add":
        grid_mod.read_grid(args.grid)  # a damaged grid must not enter the history
        print(history.add(Path(args.grid), Path(args.matrix), where))
        return 0
    paths = history.entries(where)
    if args.action == "latest":
        if not paths:
            raise NoAnswer(f"no grid kept in {where} yet")
        print(paths[-1])
        return 0
    print("\n".join(str(p) for p in paths) or f"no grid kept in {where} yet")
    return 0


def cmd_show(args) -> int:
    """Print an existing grid.json as a terminal table."""
    print(render.terminal(grid_mod.load(Path(args.grid))))
    return 0


def _root(matrix: str) -> Path:
    return Path(matrix).resolve().parent


def _matrix_path(given: str) -> str:
    """matrix.yaml here, else the one of the checkout ftcompat was installed from."""
    if Path(given).exists() or given != "matrix.yaml":
        return given
    checkout = Path(__file__).resolve().parents[3] / "matrix.yaml"
    return str(checkout) if checkout.exists() else given


def cmd_adhoc(args) -> int:
    """Run the cases on pins given on the command line (others: newest compatible) in a new env."""
    from ftcompat.run import adhoc

    pins = adhoc.parse_pins(args.pins)
    matrix = load(args.matrix)
    combo = adhoc.adhoc_combo(pins, args.python, args.cases, args.floor, args.as_of)
    out = Path(args.out or f"results/adhoc/{combo.id}.json")
    from ftcompat.run.preflight import check_writable

    check_writable(out.parent, hint="pass --out to write the grid elsewhere")
    grid = adhoc.run_adhoc(matrix, _root(args.matrix), combo, out)
    print(render.terminal(grid))
    print(f"\nwrote {out}")
    refused = [c for c in grid.cells if c["status"] == "not-installable"]
    if refused:
        raise NotInstallable(f"{combo.id}: {refused[0]['signature']}")
    return 0


def cmd_here(args) -> int:
    """Run the cases in the current environment, creating nothing, and list the known issues it has."""
    from ftcompat.run import adhoc

    matrix = load(args.matrix)
    combo = adhoc.current_combo(args.cases)
    out = Path(args.out)
    grid = adhoc.run_here(matrix, _root(args.matrix), combo, out)
    print(render.terminal(grid))
    hits = adhoc.issues_affecting(matrix, dict(combo.pins))
    print("\nKnown issues that affect this environment's versions:" if hits else
          "\nNo known issue in the registry matches this environment's versions.")
    for issue in hits:
        fix = f"\n    workaround: {issue.workaround}" if issue.workaround else ""
        print(f"  - {issue.id}: {issue.summary}\n    {issue.url}{fix}")
    print(f"\nwrote {out}")
    return 0


def cmd_pins(args) -> int:
    """Pick the newest combo whose selected cases all pass; write constraints and a requirements snippet."""
    from ftcompat.triage import pins

    grid = grid_mod.load(Path(args.grid))
    pins.check_selectors(grid, args.cases, args.grid)  # refuse a typo before anything is written
    answer = pins.safe_pins(grid, args.cases, args.allow_known)
    report = pins.report_text(answer)
    print(report)
    out = Path(args.out)
    if answer.pick is None:
        # Nothing is written: the folder keeps its last answer whole rather than half of a new one.
        raise NoAnswer(f"no combo qualifies; nothing written to {out} (its files, if any, are an earlier answer)")
    pins.write_all(out, {"constraints.txt": pins.constraints_text(answer),
                         "requirements.txt": pins.requirements_text(answer), "PINS.md": report})
    print(f"wrote {out / 'constraints.txt'} (use: pip install -c {out / 'constraints.txt'} ...), "
          f"{out / 'requirements.txt'} and {out / 'PINS.md'}")
    return 0


def cmd_report(args) -> int:
    """Write an upstream bug report (Markdown + standalone repro.py) for one failing cell."""
    from ftcompat.triage import report

    out = Path(args.out or report.REPORTS / report.slug(args.cell))
    # Paths as given (relative to where it runs), so report.json means the same in any checkout.
    meta = {"cell": args.cell, "grid": args.grid, "matrix": args.matrix, "out": str(out),
            "bisection": args.bisect, "project": args.project}
    report.generate(meta, run=args.run)
    print(f"wrote {out / 'REPORT.md'} and {out / 'repro.py'} (run it: uv run {out / 'repro.py'})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for ``ftcompat``."""
    parser = argparse.ArgumentParser(prog="ftcompat", description=__doc__)
    parser.add_argument("--matrix", default="matrix.yaml", help="matrix file (default: matrix.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("validate", help=cmd_validate.__doc__)
    p.add_argument("--online", action="store_true",
                   help="also check every pin is on the package index and each combo resolves (uv; installs nothing)")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("render", help=cmd_render.__doc__)
    p.add_argument("--results", default="results")
    p.add_argument("--no-history", action="store_true", help="do not keep a copy in <results>/history/")
    p.set_defaults(func=cmd_render)
    p = sub.add_parser("adhoc", help=cmd_adhoc.__doc__)
    p.add_argument("pins", nargs="*", help="PACKAGE==VERSION pins, e.g. transformers==4.53.3 trl==0.19.1")
    p.add_argument("--python", default="3.11", help="Python version for the env (default 3.11)")
    p.add_argument("--cases", nargs="+", default=["*"], help="case id globs (default: all)")
    p.add_argument("--out", help="grid JSON to write (default results/adhoc/<id>.json)")
    p.add_argument("--floor", action="store_true",
                   help="unpinned packages take the lowest versions the pins' metadata allows")
    p.add_argument("--as-of", metavar="DATE", help="resolve as a plain install would have on DATE")
    p.set_defaults(func=cmd_adhoc)
    p = sub.add_parser("here", help=cmd_here.__doc__)
    p.add_argument("--cases", nargs="+", default=["*"], help="case id globs (default: all)")
    p.add_argument("--out", default="ftcompat-current.json", help="grid JSON to write")
    p.set_defaults(func=cmd_here)
    p = sub.add_parser("pins", help=cmd_pins.__doc__)
    p.add_argument("--grid", default="results/grid.json", help="grid JSON to read")
    p.add_argument("--cases", nargs="+", default=["*"],
                   help="cases that must pass: case ids or case[variant@model] globs (default: all)")
    p.add_argument("--allow-known", action="store_true",
                   help="tolerate failures a known issue explains (default: they disqualify a combo)")
    p.add_argument("--out", default="results/pins", help="folder for constraints.txt, requirements.txt, PINS.md")
    p.set_defaults(func=cmd_pins)
    p = sub.add_parser("report", help=cmd_report.__doc__)
    p.add_argument("cell", help="a failing cell id, e.g. 'tf4.54-trl0.20::phi3_generate[remote_seen_tokens@tiny-phi3]'")
    p.add_argument("--grid", default="results/grid.json", help="grid JSON the cell is in")
    p.add_argument("--out", help="folder for REPORT.md and repro.py (default results/reports/<cell>)")
    p.add_argument("--bisect", help="a bisection JSON (ftcompat bisect) whose first bad release to report")
    p.add_argument("--project", choices=sorted(PROJECTS),
                   help="the tracker to write for (default: the project whose code raised)")
    p.add_argument("--run", action="store_true",
                   help="run repro.py with uv in an empty folder and put its output in the report")
    p.set_defaults(func=cmd_report)
    bisect_run.add_parser(sub)
    ciplan.add_parser(sub)
    page.add_parser(sub)
    disk.add_parser(sub)
    p = sub.add_parser("diff", help=cmd_diff.__doc__)
    p.add_argument("old", help="the earlier grid JSON (e.g. `ftcompat history latest`)")
    p.add_argument("new", help="the later grid JSON")
    p.add_argument("--format", choices=["md", "json"], default="md")
    p.add_argument("--issues", metavar="FILE", help="write one regression-issue payload per new failure (JSON)")
    p.set_defaults(func=cmd_diff)
    p = sub.add_parser("history", help=cmd_history.__doc__)
    p.add_argument("action", choices=["add", "latest", "list"])
    p.add_argument("grid", nargs="?", default="results/grid.json", help="grid to add (default results/grid.json)")
    p.add_argument("--history", default="results/history", help="history folder")
    p.set_defaults(func=cmd_history)
    p = sub.add_parser("show", help=cmd_show.__doc__)
    p.add_argument("grid", nargs="?", default="results/grid.json")
    p.set_defaults(func=cmd_show)
    return parser


def main(argv=None) -> int:
    """Entry point for the ``ftcompat`` command: one message and a documented exit code per kind of error."""
    args = build_parser().parse_args(argv)
    args.matrix = _matrix_path(args.matrix)
    try:
        return args.func(args)
    except FtcompatError as exc:  # errors.py: the code says what kind; the message, where and what
        print(f"ftcompat {args.command}: {exc}", file=sys.stderr)
        return exc.return_code
    except KeyboardInterrupt:
        print(f"ftcompat {args.command}: interrupted; finished cells are kept, run the same command to resume",
              file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
