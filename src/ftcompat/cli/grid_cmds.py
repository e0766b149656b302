"""``ftcompat render``, ``show``, ``page``, ``diff`` and ``history``: the grid, merged, drawn and compared."""

from __future__ import annotations

import json
from pathlib import Path

from ftcompat.cli.common import root_of
from ftcompat.core.cellfile import atomic_write
from ftcompat.core.errors import InputError, NoAnswer
from ftcompat.core.hints import suggest
from ftcompat.core.redact import redact
from ftcompat.flows import render as render_flow
from ftcompat.results import diff, gridload, history, page, render


def _cells_dir(results: Path, given: str) -> Path:
    """results/cells, or InputError: a typo must not render (and file in the history) an empty grid."""
    if (results / "cells").is_dir():
        return results / "cells"
    near = [p.name for p in results.parent.glob("*") if (p / "cells").is_dir()] if results.parent.is_dir() else []
    raise InputError(f"--results {given}: no {results / 'cells'} folder, so no combo has run there"
                     f"{suggest(results.name, near) if near else ''}; run `nox` (or a combo) first")


def cmd_render(args) -> int:
    """Merge results/cells into results/grid.json and render GRID.md and the terminal table."""
    results = Path(args.results)
    _cells_dir(results, args.results)
    state = render_flow.flow(root_of(args.matrix), Path(args.matrix), results, not args.no_history)
    assert state.grid is not None  # GRID's stages never stop early
    print(render.terminal(state.grid))
    grid_json, grid_md, index, *kept = state.written
    print(f"\nwrote {grid_json}, {grid_md} and {index}")
    if kept:
        print(f"kept a copy in {kept[0]}")
    return 0


def cmd_show(args) -> int:
    """Print an existing grid.json as a terminal table."""
    print(render.terminal(gridload.load(args.grid)))
    return 0


def cmd_page(args) -> int:
    """Write the grid as one self-contained HTML page (results/index.html)."""
    grid = gridload.load(args.grid)
    out = Path(args.out)
    atomic_write(out, redact(page.render_page(grid)))
    print(f"wrote {out} (open it in a browser; it needs no server)")
    return 0


def cmd_diff(args) -> int:
    """Compare two grid JSON files: new failures, fixed, flaky flips, changes a moved release explains."""
    old, new = (gridload.load(p) for p in (args.old, args.new))
    result = diff.compare(old, new)
    print(diff.dumps(result) if args.format == "json" else diff.markdown(result))
    if args.issues:
        Path(args.issues).write_text(json.dumps(diff.issues(result), indent=2, sort_keys=True) + "\n",
                                     encoding="utf-8")
    return 0


def cmd_history(args) -> int:
    """Keep a grid in results/history/, or list the kept ones."""
    where = Path(args.history)
    if args.action == "add":
        gridload.load(args.grid)  # a damaged grid must not enter the history
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


def register(sub) -> None:
    """Add ``render``, ``show``, ``page``, ``diff`` and ``history``."""
    p = sub.add_parser("render", help=cmd_render.__doc__)
    p.add_argument("--results", default="results")
    p.add_argument("--no-history", action="store_true", help="do not keep a copy in <results>/history/")
    p.set_defaults(func=cmd_render)
    p = sub.add_parser("show", help=cmd_show.__doc__)
    p.add_argument("grid", nargs="?", default="results/grid.json")
    p.set_defaults(func=cmd_show)
    p = sub.add_parser("page", help=cmd_page.__doc__)
    p.add_argument("--grid", default="results/grid.json", help="grid JSON to read (default results/grid.json)")
    p.add_argument("--out", default="results/index.html", help="HTML file to write (default results/index.html)")
    p.set_defaults(func=cmd_page)
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
