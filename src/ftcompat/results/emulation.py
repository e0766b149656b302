"""Check emulations against the real thing: a stand-in's cells against the real code's, same versions.

A cell whose remote code was ftcompat's stand-in records ``details.remote_code`` starting with
``ftcompat stand-in``; one that ran a hub repo's own files records ``hub files at <revision>``.
Where a combo has both for the same case variant (the tiny model and the real checkpoint, on the
GPU/Hub lane), they must fail at the same step with the same exception type, or both pass. A
disagreement means the stand-in does not behave like the real code and is reported as a finding
(a grid warning). Pure: grid records in, disagreements out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ftcompat.core.record import Record
from ftcompat.core.status import NOT_CHECKED, Status

STANDIN = "ftcompat stand-in"
REAL = "hub files"
VERBS = {Status.FAIL: "failed", Status.ERROR: "could not set up", Status.CRASH: "crashed",
         Status.TIMEOUT: "timed out", Status.FLAKY: "was flaky"}


@dataclass(frozen=True)
class Pair:
    """The stand-in's cell and the real code's cell of one case variant in one combo."""

    combo: str
    case: str
    variant: str
    standin: Record
    real: Record

    @property
    def agree(self) -> bool:
        """True when both pass, or both fail at the same step with the same exception type."""
        return outcome(self.standin) == outcome(self.real)

    def text(self) -> str:
        """One line for the grid's warnings."""
        return (f"stand-in vs real code disagree: {self.combo}::{self.case}[{self.variant}]: the stand-in "
                f"{describe(self.standin)}, the hub's own code {describe(self.real)}")


def origin(record: Record) -> str | None:
    """``standin``, ``real`` or None: which remote code a cell ran."""
    text = str((record.details or {}).get("remote_code") or "")
    if text.startswith(STANDIN):
        return "standin"
    if text.startswith(REAL):
        return "real"
    return None


def outcome(record: Record) -> tuple:
    """What is compared: the status, and for a failure the step and the exception type."""
    if record.status == Status.PASS:
        return (Status.PASS,)
    return (record.status, record.step, record.exc_type)


def describe(record: Record) -> str:
    """``passed`` or ``failed at model.generate(use_cache=True) with AttributeError: ...``."""
    if record.status == Status.PASS:
        return "passed"
    at = f" at {record.step}" if record.step else ""
    verb = VERBS.get(record.status, record.status.value)
    return f"{verb}{at} with {record.signature or record.exc_type}"


def pairs(cells: Iterable[Record]) -> list[Pair]:
    """Every (combo, case, variant) with a stand-in cell and a real-code cell that both ran."""
    found: dict[tuple[str, str, str], dict[str, Record]] = {}
    for record in cells:
        kind = origin(record)
        if kind and record.status not in NOT_CHECKED:
            found.setdefault((record.combo, record.case, record.variant), {})[kind] = record
    return [Pair(*key, sides["standin"], sides["real"]) for key, sides in sorted(found.items())
            if {"standin", "real"} <= set(sides)]


def disagreements(cells: Iterable[Record]) -> list[Pair]:
    """The pairs whose outcomes differ: findings about the stand-in."""
    return [p for p in pairs(cells) if not p.agree]
