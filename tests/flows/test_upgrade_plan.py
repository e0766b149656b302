"""Upgrade judged against the current environment, without building anything: what is a regression, and what is not."""

from pathlib import Path

from conftest import record

from ftcompat.core.domain import Matrix
from ftcompat.flows import upgrade
from ftcompat.results.grid import Grid
from ftcompat.triage.pins import Keep

CURRENT = {"torch": "2.13.0", "transformers": "4.53.3", "trl": "0.19.1", "peft": "0.16.0", "accelerate": "1.9.0"}


def _grid(combo, statuses, versions):
    cells = tuple(record(f"{combo}::{col}", st, env={"versions": versions}) for col, st in statuses.items())
    return Grid(cells, ({"id": combo, "resolved": versions, "python": "3.11", "ran": True},),
                tuple(statuses), "t")


def _run(monkeypatch, before, after, searched):
    target = {**CURRENT, "trl": "0.20.0", "bitsandbytes": "0.46.1"}  # the resolver added a package
    monkeypatch.setattr(upgrade, "resolve_target", lambda *a: (target, ()))
    monkeypatch.setattr(upgrade.adhoc, "run_adhoc", lambda *a, **k: _grid("adhoc-t", after, target))
    monkeypatch.setattr(upgrade.search, "run", lambda *a, **k: searched.append(a) or _NoFind())
    return upgrade.run(Matrix((), {}, {}), Path("."), _grid("current", before, CURRENT), [Keep("trl", "==0.20.0")],
                       False, ["sft", "gen"], log=lambda *_: None)


class _NoFind:
    found, gave_up, attempts = None, "nothing qualified", ()


def test_an_upgrade_that_breaks_nothing_that_passed_is_green_and_cells_failing_on_both_sides_are_apart(monkeypatch):
    searched = []
    before = {"sft[a]": "pass", "gen[b]": "fail"}
    result = _run(monkeypatch, before, {"sft[a]": "pass", "gen[b]": "fail"}, searched)
    assert result.green and result.regressions == [] and result.both == ["gen[b]"] and not searched
    text = "\n".join(upgrade.report(result, [Keep("trl", "==0.20.0")], False))
    assert "## Cells that fail on both sides" in text and "- `gen[b]`" in text
    assert "None needed: no regression" in text
    pip = next(line for line in text.splitlines() if line.startswith("pip install"))
    assert "trl==0.20.0" in pip and "bitsandbytes" not in pip  # the environment never had it


def test_a_cell_that_passed_and_fails_on_the_target_is_a_regression_and_only_it_is_searched_for(monkeypatch):
    searched = []
    result = _run(monkeypatch, {"sft[a]": "pass", "gen[b]": "fail"}, {"sft[a]": "fail", "gen[b]": "fail"}, searched)
    assert not result.green and result.regressions == ["sft[a]"] and result.both == ["gen[b]"]
    assert searched and searched[0][2] == ["sft[a]"]  # the search must keep green what was green, nothing else


def test_a_target_that_cannot_load_what_the_current_environment_saves_is_a_regression_no_pin_is_sought_for(
        monkeypatch):
    from types import SimpleNamespace

    from ftcompat.core.domain import CaseSpec

    matrix = Matrix((), {}, {"sft": CaseSpec("sft"), "tok_handoff": CaseSpec("tok_handoff", handoff=True)})
    target = {**CURRENT, "transformers": "5.4.0"}
    sides = []
    monkeypatch.setattr(upgrade, "resolve_target", lambda *a: (target, ()))
    monkeypatch.setattr(upgrade.adhoc, "run_adhoc", lambda *a, **k: _grid("adhoc-t", {"sft[a]": "pass"}, target))
    monkeypatch.setattr(upgrade.handoff, "side_environment",
                        lambda root, spec, cases, *a: sides.append((spec.name, spec.pins, tuple(cases)))
                        or SimpleNamespace(combo=spec.name))
    # Loaded by itself, what the current environment saves loads; loaded by the target, it does not.
    monkeypatch.setattr(upgrade.handoff, "pair_combo", lambda made, used, cases: (made, used))
    monkeypatch.setattr(upgrade.handoff, "run_halves", lambda matrix, root, made, used, pair, log: [
        record("x::tok_handoff[json@tiny]", "pass" if used.combo == "from" else "fail", env={"versions": {}},
               signature=None if used.combo == "from" else "ValueError: Tokenizer class TokenizersBackend")])
    searched = []
    monkeypatch.setattr(upgrade.search, "run", lambda *a, **k: searched.append(a) or _NoFind())
    result = upgrade.run(matrix, Path("."), _grid("current", {"sft[a]": "pass"}, CURRENT),
                         [Keep("transformers", "==5.4.0")], False, ["*"], log=lambda *_: None,
                         current_env=upgrade.handoff.SideSpec("from", venv="/the/current/venv"))
    assert sides[0] == ("from", (), ("tok_handoff",)) and "transformers==5.4.0" in sides[1][1]
    assert result.regressions == ["tok_handoff[json@tiny]"] and result.handoff == ["tok_handoff[json@tiny]"]
    assert not result.green and not searched  # no pin of one environment makes it load another's artifact
    text = "\n".join(upgrade.report(result, [Keep("transformers", "==5.4.0")], False))
    assert "`tok_handoff[json@tiny]`: pass → **fail**: `ValueError: Tokenizer class TokenizersBackend`" in text
    assert "None sought: the target cannot load what the current environment saves" in text
