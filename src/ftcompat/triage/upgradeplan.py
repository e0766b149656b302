"""``ftcompat upgrade``'s judgement: which cells flip, which known issues the target walks into, what to run.

Pure: it compares two one-row grids (the current environment's and the target's) and the registry;
``run/upgrade_run`` builds and runs the target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ftcompat.core.domain import STACK
from ftcompat.core.errors import InputError
from ftcompat.core.record import Record
from ftcompat.core.selector import match_column
from ftcompat.core.status import Status
from ftcompat.core.versions import public
from ftcompat.triage.pins import Keep, parse_keep
from ftcompat.triage.searchplan import inside_issue


@dataclass(frozen=True)
class Flip:
    """One selected column whose status differs between the current environment and the target."""

    column: str
    before: str
    after: str
    signature: str | None


def parse_targets(args: Sequence[str]) -> tuple[bool, list[Keep]]:
    """``--to latest`` (True, []) or ``--to trl==0.24.0 ...`` (False, exact pins); anything else is refused."""
    if list(args) == ["latest"]:
        return True, []
    keep = [parse_keep(a) for a in args]
    for k in keep:
        if not k.spec.startswith("==") or "*" in k.spec or "," in k.spec or k.name not in STACK:
            raise InputError(f"--to {k}: give `latest` or exact pins of stack packages ({', '.join(STACK)}), "
                             "e.g. --to trl==0.24.0")
    return False, keep


def target_requirements(current: Mapping[str, str | None], to: Sequence[Keep], latest: bool,
                        freed: Sequence[str] = ()) -> list[str]:
    """The target's requirements: the ``--to`` pins exact, ``freed`` packages at their current version or newer,
    every other package held where it is (``latest``: every package free)."""
    wanted = {k.name: k.spec for k in to}
    out = []
    for package in STACK:
        now = current.get(package)
        if latest or not now:
            out.append(package)
        elif package in wanted:
            out.append(package + wanted[package])
        elif package in freed:
            out.append(f"{package}>={public(now)}")
        else:
            out.append(f"{package}=={public(now)}")
    return out


def flips(before: Sequence[Record], after: Sequence[Record], selectors: Sequence[str]) -> list[Flip]:
    """The selected columns whose status changed, with the target's real exception."""
    was = {c.column: c for c in before}
    out = []
    for cell in after:
        if not any(match_column(s, cell.column) for s in selectors):
            continue
        old = was.get(cell.column)
        if old is None or old.status != cell.status:
            out.append(Flip(cell.column, old.status.value if old else "not run", cell.status.value, cell.signature))
    return sorted(out, key=lambda f: (f.after == Status.PASS.value, f.column))


def walks_into(issues: Sequence, before: Mapping[str, str], after: Mapping[str, str],
               columns: Sequence[str]) -> list:
    """Known issues covering a selected column whose ranges the target's versions meet and the current ones do not."""

    return [i for i in issues if any(match_column(s, c) for s in i.cells for c in columns)
            and inside_issue(after, i.when) and not inside_issue(before, i.when)]


def install_commands(versions: Mapping[str, str]) -> list[str]:
    """Copy-paste lines that install exactly these stack versions with pip and with uv."""
    pins = " ".join(f"{p}=={public(v)}" for p, v in versions.items() if v and p in STACK)
    return [f"pip install {pins}", f"uv pip install {pins}"]
