"""``ftcompat bisect``: find the release, or the commit, that flips a case between a good and a bad side."""

from __future__ import annotations

from pathlib import Path

from ftcompat.cli.common import add_source, root_of
from ftcompat.config.matrix import load
from ftcompat.core.errors import NoAnswer
from ftcompat.flows import bisect, bisect_commits
from ftcompat.triage.bisectdoc import pins_text
from ftcompat.triage.trials import BisectError, Verdict


def cmd_bisect(args) -> int:
    """Bisect releases (or one package's commits) between a good and a bad side to find what flips a case."""
    if args.commits:
        return _commits(args)
    if args.with_pins or args.with_combo or args.fix or args.breaks:
        raise BisectError("--with, --with-combo, --fix and --break go with --commits PKG")
    ask = bisect.Ask(args.cell, bisect.side_pins(args.good, args.good_combo, args.grid, "good"),
                     bisect.side_pins(args.bad, args.bad_combo, args.grid, "bad"), args.runs, args.python,
                     args.keep_envs, args.pre, Path(args.out) if args.out else None, args.report)
    matrix, root = load(args.matrix), root_of(args.matrix)
    answer = bisect.flow(matrix, root, ask, log=lambda line: print(line, flush=True))
    doc, out = answer.doc, answer.out
    print(f"\n{doc['line']}")
    print(f"verdict: {doc['verdict']} ({doc['direction']}); environments built: {doc['envs_built']}")
    for key in ("last_good", "first_bad", "first_good", "last_bad"):
        if doc[key]:
            print(f"{key.replace('_', ' ')}: {pins_text(doc[key])}")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    if answer.result.verdict != Verdict.FOUND:
        raise NoAnswer(f"no single release flips {args.cell}: {doc['verdict']} (see {out.with_suffix('.md')})")
    if args.into_commits:
        return _into_commits(args, matrix, root, answer)
    return 0


def _commits(args) -> int:
    if args.good_combo or args.bad_combo or args.pre or args.into_commits:
        raise BisectError("--good-combo, --bad-combo, --pre and --into-commits bisect releases; with --commits give "
                          "--good REF --bad REF and the other pins with --with or --with-combo")
    for side, refs in (("good", args.good), ("bad", args.bad)):
        if not refs or len(refs) != 1:
            raise BisectError(f"--commits {args.commits}: give --{side} one git ref (a tag, branch or commit), e.g. "
                              f"--{side} v0.20.0")
    held = bisect.side_pins(args.with_pins, args.with_combo, args.grid, "with") if (args.with_pins or args.with_combo) \
        else {}
    if args.with_combo:  # the combo's own version of the bisected package is what the refs replace
        held.pop(args.commits, None)
    ask = bisect_commits.Ask(args.cell, args.commits, args.good[0], args.bad[0], held, args.flake_runs,
                             True if args.fix else (False if args.breaks else None), args.python, args.keep_envs,
                             Path(args.out) if args.out else None)
    answer = bisect_commits.flow(load(args.matrix), root_of(args.matrix), ask, log=lambda line: print(line, flush=True))
    return _shown_commits(args.cell, answer)


def _shown_commits(cell: str, answer: bisect_commits.Answer) -> int:
    doc, out = answer.doc, answer.out
    print(f"\n{doc['line']}")
    commit = doc.get("first_bad") or doc.get("first_good")
    if commit:
        print(f"commit: {commit['sha']}\nsubject: {commit['subject']}")
        if commit.get("pr"):
            print(f"pull request: #{commit['pr']}" + (f" {commit['pr_link']}" if commit.get("pr_link") else ""))
        if commit.get("link"):
            print(f"link: {commit['link']}")
    cost = doc["cost"]
    print(f"verdict: {doc['verdict']} ({doc['direction']}); {cost['steps']} steps, {doc['envs_built']} environments, "
          f"{cost['duration_s']:.0f} s")
    print(f"wrote {out} and {out.with_suffix('.md')}")
    if answer.found.verdict != Verdict.FOUND:
        raise NoAnswer(f"no single commit flips {cell}: {doc['verdict']} (see {out.with_suffix('.md')})")
    return 0


def _into_commits(args, matrix, root, answer: bisect.Answer) -> int:
    """Go on from a release bisection's one release into the commits between it and the release before."""
    ask = bisect_commits.after_release(answer, matrix, root, args.flake_runs, args.python, args.keep_envs)
    print(f"\ngoing on into {ask.pkg}'s commits between {ask.good} and {ask.bad}")
    return _shown_commits(args.cell, bisect_commits.flow(matrix, root, ask, log=lambda line: print(line, flush=True)))


def register(sub) -> None:
    """Add ``bisect``."""
    p = sub.add_parser("bisect", help=cmd_bisect.__doc__,
                       description="Find the release that flips a case between a good and a bad set of pins, or "
                                   "with --commits PKG the commit of PKG's history that flips it.")
    p.add_argument("cell", help='column selector, e.g. "phi3_generate[remote_seen_tokens@tiny-phi3]"')
    p.add_argument("--good", nargs="+", metavar="PIN_OR_REF",
                   help="pins on the good side (PKG==VER ...); with --commits, one git ref of PKG")
    p.add_argument("--bad", nargs="+", metavar="PIN_OR_REF",
                   help="pins on the bad side (PKG==VER ...); with --commits, one git ref of PKG")
    p.add_argument("--good-combo", help="take the good side's resolved versions from this grid combo")
    p.add_argument("--bad-combo", help="take the bad side's resolved versions from this grid combo")
    p.add_argument("--grid", default="results/grid.json", help="grid for --*-combo (default results/grid.json)")
    p.add_argument("--pre", action="store_true", help="include pre-releases in the search")
    p.add_argument("--runs", type=int, default=2, help="runs per step in the same env (default 2)")
    p.add_argument("--python", default="3.11", help="Python version for the envs (default 3.11)")
    p.add_argument("--out", help="JSON to write (default results/bisect/<case>-<pkg>.json; .md beside it)")
    p.add_argument("--keep-envs", action="store_true", help="keep each step's venv (default: delete after the step)")
    p.add_argument("--report", action="store_true", help="refresh the bug report with the result when found")
    g = p.add_argument_group("commits", "bisect one package's git history instead of releases")
    g.add_argument("--commits", metavar="PKG", help="the package whose commits to bisect between --good REF and "
                                                     "--bad REF, every other package held")
    g.add_argument("--with", dest="with_pins", nargs="+", metavar="PKG==VER",
                   help="the other packages' pins, the same at every step (others: newest compatible)")
    g.add_argument("--with-combo", metavar="ID", help="hold the other packages at this grid combo's versions")
    g.add_argument("--flake-runs", type=int, default=3,
                   help="runs of the bad side before bisecting; one pass among them is a flake (default 3)")
    direction = g.add_mutually_exclusive_group()
    direction.add_argument("--fix", action="store_true",
                           help="look for the commit that fixed it (the default follows the history: a bad side "
                                "older than the good one is a fix)")
    direction.add_argument("--break", dest="breaks", action="store_true",
                           help="look for the commit that broke it (the default for two branches)")
    g.add_argument("--into-commits", action="store_true",
                   help="after a release bisection that finds one release, go on into the commits between the "
                        "release before it and it (needs the package's tags in its history)")
    add_source(p)
    p.set_defaults(func=cmd_bisect)
