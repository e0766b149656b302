"""``ftcompat bisect --commits PKG``: the first commit of a package's history that flips a cell.

The search is ``triage.commits``; each step is the one runner over a ``StepVenv`` whose combo pins
the package at that commit (``"@<sha>"``, built from the history with uv) and holds every other pin.
Everything the command was asked is checked before any environment is built (exit 2).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ftcompat.core import gitref
from ftcompat.core.cellfile import atomic_write, dumps
from ftcompat.core.clock import name_stamp, utc_now
from ftcompat.core.domain import Matrix
from ftcompat.core.errors import InputError, NoAnswer
from ftcompat.env import gitsource
from ftcompat.env.preflight import check_writable
from ftcompat.flows import bisect as release
from ftcompat.flows.bisect import EnvRunner, select_cases
from ftcompat.runner.cells import WORK
from ftcompat.triage import commitdoc
from ftcompat.triage.commits import Ask as SearchAsk
from ftcompat.triage.commits import CommitBisector, Found
from ftcompat.triage.trials import BisectError


@dataclass(frozen=True)
class Ask:
    """A commit bisection as asked on the command line."""

    cell: str
    pkg: str
    good: str  # refs as given: a tag, a branch, a commit
    bad: str
    held: Mapping[str, str | None]  # the other packages' pins
    flake_runs: int = 3
    fix: bool | None = None
    python: str = "3.11"
    keep_envs: bool = False
    out: Path | None = None


@dataclass(frozen=True)
class Answer:
    """What a commit bisection found: its document, where it was written, the verdict."""

    doc: Mapping
    out: Path
    found: Found


def default_out(cell: str, pkg: str) -> Path:
    """results/bisect/<case>-<pkg>-commits.json, the selector made file-name safe."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", cell).strip("-")
    return Path("results/bisect") / f"{slug}-{pkg}-commits.json"


def check(matrix: Matrix, root: Path, ask: Ask) -> tuple[gitsource.Repo, str, str, tuple[str, ...]]:
    """Everything the command was asked, checked before any environment: the history, both commits, the cell."""
    problem = gitref.pin_problem(ask.pkg, ask.good) or gitref.pin_problem(ask.pkg, ask.bad)
    if problem:
        raise BisectError(f"--commits {ask.pkg}: {problem}")
    if ask.pkg in ask.held and ask.held[ask.pkg] is not None:
        raise BisectError(f"{ask.pkg} is the package bisected; pin it with --good/--bad refs only, not among the pins")
    for pkg in ask.held:
        if gitref.ref_of(ask.held[pkg]) and not gitref.is_commit(gitref.ref_of(ask.held[pkg])):
            raise BisectError(f"{pkg}@{gitref.ref_of(ask.held[pkg])}: a held package at a git ref must be a "
                              "40-character commit, or every step could build another one")
    source = gitref.source_of(ask.pkg, matrix.sources)
    if source is None:
        raise BisectError(f"--commits {ask.pkg}: ftcompat knows no public repository of {ask.pkg}; say where its "
                          f"history is with --source {ask.pkg}=PATH_OR_URL")
    repo = gitsource.open_repo(ask.pkg, source, root)
    good, bad = repo.commit(ask.good), repo.commit(ask.bad)
    if good == bad:
        raise BisectError(f"--good {ask.good} and --bad {ask.bad} are the same {ask.pkg} commit ({good[:12]}): "
                          "nothing to bisect")
    if repo.merge_base(good, bad) is None:
        raise BisectError(f"{ask.pkg} {ask.good} and {ask.bad} share no history (no merge base): no path between "
                          "them to bisect")
    for sha in (good, bad):
        gitsource.check_pure(repo, sha)
    cases = select_cases(matrix, root, ask.cell)
    return repo, good, bad, cases


def flow(matrix: Matrix, root: Path, ask: Ask, log: Callable[[str], None] = print) -> Answer:
    """Check the input, then screen, verify and bisect the commits; write the JSON and Markdown."""
    repo, good, bad, cases = check(matrix, root, ask)
    out = ask.out or default_out(ask.cell, ask.pkg)
    check_writable(out.parent, hint="pass --out to write the bisection elsewhere")
    steps = EnvRunner(matrix, root, cases, ask.cell, root / WORK / "bisect" / name_stamp(), 1, ask.python,
                      ask.keep_envs, sources={ask.pkg: repo.source})
    search = SearchAsk(ask.pkg, good, bad, dict(ask.held), ask.flake_runs, ask.fix)
    bisector = CommitBisector(lambda pins, runs: steps(pins, runs), repo, search, log=log)
    log(f"bisecting {ask.cell} over {ask.pkg}'s commits {ask.good} ({good[:12]}) .. {ask.bad} ({bad[:12]}): "
        f"steps under {steps.base}")
    started, started_at = time.monotonic(), utc_now()
    found = bisector.run()
    meta = {"run_id": steps.base.name, "python": ask.python, "started_at": started_at,
            "duration_s": round(time.monotonic() - started, 1), "device": _device(bisector)}
    doc = commitdoc.to_json(ask.cell, bisector, found, {"good": ask.good, "bad": ask.bad}, repo.shown_source,
                            repo.source, repo.info, meta)
    atomic_write(out, dumps(doc))
    atomic_write(out.with_suffix(".md"), commitdoc.to_markdown(doc))
    return Answer(doc, out, found)


def _device(bisector: CommitBisector) -> str | None:
    for step in bisector.steps:
        device = (step.trial.env or {}).get("device")
        if isinstance(device, Mapping):
            return f"{device.get('name')} ({device.get('type')})"
        if device:
            return str(device)
    return None


def release_to_commits(repo: gitsource.Repo, last_good: str, first_bad: str) -> tuple[str, str]:
    """The tags a release bisection's answer names (``v0.19.1``, ``v0.20.0``), to go on into their commits."""
    tags = {v: repo.tag_for(v) for v in (last_good, first_bad)}
    missing = [v for v, t in tags.items() if t is None]
    if missing:
        raise InputError(f"no tag for {repo.pkg} {', '.join(missing)} in {repo.shown} (looked for v<version> and "
                         "<version>): cannot go on into the commits between the releases")
    return tags[last_good] or "", tags[first_bad] or ""


def after_release(answer: release.Answer, matrix: Matrix, root: Path, flake_runs: int = 3, python: str = "3.11",
                  keep_envs: bool = False) -> Ask:
    """The commit bisection that goes on from a release bisection's one first-bad release: between the two
    releases' tags, the good side's other pins held."""
    result, doc = answer.result, answer.doc
    pkg = result.searched
    if not pkg or len(result.culprit) != 1 or result.direction != "regression":
        raise NoAnswer("--into-commits goes on from one package's first bad release; this bisection found "
                       f"{', '.join(result.culprit) or 'none'} ({result.direction})")
    source = gitref.source_of(pkg, matrix.sources)
    if source is None:
        raise BisectError(f"--into-commits: say where {pkg}'s history is with --source {pkg}=PATH_OR_URL")
    good, bad = release_to_commits(gitsource.open_repo(pkg, source, root), doc["last_good"][pkg],
                                   doc["first_bad"][pkg])
    held = {p: v for p, v in (doc["good"] or {}).items() if p != pkg}
    return Ask(doc["case"], pkg, good, bad, held, flake_runs, None, python, keep_envs, None)
