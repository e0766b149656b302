"""Release bisection's vocabulary: a step's runs, its verdict, the answer, and how a step is judged (pure).

``ftcompat bisect CELL --good PINS --bad PINS`` (or ``--good-combo``/``--bad-combo`` from a grid)
verifies both sides, finds which differing package (or pair) flips the selected cells, then
binary-searches that package's releases from the index, one new environment per step. The search
is ``bisector.Bisector``; the document it writes, ``bisectdoc``; the real step runner,
``run.bisect_run.EnvRunner``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ftcompat.core.domain import STACK, frozen_map
from ftcompat.core.errors import InputError
from ftcompat.core.status import Status
from ftcompat.core.versions import key as version_key

SCHEMA = "ftcompat-bisect/1"


class StepVerdict(str, enum.Enum):
    """What one step's environment said about the case."""

    GOOD = "good"  # every watched cell passes, as on the good side
    BAD = "bad"  # a watched cell fails as on the bad side
    UNTESTABLE = "untestable"  # not installable, no result, or a status that is neither pass nor fail
    FLAKY = "flaky"  # its runs disagree
    NOT_JUDGED = "not judged"  # an endpoint, when the other endpoint was flaky
    NOT_GOOD = "not good"  # the good endpoint, when it is not good
    NOT_BAD = "not bad"  # the bad endpoint, when it is not bad

    def __str__(self) -> str:
        return self.value


class Verdict(str, enum.Enum):
    """What the whole bisection found."""

    FOUND = "found"  # the release that flips the case
    INCONCLUSIVE = "inconclusive"  # a range: a boundary release could not be tested
    FLAKY = "flaky"  # a step's runs disagreed: no guess
    ENDPOINTS_WRONG = "endpoints-wrong"  # the good side is not good, or the bad side not bad
    NO_FLIP = "no-flip"  # no package, alone or in a pair, flips the case

    def __str__(self) -> str:
        return self.value


GOOD, BAD, UNTESTABLE, FLAKY = StepVerdict.GOOD, StepVerdict.BAD, StepVerdict.UNTESTABLE, StepVerdict.FLAKY
# The statuses a step can be judged on; anything else (skip, error, crash) makes it untestable.
TESTABLE = frozenset({Status.PASS, Status.FAIL})


class BisectError(InputError):
    """A bisection that cannot start: bad arguments, an unknown combo, nothing to bisect."""


# ---------------------------------------------------------------------------------------------
# Domain values


@dataclass(frozen=True)
class CellRun:
    """One selected cell's outcome in one run of a step."""

    column: str
    status: Status
    signature: str = ""

    def to_dict(self) -> dict:
        """Return the JSON form."""
        return {"column": self.column, "status": self.status.value, "signature": self.signature}


@dataclass(frozen=True)
class Trial:
    """What one step's environment gave: the selected cells of each run, or why it did not install."""

    runs: tuple[tuple[CellRun, ...], ...] = ()
    reason: str = ""
    install_s: float = 0.0
    run_s: tuple[float, ...] = ()
    env: Mapping = field(default_factory=lambda: frozen_map({}))

    @property
    def installed(self) -> bool:
        """True when the pins installed (whatever the cases then did)."""
        return not self.reason


@dataclass(frozen=True)
class Step:
    """One environment of the bisection: its pins, what moved from the good side, the verdict."""

    index: int
    phase: str
    pins: Mapping[str, str | None]
    moved: Mapping[str, str]
    verdict: StepVerdict
    note: str
    trial: Trial

    def to_dict(self) -> dict:
        """Return the JSON form."""
        t = self.trial
        return {"index": self.index, "phase": self.phase, "pins": dict(self.pins), "moved": dict(self.moved),
                "verdict": self.verdict.value, "note": self.note, "installed": t.installed,
                "install_reason": t.reason or None, "install_s": round(t.install_s, 2),
                "run_s": [round(s, 2) for s in t.run_s],
                "runs": [[c.to_dict() for c in run] for run in t.runs],
                "signature": step_signature(t), "env": dict(t.env)}


@dataclass(frozen=True)
class Result:
    """The bisection's answer.

    ``before``/``after``: the culprit's pins on the good and the bad side of the flip (the last good
    and first bad release in a regression; the first good and last bad in a fix). ``range``: the
    releases, oldest first, that may be the first bad (regression) or first good (fix) one when
    ``untested`` releases between them could not be tested.
    """

    verdict: Verdict
    direction: str
    culprit: tuple[str, ...] = ()
    before: Mapping[str, str] | None = None
    after: Mapping[str, str] | None = None
    range: tuple[str, ...] = ()
    searched: str | None = None
    note: str = ""
    untested: tuple[str, ...] = ()


Runner = Callable[[dict], Trial]
Between = Callable[[str, str, str], list]


def step_signature(trial: Trial) -> str:
    """The first failing (else first) signature of a trial's first run, or the install reason."""
    if trial.reason:
        return trial.reason
    cells = trial.runs[0] if trial.runs else ()
    failing = [c.signature for c in cells if c.status != Status.PASS and c.signature]
    return failing[0] if failing else ""


def differing(good: Mapping, bad: Mapping) -> list[str]:
    """Packages whose versions differ between the sides, stack order first."""
    names = [p for p in STACK if p in good or p in bad]
    names += sorted(p for p in {*good, *bad} if p not in STACK)
    return [p for p in names if same_version(good.get(p), bad.get(p)) is False]


def same_version(a: str | None, b: str | None) -> bool:
    """Whether two versions are the same release (``2.13.0+cpu`` is ``2.13.0``); None only equals None."""
    if a is None or b is None:
        return a is b
    return version_key(a) == version_key(b)


# ---------------------------------------------------------------------------------------------
# Verdicts (pure)


def by_column(cells) -> dict[str, CellRun]:
    """Index a run's cells by column."""
    return {c.column: c for c in cells}


def endpoint_check(good: Trial, bad: Trial) -> tuple[tuple[str, ...], str]:
    """The columns that flip (pass on the good side, fail on the bad) and, when the sides are wrong, why."""
    for name, trial in (("good", good), ("bad", bad)):
        if not trial.installed:
            return (), f"the {name} side is not installable: {trial.reason}"
        if not trial.runs or not trial.runs[0]:
            return (), f"the {name} side produced no selected cell"
    g, b = by_column(good.runs[0]), by_column(bad.runs[0])
    flips = [c for c in g if c in b and g[c].status != b[c].status]
    if not flips:
        seen = ", ".join(f"{c}: {g[c].status}" for c in g)
        return (), f"nothing flips: both sides give the same outcome ({seen})"
    wrong = [c for c in flips if g[c].status != Status.PASS or b[c].status != Status.FAIL]
    if not wrong:
        return tuple(flips), ""
    parts = [f"{c} is {g[c].status} on the good side{_sig(g[c])} and {b[c].status} on the bad side{_sig(b[c])}"
             for c in wrong]
    hint = ("; swap --good and --bad?" if all(g[c].status == Status.FAIL and b[c].status == Status.PASS for c in wrong)
            else "")
    return (), "the good side must pass and the bad side fail: " + "; ".join(parts) + hint


def _sig(cell: CellRun) -> str:
    return f" ({cell.signature})" if cell.signature else ""


def run_verdict(cells, watch: tuple[str, ...], bad_side: Mapping[str, CellRun]) -> tuple[StepVerdict, str]:
    """Good when every watched cell passes, bad when one fails as on the bad side, else untestable."""
    got = by_column(cells)
    missing = [c for c in watch if c not in got]
    if missing:
        return UNTESTABLE, f"no result for {', '.join(missing)}"
    odd = [got[c] for c in watch if got[c].status not in TESTABLE]
    if odd:
        return UNTESTABLE, "; ".join(f"{c.column}: {c.status}{_sig(c)}" for c in odd)
    fails = [got[c] for c in watch if got[c].status == Status.FAIL]
    if not fails:
        return GOOD, ""
    first = fails[0]
    other = bad_side.get(first.column)
    # Same status, other words (a count in an assertion, say) is still the bad side's failure.
    note = first.signature if not other or other.signature == first.signature else \
        f"{first.signature} (the bad side said: {other.signature})"
    return BAD, note


def flaky_note(trial: Trial, watch: tuple[str, ...]) -> str:
    """Empty when every run agrees on the watched cells' statuses, else both runs' outcomes."""
    seen = []
    for run in trial.runs:
        got = by_column(run)
        seen.append(tuple((c, got[c].status if c in got else "missing") for c in watch))
    if len(set(seen)) <= 1:
        return ""
    parts = []
    for i, run in enumerate(trial.runs, 1):
        got = by_column(run)
        cells = [got[c] for c in watch if c in got]
        parts.append(f"run {i}: " + ", ".join(f"{c.status}{_sig(c)}" for c in cells))
    return "runs disagree: " + "; ".join(parts)


def judge(trial: Trial, watch: tuple[str, ...], bad_side: Mapping[str, CellRun]) -> tuple[StepVerdict, str]:
    """A step's verdict over all its runs: untestable, flaky, or the runs' common verdict."""
    if not trial.installed:
        return UNTESTABLE, f"not installable: {trial.reason}"
    if not trial.runs:
        return UNTESTABLE, "no run produced a result"
    flaky = flaky_note(trial, watch)
    if flaky:
        return FLAKY, flaky
    return run_verdict(trial.runs[0], watch, bad_side)


@dataclass(frozen=True)
class Narrowed:
    """Where a binary search over a path stopped: the last index on the old side, the first on the new side,
    and the step that stopped it early when its runs disagreed."""

    lo: int
    hi: int
    flaky: Step | None = None
    flaky_at: int | None = None


def narrow(length: int, step_at: Callable[[int], Step], old_side: StepVerdict) -> Narrowed:
    """Binary-search a path whose first item behaves as ``old_side`` and whose last does not.

    ``step_at(i)`` builds and judges item ``i``. A step that is neither good nor bad is skipped (as ``git
    bisect skip``) and the search goes on around it; a flaky one stops it.
    """
    lo, hi, skipped = 0, length - 1, set()
    while True:
        pool = [i for i in range(lo + 1, hi) if i not in skipped]
        if not pool:
            return Narrowed(lo, hi)
        mid = min(pool, key=lambda i: (abs(i - (lo + hi) / 2), i))
        step = step_at(mid)
        if step.verdict == FLAKY:
            return Narrowed(lo, hi, step, mid)
        if step.verdict == old_side:
            lo = mid
        elif step.verdict in (GOOD, BAD):
            hi = mid
        else:
            skipped.add(mid)
