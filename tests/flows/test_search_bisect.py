"""The search's bisection rule, with uv, the index and the runs replaced by a small world of releases.

In this world every trl from 0.20.0 fails the case with an AssertionError raised in the case file, so
no known issue and no traceback names a package; the grid's passing combo has trl 0.19.1.
"""

from conftest import grid_of, record
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from ftcompat.core.domain import STACK
from ftcompat.env import releases
from ftcompat.flows import adhoc, search
from ftcompat.results.grid import Grid
from ftcompat.triage import searchplan
from ftcompat.triage.pins import parse_keep
from ftcompat.triage.trials import Result, Verdict

TRL = ["0.18.2", "0.19.0", "0.19.1", "0.20.0", "0.21.0", "0.22.0", "0.22.1", "0.22.2"]
FIXED = {"torch": "2.13.0+cpu", "transformers": "4.55.4", "peft": "0.17.1", "bitsandbytes": "0.47.0",
         "accelerate": "1.10.1"}
COLUMN = "mine[config@-]"
KEEP = [parse_keep("torch==2.13.0"), parse_keep("transformers==4.55.4")]


def _grid_with_a_pass():
    versions = {**FIXED, "transformers": "4.53.3", "trl": "0.19.1"}
    cell = record(f"old::{COLUMN}", "pass", env={"versions": versions})
    return grid_of([cell], combos=[{"id": "old", "ran": True, "resolved": versions, "python": "3.11"}])


def _world(monkeypatch, tmp_path):
    """uv picks the newest trl the steps allow; a run fails from trl 0.20.0; the index lists TRL."""
    runs = []

    def resolve(keep, steps, python):
        spec = SpecifierSet(",".join(s.spec for s in steps if s.package == "trl"))
        return {**FIXED, "trl": max((v for v in TRL if v in spec), key=Version)}

    def run_adhoc(matrix, root, combo, out, log=print):
        venv = root / adhoc.WORK / "adhoc" / combo.id / "venv" / "bin"
        venv.mkdir(parents=True, exist_ok=True)
        (venv / "python").touch()
        runs.append(combo.pins["trl"])
        bad = Version(combo.pins["trl"]) >= Version("0.20.0")
        tb = f'  File "cases/mine.py", line 9, in test_config\nAssertionError: {bad}'
        cell = record(f"{combo.id}::{COLUMN}", "fail" if bad else "pass", env={"versions": dict(combo.pins)},
                      signature="AssertionError: max_seq_length not honoured" if bad else None,
                      traceback=tb if bad else None)
        return Grid((cell,), ({"id": combo.id, "ran": True, "resolved": dict(combo.pins)},), (COLUMN,))

    monkeypatch.setattr(search, "resolve", resolve)
    monkeypatch.setattr(adhoc, "run_adhoc", run_adhoc)
    monkeypatch.setattr(releases, "lister", lambda pre=False, index=None: lambda p, a, b: releases.between(TRL, a, b))
    return runs


class _Matrix:
    known_issues = ()


def _search(tmp_path, grid, **kw):
    return search.run(_Matrix(), tmp_path, [COLUMN], KEEP, [COLUMN], grid=grid, log=lambda *_: None, **kw)


def test_a_failure_that_names_no_package_is_bisected_from_the_grids_passing_combo(monkeypatch, tmp_path):
    runs = _world(monkeypatch, tmp_path)
    out = _search(tmp_path, _grid_with_a_pass())
    assert out.found and out.attempts[-1].versions["trl"] == "0.19.1"
    assert out.built == 4  # the candidate, the passing side, two steps; the answer is the passing side again
    first = out.attempts[0]
    assert first.versions["trl"] == "0.22.2" and (first.step.package, first.step.spec) == ("trl", "<0.20.0")
    assert "trl 0.20.0 is the first release that fails" in first.step.why and "from old" in first.step.why
    # the candidate, the passing side (the grid's trl with the kept transformers), then a binary search
    assert runs[:2] == ["0.22.2", "0.19.1"] and set(runs[3:-1]) <= {"0.20.0", "0.21.0", "0.22.0", "0.22.1"}
    notes = [a.note for a in out.attempts]
    assert notes.count("bisection step") == out.built - 1  # every env but the first candidate's was a step
    good = next(a for a in out.attempts if a.note and a.versions["trl"] == "0.19.1")
    assert good.versions["transformers"] == "4.55.4"  # the kept pin, put back on the grid's side
    assert "bisection step, passes every selected cell" in "\n".join(search.summary(out))
    evidence = out.evidence()
    assert len(evidence.combos) == len({c["id"] for c in evidence.combos}) == out.built
    again = _search(tmp_path, _grid_with_a_pass())
    assert again.found == out.found and again.built == 0  # every step's env and cells are cached


def test_a_bisection_stops_at_the_bounds_and_says_where(monkeypatch, tmp_path):
    _world(monkeypatch, tmp_path)
    out = _search(tmp_path, _grid_with_a_pass(), max_envs=2)
    assert not out.found and out.built == 2
    assert out.gave_up.startswith("built 2 environments (--max-envs 2), bisecting mine[config@-] from old")


def test_without_a_passing_side_the_search_steps_each_package_back_in_turn(monkeypatch, tmp_path):
    _world(monkeypatch, tmp_path)
    failing = record(f"old::{COLUMN}", "fail", env={"versions": {**FIXED, "trl": "0.19.1"}})
    no_pass = grid_of([failing], combos=[{"id": "old", "ran": True, "resolved": {**FIXED, "trl": "0.19.1"}}])
    out = _search(tmp_path, no_pass, max_envs=1)
    assert out.attempts[0].step.why.startswith("no package named") and out.attempts[0].step.package == "trl"
    assert not any(a.note for a in out.attempts)


def test_the_passing_side_keeps_the_kept_pins_and_none_when_nothing_passes():
    bad = {**FIXED, "trl": "0.22.2"}
    combo, good = searchplan.good_side(_grid_with_a_pass(), [COLUMN], KEEP, bad)
    assert combo == "old" and good == {**FIXED, "trl": "0.19.1"} and list(good) == list(STACK)
    ranged = searchplan.good_side(_grid_with_a_pass(), [COLUMN], [parse_keep("transformers>=4.53")], bad)[1]
    assert ranged["transformers"] == "4.53.3"  # a range the grid's version meets keeps it
    assert searchplan.good_side(grid_of([]), [COLUMN], KEEP, bad) is None


def test_a_bisection_answer_becomes_a_bound():
    found = Result(Verdict.FOUND, "regression", ("trl",), {"trl": "0.19.1"}, {"trl": "0.20.0"}, ("0.20.0",), "trl")
    assert searchplan.bisected_step(found, COLUMN, "old").spec == "<0.20.0"
    maybe = Result(Verdict.INCONCLUSIVE, "regression", ("trl",), {"trl": "0.19.1"}, {"trl": "0.22.0"},
                   ("0.20.0", "0.21.0", "0.22.0"), "trl", untested=("0.20.0", "0.21.0"))
    step = searchplan.bisected_step(maybe, COLUMN, "old")
    assert step.spec == "<0.20.0" and "one of 0.20.0, 0.21.0, 0.22.0 (0.20.0, 0.21.0 could not be tested)" in step.why
    fix = Result(Verdict.FOUND, "fix", ("peft", "trl"), {"peft": "0.17.0"}, {"peft": "0.16.0", "trl": "0.20.0"},
                 ("0.17.0",), "peft")
    step = searchplan.bisected_step(fix, COLUMN, "old")
    assert step.spec == ">=0.17.0" and "first release that passes with trl 0.20.0" in step.why
    assert searchplan.bisected_step(Result(Verdict.NO_FLIP, "regression"), COLUMN, "old") is None


def test_unnamed_means_no_known_issue_and_no_movable_package_in_the_traceback():
    versions = {**FIXED, "trl": "0.22.2"}
    plain = record(f"c::{COLUMN}", "fail", traceback='  File "cases/mine.py", line 9\nAssertionError')
    assert searchplan.unnamed(plain, versions, set())
    through = record(f"c::{COLUMN}", "fail", traceback='  File "site-packages/trl/x.py", line 1\nTypeError')
    assert not searchplan.unnamed(through, versions, set()) and searchplan.unnamed(through, versions, {"trl"})
    known = record(f"c::{COLUMN}", "fail", known_issue={"id": "k", "url": "u", "when": {"trl": ">=0.20"}})
    assert not searchplan.unnamed(known, versions, set())
