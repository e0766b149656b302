"""Safe pins: the newest combo whose selected cells all pass, written as pip/uv constraints.

Pure: it reads a grid (``grid.Grid``) and returns a ``SafePins``; ``pinsfiles`` writes it out.
A cell counts only when it passed; a skipped cell was not checked, so it does not qualify a combo.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ftcompat.core.domain import STACK
from ftcompat.core.outcome import first_line
from ftcompat.core.record import Record
from ftcompat.core.selector import match_column
from ftcompat.core.status import Status, Triage
from ftcompat.core.versions import key as version_key
from ftcompat.core.versions import public
from ftcompat.results.grid import Grid

# "Newest" compares the resolved versions in this order: the library a fine-tuning script is
# written against first, torch (which most pins leave to the platform) last.
NEWNESS = ("transformers", "trl", "peft", "bitsandbytes", "accelerate", "torch")


@dataclass(frozen=True)
class ComboVerdict:
    """One combo judged on the selected cells: which did not pass, and whether it qualifies."""

    combo: str
    versions: Mapping[str, str]
    checked: int
    blockers: tuple[Record, ...]
    tolerated: tuple[Record, ...]

    @property
    def qualifies(self) -> bool:
        """True when it ran at least one selected cell and every one passed (or was tolerated)."""
        return self.checked > 0 and not self.blockers

    def newness(self) -> tuple:
        """Sort key: the resolved versions in ``NEWNESS`` order."""
        return tuple(version_key(self.versions.get(p)) for p in NEWNESS)


@dataclass(frozen=True)
class Blame:
    """One failing column that blames a package version, in which combos, and on what grounds."""

    column: str
    combos: tuple[str, ...]
    signature: str
    because: str


@dataclass(frozen=True)
class Avoid:
    """A package version the grid shows failing selected cells (``!=`` line), with the evidence."""

    package: str
    version: str
    blames: tuple[Blame, ...]


@dataclass(frozen=True)
class PackageAdvice:
    """What the grid says about one package: the picked version, good ones, ones to avoid, newer ones."""

    package: str
    picked: str | None
    known_good: tuple[str, ...]
    avoid: tuple[Avoid, ...]
    newer: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SafePins:
    """The answer: the picked combo (or none), every combo's verdict and per-package advice."""

    selectors: tuple[str, ...]
    allow_known: bool
    pick: ComboVerdict | None
    verdicts: tuple[ComboVerdict, ...]
    packages: tuple[PackageAdvice, ...]
    unattributed: tuple[Record, ...]
    source: Mapping

    def closest(self, n: int = 3) -> tuple[ComboVerdict, ...]:
        """The ``n`` combos with the fewest non-passing selected cells, newest first among equals."""
        ran = [v for v in self.verdicts if v.checked]
        ranked = sorted(ran, key=lambda v: v.newness(), reverse=True)
        return tuple(sorted(ranked, key=lambda v: len(v.blockers))[:n])


def selected(grid: Grid, selectors: Sequence[str]) -> list[Record]:
    """The grid's cells whose column matches any selector (``case``, or ``case[variant@model]`` globs)."""
    return [c for c in grid.cells if any(match_column(s, c.column) for s in selectors)]


def check_selectors(grid: Grid, selectors: Sequence[str], source: str = "the grid") -> None:
    """Refuse a selector that matches no column of the grid (a typo), naming the closest case ids."""
    from ftcompat.core.errors import InputError
    from ftcompat.core.hints import suggest

    columns = [c.column for c in grid.cells]
    cases = sorted({c.split("[", 1)[0] for c in columns})
    for sel in selectors:
        if not any(match_column(sel, col) for col in columns):
            raise InputError(f"--cases {sel!r} selects no cell of {source}{suggest(sel.split('[', 1)[0], cases)}")


def judge(grid: Grid, cells: Sequence[Record], allow_known: bool) -> tuple[ComboVerdict, ...]:
    """Judge every combo that ran on its selected cells."""
    verdicts = []
    for combo in grid.combos:
        mine = [c for c in cells if c.combo == combo["id"]]
        if not combo.get("ran") or not mine:
            continue
        # A skipped cell was not checked: only a pass qualifies.
        bad = [c for c in mine if c.status != Status.PASS]
        tolerated = [c for c in bad if allow_known and c.triage == Triage.KNOWN]
        blockers = [c for c in bad if c not in tolerated]
        verdicts.append(ComboVerdict(combo["id"], dict(combo.get("resolved") or {}), len(mine),
                                     tuple(blockers), tuple(tolerated)))
    return tuple(verdicts)


def blame(cells: Sequence[Record]) -> tuple[list[Avoid], list[Record]]:
    """Attribute failing cells to package versions that never pass the same column in the grid.

    The suspects are the packages a known issue names (``when``), else every stack package. A
    suspect is blamed when its version in the failing cell passes that column nowhere in the grid,
    so a version the grid shows working is never excluded. A new failure needs exactly one such
    package; anything less clear is returned unattributed (``ftcompat bisect`` finds which).
    """
    passing: dict[str, set[tuple[str, str]]] = {}
    for c in cells:
        if c.status == Status.PASS:
            seen = passing.setdefault(c.column, set())
            seen.update((p, public(v)) for p, v in c.versions.items() if v)
    found: dict[tuple[str, str], dict[tuple[str, str, str], list[str]]] = {}
    unattributed = []
    for c in cells:
        if c.status != Status.FAIL:
            continue
        versions = c.versions
        issue = c.known_issue or {}
        suspects = [p for p in (issue.get("when") or STACK) if p in STACK and versions.get(p)]
        good = passing.get(c.column, set())
        blamed = [p for p in suspects if (p, public(versions[p])) not in good]
        if issue.get("when"):
            because = f"known issue {issue['id']} ({issue['url']})"
        else:
            because = "the only package whose version here never passes this case elsewhere in the grid"
            if len(blamed) != 1 or not good:
                unattributed.append(c)
                continue
        if not blamed:
            unattributed.append(c)
        for p in blamed:
            evidence = found.setdefault((p, public(versions[p])), {})
            evidence.setdefault((c.column, c.signature or "", because), []).append(c.combo)
    avoid = [Avoid(p, v, tuple(Blame(col, tuple(sorted(combos)), sig, why)
                               for (col, sig, why), combos in sorted(ev.items())))
             for (p, v), ev in found.items()]
    return sorted(avoid, key=lambda a: (a.package, version_key(a.version))), unattributed


def advise(package: str, pick: ComboVerdict | None, verdicts: Sequence[ComboVerdict],
           avoid: Sequence[Avoid]) -> PackageAdvice:
    """Collect one package's picked, known-good, to-avoid and newer-but-not-picked versions."""
    picked = public(pick.versions.get(package)) if pick else None
    good = sorted({public(v.versions[package]) for v in verdicts if v.qualifies and v.versions.get(package)},
                  key=version_key)
    mine = tuple(a for a in avoid if a.package == package)
    newer: dict[str, list[str]] = {}
    if picked:
        for v in verdicts:
            version = public(v.versions.get(package))
            if version and version_key(version) > version_key(picked):
                newer.setdefault(version, []).append(_why_not(v, pick))
    reasons = tuple((ver, "; ".join(why)) for ver, why in sorted(newer.items(), key=lambda kv: version_key(kv[0])))
    return PackageAdvice(package, picked, tuple(good), mine, reasons)


def _why_not(verdict: ComboVerdict, pick: ComboVerdict) -> str:
    if verdict.qualifies:
        return f"{verdict.combo} passes too, but {pick.combo} is newer overall (order: {', '.join(NEWNESS)})"
    first = verdict.blockers[0]
    more = f" and {len(verdict.blockers) - 1} more" if len(verdict.blockers) > 1 else ""
    return f"{verdict.combo}: {first.column} is {first.status.value} ({first_line(first.signature, 160)}){more}"


def safe_pins(grid: Grid, selectors: Sequence[str] = ("*",), allow_known: bool = False) -> SafePins:
    """Pick the newest qualifying combo and explain every package's versions."""
    cells = selected(grid, selectors)
    verdicts = judge(grid, cells, allow_known)
    qualifying = [v for v in verdicts if v.qualifies]
    pick = max(qualifying, key=lambda v: v.newness()) if qualifying else None
    avoid, unattributed = blame(cells)
    packages = tuple(advise(p, pick, verdicts, avoid) for p in STACK)
    devices = sorted({(c.get("device") or {}).get("name") or "?" for c in grid.combos if c.get("ran")})
    source = {"generated_at": grid.generated_at, "devices": devices}
    return SafePins(tuple(selectors), allow_known, pick, verdicts, packages, tuple(unattributed), source)
