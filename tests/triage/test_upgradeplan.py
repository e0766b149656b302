"""``ftcompat upgrade``'s judgement: targets, the requirements that move as little as possible, flips."""

import pytest
from conftest import record

from ftcompat.core.domain import KnownIssue, frozen_map
from ftcompat.core.errors import InputError
from ftcompat.triage import upgradeplan

CURRENT = {"torch": "2.13.0+cpu", "transformers": "4.53.3", "trl": "0.19.1", "peft": "0.16.0",
           "bitsandbytes": "0.46.1", "accelerate": "1.9.0"}


def test_targets_are_latest_or_exact_stack_pins():
    assert upgradeplan.parse_targets(["latest"]) == (True, [])
    latest, to = upgradeplan.parse_targets(["trl==0.20.0"])
    assert not latest and [str(k) for k in to] == ["trl==0.20.0"]
    for bad in (["trl>=0.20"], ["numpy==2.0.0"], ["trl"]):
        with pytest.raises(InputError):
            upgradeplan.parse_targets(bad)


def test_the_target_holds_everything_else_unless_freed():
    _, to = upgradeplan.parse_targets(["trl==0.20.0"])
    assert upgradeplan.target_requirements(CURRENT, to, False) == [
        "torch==2.13.0", "transformers==4.53.3", "trl==0.20.0", "peft==0.16.0", "bitsandbytes==0.46.1",
        "accelerate==1.9.0"]
    assert upgradeplan.target_requirements(CURRENT, to, False, freed=("transformers",))[1] == "transformers>=4.53.3"
    assert upgradeplan.target_requirements(CURRENT, [], True) == ["torch", "transformers", "trl", "peft",
                                                              "bitsandbytes", "accelerate"]


def test_flips_and_the_known_issues_the_target_walks_into():
    before = [record("current::sft[legacy@m]", "pass"), record("current::sft[new@m]", "pass")]
    after = [record("t::sft[legacy@m]", "fail", signature="AssertionError: trainable params 0"),
             record("t::sft[new@m]", "pass"), record("t::other[x]", "fail")]
    flips = upgradeplan.flips(before, after, ["sft"])
    assert [(f.column, f.before, f.after) for f in flips] == [("sft[legacy@m]", "pass", "fail")]
    issue = KnownIssue("freeze", ("sft[legacy@*]",), frozen_map({"trl": ">=0.20.0,<0.23.1"}), "https://x/1", "s")
    other = KnownIssue("old", ("sft[*]",), frozen_map({"trl": "<0.20"}), "https://x/2", "s")
    target = {**CURRENT, "trl": "0.20.0"}
    assert upgradeplan.walks_into([issue, other], CURRENT, target, ["sft[legacy@m]"]) == [issue]
    assert upgradeplan.install_commands({"trl": "0.20.0", "torch": "2.13.0+cpu"}) == [
        "pip install trl==0.20.0 torch==2.13.0", "uv pip install trl==0.20.0 torch==2.13.0"]


def test_minimise_drops_each_extra_pin_every_cell_stays_green_without(monkeypatch, tmp_path):
    """The minimising loop's logic, with uv and the runs replaced: accelerate's pin is needed, peft's is not."""
    from ftcompat.flows import adhoc, search, upgrade
    from ftcompat.results.grid import Grid

    target = {**CURRENT, "trl": "0.20.0"}
    extra = {"peft": "0.17.0", "accelerate": "1.10.0"}
    monkeypatch.setattr(search, "compile_stack", lambda reqs, python: dict(r.split("==") for r in reqs))
    ran = []

    def fake_run(matrix, root, combo, out, log=print):
        ran.append(dict(combo.pins))
        green = combo.pins["accelerate"] == "1.10.0"  # only the accelerate pin matters in this story
        cell = record(f"{combo.id}::sft[a@m]", "pass" if green else "fail")
        return Grid((cell,), ({"id": combo.id},), ("sft[a@m]",))

    monkeypatch.setattr(adhoc, "run_adhoc", fake_run)
    kept = upgrade.minimise(None, tmp_path, target, extra, ["sft"], ("sft",), "3.11", log=lambda *_: None)
    assert kept == {"accelerate": "1.10.0"}
    assert [r["peft"] for r in ran] == ["0.16.0", "0.16.0"]  # peft tried at the target's version, then kept there
