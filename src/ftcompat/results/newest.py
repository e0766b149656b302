"""Per stack package, the newest version the grid ran and how its cells came out.

A version newer than every row is untested, not safe: this table says where testing stops. Pure: it
reads a ``Grid``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ftcompat.core.domain import STACK
from ftcompat.core.status import FAILING, Status, Triage
from ftcompat.core.versions import key as version_key
from ftcompat.core.versions import public
from ftcompat.results.grid import Grid


@dataclass(frozen=True)
class Newest:
    """The newest version of one package the grid ran, where, when, and what its cells did."""

    package: str
    version: str
    combos: tuple[str, ...]
    counts: Mapping[str, int]
    first_failure: str | None  # a failure no known issue explains, if there is one
    finished_at: str | None
    known: int = 0  # failing cells a known issue explains


def newest_tested(grid: Grid) -> list[Newest]:
    """One row per stack package that any cell ran with: its newest version and that version's results."""
    rows = []
    for package in STACK:
        seen = [c for c in grid.cells if c.versions.get(package) and c.status != Status.NOT_INSTALLABLE]
        if not seen:
            continue
        top = max((public(c.versions[package] or "") for c in seen), key=version_key)  # every cell in seen has one
        mine = [c for c in seen if public(c.versions[package]) == top]
        counts: dict[str, int] = {}
        for c in mine:
            # A cell the broken environment stopped says nothing about the versions: counted apart.
            word = BROKEN if c.environment else c.status.value
            counts[word] = counts.get(word, 0) + 1
        bad = [c for c in mine if c.status in FAILING and not c.environment]
        known = [c for c in bad if c.triage == Triage.KNOWN]
        unexplained = sorted(c.id for c in bad if c not in known)
        rows.append(Newest(package, top, tuple(sorted({c.combo for c in mine})), counts,
                           unexplained[0] if unexplained else None,
                           max((c.finished_at or "" for c in mine), default="") or None, len(known)))
    return rows


BROKEN = "environment broken"


def result_text(row: Newest) -> str:
    """``23 pass, 11 fail; 9 of the failing explained by known issues, e.g. ...``: counts, most common first."""
    parts = [f"{n} {s}" for s, n in sorted(row.counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    failing = sum(n for s, n in row.counts.items() if s != BROKEN and Status(s) in FAILING)
    text = ", ".join(parts)
    if failing:
        text += f"; {row.known} of the {failing} failing explained by known issues"
    return text + (f"; not explained: `{row.first_failure}`" if row.first_failure else "")
