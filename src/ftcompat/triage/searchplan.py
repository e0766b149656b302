"""Planning a pins search: what the next candidate must avoid, and which package a failure steps back.

Pure: it works on kept pins, known issues and cell records; ``run/search_run`` resolves the
candidates, builds and runs them. A candidate is the newest set of releases the kept pins, the
packages' metadata and the bounds gathered so far allow. After a failing cell the search steps back
one package, the one the failure points to:

1. a known issue the cell matches names it (``when``): step below the issue's range;
2. else the traceback's innermost frame in a stack package that may move names it: step below its
   minor release;
3. else a bisection names it: from a passing side (the newest grid combo in which every selected
   cell passes, with the kept pins put back) to the failing candidate, ``Bisector`` finds the package
   and the first release that fails, and the search steps below that release (``run/search_bisect``);
4. else (no passing side, or the bisection finds no flip) the packages are stepped back one at a
   time, newest-first in ``NEWNESS`` order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ftcompat.core.domain import STACK
from ftcompat.core.record import Record
from ftcompat.core.selector import match_column
from ftcompat.core.status import Status
from ftcompat.core.versions import public
from ftcompat.triage.pins import NEWNESS, Keep, safe_pins
from ftcompat.triage.trials import Verdict

FRAME_RE = re.compile(r"site-packages/([A-Za-z0-9_]+)/")


@dataclass(frozen=True)
class Step:
    """One bound the search adds: ``package`` must meet ``spec`` from now on, and why."""

    package: str
    spec: str
    why: str


def requirements(keep: Sequence[Keep], steps: Sequence[Step], python_free: bool = True) -> list[str]:
    """One requirement per stack package: the kept specifiers and the steps' bounds together."""
    specs: dict[str, list[str]] = {p: [] for p in STACK}
    for k in keep:
        if k.name in specs:
            specs[k.name].append(k.spec)
    for s in steps:
        specs[s.package].append(s.spec)
    return [p + ",".join(dict.fromkeys(v)) for p, v in specs.items()]


def kept_exactly(keep: Sequence[Keep]) -> set[str]:
    """Packages a kept pin fixes to one version: the search never steps them."""
    return {k.name for k in keep if k.spec.startswith("==") and "*" not in k.spec and "," not in k.spec}


def lower_bound(spec: str) -> str | None:
    """The version a ``>=X`` / ``>X`` / ``==X.*`` clause of ``spec`` starts at, if it has one."""
    from packaging.specifiers import SpecifierSet

    for clause in SpecifierSet(spec):
        if clause.operator in (">=", ">", "~="):
            return clause.version
        if clause.operator == "==" and clause.version.endswith(".*"):
            return clause.version[:-2]
    return None


def below_minor(version: str) -> str:
    """``<X.Y`` for version ``X.Y.Z``: step back past the whole minor series (breaks come with minors)."""
    from packaging.version import Version

    v = Version(public(version))
    return f"<{v.major}.{v.minor}" if (v.micro or v.pre or v.dev) else f"<{v}"


def issue_ranges(issues: Iterable, columns: Sequence[str]) -> list[tuple[str, str, str, str]]:
    """(package, specifier, issue id, url) of every known issue covering one of ``columns``, for avoiding up-front."""
    out = []
    for issue in issues:
        if any(match_column(sel, col) for sel in issue.cells for col in columns):
            out += [(p, s, issue.id, issue.url) for p, s in issue.when.items() if p in STACK]
    return out


def inside_issue(versions: Mapping[str, str], issue_when: Mapping[str, str]) -> bool:
    """True when ``versions`` fall inside every range of one known issue's ``when``."""
    from packaging.specifiers import SpecifierSet

    return bool(issue_when) and all(
        versions.get(p) and SpecifierSet(s).contains(public(versions[p]), prereleases=True)
        for p, s in issue_when.items())


def avoid_issue(versions: Mapping[str, str], issue, frozen: set[str]) -> Step | None:
    """The step out of a known issue's ranges the candidate falls in, on a package the search may move."""
    if not inside_issue(versions, issue.when):
        return None
    for package, spec in issue.when.items():
        if package in frozen or package not in STACK:
            continue
        start = lower_bound(spec)
        bound = f"<{start}" if start else below_minor(versions[package])
        return Step(package, bound, f"{package} {public(versions[package])} is in known issue {issue.id} "
                                    f"({package}{spec}, {issue.url})")
    return None


def trapped(versions: Mapping[str, str], issue, frozen: set[str]) -> bool:
    """True when the kept pins alone put every candidate inside the known issue's ranges."""
    return inside_issue(versions, issue.when) and all(p in frozen for p in issue.when if p in STACK)


def traceback_projects(record: Record) -> list[str]:
    """The stack packages the traceback runs through, innermost (the code that raised) first."""
    found = [m.group(1) for m in FRAME_RE.finditer(record.traceback or "")]
    found += [m.group(1) for m in FRAME_RE.finditer(record.signature or "")]
    return list(dict.fromkeys(p for p in reversed(found) if p in STACK))


def step_for(record: Record, versions: Mapping[str, str], frozen: set[str], tried: Sequence[Step]) -> Step | None:
    """The step back a non-passing cell points to, or None when no package may move."""
    issue = record.known_issue or {}
    for package in (issue.get("when") or {}):
        if package in STACK and package not in frozen and versions.get(package):
            start = lower_bound(issue["when"][package])
            spec = f"<{start}" if start else below_minor(versions[package])
            return Step(package, spec, f"{record.column} is known issue {issue.get('id')} ({issue.get('url')})")
    if issue.get("when"):
        return None  # a known issue on kept pins only: no step leaves it
    # The innermost package that may move: if the code that raised is kept, its caller is the suspect.
    project = next((p for p in traceback_projects(record) if p not in frozen and versions.get(p)), None)
    if project:
        return Step(project, below_minor(versions[project]),
                    f"{record.column}'s traceback runs through {project} {public(versions[project])}: "
                    f"{(record.signature or '').splitlines()[0][:160]}")
    movable = [p for p in NEWNESS if p not in frozen and versions.get(p)]
    if not movable:
        return None
    # No package named: step back each in turn, starting after the last one stepped this way.
    blind = [s.package for s in tried if s.why.startswith("no package named")]
    package = movable[len(blind) % len(movable)]
    return Step(package, below_minor(versions[package]),
                f"no package named by {record.column} ({(record.signature or record.status.value)[:120]}); "
                f"stepping {package} back")


def unnamed(record: Record, versions: Mapping[str, str], frozen: set[str]) -> bool:
    """True when neither a known issue nor the traceback names a package the search may move (rule 3)."""
    if (record.known_issue or {}).get("when"):
        return False
    return not any(p not in frozen and versions.get(p) for p in traceback_projects(record))


def good_side(grid, selectors: Sequence[str], keep: Sequence[Keep],
              bad: Mapping[str, str]) -> tuple[str, dict[str, str | None]] | None:
    """A bisection's passing side: (grid combo, its versions with the kept pins put back), or None.

    The combo is the newest in which every selected cell passes, ignoring the kept pins; a version it
    has that a kept pin refuses is replaced by the failing candidate's, so the side keeps the pins.
    None when no combo passes or the side would equal the candidate.
    """

    pick = safe_pins(grid, selectors).pick
    if pick is None:
        return None
    pins: dict[str, str | None] = {}  # None: the candidate has no version of that package either
    for p in STACK:
        version = public(pick.versions.get(p) or "") or None
        if version is None or not all(k.admits((version,)) for k in keep if k.name == p) \
                or version == public(bad.get(p) or ""):
            version = bad.get(p)  # the candidate's spelling (2.13.0+cpu): the same ad-hoc env and cells
        pins[p] = version
    same = all(public(pins[p] or "") == public(bad.get(p) or "") for p in STACK)
    return None if same else (pick.combo, pins)


def bisected_step(result, column: str, good_combo: str) -> Step | None:
    """The bound a bisection's answer gives: below the first release that fails (a regression), or
    from the first that passes (a fix); None when it found no package."""

    if result.verdict not in (Verdict.FOUND, Verdict.INCONCLUSIVE) or not result.searched or not result.range:
        return None
    pkg = result.searched
    held = "".join(f" with {p} {public(v)}" for p, v in (result.after or {}).items() if p != pkg)
    # Every release that may be the first bad (first good) one lies at or above (at or below) the bound.
    regression = result.direction == "regression"
    first = result.range[0] if regression else result.range[-1]
    spec, word = (f"<{first}", "fails") if regression else (f">={first}", "passes")
    what = f"{pkg} {first} is the first release that {word}"
    if result.verdict == Verdict.INCONCLUSIVE:
        what = (f"the first release of {pkg} that {word} is one of {', '.join(result.range)} "
                f"({', '.join(result.untested)} could not be tested)")
    return Step(pkg, spec, f"{column} names no package; bisecting from {good_combo} (a grid combo that passes): "
                           f"{what}{held}")


def blockers(cells: Sequence[Record]) -> tuple[list[Record], list[Record]]:
    """The cells that must pass and did not: (failed or errored, skipped). A skip cannot be stepped away."""
    bad = [c for c in cells if c.status != Status.PASS]
    return [c for c in bad if c.status != Status.SKIP], [c for c in bad if c.status == Status.SKIP]
