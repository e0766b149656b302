"""Planning: combo selection, the cells a combo produces, the harness's plan."""

import dataclasses
import json
from pathlib import Path

import pytest

from ftcompat.config.plan import combo_cases, harness_plan, planned_cells, select_combos
from ftcompat.core.plan import Plan, PlanError, PlannedCase


def test_select_by_glob_and_tag(fixture_matrix):
    assert [c.id for c in select_combos(fixture_matrix, ["o*"])] == ["old"]
    assert [c.id for c in select_combos(fixture_matrix, tags=["latest"])] == ["canary"]
    assert [c.id for c in select_combos(fixture_matrix)] == ["old", "canary", "gpu-nightly"]


def test_planned_cell_ids_are_stable(fixture_matrix, fixture_cases):
    ids = [c.id for c in planned_cells(fixture_matrix, fixture_matrix.combo("old"), fixture_cases)]
    assert ids == [
        "old::gen[native@tiny-a]", "old::gen[native@tiny-b]",
        "old::gen[remote@tiny-a]", "old::gen[remote@tiny-b]",
        "old::api[import]",
    ]


def test_combo_case_selector(fixture_matrix):
    assert combo_cases(fixture_matrix, fixture_matrix.combo("canary")) == ["gen"]


def test_harness_plan_carries_only_needed_models(fixture_matrix):
    plan = harness_plan(fixture_matrix, fixture_matrix.combo("canary"), Path("o.json"), Path("w")).to_json()
    assert sorted(plan["models"]) == ["tiny-a", "tiny-b"]
    assert plan["models"]["tiny-b"] == {"kind": "tiny", "arch": "phi3", "tokenizer": "llama3",
                                        "seed": 0, "needs": [], "config": {"hidden_size": 128}}
    assert plan["combo"]["pins"]["torch"] is None
    # no CUDA model on a cpu combo; the case's time limit from matrix.yaml
    assert plan["cases"] == {"gen": {"models": ["tiny-a", "tiny-b"], "timeout": 120.0, "subject": []}}


def test_cuda_models_only_in_gpu_combos(fixture_matrix, fixture_cases):
    cpu = [c.id for c in planned_cells(fixture_matrix, fixture_matrix.combo("old"), fixture_cases)]
    gpu = [c.id for c in planned_cells(fixture_matrix, fixture_matrix.combo("gpu-nightly"), fixture_cases)]
    assert not any("@real" in c for c in cpu)
    assert "gpu-nightly::gen[native@real]" in gpu and "gpu-nightly::api[import]" in gpu
    plan = harness_plan(fixture_matrix, fixture_matrix.combo("gpu-nightly"), Path("o"), Path("w")).to_json()
    assert plan["models"]["real"]["needs"] == ["cuda", "network"]


def test_a_plan_reads_back_as_written_and_a_damaged_one_names_its_key(fixture_matrix):
    plan = harness_plan(fixture_matrix, fixture_matrix.combo("canary"), Path("o.json"), Path("w"))
    keyed = dataclasses.replace(plan, cache_keys={"canary::gen[native@tiny-a]": "k"})
    assert Plan.from_json(json.loads(json.dumps(keyed.to_json()))) == keyed
    assert plan.case("gen").timeout == 120.0 and plan.case("not-planned") == PlannedCase()
    for damaged, where in (([], "the plan"), ({"cases": {"gen": {"models": "tiny-a"}}}, "cases.gen.models"),
                           ({"cases": {"gen": {"timeout": "soon"}}}, "cases.gen.timeout"),
                           ({"out": 3}, "out")):
        with pytest.raises(PlanError, match=where):
            Plan.from_json(damaged)
