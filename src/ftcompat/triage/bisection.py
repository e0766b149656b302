"""Release bisection: which release of which package flips a case, found in fresh environments.

``ftcompat bisect CELL --good PINS --bad PINS`` (or ``--good-combo``/``--bad-combo`` from a grid)
verifies both sides, finds which differing package (or pair) flips the selected cells, then
binary-searches that package's releases from the index, one new environment per step.

The search (``Bisector``) is pure: it takes a step runner ``pins -> Trial`` and a release lister,
so tests drive it with fakes. ``bisect_run.EnvRunner`` is the real one (install + run the harness).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ftcompat.core.domain import STACK, frozen_map
from ftcompat.core.errors import InputError
from ftcompat.core.versions import key as version_key

SCHEMA = "ftcompat-bisect/1"
GOOD, BAD, UNTESTABLE, FLAKY = "good", "bad", "untestable", "flaky"
TESTABLE = ("pass", "fail")


class BisectError(InputError):
    """A bisection that cannot start: bad arguments, an unknown combo, nothing to bisect."""


# ---------------------------------------------------------------------------------------------
# Domain values


@dataclass(frozen=True)
class CellRun:
    """One selected cell's outcome in one run of a step."""

    column: str
    status: str
    signature: str = ""

    def to_dict(self) -> dict:
        """Return the JSON form."""
        return {"column": self.column, "status": self.status, "signature": self.signature}


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
    verdict: str
    note: str
    trial: Trial

    def to_dict(self) -> dict:
        """Return the JSON form."""
        t = self.trial
        return {"index": self.index, "phase": self.phase, "pins": dict(self.pins), "moved": dict(self.moved),
                "verdict": self.verdict, "note": self.note, "installed": t.installed,
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

    verdict: str
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
    failing = [c.signature for c in cells if c.status != "pass" and c.signature]
    return failing[0] if failing else ""


def differing(good: Mapping, bad: Mapping) -> list[str]:
    """Packages whose versions differ between the sides, stack order first."""
    names = [p for p in STACK if p in good or p in bad]
    names += sorted(p for p in {*good, *bad} if p not in STACK)
    return [p for p in names if _same_version(good.get(p), bad.get(p)) is False]


def _same_version(a: str | None, b: str | None) -> bool:
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
    wrong = [c for c in flips if g[c].status != "pass" or b[c].status != "fail"]
    if not wrong:
        return tuple(flips), ""
    parts = [f"{c} is {g[c].status} on the good side{_sig(g[c])} and {b[c].status} on the bad side{_sig(b[c])}"
             for c in wrong]
    hint = ("; swap --good and --bad?" if all(g[c].status == "fail" and b[c].status == "pass" for c in wrong)
            else "")
    return (), "the good side must pass and the bad side fail: " + "; ".join(parts) + hint


def _sig(cell: CellRun) -> str:
    return f" ({cell.signature})" if cell.signature else ""


def run_verdict(cells, watch: tuple[str, ...], bad_side: Mapping[str, CellRun]) -> tuple[str, str]:
    """Good when every watched cell passes, bad when one fails as on the bad side, else untestable."""
    got = by_column(cells)
    missing = [c for c in watch if c not in got]
    if missing:
        return UNTESTABLE, f"no result for {', '.join(missing)}"
    odd = [got[c] for c in watch if got[c].status not in TESTABLE]
    if odd:
        return UNTESTABLE, "; ".join(f"{c.column}: {c.status}{_sig(c)}" for c in odd)
    fails = [got[c] for c in watch if got[c].status == "fail"]
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


def judge(trial: Trial, watch: tuple[str, ...], bad_side: Mapping[str, CellRun]) -> tuple[str, str]:
    """A step's verdict over all its runs: untestable, flaky, or the runs' common verdict."""
    if not trial.installed:
        return UNTESTABLE, f"not installable: {trial.reason}"
    if not trial.runs:
        return UNTESTABLE, "no run produced a result"
    flaky = flaky_note(trial, watch)
    if flaky:
        return FLAKY, flaky
    return run_verdict(trial.runs[0], watch, bad_side)


# ---------------------------------------------------------------------------------------------
# The search (pure: the runner and the release lister are injected)


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
        return {p: v for p, v in pins.items() if v is not None and not _same_version(v, self.good.get(p))}

    def _run(self, pins: Mapping, phase: str, index: int) -> Trial:
        what = " ".join(f"{p}=={v}" for p, v in self._moved(pins).items()) or "the good side's pins"
        self.log(f"[{index}] {phase}: {what} ...")
        return self.runner(dict(pins))

    def _record(self, pins: Mapping, phase: str, trial: Trial, verdict: str, note: str) -> Step:
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
            self._record(self.good, "good side", good_t, FLAKY if flaky["good"] else "not judged", flaky["good"])
            self._record(self.bad, "bad side", bad_t, FLAKY if flaky["bad"] else "not judged", flaky["bad"])
            sides = " and ".join(f"the {side} side is flaky ({note})" for side, note in flaky.items() if note)
            return Result(FLAKY, self.direction_guess(), note=sides)
        if problem:
            self._record(self.good, "good side", good_t, _side_verdict(good_t, "good"), step_signature(good_t))
            self._record(self.bad, "bad side", bad_t, _side_verdict(bad_t, "bad"), step_signature(bad_t))
            return Result("endpoints-wrong", self.direction_guess(), note=problem)
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
                return Result(FLAKY, self.direction_guess(), (pkg,), note=f"step {step.index}: {step.note}")
            singles[pkg] = step.verdict
        flips = [p for p in diff if singles[p] == BAD]
        if len(flips) > 1:
            self.notes.append(f"{', '.join(flips)} each flip the case alone; searched {flips[0]} only")
        if flips:
            return self.search((flips[0],), flips[0], self.good)
        for p, q in itertools.combinations(diff, 2):
            step = self.step({**self.good, p: self.bad[p], q: self.bad[q]}, f"move {p} and {q}")
            if step.verdict == FLAKY:
                return Result(FLAKY, self.direction_guess(), (p, q), note=f"step {step.index}: {step.note}")
            if step.verdict == BAD:
                return self.search_pair(p, q, singles)
        skipped = [p for p in diff if singles[p] == UNTESTABLE]
        why = f"; moving {', '.join(skipped)} alone was untestable" if skipped else ""
        return Result("no-flip", self.direction_guess(),
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
        return Result("inconclusive", self.direction_guess(), (p, q),
                      note=f"{p} and {q} flip the case together, but neither could be tested alone, so "
                           "neither one's releases can be searched with the other held")

    def search(self, culprit: tuple[str, ...], pkg: str, base: Mapping) -> Result:
        """Binary-search ``pkg``'s releases between the sides with everything else as in ``base``."""
        lo_v, hi_v = self.good[pkg], self.bad[pkg]
        direction = "regression" if version_key(lo_v) < version_key(hi_v) else "fix"
        found = self.candidates[pkg]
        # The path runs from the good side to the bad one, whichever is older.
        path = [lo_v, *(found if direction == "regression" else reversed(found)), hi_v]
        lo, hi, skipped = 0, len(path) - 1, set()
        while True:
            pool = [i for i in range(lo + 1, hi) if i not in skipped]
            if not pool:
                break
            mid = min(pool, key=lambda i: (abs(i - (lo + hi) / 2), i))
            step = self.step({**base, pkg: path[mid]}, f"search {pkg}")
            if step.verdict == FLAKY:
                return Result(FLAKY, direction, culprit, {pkg: path[lo]}, {pkg: path[hi]}, searched=pkg,
                              note=f"{pkg} {path[mid]} (step {step.index}): {step.note}")
            if step.verdict == GOOD:
                lo = mid
            elif step.verdict == BAD:
                hi = mid
            else:
                skipped.add(mid)
        held = {p: base[p] for p in culprit if p != pkg}
        before, after = {pkg: path[lo], **held}, {pkg: path[hi], **held}
        if hi - lo == 1:
            return Result("found", direction, culprit, before, after, (path[hi if direction == "regression" else lo],),
                          pkg)
        untested = tuple(sorted(path[lo + 1:hi], key=version_key))
        # Regression: the first bad is one of the untested or the first seen bad; fix: the first
        # good is one of the untested or the oldest seen good.
        maybe = path[lo + 1:hi + 1] if direction == "regression" else path[lo:hi]
        return Result("inconclusive", direction, culprit, before, after, tuple(sorted(maybe, key=version_key)), pkg,
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


def _side_verdict(trial: Trial, side: str) -> str:
    """How an endpoint looks on its own, for the log of a bisection whose sides are wrong."""
    statuses = {c.status for c in trial.runs[0]} if trial.installed and trial.runs else set()
    if side == "good":
        return GOOD if statuses == {"pass"} else "not good"
    return BAD if "fail" in statuses and statuses <= set(TESTABLE) else "not bad"


# ---------------------------------------------------------------------------------------------
# Report: JSON, Markdown, the bug-report line


def _pins_text(pins: Mapping | None) -> str:
    return ", ".join(f"{p} {v}" for p, v in (pins or {}).items()) or "-"


def report_line(selector: str, result: Result, considered: int, envs: int) -> str:
    """The one line to paste into a bug report."""
    cell = f"`{selector}`"
    over = f" over {considered} releases" if considered else ""
    tail = f"bisected by ftcompat{over}, {envs} environments"
    pkg = result.searched
    held = {p: v for p, v in (result.after or {}).items() if p != pkg}
    along = f" together with {_pins_text(held)}" if held else ""
    if result.verdict in ("found", "inconclusive") and pkg:
        regression = result.direction == "regression"
        word = "fails" if regression else "passes"
        edge = f"last good {result.before[pkg]}" if regression else f"last failing {result.after[pkg]}"
        if result.verdict == "found":
            return f"{cell} first {word} with {pkg} {result.range[0]}{along} ({edge}); {tail}"
        return (f"{cell} first {word} with one of {pkg} {', '.join(result.range)}{along} ({edge}; "
                f"untestable: {', '.join(result.untested)}); {tail}")
    return f"{cell}: bisection {result.verdict}: {result.note}; {tail}"


def to_json(selector: str, bisector: Bisector, result: Result, meta: Mapping | None = None) -> dict:
    """The ``ftcompat-bisect/1`` document."""
    regression = result.direction == "regression"
    considered = len(bisector.candidates.get(result.searched, [])) + 2 if result.searched else 0
    return {
        "schema": SCHEMA, "case": selector, "good": dict(bisector.good), "bad": dict(bisector.bad),
        "direction": result.direction, "culprit": list(result.culprit), "searched": result.searched,
        "verdict": result.verdict, "note": result.note, "notes": list(bisector.notes),
        "last_good": dict(result.before) if regression and result.before else None,
        "first_bad": dict(result.after) if regression and result.after else None,
        "first_good": dict(result.before) if not regression and result.before else None,
        "last_bad": dict(result.after) if not regression and result.after else None,
        "range": list(result.range), "untested_between": list(result.untested), "watched": list(bisector.watch),
        "steps": [s.to_dict() for s in bisector.steps], "envs_built": bisector.envs_built,
        "envs_attempted": len(bisector.steps), "candidates": bisector.candidates,
        "untestable": bisector.untestable,
        "line": report_line(selector, result, considered, bisector.envs_built),
        **({"meta": dict(meta)} if meta else {}),
    }


def to_markdown(doc: Mapping) -> str:
    """A human page for the bisection: the answer, then every step."""
    rows = [("verdict", doc["verdict"]), ("direction", doc["direction"]),
            ("good side", _pins_text(doc["good"])), ("bad side", _pins_text(doc["bad"])),
            ("culprit", ", ".join(doc["culprit"]) or "-")]
    for key in ("last_good", "first_bad", "first_good", "last_bad"):
        if doc.get(key):
            rows.append((key.replace("_", " "), _pins_text(doc[key])))
    rows += [("releases considered", "; ".join(f"{p}: {', '.join(v) or 'none in between'}"
                                               for p, v in doc["candidates"].items()) or "-"),
             ("environments built", f"{doc['envs_built']} (of {doc['envs_attempted']} attempted)"),
             ("untestable", "; ".join(f"step {u['step']} {_pins_text(u['moved'])}: {u['why']}"
                                      for u in doc["untestable"]) or "none")]
    meta = doc.get("meta") or {}
    rows += [(k.replace("_", " "), str(v)) for k, v in meta.items()]
    out = [f"# Bisection of `{doc['case']}`", "", doc["line"], ""]
    if doc["note"] or doc["notes"]:
        out += [f"> {n}" for n in [doc["note"], *doc["notes"]] if n] + [""]
    out += ["| | |", "|---|---|", *(f"| {k} | {_cell(v)} |" for k, v in rows), "", "## Steps", "",
            "| # | phase | moved from the good side | verdict | install | run | signature / note |",
            "|---|---|---|---|---|---|---|"]
    for s in doc["steps"]:
        runs = " + ".join(f"{x:.0f}s" for x in s["run_s"]) or "-"
        text = s["note"] or s["signature"]
        out.append(f"| {s['index']} | {s['phase']} | {_cell(_pins_text(s['moved']))} | {s['verdict']} | "
                   f"{s['install_s']:.0f}s | {runs} | {_cell(text)} |")
    out += ["", "## What each environment resolved to", "", "| # | python | versions |", "|---|---|---|"]
    for s in doc["steps"]:
        env = s.get("env") or {}
        versions = {p: v for p, v in sorted((env.get("versions") or {}).items())}
        shown = _pins_text(versions) if versions else s.get("install_reason") or "-"
        out.append(f"| {s['index']} | {env.get('python') or '-'} | {_cell(shown)} |")
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
