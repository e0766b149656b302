"""The bisection search: pure, with the step runner (``pins -> Trial``) and the release lister injected.

Tests drive it with fakes; ``run.bisect_run.EnvRunner`` is the real runner (install, run the harness).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from ftcompat.core.domain import frozen_map
from ftcompat.core.status import Status
from ftcompat.core.versions import key as version_key
from ftcompat.triage.trials import (
    BAD,
    FLAKY,
    GOOD,
    TESTABLE,
    UNTESTABLE,
    Between,
    BisectError,
    CellRun,
    Result,
    Runner,
    Step,
    StepVerdict,
    Trial,
    Verdict,
    by_column,
    differing,
    endpoint_check,
    flaky_note,
    judge,
    narrow,
    same_version,
    step_signature,
)


class Bisector:
    """Find the release that flips the selected cells between a good and a bad set of pins."""

    def __init__(self, runner: Runner, between: Between, good: Mapping, bad: Mapping, log=print):
        self.runner, self.between, self.log = runner, between, log
        self.good, self.bad = dict(good), dict(bad)
        self.steps: list[Step] = []
        self.memo: dict[tuple, Step] = {}
        self.watch: tuple[str, ...] = ()
        self.bad_side: dict[str, CellRun] = {}
        self.candidates: dict[str, list[str]] = {}
        self.notes: list[str] = []

    # -- steps ------------------------------------------------------------------------------

    def _moved(self, pins: Mapping) -> dict:
        return {p: v for p, v in pins.items() if v is not None and not same_version(v, self.good.get(p))}

    def _run(self, pins: Mapping, phase: str, index: int) -> Trial:
        what = " ".join(f"{p}=={v}" for p, v in self._moved(pins).items()) or "the good side's pins"
        self.log(f"[{index}] {phase}: {what} ...")
        return self.runner(dict(pins))

    def _record(self, pins: Mapping, phase: str, trial: Trial, verdict: StepVerdict, note: str) -> Step:
        step = Step(len(self.steps) + 1, phase, frozen_map(pins), frozen_map(self._moved(pins)), verdict, note,
                    trial)
        self.steps.append(step)
        self.memo[_key(pins)] = step
        runs = "+".join(f"{s:.0f}s" for s in trial.run_s) or "-"
        self.log(f"[{step.index}]   {verdict}{' (' + note + ')' if note else ''} "
                 f"[install {trial.install_s:.0f}s, run {runs}]")
        return step

    def step(self, pins: Mapping, phase: str) -> Step:
        """Run (or recall) one step with these pins and judge it against the watched cells."""
        known = self.memo.get(_key(pins))
        if known is not None:
            return known
        trial = self._run(pins, phase, len(self.steps) + 1)
        verdict, note = judge(trial, self.watch, self.bad_side)
        return self._record(pins, phase, trial, verdict, note)

    @property
    def untestable(self) -> list[dict]:
        """Steps that could not say good or bad, with why (skipped like ``git bisect skip``)."""
        return [{"step": s.index, "moved": dict(s.moved), "why": s.note} for s in self.steps
                if s.verdict == UNTESTABLE]

    @property
    def envs_built(self) -> int:
        """Environments whose pins installed (an uninstallable step builds nothing usable)."""
        return sum(1 for s in self.steps if s.trial.installed)

    # -- phases -----------------------------------------------------------------------------

    def run(self) -> Result:
        """Verify both sides, find the package(s) that flip the case, then search their releases."""
        diff = differing(self.good, self.bad)
        if not diff:
            raise BisectError("no package differs between the good and the bad side")
        # List every differing package's releases first: an unreachable index stops us before any env.
        for pkg in diff:
            found = self.between(pkg, self.good[pkg], self.bad[pkg])
            self.candidates[pkg] = [str(v) for v in sorted(found, key=version_key)]
        ok = self._endpoints()
        if ok is not None:
            return ok
        if len(diff) == 1:
            return self.search((diff[0],), diff[0], self.good)
        return self.locate(diff)

    def _endpoints(self) -> Result | None:
        """Run both sides; return a Result when they cannot be bisected (flaky or wrong), else None."""
        # Both sides run before either is judged: what flips is what differs between them.
        good_t, bad_t = self._run(self.good, "good side", 1), self._run(self.bad, "bad side", 2)
        flaky = {side: flaky_note(t, _columns(t)) if t.installed else "" for side, t in
                 (("good", good_t), ("bad", bad_t))}
        watch, problem = endpoint_check(good_t, bad_t)
        if any(flaky.values()):
            for pins, side, trial in ((self.good, "good", good_t), (self.bad, "bad", bad_t)):
                self._record(pins, f"{side} side", trial, FLAKY if flaky[side] else StepVerdict.NOT_JUDGED,
                             flaky[side])
            sides = " and ".join(f"the {side} side is flaky ({note})" for side, note in flaky.items() if note)
            return Result(Verdict.FLAKY, self.direction_guess(), note=sides)
        if problem:
            self._record(self.good, "good side", good_t, _side_verdict(good_t, "good"), step_signature(good_t))
            self._record(self.bad, "bad side", bad_t, _side_verdict(bad_t, "bad"), step_signature(bad_t))
            return Result(Verdict.ENDPOINTS_WRONG, self.direction_guess(), note=problem)
        self.watch = watch
        self.bad_side = {c: by_column(bad_t.runs[0])[c] for c in watch}
        self._record(self.good, "good side", good_t, GOOD, "")
        self._record(self.bad, "bad side", bad_t, BAD, step_signature(bad_t))
        return None

    def locate(self, diff: list[str]) -> Result:
        """Move one package at a time to its bad version, then pairs, until the case flips."""
        singles = {}
        for pkg in diff:
            step = self.step({**self.good, pkg: self.bad[pkg]}, f"move {pkg} alone")
            if step.verdict == FLAKY:
                return Result(Verdict.FLAKY, self.direction_guess(), (pkg,), note=f"step {step.index}: {step.note}")
            singles[pkg] = step.verdict
        flips = [p for p in diff if singles[p] == BAD]
        if len(flips) > 1:
            self.notes.append(f"{', '.join(flips)} each flip the case alone; searched {flips[0]} only")
        if flips:
            return self.search((flips[0],), flips[0], self.good)
        for p, q in itertools.combinations(diff, 2):
            step = self.step({**self.good, p: self.bad[p], q: self.bad[q]}, f"move {p} and {q}")
            if step.verdict == FLAKY:
                return Result(Verdict.FLAKY, self.direction_guess(), (p, q), note=f"step {step.index}: {step.note}")
            if step.verdict == BAD:
                return self.search_pair(p, q, singles)
        skipped = [p for p in diff if singles[p] == UNTESTABLE]
        why = f"; moving {', '.join(skipped)} alone was untestable" if skipped else ""
        return Result(Verdict.NO_FLIP, self.direction_guess(),
                      note=f"neither one package nor a pair of packages moved to the bad side flips the case{why}")

    def search_pair(self, p: str, q: str, singles: Mapping[str, str]) -> Result:
        """Search one member of a flipping pair with the other held at its bad version."""
        for inner, outer in ((p, q), (q, p)):
            # Holding ``outer`` at its bad version is a valid good end only if that alone was good.
            if singles[outer] == GOOD:
                self.notes.append(f"{p} and {q} flip the case only together; searched {inner} "
                                  f"with {outer} held at {self.bad[outer]}")
                # The searched package comes first in ``culprit``, so culprit[0] is the one with a boundary.
                return self.search((inner, outer), inner, {**self.good, outer: self.bad[outer]})
        return Result(Verdict.INCONCLUSIVE, self.direction_guess(), (p, q),
                      note=f"{p} and {q} flip the case together, but neither could be tested alone, so "
                           "neither one's releases can be searched with the other held")

    def search(self, culprit: tuple[str, ...], pkg: str, base: Mapping) -> Result:
        """Binary-search ``pkg``'s releases between the sides with everything else as in ``base``."""
        lo_v, hi_v = self.good[pkg], self.bad[pkg]
        direction = "regression" if version_key(lo_v) < version_key(hi_v) else "fix"
        found = self.candidates[pkg]
        # The path runs from the good side to the bad one, whichever is older.
        path = [lo_v, *(found if direction == "regression" else reversed(found)), hi_v]
        end = narrow(len(path), lambda i: self.step({**base, pkg: path[i]}, f"search {pkg}"), GOOD)
        lo, hi = end.lo, end.hi
        if end.flaky is not None:
            return Result(Verdict.FLAKY, direction, culprit, {pkg: path[lo]}, {pkg: path[hi]}, searched=pkg,
                          note=f"{pkg} {path[end.flaky_at or 0]} (step {end.flaky.index}): {end.flaky.note}")
        held = {p: base[p] for p in culprit if p != pkg}
        before, after = {pkg: path[lo], **held}, {pkg: path[hi], **held}
        if hi - lo == 1:
            flipped = path[hi if direction == "regression" else lo]
            return Result(Verdict.FOUND, direction, culprit, before, after, (flipped,), pkg)
        untested = tuple(sorted(path[lo + 1:hi], key=version_key))
        # Regression: the first bad is one of the untested or the first seen bad; fix: the first
        # good is one of the untested or the oldest seen good.
        maybe = path[lo + 1:hi + 1] if direction == "regression" else path[lo:hi]
        return Result(Verdict.INCONCLUSIVE, direction, culprit, before, after,
                      tuple(sorted(maybe, key=version_key)), pkg,
                      note=f"{pkg} {', '.join(untested)} could not be tested", untested=untested)

    def direction_guess(self) -> str:
        """Regression when the good side is older in most differing packages, else fix."""
        diff = differing(self.good, self.bad)
        older = sum(1 for p in diff if self.good[p] and self.bad[p]
                    and version_key(self.good[p]) < version_key(self.bad[p]))
        return "regression" if older * 2 >= len(diff) else "fix"


def _key(pins: Mapping) -> tuple:
    return tuple(sorted((p, str(version_key(v)) if v else None) for p, v in pins.items()))


def _columns(trial: Trial) -> tuple[str, ...]:
    return tuple(c.column for c in trial.runs[0]) if trial.runs else ()


def _side_verdict(trial: Trial, side: str) -> StepVerdict:
    """How an endpoint looks on its own, for the log of a bisection whose sides are wrong."""
    statuses = {c.status for c in trial.runs[0]} if trial.installed and trial.runs else set()
    if side == "good":
        return GOOD if statuses == {Status.PASS} else StepVerdict.NOT_GOOD
    return BAD if Status.FAIL in statuses and statuses <= TESTABLE else StepVerdict.NOT_BAD


