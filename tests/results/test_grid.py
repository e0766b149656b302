"""Merging cell files into the grid."""

import json
import shutil

from conftest import FIXTURES, record

from ftcompat.core.domain import Cell
from ftcompat.core.status import Status, Triage
from ftcompat.results import grid as grid_mod
from ftcompat.results import gridload


def test_merge_orders_columns_and_records_resolved_versions(fixture_matrix, fixture_cases):
    grid = grid_mod.merge(fixture_matrix, fixture_cases, FIXTURES / "cells")
    assert grid.columns == ("gen[native@tiny-a]", "gen[native@tiny-b]", "gen[remote@tiny-a]",
                            "gen[remote@tiny-b]", "api[import]", "gen[native@real]", "gen[remote@real]")
    old = grid.combos[0]
    assert old["resolved"]["transformers"] == "4.47.1"
    assert old["device"]["type"] == "cpu"
    assert grid.combos[1]["resolved"] == {}
    assert grid.cell("old", "gen[remote@tiny-a]").status == Status.FAIL
    assert grid.cell("canary", "api[import]") is None


def test_planned_cells_a_combo_never_ran_are_not_run_not_errors(tmp_path, fixture_matrix, fixture_cases):
    """A case added after a combo's last run: its cells there are not run (the runner itself writes an error for
    every cell of a run it did not reach), and a warning says how to run them."""
    shutil.copy(FIXTURES / "cells" / "old.json", tmp_path / "old.json")
    data = json.loads((tmp_path / "old.json").read_text())
    data["cells"] = data["cells"][:2]
    (tmp_path / "old.json").write_text(json.dumps(data))
    grid = grid_mod.merge(fixture_matrix, fixture_cases, tmp_path)
    assert grid.cell("old", "api[import]") is None
    assert any(w.startswith("old: ") and "have not run in this combo yet" in w and "--combos old" in w
               for w in grid.warnings)


def test_stale_and_unknown_files_warn(tmp_path, fixture_matrix, fixture_cases):
    shutil.copy(FIXTURES / "cells" / "old.json", tmp_path / "old.json")
    (tmp_path / "gone.json").write_text('{"combo": "gone", "cells": []}')
    grid = grid_mod.merge(fixture_matrix, fixture_cases, tmp_path)
    assert any("gone" in w for w in grid.warnings)


def test_save_and_load_round_trip(tmp_path, fixture_matrix, fixture_cases):
    grid = grid_mod.merge(fixture_matrix, fixture_cases, FIXTURES / "cells")
    grid_mod.save(grid, tmp_path / "grid.json")
    text = (tmp_path / "grid.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    again = gridload.load(tmp_path / "grid.json")
    assert again.to_dict() == grid.to_dict()


def test_complete_adds_only_missing(fixture_matrix):
    combo = fixture_matrix.combo("old")
    planned = [Cell("old", "api", "import"), Cell("old", "gen", "native", "tiny-a")]
    have = [grid_mod.missing_record(planned[0], combo, Status.PASS, "")]
    out = grid_mod.complete(have, planned, combo, "harness stopped")
    assert [r.status for r in out] == [Status.PASS, Status.ERROR]
    assert out[1].signature == "harness stopped"


def test_triage_marks_known_fixed_and_new(fixture_matrix, fixture_cases):
    grid = grid_mod.merge(fixture_matrix, fixture_cases, FIXTURES / "cells")
    remote = grid.cell("old", "gen[remote@tiny-a]")
    assert remote.triage == Triage.KNOWN and remote.known_issue["id"] == "seen-tokens"
    assert grid.cell("old", "gen[native@tiny-a]").triage == Triage.FIXED
    assert grid.cell("old", "gen[native@tiny-b]").triage is None
    assert grid.cell("canary", "gen[native@tiny-a]").known_issue is None


def test_uncovered_failure_is_new(fixture_matrix, fixture_cases):
    import dataclasses

    bare = dataclasses.replace(fixture_matrix, known_issues=())
    grid = grid_mod.merge(bare, fixture_cases, FIXTURES / "cells")
    assert grid.cell("old", "gen[remote@tiny-a]").triage == Triage.NEW


def test_signature_hint_picks_the_issue_that_explains_the_failure(fixture_matrix):
    import dataclasses

    from ftcompat.core.domain import KnownIssue

    broad = KnownIssue("api-removed", ("gen",), {}, "https://x/1", "an API went away")
    precise = KnownIssue("import-broken", ("gen",), {}, "https://x/2", "an import broke",
                         signature="HybridCache")
    failed = record("old::gen[native@tiny-a]", "error",
                    signature="ImportError: cannot import name 'HybridCache' from 'transformers'")
    assert grid_mod.triage(failed, [broad, precise]).known_issue["id"] == "import-broken"
    other = failed.with_(signature="TypeError: unexpected keyword argument 'tokenizer'")
    assert grid_mod.triage(other, [precise, broad]).known_issue["id"] == "api-removed"
    assert grid_mod.triage(other, [precise]).triage == Triage.NEW
    passing = failed.with_(status=Status.PASS, signature="")
    assert grid_mod.triage(passing, [precise]).triage == Triage.FIXED
    assert dataclasses.replace(precise, signature="").explains("anything")


def test_cells_of_the_device_check_merge_from_a_second_folder(tmp_path, fixture_matrix, fixture_cases):
    cells, gpu = tmp_path / "cells", tmp_path / "gpu"
    cells.mkdir()
    gpu.mkdir()
    shutil.copy(FIXTURES / "cells" / "old.json", gpu / "old.json")
    (gpu / "device.json").write_text('{"device": "NVIDIA H200"}')  # the device's versions, not a cell file
    grid = grid_mod.merge(fixture_matrix, fixture_cases, (cells, gpu))
    assert grid.cell("old", "gen[remote@tiny-a]").status == Status.FAIL
    assert not [w for w in grid.warnings if "device.json" in w]
    # results/cells wins where both folders hold a combo's file
    data = json.loads((FIXTURES / "cells" / "old.json").read_text())
    data["cells"] = [dict(c, status="pass", signature=None) for c in data["cells"]]
    (cells / "old.json").write_text(json.dumps(data))
    merged = grid_mod.merge(fixture_matrix, fixture_cases, (cells, gpu))
    assert merged.cell("old", "gen[remote@tiny-a]").status == Status.PASS


def test_a_combos_environment_report_reaches_the_grid_with_its_known_issues(tmp_path, fixture_matrix, fixture_cases):
    import dataclasses

    from ftcompat.core.domain import KnownIssue
    from ftcompat.core.health import Defect, EnvReport, Fix, Health, Repair
    from ftcompat.results import render

    arrow = Defect("datasets", "ImportError", "pyarrow requires NumPy 2.0 or newer, found 1.26.4", "pyarrow", None,
                   {"pyarrow": "26.0.1", "numpy": "1.26.4"})
    report = EnvReport(Health(("datasets",)), Repair("cap", (Fix("pyarrow<26.0.0", "pyarrow", arrow.summary(),
                                                                 "26.0.0", "25.0.1"),), (arrow,), True))
    data = json.loads((FIXTURES / "cells" / "old.json").read_text())
    (tmp_path / "old.json").write_text(json.dumps({**data, "environment": report.to_json()}))
    issue = KnownIssue("arrow-numpy", (), {"pyarrow": ">=26.0.0", "numpy": "<2"}, "https://x/1", "undeclared",
                       signature="requires NumPy 2.0", environment=True)
    matrix = dataclasses.replace(fixture_matrix, known_issues=(*fixture_matrix.known_issues, issue))
    grid = grid_mod.merge(matrix, fixture_cases, tmp_path)
    env = grid.combos[0]["environment"]
    assert EnvReport.from_json(env) == report
    assert [i["id"] for i in env["known_issues"]] == ["arrow-numpy"]
    assert not any("arrow-numpy" in w for w in grid.warnings)  # it matched an environment: not stale
    text = render.terminal(grid)
    assert "old: repaired: pyarrow<26.0.0, now pyarrow 25.0.1 (before: import datasets fails" in text
    assert "old: known issue arrow-numpy: undeclared (https://x/1)" in text
    assert "## Environments" in render.markdown(grid)
