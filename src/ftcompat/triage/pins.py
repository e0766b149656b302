"""Safe pins: the newest combo whose selected cells all pass, written as pip/uv constraints.

Pure: it reads a grid (``grid.Grid``) and returns a ``SafePins``; ``pinsfiles`` writes it out.
A cell counts only when it passed; a skipped cell was not checked, so it does not qualify a combo.
Kept pins (``--keep torch==2.5.1 --keep python=3.10``) rule out every combo whose resolved versions
fall outside them before the newest is picked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ftcompat.core import gitref
from ftcompat.core.domain import STACK
from ftcompat.core.errors import InputError
from ftcompat.core.hints import suggest
from ftcompat.core.outcome import first_line
from ftcompat.core.record import Record
from ftcompat.core.selector import match_column
from ftcompat.core.status import Status, Triage
from ftcompat.core.versions import key as version_key
from ftcompat.core.versions import public
from ftcompat.env.releases import normalize
from ftcompat.results.grid import Grid

# "Newest" compares the resolved versions in this order: the library a fine-tuning script is
# written against first, torch (which most pins leave to the platform) last.
NEWNESS = ("transformers", "trl", "peft", "bitsandbytes", "accelerate", "torch")


KEEP_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(===|==|~=|!=|<=|>=|<|>|=)\s*(\S.*)$")


@dataclass(frozen=True)
class Keep:
    """A pin the answer must respect: a package (or ``python``) and a PEP 440 specifier."""

    name: str
    spec: str

    def __str__(self) -> str:
        return f"{self.name}{self.spec}"

    def admits(self, versions: Sequence[str | None]) -> bool:
        """True when any of the given spellings of one version (``3.10``, ``3.10.14``) meets the specifier."""
        from packaging.specifiers import SpecifierSet

        spec = SpecifierSet(self.spec)
        return any(spec.contains(public(v), prereleases=True) for v in versions if v)


def parse_keep(text: str) -> Keep:
    """``torch==2.5.1``, ``python=3.10``, ``transformers==4.56.*`` or ``trl>=0.20,<0.24`` as a Keep."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet


    m = KEEP_RE.match(text)
    if not m:
        raise InputError(f"--keep {text!r}: write PACKAGE==VERSION or a specifier, e.g. torch==2.5.1, "
                         "python=3.10, 'transformers==4.56.*'")
    if m.group(2) == "=" and normalize(m.group(1)) != "python":
        # pip refuses `trl=0.20`; taking it here would teach a spelling no installer accepts
        raise InputError(f"--keep {text!r}: write {m.group(1)}=={m.group(3).strip()} (a single '=' is only "
                         "python's, as in python=3.10)")
    op = "==" if m.group(2) == "=" else m.group(2)
    spec = op + m.group(3).strip()
    try:
        SpecifierSet(spec)
    except InvalidSpecifier:
        raise InputError(f"--keep {text!r}: {spec!r} is not a version specifier") from None
    return Keep(normalize(m.group(1)), spec)


@dataclass(frozen=True)
class ComboVerdict:
    """One combo judged on the selected cells: which did not pass, and whether it qualifies."""

    combo: str
    versions: Mapping[str, str]
    checked: int
    blockers: tuple[Record, ...]
    tolerated: tuple[Record, ...]
    python: tuple[str, ...] = ()  # the combo's Python as declared and as resolved
    outside: tuple[str, ...] = ()  # why the kept pins rule it out
    missing: tuple[str, ...] = ()  # selected columns other combos ran and this one did not
    # What else made the environment: its pins beyond the recorded packages (numpy==1.26.4) and the
    # requirements a repair added beside them (pyarrow<26.0.0), each with why.
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def qualifies(self) -> bool:
        """True when it ran every selected column, each passed (or was tolerated), and it keeps the pins."""
        return self.checked > 0 and not self.blockers and not self.outside and not self.missing

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
    keep: tuple[Keep, ...] = ()

    @property
    def kept(self) -> tuple[ComboVerdict, ...]:
        """The combos the kept pins allow."""
        return tuple(v for v in self.verdicts if not v.outside)

    def closest(self, n: int = 3) -> tuple[ComboVerdict, ...]:
        """The ``n`` combos the kept pins allow with the fewest cells not passing, newest first among equals."""
        ran = [v for v in self.kept if v.checked]
        ranked = sorted(ran, key=lambda v: v.newness(), reverse=True)
        return tuple(sorted(ranked, key=lambda v: len(v.blockers) + len(v.missing))[:n])


def selected(grid: Grid, selectors: Sequence[str]) -> list[Record]:
    """The grid's cells whose column matches any selector (``case``, or ``case[variant@model]`` globs)."""
    return [c for c in grid.cells if any(match_column(s, c.column) for s in selectors)]


def check_selectors(grid: Grid, selectors: Sequence[str], source: str = "the grid") -> None:
    """Refuse a selector that matches no column of the grid (a typo), naming the closest case ids."""
    columns = [c.column for c in grid.cells]
    cases = sorted({c.split("[", 1)[0] for c in columns})
    for sel in selectors:
        if not any(match_column(sel, col) for col in columns):
            raise InputError(f"--cases {sel!r} selects no cell of {source}{suggest(sel.split('[', 1)[0], cases)}")


def judge(grid: Grid, cells: Sequence[Record], allow_known: bool,
          keep: Sequence[Keep] = ()) -> tuple[ComboVerdict, ...]:
    """Judge every combo that ran on its selected cells, and on the kept pins."""
    verdicts = []
    pairs = {c["id"]: c["pair"] for c in grid.combos if isinstance(c.get("pair"), Mapping)}
    # A combo that did not run one of these was not checked on it. A handoff pair's cells are the consumer's:
    # they count for the combo that loads (its artifacts made elsewhere), and one no pair loads in is not
    # "not checked" for it: a handoff column is never missing.
    wanted = sorted({c.column for c in cells if c.combo not in pairs})
    for combo in grid.combos:
        if combo["id"] in pairs:
            continue  # not an environment of its own: judged as its consumer
        if any(gitref.ref_of(v) for v in (combo.get("pins") or {}).values()):
            continue  # a build from a git commit (the upstream-main lane) is no release a pin can name
        mine = [c for c in cells if c.combo == combo["id"] or pairs.get(c.combo, {}).get("to") == combo["id"]]
        if not combo.get("ran") or not mine:
            continue
        # A skipped cell was not checked: only a pass qualifies.
        bad = [c for c in mine if c.status != Status.PASS]
        tolerated = [c for c in bad if allow_known and c.triage == Triage.KNOWN]
        blockers = [c for c in bad if c not in tolerated]
        versions = dict(combo.get("resolved") or {})
        python = tuple(v for v in (combo.get("python"), combo.get("python_resolved")) if v)
        ran = {c.column for c in mine}
        verdicts.append(ComboVerdict(combo["id"], versions, len(mine), tuple(blockers), tuple(tolerated),
                                     python, outside(versions, python, keep),
                                     tuple(c for c in wanted if c not in ran), environment_of(combo)))
    return tuple(verdicts)


def environment_of(combo: Mapping) -> tuple[tuple[str, str], ...]:
    """A grid combo's pins beyond the versions its cells recorded, and its repair's requirements, each with why."""
    recorded = combo.get("resolved") or {}  # a grid from before a package was recorded: its pin is still kept
    out = [(f"{p}=={v}", "pinned by the combo") for p, v in sorted((combo.get("pins") or {}).items())
           if v and not recorded.get(p)]
    repair = (combo.get("environment") or {}).get("repair") or {}
    for fix in repair.get("fixes") or []:
        if isinstance(fix, Mapping) and fix.get("requirement") and not str(fix["requirement"]).startswith("--"):
            out.append((str(fix["requirement"]), f"ftcompat's repair: {fix.get('why', '')}"))
    return tuple(out)


def outside(versions: Mapping[str, str], python: Sequence[str], keep: Sequence[Keep]) -> tuple[str, ...]:
    """Why a combo with these versions breaks the kept pins: one line per pin it does not meet."""
    why = []
    for k in keep:
        have = tuple(python) if k.name == "python" else (versions.get(k.name),)
        if not any(have):
            why.append(f"records no {k.name} version (--keep {k})")
        elif not k.admits(have):
            why.append(f"{k.name} {public(have[-1])} is not {k.spec}")
    return tuple(why)


def check_keep(grid: Grid, keep: Sequence[Keep], source: str = "the grid") -> None:
    """Refuse a kept package the grid records nowhere (a typo, or a package no combo resolves)."""
    recorded = {p for c in grid.combos for p in (c.get("resolved") or {})} | {"python"}
    for k in keep:
        if k.name not in recorded:
            raise InputError(f"--keep {k}: {source} records no version of {k.name!r}"
                             f"{suggest(k.name, sorted(recorded))}")


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
        versions = {p: v for p, v in c.versions.items() if v}  # a package with no version is no suspect
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
    if pick is not None and picked:
        for v in verdicts:
            version = public(v.versions.get(package))
            if version and version_key(version) > version_key(picked):
                newer.setdefault(version, []).append(_why_not(v, pick))
    reasons = tuple((ver, "; ".join(why)) for ver, why in sorted(newer.items(), key=lambda kv: version_key(kv[0])))
    return PackageAdvice(package, picked, tuple(good), mine, reasons)


def _why_not(verdict: ComboVerdict, pick: ComboVerdict) -> str:
    if verdict.outside:
        return f"{verdict.combo}: outside the kept pins ({'; '.join(verdict.outside)})"
    if verdict.qualifies:
        return f"{verdict.combo} passes too, but {pick.combo} is newer overall (order: {', '.join(NEWNESS)})"
    if not verdict.blockers and verdict.missing:
        return (f"{verdict.combo} did not run {len(verdict.missing)} selected column(s), e.g. "
                f"{verdict.missing[0]}, so it was not checked on them")
    first = verdict.blockers[0]
    more = f" and {len(verdict.blockers) - 1} more" if len(verdict.blockers) > 1 else ""
    return f"{verdict.combo}: {first.column} is {first.status.value} ({first_line(first.signature, 160)}){more}"


def safe_pins(grid: Grid, selectors: Sequence[str] = ("*",), allow_known: bool = False,
              keep: Sequence[Keep] = ()) -> SafePins:
    """Pick the newest qualifying combo the kept pins allow, and explain every package's versions."""
    cells = selected(grid, selectors)
    verdicts = judge(grid, cells, allow_known, keep)
    qualifying = [v for v in verdicts if v.qualifies]
    pick = max(qualifying, key=lambda v: v.newness()) if qualifying else None
    avoid, unattributed = blame(cells)
    packages = tuple(advise(p, pick, verdicts, avoid) for p in STACK)
    # A combo with no device recorded (every cell not-installable) names none, rather than "?".
    devices = sorted({n for c in grid.combos if c.get("ran") and (n := (c.get("device") or {}).get("name"))}) \
        or ["an unrecorded device"]
    source = {"generated_at": grid.generated_at, "devices": devices}
    return SafePins(tuple(selectors), allow_known, pick, verdicts, packages, tuple(unattributed), source,
                    tuple(keep))
