"""Compare two grids: new failures, fixed cells, flaky flips, and changes a moved release explains."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from ftcompat.core import gitref
from ftcompat.core.markdown import code
from ftcompat.core.record import Record
from ftcompat.core.status import FAILING, Status
from ftcompat.core.versions import public
from ftcompat.results.grid import Grid


class Kind(str, enum.Enum):
    """What kind of change a cell's new status is."""

    NEW_FAILURE = "new-failure"  # passed, now fails, and a resolved version moved
    FIXED = "fixed"  # failed, now passes, and a resolved version moved
    FLAKY = "flaky"  # another status with the very same versions and the same case code
    CASE_CHANGED = "case-changed"  # another status with the same versions, from changed case or harness code
    CHANGED = "changed"  # any other change with moved versions (e.g. pass -> skip)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Change:
    """One cell whose status differs between the two grids."""

    cell: str
    kind: Kind
    old: Status
    new: Status
    old_signature: str
    new_signature: str
    moved: tuple[tuple[str, str, str], ...] = ()
    tracking: bool = False

    def to_dict(self) -> dict:
        """JSON form, sorted keys when dumped."""
        return {"cell": self.cell, "kind": self.kind.value, "old": self.old.value, "new": self.new.value,
                "old_signature": self.old_signature, "new_signature": self.new_signature,
                "moved": [{"package": p, "old": a, "new": b} for p, a, b in self.moved],
                "tracking_newest": self.tracking}


@dataclass(frozen=True)
class Diff:
    """Every change, plus cells only one grid has."""

    old_at: str
    new_at: str
    changes: tuple[Change, ...]
    added: tuple[str, ...] = field(default_factory=tuple)
    removed: tuple[str, ...] = field(default_factory=tuple)

    def of(self, kind: Kind | str) -> list[Change]:
        """The changes of one kind."""
        return [c for c in self.changes if c.kind == Kind(kind)]

    def to_dict(self) -> dict:
        """JSON form."""
        return {"old": self.old_at, "new": self.new_at, "added": list(self.added), "removed": list(self.removed),
                **{k.value: [c.to_dict() for c in self.of(k)] for k in Kind}}


def _versions(cell: Record) -> dict[str, str]:
    # A release's local label (+cpu) is the same release; a commit's (+g294f35b) is another build of main.
    return {p: v if gitref.commit_of(v) else public(v) for p, v in cell.versions.items() if v}


def commit_range(package: str, old: str, new: str) -> str | None:
    """``trl g294f35b..gabc1234`` (with GitHub's compare link for a public package) when both sides are commits."""
    a, b = gitref.commit_of(old), gitref.commit_of(new)
    if not (a and b):
        return None
    web = gitref.PUBLIC.get(package)
    link = f" ({web}/compare/{a}...{b})" if web else ""
    return f"{package} commits {a}..{b}{link}"


def moved(old: Record, new: Record) -> tuple[tuple[str, str, str], ...]:
    """Packages whose resolved version differs between two records of the same cell."""
    a, b = _versions(old), _versions(new)
    return tuple((p, a.get(p, "-"), b.get(p, "-")) for p in sorted(set(a) | set(b)) if a.get(p) != b.get(p))


def kind_of(old: Status, new: Status, versions_moved: bool, code_changed: bool = False) -> Kind:
    """Classify a status change; the same versions and code giving another status is a flaky flip."""
    if not versions_moved:
        return Kind.CASE_CHANGED if code_changed else Kind.FLAKY
    if old == Status.PASS and new in FAILING:
        return Kind.NEW_FAILURE
    if old in FAILING and new == Status.PASS:
        return Kind.FIXED
    return Kind.CHANGED


def compare(old: Grid, new: Grid) -> Diff:
    """Diff two grids cell by cell."""
    before = {c.id: c for c in old.cells}
    after = {c.id: c for c in new.cells}
    tracking = {c["id"] for c in new.combos
                if any(v is None or gitref.ref_of(v) for v in (c.get("pins") or {}).values())}
    changes = []
    for cid in sorted(set(before) & set(after)):
        a, b = before[cid], after[cid]
        if a.status == b.status:
            continue
        m = moved(a, b)
        # The cache key hashes the versions with the case file, the harness modules it imports and
        # the model's spec: with the versions unmoved, a different key means the check itself changed.
        code = bool(a.cache_key and b.cache_key and a.cache_key != b.cache_key)
        changes.append(Change(cid, kind_of(a.status, b.status, bool(m), code), a.status, b.status,
                              a.signature or "", b.signature or "", m, b.combo in tracking))
    return Diff(old.generated_at, new.generated_at, tuple(changes),
                tuple(sorted(set(after) - set(before))), tuple(sorted(set(before) - set(after))))


def _moved_text(change: Change) -> str:
    if change.kind == Kind.CASE_CHANGED:
        return "same versions, changed case or harness code"
    if not change.moved:
        return "same versions"
    text = ", ".join(f"{p} {a} → {b}" for p, a, b in change.moved)
    ranges = [r for p, a, b in change.moved if (r := commit_range(p, a, b))]
    flipped = f"; flipped within {'; '.join(ranges)}" if ranges else ""
    return f"{text}{' (latest moved)' if change.tracking else ''}{flipped}"


TITLES = {Kind.NEW_FAILURE: "New failures (pass → fail/error)", Kind.FIXED: "Fixed (fail/error → pass)",
          Kind.FLAKY: "Flaky (status changed, resolved versions and case code did not)",
          Kind.CASE_CHANGED: "Case changed (same versions, the case or harness code changed)",
          Kind.CHANGED: "Other changes"}


def markdown(diff: Diff) -> str:
    """The diff as Markdown, for a job summary or a terminal."""
    out = [f"## Grid diff: {diff.old_at} → {diff.new_at}", ""]
    counts = ", ".join(f"{len(diff.of(k))} {TITLES[k].split(' (')[0].lower()}" for k in TITLES)
    out += [counts + f"; {len(diff.added)} new cells, {len(diff.removed)} gone.", ""]
    for kind, title in TITLES.items():
        items = diff.of(kind)
        if not items:
            continue
        out += [f"### {title}", "", "| cell | was | now | why |", "|---|---|---|---|"]
        for c in items:
            sig = c.new_signature if c.new in FAILING else c.old_signature
            out.append(f"| `{c.cell}` | {c.old} | {c.new} | {_moved_text(c)}{': ' + sig if sig else ''} |"
                       .replace("\n", " "))
        out.append("")
    if not diff.changes:
        out += ["No cell changed status.", ""]
    return "\n".join(out)


def issues(diff: Diff) -> list[dict]:
    """One regression-issue payload per new failure: title with the cell id, body to act on."""
    payloads = []
    for c in diff.of(Kind.NEW_FAILURE):
        body = "\n".join([
            f"{code(c.cell)} went from **{c.old}** to **{c.new}** between the runs of {diff.old_at} and {diff.new_at}.",
            "", f"Signature: {code(c.new_signature)}", "", f"What moved: {_moved_text(c)}", "",
            "Reproduce and file upstream:", "", "```bash",
            f"FTCOMPAT_CASES=\"{c.cell.split('::')[1].split('[')[0]}\" nox -s {c.cell.split('::')[0]}",
            f"ftcompat report \"{c.cell}\" --run", "```", "",
            "Opened by ftcompat's nightly run; it is updated while the cell keeps failing.",
        ])
        payloads.append({"cell": c.cell, "title": f"ftcompat regression: {c.cell}", "body": body,
                         "labels": ["ftcompat-regression"]})
    return payloads


def dumps(diff: Diff) -> str:
    """The diff as JSON with sorted keys."""
    return json.dumps(diff.to_dict(), indent=2, sort_keys=True) + "\n"
