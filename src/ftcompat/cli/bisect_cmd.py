"""``ftcompat bisect``: find the release that flips a case between a good and a bad set of pins."""

from __future__ import annotations

from pathlib import Path

from ftcompat.cli.common import root_of
from ftcompat.config.matrix import load
from ftcompat.core.errors import NoAnswer
from ftcompat.flows import bisect
from ftcompat.triage.bisectdoc import pins_text
from ftcompat.triage.trials import Verdict


def cmd_bisect(args) -> int:
    """Bisect releases between a good and a bad set of pins to find the one that flips a case."""
    ask = bisect.Ask(args.cell, bisect.side_pins(args.good, args.good_combo, args.grid, "good"),
                     bisect.side_pins(args.bad, args.bad_combo, args.grid, "bad"), args.runs, args.python,
                     args.keep_envs, args.pre, Path(args.out) if args.out else None, args.report)
    answer = bisect.flow(load(args.matrix), root_of(args.matrix), ask, log=lambda line: print(line, flush=True))
    doc, out = answer.doc, answer.out
    print(f"\n{doc['line']}")
    print(f"verdict: {doc['verdict']} ({doc['direction']}); environments built: {doc['envs_built']}")
    for key in ("last_good", "first_bad", "first_good", "last_bad"):
        if doc[key]:
            print(f"{key.replace('_', ' ')}: {pins_text(doc[key])}")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    if answer.result.verdict != Verdict.FOUND:
        raise NoAnswer(f"no single release flips {args.cell}: {doc['verdict']} (see {out.with_suffix('.md')})")
    return 0


def register(sub) -> None:
    """Add ``bisect``."""
    p = sub.add_parser("bisect", help=cmd_bisect.__doc__,
                       description="Find the release that flips a case between a good and a bad set of pins.")
    p.add_argument("cell", help='column selector, e.g. "phi3_generate[remote_seen_tokens@tiny-phi3]"')
    p.add_argument("--good", nargs="+", metavar="PKG==VER", help="pins on the good side")
    p.add_argument("--bad", nargs="+", metavar="PKG==VER", help="pins on the bad side")
    p.add_argument("--good-combo", help="take the good side's resolved versions from this grid combo")
    p.add_argument("--bad-combo", help="take the bad side's resolved versions from this grid combo")
    p.add_argument("--grid", default="results/grid.json", help="grid for --*-combo (default results/grid.json)")
    p.add_argument("--pre", action="store_true", help="include pre-releases in the search")
    p.add_argument("--runs", type=int, default=2, help="runs per step in the same env (default 2)")
    p.add_argument("--python", default="3.11", help="Python version for the envs (default 3.11)")
    p.add_argument("--out", help="JSON to write (default results/bisect/<case>-<pkg>.json; .md beside it)")
    p.add_argument("--keep-envs", action="store_true", help="keep each step's venv (default: delete after the step)")
    p.add_argument("--report", action="store_true", help="refresh the bug report with the result when found")
    p.set_defaults(func=cmd_bisect)
