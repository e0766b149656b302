"""``ftcompat pins`` and ``ftcompat report``: safe version pins and upstream bug reports from a grid."""

from __future__ import annotations

from pathlib import Path

from ftcompat.cli.common import root_of
from ftcompat.config.matrix import load
from ftcompat.flows import pins as pins_flow
from ftcompat.triage import report
from ftcompat.triage.ghissues import file_issues
from ftcompat.triage.upstream import PROJECTS


def cmd_pins(args) -> int:
    """Pick the newest combo whose selected cases all pass; write constraints and a requirements snippet."""
    ask = pins_flow.Ask(args.grid, tuple(args.cases), tuple(args.keep), args.allow_known, Path(args.out),
                        args.search, args.max_envs, args.max_minutes, args.python)
    pins_flow.flow(load(args.matrix) if args.search else None, root_of(args.matrix), ask)
    return 0


def cmd_report(args) -> int:
    """Write an upstream bug report (Markdown + standalone repro.py) for one failing cell."""
    out = Path(args.out or report.REPORTS / report.slug(args.cell))
    # Paths as given (relative to where it runs), so report.json means the same in any checkout.
    meta = {"cell": args.cell, "grid": args.grid, "matrix": args.matrix, "out": str(out),
            "bisection": args.bisect, "project": args.project}
    report.generate(meta, run=args.run)
    print(f"wrote {out / 'REPORT.md'} and {out / 'repro.py'} (run it: uv run {out / 'repro.py'})")
    return 0


def cmd_file_issues(args) -> int:
    """Open or update one GitHub issue per new regression (``ftcompat diff --issues`` payloads), with gh."""
    import json


    payloads = json.loads(Path(args.payloads).read_text(encoding="utf-8"))
    print("\n".join(file_issues(payloads, args.run_url)))
    return 0


def register(sub) -> None:
    """Add ``pins`` and ``report``."""
    p = sub.add_parser("pins", help=cmd_pins.__doc__)
    p.add_argument("--grid", default="results/grid.json", help="grid JSON to read")
    p.add_argument("--cases", nargs="+", default=["*"],
                   help="cases that must pass: case ids or case[variant@model] globs (default: all)")
    p.add_argument("--allow-known", action="store_true",
                   help="tolerate failures a known issue explains (default: they disqualify a combo)")
    p.add_argument("--keep", action="append", default=[], metavar="PIN",
                   help="a pin the answer must keep, e.g. torch==2.5.1, python=3.10, 'transformers==4.56.*' "
                        "(repeatable)")
    p.add_argument("--search", action="store_true",
                   help="when no combo of the grid answers, build and run candidate combos until one does")
    p.add_argument("--max-envs", type=int, default=10,
                   help="--search builds at most this many new environments (a bisection's steps count)")
    p.add_argument("--max-minutes", type=float, default=60.0, help="--search stops after this many minutes")
    p.add_argument("--python", default="3.11", help="--search's Python when no --keep python= says (default 3.11)")
    p.add_argument("--out", default="results/pins", help="folder for constraints.txt, requirements.txt, PINS.md")
    p.set_defaults(func=cmd_pins)
    p = sub.add_parser("file-issues", help=cmd_file_issues.__doc__)
    p.add_argument("payloads", help="the JSON `ftcompat diff --issues` wrote")
    p.add_argument("--run-url", default="", help="link to the run, added to each issue")
    p.set_defaults(func=cmd_file_issues)
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
