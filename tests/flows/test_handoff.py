"""Handoffs: a case's producer half runs in one environment, its consumer half in another, one cell for both."""

import json
import sys

import pytest
from helpers import project

from ftcompat.cli import main
from ftcompat.config.cases import read_case
from ftcompat.config.matrix import load
from ftcompat.config.plan import combo_cases
from ftcompat.core.domain import Combo, frozen_map
from ftcompat.core.errors import InputError
from ftcompat.core.plan import Plan, PlanError, PlannedHandoff
from ftcompat.core.status import Status
from ftcompat.env.existing import Existing
from ftcompat.flows import adhoc, handoff
from ftcompat.flows.here import current_combo

# A handoff case that needs no ML stack: the producer writes what its interpreter is, the consumer reads it.
PASS_ON = '''"""Pass on: a file written by one interpreter is read by another."""

import json
import os
import sys

from ftcompat.harness import record, step


def produce_note(handoff):
    """Write a note naming this interpreter."""
    with step("write the note"):
        (handoff / "note.json").write_text(json.dumps({"by": sys.executable, "value": 42}))


def test_note(handoff):
    """Read the note the producer wrote."""
    with step("read the note"):
        note = json.loads((handoff / "note.json").read_text())
    record(value=note["value"])
    assert note["value"] == 42


def produce_producer_breaks(handoff):
    """The producer fails: nothing is left to load."""
    with step("save"):
        raise OSError("the producer could not save")


def test_producer_breaks(handoff):
    """Never reached with anything to load."""
    assert (handoff / "x").exists()


def produce_consumer_breaks(handoff):
    """The producer is fine."""
    (handoff / "x").write_text(os.environ.get("SIDE_MARK", "made"))


def test_consumer_breaks(handoff):
    """The consumer cannot take it."""
    with step("load"):
        raise TypeError("LoraConfig.__init__() got an unexpected keyword argument 'corda_config'")
'''


@pytest.fixture
def handoff_project(tmp_path):
    path = project(tmp_path, cases={"mine": {"models": ["tiny-llama"]}, "pass_on": {}})
    (tmp_path / "my_cases" / "pass_on.py").write_text(PASS_ON)
    return path


def _side(combo_id):
    return handoff.tagged(Combo(combo_id, "3.11", frozen_map({"torch": None}), ("current",)))


def test_a_handoff_case_has_both_halves_for_every_variant(tmp_path):
    path = tmp_path / "c.py"
    path.write_text(PASS_ON)
    assert read_case(path).handoff and read_case(path).variants == ("note", "producer_breaks", "consumer_breaks")
    path.write_text(PASS_ON.replace("def produce_note", "def _produce_note"))
    with pytest.raises(InputError, match="test_note has no produce_note"):
        read_case(path)
    path.write_text(PASS_ON.replace("def produce_note(handoff)", "def produce_note(handoff, model)"))
    with pytest.raises(InputError, match="produce_note takes model, which test_note does not"):
        read_case(path)
    path.write_text(PASS_ON.replace("def test_note(handoff)", "def test_note(tmp_path)"))
    with pytest.raises(InputError, match="test_note takes no `handoff` fixture"):
        read_case(path)


def test_handoff_cases_run_only_in_a_pair_and_the_others_never_there(handoff_project):
    matrix = load(handoff_project)
    plain = adhoc.adhoc_combo(adhoc.parse_pins([]), "3.11")
    assert "pass_on" not in combo_cases(matrix, plain) and "mine" in combo_cases(matrix, plain)
    assert combo_cases(matrix, handoff.tagged(plain)) == ["pass_on"]


def test_the_plan_says_which_half_the_harness_plays():
    plan = Plan(handoff=PlannedHandoff("produce", "/w/artifacts"))
    assert Plan.from_json(json.loads(json.dumps(plan.to_json()))).handoff == plan.handoff
    assert "handoff" not in Plan().to_json()
    with pytest.raises(PlanError, match="handoff.side: 'both' is not one of produce, consume"):
        Plan.from_json({"handoff": {"side": "both", "folder": "/w"}})


def test_a_pair_is_named_by_what_differs_and_a_hash_of_what_is_shared():
    def side(*pins):
        return handoff.tagged(adhoc.adhoc_combo(adhoc.parse_pins(list(pins)), "3.11"))

    new, old = side("torch==2.13.0", "peft==0.15.2"), side("torch==2.13.0", "peft==0.13.2")
    assert handoff.pair_id(new, old).startswith("peft0.15.2~peft0.13.2-")
    other = side("torch==2.6.0", "peft==0.15.2"), side("torch==2.6.0", "peft==0.13.2")
    assert handoff.pair_id(*other) != handoff.pair_id(new, old)  # the same difference on another torch
    assert handoff.pair_id(new, new) == f"{new.id}~{new.id}"


def test_a_real_handoff_between_two_interpreters_says_which_side_failed(handoff_project, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FTCOMPAT_WORKERS", "1")
    matrix = load(handoff_project)
    producer = Existing(_side("from-env"), sys.executable)
    consumer = Existing(_side("to-env"), sys.executable)
    out = tmp_path / "results" / "h.json"
    grid = handoff.run_handoff(matrix, tmp_path, producer, consumer, ["pass_on"], out, log=lambda *_: None)
    cells = {c.variant: c for c in grid.cells}
    assert {c.combo for c in grid.cells} == {"from-env~to-env"}
    assert cells["note"].status == Status.PASS and cells["note"].details["value"] == 42
    assert cells["note"].handoff["failed"] is None and cells["note"].handoff["producer"]["status"] == "pass"
    broke = cells["producer_breaks"]
    assert broke.status == Status.FAIL and broke.handoff["failed"] == "producer" and broke.step == "producer: save"
    assert "the producer could not save" in broke.signature
    assert broke.handoff["consumer"]["status"] == "error"  # it found nothing to load, and that is not the verdict
    took = cells["consumer_breaks"]
    assert took.status == Status.FAIL and took.handoff["failed"] == "consumer" and took.step == "load"
    assert "unexpected keyword argument 'corda_config'" in took.signature
    saved = json.loads(out.read_text())
    assert [c["id"] for c in saved["cells"]] == sorted(c["id"] for c in saved["cells"])
    assert saved["combos"][0]["description"].startswith("handoff: made in from-env")


@pytest.mark.parametrize("args, said", [
    (["--from", "peft==0.15.2", "--to", "peft==0.13.2", "--cases", "mine"],
     "'mine': mine runs in one environment, not a handoff"),
    (["--from", "peft==0.15.2", "--to", "peft==0.13.2", "--cases", "pass_onn"], "did you mean 'pass_on'"),
    (["--from", "peft==0.15.2"], "say what the to side is"),
    (["--from", "peft=0.15.2", "--to", "peft==0.13.2"], "is not a pin; write PACKAGE==VERSION"),
    (["--from", "peft==0.15.2", "--from-venv", ".", "--to", "peft==0.13.2"], "both name the from side"),
    (["--from", "peft==0.15.2", "--to-venv", "nowhere"], "--venv nowhere: no bin/python in it"),
])
def test_bad_input_is_exit_2_and_writes_nothing(handoff_project, tmp_path, monkeypatch, capsys, args, said):
    monkeypatch.chdir(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*"))
    assert main(["--config", str(handoff_project), "handoff", *args]) == 2
    assert said in capsys.readouterr().err
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_the_consumer_of_an_existing_environment_is_the_described_one(handoff_project):
    combo = handoff.tagged(current_combo(("pass_on",)))
    assert "handoff" in combo.tags and "pass_on" in combo_cases(load(handoff_project), combo)


def test_a_known_issue_can_name_the_producers_versions_so_a_same_version_pair_is_not_called_fixed():
    from ftcompat.core.domain import KnownIssue
    from ftcompat.core.record import Record
    from ftcompat.results.grid import triage

    issue = KnownIssue("peft-keys", ("pass_on[note]",), frozen_map({"peft": "<0.14.0", "from:peft": ">=0.15.2"}),
                       "https://example.org/1", "newer peft's keys")

    def cell(made, used, status):
        return Record("a~b::pass_on[note]", "a~b", "pass_on", "note", None, status, signature="TypeError: x",
                      env={"versions": {"peft": used}},
                      handoff={"producer": {"versions": {"peft": made}}}, present=frozenset({"handoff"}))

    assert triage(cell("0.15.2", "0.13.2", Status.FAIL), [issue]).triage.value == "known"
    assert triage(cell("0.13.2", "0.13.2", Status.PASS), [issue]).triage is None  # not "fixed?": never broken
    assert triage(cell("0.13.2", "0.13.2", Status.FAIL), [issue]).triage.value == "new"


def test_the_producers_versions_are_validated_like_the_consumers(handoff_project):
    import yaml

    from ftcompat.config.checks import MatrixError

    data = yaml.safe_load(handoff_project.read_text())
    data["known_issues"] = [{"id": "x", "cells": ["pass_on[*]"], "when": {"from:pefft": ">=0.15"},
                             "url": "https://example.org/1", "summary": "s"}]
    handoff_project.write_text(yaml.safe_dump(data))
    with pytest.raises(MatrixError) as err:
        load(handoff_project)
    assert any("'from:pefft'" in p.render("f") and "did you mean 'peft'" in p.render("f") for p in err.value.problems)
    data["known_issues"][0]["when"] = {"from:peft": ">=0.15", "peft": "<0.14"}
    handoff_project.write_text(yaml.safe_dump(data))
    ours = next(i for i in load(handoff_project).known_issues if i.id == "x")
    assert dict(ours.when) == {"from:peft": ">=0.15", "peft": "<0.14"}


def test_a_known_issue_about_handoff_cells_is_not_called_stale_by_a_grid_without_handoff_rows(handoff_project,
                                                                                               tmp_path):
    import yaml

    from ftcompat.config.cases import cases_of
    from ftcompat.results import grid as grid_mod

    data = yaml.safe_load(handoff_project.read_text())
    data["known_issues"] = [{"id": f"about-{c}", "cells": [f"{c}[*]"], "url": "https://example.org/1", "summary": "s"}
                            for c in ("pass_on", "mine")]
    handoff_project.write_text(yaml.safe_dump(data))
    matrix = load(handoff_project)
    (tmp_path / "cells").mkdir()
    warnings = grid_mod.merge(matrix, cases_of(matrix), tmp_path / "cells").warnings
    assert not any("about-pass_on" in w for w in warnings)
    assert any("'about-mine' covers no cell" in w for w in warnings)  # a single-environment case's issue still is


def test_a_project_without_handoff_cases_is_told_how_to_take_the_builtin_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = project(tmp_path)  # builtin_cases: [api_surface], and its own `mine`
    assert main(["--config", str(path), "handoff", "--from", "peft==0.15.2", "--to", "peft==0.13.2"]) == 2
    err = capsys.readouterr().err
    assert "has no handoff case" in err and "naming them in builtin_cases" in err


def test_a_config_pair_runs_both_sides_and_its_row_is_drawn_producer_to_consumer(handoff_project, tmp_path,
                                                                                monkeypatch):
    import yaml

    from ftcompat.config.cases import cases_of
    from ftcompat.core.cellfile import read_cells
    from ftcompat.flows import combo as combo_flow
    from ftcompat.results import grid as grid_mod
    from ftcompat.results.render import markdown

    data = yaml.safe_load(handoff_project.read_text())
    data["combos"].append({**data["combos"][0], "id": "serve", "cases": ["pass_on"]})
    (handoff_project.parent / "my_cases" / "pass_on_too.py").write_text(PASS_ON)
    data["cases"]["pass_on_too"] = {}
    data["handoffs"] = [{"from": "prod", "to": "serve"}]
    handoff_project.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("FTCOMPAT_WORKERS", "1")
    sides = []

    def side_env(root, combo, venv, protected):  # each side's venv, as this interpreter: no install here
        sides.append((combo.id, combo.cases, venv.relative_to(root).as_posix(), "side" in combo.tags))
        return Existing(combo, sys.executable)

    monkeypatch.setattr(handoff, "SideVenv", side_env)
    state = combo_flow.execute(combo_flow.COMBO, combo_flow.ComboState(
        tmp_path, "prod~serve", tmp_path / "unused", matrix_file=handoff_project, log=lambda *_: None))
    assert sides == [("prod", ("pass_on", "pass_on_too"), ".ftcompat/handoff/envs/prod/venv", True),
                     ("serve", ("pass_on", "pass_on_too"), ".ftcompat/handoff/envs/serve/venv", True)]
    got = {r.variant: r for r in read_cells(state.cell_file) if r.case == "pass_on"}
    assert {r.combo for r in got.values()} == {"prod~serve"}
    assert got["note"].status == Status.PASS and got["producer_breaks"].handoff["failed"] == "producer"
    assert got["consumer_breaks"].handoff == {**got["consumer_breaks"].handoff, "from": "prod", "to": "serve"}
    matrix = load(handoff_project)
    grid = grid_mod.merge(matrix, cases_of(matrix), tmp_path / "results" / "cells")
    row = next(c for c in grid.combos if c["id"] == "prod~serve")
    assert row["pair"] == {"from": "prod", "to": "serve"} and row["ran"]
    assert "| prod → serve " in markdown(grid)
    # A run narrowed to one case keeps the pair's cells of the other, as a combo's run does.
    first = {r.id: r for r in read_cells(state.cell_file)}
    combo_flow.execute(combo_flow.COMBO, combo_flow.ComboState(
        tmp_path, "prod~serve", tmp_path / "unused", matrix_file=handoff_project, selectors="pass_on",
        log=lambda *_: None))
    again = {r.id: r for r in read_cells(state.cell_file)}
    assert set(again) == set(first) and len(first) == 6
    assert all(again[i] == first[i] for i in first if "::pass_on_too[" in i)
    assert all(again[i].finished_at != first[i].finished_at for i in first if "::pass_on[" in i)
    # A combo that is only a handoff's side runs no case on its own: its session stops before building anything.
    alone = combo_flow.execute(combo_flow.COMBO, combo_flow.ComboState(
        tmp_path, "serve", tmp_path / "venv", matrix_file=handoff_project, log=lambda *_: None))
    assert alone.done == "no case of the config runs in serve" and alone.outcome is None
