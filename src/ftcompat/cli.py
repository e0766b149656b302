"""Command line: validate the matrix, merge and render the grid."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ftcompat import grid as grid_mod
from ftcompat import render
from ftcompat.cases import discover
from ftcompat.matrix import MatrixError, load


def cmd_validate(args) -> int:
    """Validate matrix.yaml and list its combos."""
    matrix = load(args.matrix)
    print(f"{args.matrix}: {len(matrix.combos)} combos, {len(matrix.models)} models, "
          f"{len(matrix.cases)} cases: ok")
    return 0


def cmd_render(args) -> int:
    """Merge results/cells into results/grid.json and render GRID.md and the terminal table."""
    matrix = load(args.matrix)
    results = Path(args.results)
    grid = grid_mod.merge(matrix, discover(Path(args.matrix).parent / "cases"), results / "cells")
    grid_mod.save(grid, results / "grid.json")
    (results / "GRID.md").write_text(render.markdown(grid), encoding="utf-8")
    print(render.terminal(grid))
    print(f"\nwrote {results / 'grid.json'} and {results / 'GRID.md'}")
    return 0


def cmd_show(args) -> int:
    """Print an existing grid.json as a terminal table."""
    print(render.terminal(grid_mod.load(Path(args.grid))))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for ``ftcompat``."""
    parser = argparse.ArgumentParser(prog="ftcompat", description=__doc__)
    parser.add_argument("--matrix", default="matrix.yaml", help="matrix file (default: matrix.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("validate", help=cmd_validate.__doc__).set_defaults(func=cmd_validate)
    p = sub.add_parser("render", help=cmd_render.__doc__)
    p.add_argument("--results", default="results")
    p.set_defaults(func=cmd_render)
    p = sub.add_parser("show", help=cmd_show.__doc__)
    p.add_argument("grid", nargs="?", default="results/grid.json")
    p.set_defaults(func=cmd_show)
    return parser


def main(argv=None) -> int:
    """Entry point for the ``ftcompat`` command."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MatrixError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
