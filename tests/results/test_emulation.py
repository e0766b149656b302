"""Stand-ins checked against the real code: cells of both kinds, same combo and variant, must agree."""

import json

import pytest
from conftest import ROOT, record

from ftcompat.results import emulation, gridload


def cell(combo, model, status, origin, step=None, exc=None, variant="remote_code", case="phi3_generate"):
    detail = {"standin": "ftcompat stand-in (src/...)", "real": "hub files at 0a67737c"}[origin]
    return record(f"{combo}::{case}[{variant}@{model}]", status, step=step, exc_type=exc,
                  signature=f"{exc}: boom" if exc else None, details={"remote_code": detail},
                  env={"python": "3.11", "device": {"type": "cuda"}, "versions": {}})


def test_same_step_and_exception_agree_and_a_different_one_is_a_finding():
    cells = [cell("gpu", "tiny-phi3", "fail", "standin", "model.generate(use_cache=True)", "AttributeError"),
             cell("gpu", "phi3-mini", "fail", "real", "model.generate(use_cache=True)", "AttributeError"),
             cell("gpu", "tiny-phi3", "pass", "standin", variant="remote_seen_tokens"),
             cell("gpu", "phi3-mini", "fail", "real", "AutoModelForCausalLM.from_pretrained", "KeyError",
                  variant="remote_seen_tokens")]
    assert [p.agree for p in emulation.pairs(cells)] == [True, False]
    [finding] = emulation.disagreements(cells)
    assert finding.text() == ("stand-in vs real code disagree: gpu::phi3_generate[remote_seen_tokens]: the stand-in "
                              "passed, the hub's own code failed at AutoModelForCausalLM.from_pretrained with "
                              "KeyError: boom")


def test_a_skipped_real_cell_or_one_side_alone_is_not_compared():
    cells = [cell("cpu", "tiny-phi3", "fail", "standin", "x", "E"), cell("cpu", "phi3-mini", "skip", "real")]
    assert emulation.pairs(cells) == [] and emulation.disagreements(cells) == []


def test_a_disagreement_is_a_warning_of_the_grid(tmp_path, fixture_matrix, fixture_cases):
    from ftcompat.results.grid import merge

    cells = [cell("old", "tiny-a", "pass", "standin", variant="remote", case="gen"),
             cell("old", "tiny-b", "fail", "real", "model.generate", "AttributeError", variant="remote", case="gen")]
    (tmp_path / "old.json").write_text(json.dumps({"combo": "old", "cells": [c.to_dict() for c in cells]}))
    grid = merge(fixture_matrix, fixture_cases, tmp_path)
    assert any(w.startswith("stand-in vs real code disagree: old::gen[remote]") for w in grid.warnings)


def test_the_committed_grid_has_no_disagreement_where_both_ran():
    found = emulation.pairs(gridload.load(ROOT / "results" / "grid.json").cells)
    if not found:
        pytest.skip("no cell of the committed grid ran a hub repo's own code (the GPU/Hub lane has not run): "
                    "nothing to compare the stand-in with yet")
    assert [p.text() for p in found if not p.agree] == []
