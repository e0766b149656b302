"""Commit bisection: the first commit of one package's history that flips a cell, everything else held (pure).

``ftcompat bisect CELL --commits PKG --good REF --bad REF`` screens for flakes first, as
transformers' ``check_bad_commit.py`` does: the bad side runs several times and the good side once,
and a cell that passes even once on the bad side is flaky, not bisected. The direction comes from
the history: the good commit older than the bad is a break, newer is a fix. Two refs on different
branches (a patch release's tag and main) are searched from their merge base, which runs first to
show it is on the older side's side. The search follows first parents, so a merged pull request is
one step (its merge commit, tested as such). Steps that cannot be judged are skipped, as ``git
bisect skip`` does, and a boundary among them is reported as a range.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ftcompat.core import gitref
from ftcompat.core.domain import frozen_map
from ftcompat.triage.trials import (
    BAD,
    FLAKY,
    GOOD,
    UNTESTABLE,
    BisectError,
    CellRun,
    Step,
    StepVerdict,
    Trial,
    Verdict,
    by_column,
    endpoint_check,
    flaky_note,
    judge,
    narrow,
    step_signature,
)

StepRunner = Callable[[dict, int], Trial]  # pins, runs -> what the step's environment gave


class History(Protocol):
    """What the search reads of a package's git history (``env.gitsource.Repo`` on a real one)."""

    def is_ancestor(self, older: str, newer: str) -> bool:
        """True when ``older`` is in ``newer``'s history."""
        ...

    def merge_base(self, a: str, b: str) -> str | None:
        """The best common ancestor, or None."""
        ...

    def first_parent_path(self, base: str, tip: str) -> list[str]:
        """Commits after ``base`` up to ``tip``, oldest first."""
        ...

    def info(self, sha: str) -> dict:
        """A commit's subject, date and parent count."""
        ...


@dataclass(frozen=True)
class Ask:
    """What to bisect: one package's commits between two of them, the other pins held."""

    pkg: str
    good: str  # commit ids, already resolved from the refs asked for
    bad: str
    held: Mapping[str, str | None]  # every other package's pin, the same at every step
    flake_runs: int = 3  # runs of the bad side before anything is bisected
    fix: bool | None = None  # a fix (bad older than good) or a break; None: what the history says


@dataclass(frozen=True)
class Found:
    """The answer: the verdict, and for a found one the commit that flips the cell and its neighbour."""

    verdict: Verdict
    direction: str  # "regression" (a break) or "fix"
    commit: str | None = None  # the first bad commit (regression) or first good one (fix)
    before: str | None = None  # the commit just before it on the path (last good / last bad)
    base: str | None = None  # where the path starts (the older side, or the merge base of the two)
    path_length: int = 0  # commits on the path from the base to the newer side
    untested: tuple[str, ...] = ()  # commits that could not be judged between the boundary's sides
    candidates: tuple[str, ...] = ()  # for an inconclusive one: the commits the flip may be
    note: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


class CommitBisector:
    """Find the commit of ``ask.pkg`` that flips the selected cells between a good and a bad commit."""

    def __init__(self, runner: StepRunner, history: History, ask: Ask, log=print):
        if ask.good == ask.bad:
            raise BisectError(f"--good and --bad are the same {ask.pkg} commit ({ask.good[:12]}): nothing to bisect")
        if ask.flake_runs < 1:
            raise BisectError("--flake-runs must be at least 1")
        self.runner, self.history, self.ask, self.log = runner, history, ask, log
        self.steps: list[Step] = []
        self.watch: tuple[str, ...] = ()
        self.bad_side: dict[str, CellRun] = {}
        self.notes: list[str] = []
        self.started = 0  # environments asked for, for the log's step numbers

    # -- steps ----------------------------------------------------------------------------------

    def pins(self, sha: str) -> dict:
        """The step's pins: the package at this commit, the rest held."""
        return {**self.ask.held, self.ask.pkg: gitref.pin(sha)}

    def _run(self, sha: str, phase: str, runs: int) -> Trial:
        subject = self.history.info(sha).get("subject", "")
        self.started += 1
        self.log(f"[{self.started}] {phase}: {self.ask.pkg} {sha[:12]} {subject[:70]} ...")
        return self.runner(self.pins(sha), runs)

    def _record(self, sha: str, phase: str, trial: Trial, verdict: StepVerdict, note: str) -> Step:
        step = Step(len(self.steps) + 1, phase, frozen_map(self.pins(sha)), frozen_map({self.ask.pkg: sha}),
                    verdict, note, trial)
        self.steps.append(step)
        runs = "+".join(f"{s:.0f}s" for s in trial.run_s) or "-"
        self.log(f"[{step.index}]   {verdict}{' (' + note + ')' if note else ''} "
                 f"[install {trial.install_s:.0f}s, run {runs}]")
        return step

    def step(self, sha: str, phase: str) -> Step:
        """Build and run one commit once, judged against the watched cells."""
        for known in self.steps:
            if known.moved.get(self.ask.pkg) == sha:
                return known
        trial = self._run(sha, phase, 1)
        verdict, note = judge(trial, self.watch, self.bad_side)
        return self._record(sha, phase, trial, verdict, note)

    # -- phases ---------------------------------------------------------------------------------

    def direction(self) -> tuple[str, str]:
        """``(direction, base)``: a break when good is the older side, a fix when bad is, from the merge base else."""
        good, bad, h, fix = self.ask.good, self.ask.bad, self.history, self.ask.fix
        if h.is_ancestor(good, bad):
            if fix:
                raise BisectError(f"--fix: the good {good[:12]} is older than the bad {bad[:12]}, so what flipped "
                                  "is a break; drop --fix")
            return "regression", good
        if h.is_ancestor(bad, good):
            if fix is False:
                raise BisectError(f"--break: the bad {bad[:12]} is older than the good {good[:12]}, so what flipped "
                                  "is a fix; drop --break")
            return "fix", bad
        base = h.merge_base(good, bad)
        if base is None:
            raise BisectError(f"{self.ask.pkg} {good[:12]} and {bad[:12]} share no history: no path between them "
                              "to bisect")
        # On two branches the history cannot say which side is older: a break (base -> bad) unless asked for a fix.
        return ("fix" if fix else "regression"), base

    def run(self) -> Found:
        """Screen the bad side for flakes, check the good side, then bisect the path between them."""
        direction, base = self.direction()
        bad_t = self._run(self.ask.bad, f"bad side, {self.ask.flake_runs} runs", self.ask.flake_runs)
        good_t = self._run(self.ask.good, "good side", 1)
        watch, problem = endpoint_check(good_t, bad_t)
        flaky = flaky_note(bad_t, watch or _columns(bad_t)) if bad_t.installed else ""
        if flaky:
            self._record(self.ask.bad, "bad side", bad_t, FLAKY, flaky)
            self._record(self.ask.good, "good side", good_t, StepVerdict.NOT_JUDGED, "")
            return Found(Verdict.FLAKY, direction, note=f"the bad side is flaky ({flaky}): not bisected")
        if problem:
            self._record(self.ask.good, "good side", good_t, _side(good_t, GOOD), step_signature(good_t))
            self._record(self.ask.bad, "bad side", bad_t, _side(bad_t, BAD), step_signature(bad_t))
            return Found(Verdict.ENDPOINTS_WRONG, direction, note=problem)
        self.watch = watch
        self.bad_side = {c: by_column(bad_t.runs[0])[c] for c in watch}
        self._record(self.ask.good, "good side", good_t, GOOD, "")
        self._record(self.ask.bad, "bad side", bad_t, BAD, step_signature(bad_t))
        older, newer = (self.ask.good, self.ask.bad) if direction == "regression" else (self.ask.bad, self.ask.good)
        if base != older:
            # Different branches: the base must behave as the older side does, or the flip is on the older
            # side's own branch (a fix only a release branch has), which this path cannot find.
            expected = GOOD if direction == "regression" else BAD
            step = self.step(base, "merge base")
            if step.verdict != expected:
                return Found(Verdict.ENDPOINTS_WRONG, direction, base=base,
                             note=f"the merge base {base[:12]} of the two sides is {step.verdict}, not {expected} "
                                  f"as the {'good' if direction == 'regression' else 'bad'} side: what differs is on "
                                  "that side's own branch, not on the path to the other")
            self.notes.append(f"{older[:12]} is not an ancestor of {newer[:12]}: searched from their merge base "
                              f"{base[:12]}")
        return self.search(direction, base, newer)

    def search(self, direction: str, base: str, newer: str) -> Found:
        """Binary-search the path from ``base`` (older side's verdict) to ``newer`` (the other's)."""
        path = [base, *self.history.first_parent_path(base, newer)]
        if path[-1] != newer:
            raise BisectError(f"{newer[:12]} is not reachable from {base[:12]} in {self.ask.pkg}'s history")
        end = narrow(len(path), lambda i: self.step(path[i], "search"), GOOD if direction == "regression" else BAD)
        lo, hi = end.lo, end.hi
        if end.flaky is not None:
            return Found(Verdict.FLAKY, direction, base=base, path_length=len(path) - 1,
                         note=f"{path[end.flaky_at or 0][:12]} (step {end.flaky.index}): {end.flaky.note}")
        untested = tuple(path[lo + 1:hi])
        if not untested:
            return Found(Verdict.FOUND, direction, path[hi], path[lo], base, len(path) - 1, notes=tuple(self.notes))
        return Found(Verdict.INCONCLUSIVE, direction, None, path[lo], base, len(path) - 1, untested,
                     tuple(path[lo + 1:hi + 1]), note=f"{len(untested)} commit(s) between {path[lo][:12]} and "
                                                      f"{path[hi][:12]} could not be tested", notes=tuple(self.notes))


def _columns(trial: Trial) -> tuple[str, ...]:
    return tuple(c.column for c in trial.runs[0]) if trial.runs else ()


def _side(trial: Trial, wanted: StepVerdict) -> StepVerdict:
    """How an endpoint looks on its own when the two sides are wrong."""
    if wanted == GOOD:
        ok = trial.installed and bool(trial.runs) and all(c.status.value == "pass" for c in trial.runs[0])
        return GOOD if ok else StepVerdict.NOT_GOOD
    ok = trial.installed and bool(trial.runs) and any(c.status.value == "fail" for c in trial.runs[0])
    return BAD if ok else StepVerdict.NOT_BAD


__all__ = ["Ask", "CommitBisector", "Found", "History", "StepRunner", "UNTESTABLE"]
