"""Safe pins: the newest combo whose selected cells all pass, written as pip/uv constraints.

Pure: it reads a grid (``grid.Grid``) and returns a ``SafePins`` that the text functions render.
A cell counts only when it passed; a skipped cell was not checked, so it does not qualify a combo.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ftcompat.core.domain import RECORDED, STACK
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
# Pinned alongside the stack because the cases ran with them (datasets 4 broke TRL 0.13's loader).


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
    from ftcompat.config.matrix import suggest
    from ftcompat.core.errors import InputError

    columns = [c.column for c in grid.cells]
    cases = sorted({c.split("[", 1)[0] for c in columns})
    for sel in selectors:
        if not any(match_column(sel, col) for col in columns):
            raise InputError(f"--cases {sel!r} selects no cell of {source}{suggest(sel.split('[', 1)[0], cases)}")


def write_all(folder: Path, files: Mapping[str, str]) -> None:
    """Write the answer's files together: each to a temp file first, then all renamed into place.

    A full disk shows while writing the temp files, before any old file is replaced, so the folder
    never holds half of one answer and half of another.
    """
    import os
    import tempfile

    from ftcompat.harness.cellfile import _failed

    folder = Path(folder)
    temps: dict[Path, str] = {}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
            temps[folder / name] = tmp
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                os.fchmod(fh.fileno(), 0o644)
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
    except OSError as exc:
        for tmp in temps.values():
            Path(tmp).unlink(missing_ok=True)
        raise _failed(folder / next(iter(files)), exc) from exc
    for dest, tmp in temps.items():
        os.replace(tmp, dest)


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


def _header(sp: SafePins) -> list[str]:
    known = "tolerated" if sp.allow_known else "counted as failures"
    return [f"# ftcompat safe pins: combo {sp.pick.combo}, all {sp.pick.checked} selected cells pass",
            f"# cases: {' '.join(sp.selectors)}; known issues {known}",
            f"# grid generated {sp.source['generated_at']} on {', '.join(sp.source['devices'])}"]


def constraints_text(sp: SafePins) -> str:
    """A constraints file for ``pip install -c`` / ``uv pip install -c``: the picked combo's versions.

    The ``!=`` lines after them keep the versions the grid blames out, should a pin above be loosened.
    """
    if sp.pick is None:
        raise ValueError("no combo qualifies; there is nothing to pin")
    lines = _header(sp)
    for p in RECORDED:
        if sp.pick.versions.get(p):
            lines.append(f"{p}=={public(sp.pick.versions[p])}")
    avoid = [(a.package, a.version) for adv in sp.packages for a in adv.avoid]
    if avoid:
        lines.append("# versions the grid shows failing a selected case (see the report for which):")
        lines.extend(f"{p}!={v}" for p, v in avoid)
    return "\n".join(lines) + "\n"


def requirements_text(sp: SafePins) -> str:
    """A requirements snippet: the six stack packages at the picked versions, with the other good ones."""
    if sp.pick is None:
        raise ValueError("no combo qualifies; there is nothing to pin")
    lines = _header(sp)
    for adv in sp.packages:
        if not adv.picked:
            continue
        others = [v for v in adv.known_good if v != adv.picked]
        note = f"  # also good in this grid: {', '.join(others)}" if others else ""
        lines.append(f"{adv.package}=={adv.picked}{note}")
    return "\n".join(lines) + "\n"


def report_text(sp: SafePins) -> str:
    """A Markdown account of the pick, per package, or of why nothing qualifies."""
    lines = ["# Safe pins", "",
             f"Cases: `{' '.join(sp.selectors)}`; known issues "
             f"{'tolerated (their workarounds apply)' if sp.allow_known else 'count as failures'}. "
             f"Grid generated {sp.source['generated_at']} on {', '.join(sp.source['devices'])}.", ""]
    if sp.pick is None:
        lines += ["**No combo qualifies**: none ran the selected cases with every cell passing.", "",
                  "Closest combos:", ""]
        for v in sp.closest():
            lines.append(f"- `{v.combo}` ({_versions(v)}): {len(v.blockers)} of {v.checked} cells do not pass")
            lines += [f"  - `{c.column}`: {c.status.value}: {first_line(c.signature, 160)}"
                      for c in v.blockers[:8]]
        return "\n".join(lines) + "\n"
    lines += [f"Picked **`{sp.pick.combo}`** ({_versions(sp.pick)}): all {sp.pick.checked} selected cells pass."]
    if sp.pick.tolerated:
        lines += ["", "Known failures tolerated in it (apply the workaround):"]
        lines += [f"- `{c.column}`: {c.known_issue['url']}: {c.known_issue.get('workaround')}"
                  for c in sp.pick.tolerated]
    for adv in sp.packages:
        lines += ["", f"## {adv.package} {adv.picked}", "",
                  f"- known good: {', '.join(adv.known_good) or 'none'}"]
        for a in adv.avoid:
            lines.append(f"- avoid `{a.package}!={a.version}`:")
            lines += [f"  - {_blame_line(b)}" for b in _grouped(a.blames)]
        for version, why in adv.newer:
            lines.append(f"- newer {version} not picked: {why}")
    if sp.unattributed:
        lines += ["", "## Failures not attributed to one package", "",
                  "Several package versions differ from every passing combo; `ftcompat bisect` finds which:", ""]
        by_column: dict[str, list[Record]] = {}
        for c in sp.unattributed:
            by_column.setdefault(c.column, []).append(c)
        lines += [f"- `{col}` in {', '.join(c.combo for c in cs)}: {first_line(cs[0].signature, 160)}"
                  for col, cs in by_column.items()]
    return "\n".join(lines) + "\n"


def _grouped(blames: Sequence[Blame]) -> list[tuple[list[Blame], str, str]]:
    """Blames sharing a signature and a reason, together: one line per failure, not per column."""
    groups: dict[tuple[str, str], list[Blame]] = {}
    for b in blames:
        groups.setdefault((b.signature, b.because), []).append(b)
    return [(bs, sig, why) for (sig, why), bs in groups.items()]


def _blame_line(group: tuple[list[Blame], str, str]) -> str:
    blames, signature, because = group
    columns = ", ".join(f"`{b.column}`" for b in blames)
    combos = sorted({c for b in blames for c in b.combos})
    verb = "fails" if len(blames) == 1 else "fail"
    return f"{columns} {verb} in {', '.join(combos)}: {first_line(signature, 160)} ({because})"


def _versions(v: ComboVerdict) -> str:
    return ", ".join(f"{p} {public(v.versions.get(p))}" for p in STACK if v.versions.get(p))
