"""matrix.yaml validation: every class of bad input gets one error naming file, path and fix."""

import copy

import pytest
from conftest import FIXTURES

from ftcompat.config.checks import MatrixError
from ftcompat.config.matrix import load, parse


def problems(data, cases):
    with pytest.raises(MatrixError) as err:
        parse(data, str(FIXTURES / "matrix.yaml"), cases)
    return [p.render("matrix.yaml") for p in err.value.problems]


def test_fixture_matrix_parses(fixture_matrix):
    assert [c.id for c in fixture_matrix.combos] == ["old", "canary", "gpu-nightly"]
    canary = fixture_matrix.combo("canary")
    assert canary.unpinned == ("accelerate", "bitsandbytes", "peft", "torch", "transformers", "trl")
    assert canary.pins["datasets"] == "3.6.0"
    assert fixture_matrix.models["real"].needs == ("cuda", "network")
    assert fixture_matrix.models["tiny-a"].tokenizer == "llama2-chat"
    assert fixture_matrix.cases["gen"].models == ("tiny-a", "tiny-b", "real")


def test_repo_matrix_is_valid():
    from conftest import ROOT

    matrix = load(ROOT / "matrix.yaml")
    assert len(matrix.combos) >= 8
    assert len({c.id for c in matrix.combos}) == len(matrix.combos)


def test_unknown_top_level_key_suggests(matrix_data, fixture_cases):
    matrix_data["combo"] = matrix_data.pop("combos")
    out = problems(matrix_data, fixture_cases)
    assert "matrix.yaml: combo: unknown key 'combo'; did you mean 'combos'?" in out


def test_unknown_combo_key_names_path(matrix_data, fixture_cases):
    matrix_data["combos"][1]["pin"] = {}
    out = problems(matrix_data, fixture_cases)
    assert "matrix.yaml: combos[1].pin: unknown key 'pin'; did you mean 'pins'?" in out


def test_misspelled_package_suggests_stack_name(matrix_data, fixture_cases):
    pins = matrix_data["combos"][0]["pins"]
    pins["transfomers"] = pins.pop("transformers")
    out = problems(matrix_data, fixture_cases)
    assert any("combos[0].pins.transfomers: unknown package 'transfomers'; did you mean "
               "'transformers'?" in line for line in out)
    assert any("combos[0].pins: missing pin for 'transformers'" in line for line in out)


def test_malformed_version(matrix_data, fixture_cases):
    matrix_data["combos"][0]["pins"]["trl"] = "0.22.x"
    out = problems(matrix_data, fixture_cases)
    assert len(out) == 1
    assert out[0].startswith("matrix.yaml: combos[0].pins.trl: '0.22.x' is not a valid version")


def test_unquoted_version_number_is_rejected(matrix_data, fixture_cases):
    matrix_data["combos"][0]["pins"]["peft"] = 0.14
    out = problems(matrix_data, fixture_cases)
    assert "combos[0].pins.peft: 0.14 is a YAML number" in out[0]


def test_duplicate_combo_id(matrix_data, fixture_cases):
    matrix_data["combos"].append(copy.deepcopy(matrix_data["combos"][0]))
    out = problems(matrix_data, fixture_cases)
    assert out == ["matrix.yaml: combos[3].id: duplicate combo id 'old'"]


def test_unknown_case_suggests_closest(matrix_data, fixture_cases):
    matrix_data["cases"]["gne"] = {"models": ["tiny-a"]}
    out = problems(matrix_data, fixture_cases)
    assert "matrix.yaml: cases.gne: unknown case 'gne' (no file gne.py in cases/); did you mean 'gen'?" in out


def test_unknown_model_suggests_closest(matrix_data, fixture_cases):
    matrix_data["cases"]["gen"]["models"] = ["tiny-c"]
    out = problems(matrix_data, fixture_cases)
    assert out[0].startswith("matrix.yaml: cases.gen.models[0]: unknown model 'tiny-c'; did you mean")
    assert "'tiny-a'" in out[0]


def test_case_file_without_entry(matrix_data, fixture_cases):
    del matrix_data["cases"]["api"]
    out = problems(matrix_data, fixture_cases)
    assert out == ["matrix.yaml: cases: cases/api.py has no entry here; add `api: {models: [...]}`"]


def test_case_selector_matching_nothing(matrix_data, fixture_cases):
    matrix_data["combos"][1]["cases"] = ["phi3*"]
    out = problems(matrix_data, fixture_cases)
    assert out[0].startswith("matrix.yaml: combos[1].cases[0]: 'phi3*' selects no case")


def test_bad_python_and_id(matrix_data, fixture_cases):
    matrix_data["combos"][0]["python"] = "py3"
    matrix_data["combos"][0]["id"] = "Old Combo"
    out = problems(matrix_data, fixture_cases)
    assert any("combos[0].python: 'py3' is not a Python version" in line for line in out)
    assert any("combos[0].id: 'Old Combo' is not a lowercase id" in line for line in out)


def test_hub_model_needs_full_revision(matrix_data, fixture_cases):
    matrix_data["models"]["real"]["revision"] = "main"
    out = problems(matrix_data, fixture_cases)
    assert len(out) == 1
    assert out[0].startswith("matrix.yaml: models.real.revision: 'main' is a branch or tag, not a commit")
    # why (remote code at a moving revision) and how to find the commit
    assert "trust_remote_code" in out[0]
    assert "https://huggingface.co/org/model/commits/main" in out[0]
    assert "HfApi().model_info('org/model', revision='main').sha" in out[0]


@pytest.mark.parametrize("revision, says", [
    ("0a67737", "'0a67737' is a short commit id; write all 40 characters"),
    ("0A67737CC96D2554230F90338B163BC6380A2A85", "must be written in lowercase hex"),
    ("v1.0", "'v1.0' is a branch or tag, not a commit"),
    (12345, "12345 is not a commit id"),
])
def test_hub_revision_that_is_not_a_full_commit_says_why(matrix_data, fixture_cases, revision, says):
    matrix_data["models"]["real"]["revision"] = revision
    out = problems(matrix_data, fixture_cases)
    assert len(out) == 1 and out[0].startswith("matrix.yaml: models.real.revision: ") and says in out[0]


def test_hub_model_without_revision_is_refused(matrix_data, fixture_cases):
    del matrix_data["models"]["real"]["revision"]
    out = problems(matrix_data, fixture_cases)
    assert len(out) == 1
    assert out[0].startswith("matrix.yaml: models.real: missing required key 'revision': a hub model is pinned "
                             "to a full 40-character commit")
    assert "https://huggingface.co/org/model/commits/main" in out[0]


def test_model_kind_and_tokenizer(matrix_data, fixture_cases):
    matrix_data["models"]["tiny-a"]["kind"] = "tinny"
    matrix_data["models"]["tiny-b"]["tokenizer"] = "llama-3"
    out = problems(matrix_data, fixture_cases)
    assert "matrix.yaml: models.tiny-a.kind: 'tinny' is not a model kind; did you mean 'tiny'?" in out
    assert any("models.tiny-b.tokenizer: unknown tokenizer 'llama-3'; did you mean 'llama3'" in x
               for x in out)


def test_all_problems_reported_together(matrix_data, fixture_cases):
    matrix_data["combos"][0]["pins"]["trl"] = "bad version"
    matrix_data["combos"][1]["python"] = "three"
    assert len(problems(matrix_data, fixture_cases)) == 2


def test_invalid_yaml_names_line(tmp_path):
    (tmp_path / "cases").mkdir()
    bad = tmp_path / "matrix.yaml"
    bad.write_text("combos:\n  - id: x\n    pins: {torch: \n")
    with pytest.raises(MatrixError) as err:
        load(bad)
    assert str(bad) in str(err.value) and "line" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(MatrixError, match="no such file"):
        load(tmp_path / "matrix.yaml")


def test_known_issue_validation(matrix_data, fixture_cases):
    matrix_data["known_issues"][0]["when"] = {"transformers": "=>4.47"}
    matrix_data["known_issues"][1]["cells"] = ["gne[native@*]"]
    matrix_data["known_issues"][2]["url"] = "issue 3"
    matrix_data["known_issues"][2]["summry"] = "x"
    out = problems(matrix_data, fixture_cases)
    assert any("known_issues[0].when.transformers: '=>4.47' is not a version specifier" in x for x in out)
    assert any("known_issues[1].cells[0]: 'gne[native@*]' names no case; did you mean 'gen'?" in x for x in out)
    assert any("known_issues[2].url: 'issue 3' is not a link" in x for x in out)
    assert any("known_issues[2].summry: unknown key 'summry'; did you mean 'summary'?" in x for x in out)


def test_known_issue_covers_by_selector_and_versions(fixture_matrix):
    issue = fixture_matrix.known_issues[0]
    assert issue.covers("gen[remote@tiny-b]", {"transformers": "4.56.2"})
    assert not issue.covers("gen[remote@tiny-b]", {"transformers": "4.46.0"})
    assert not issue.covers("gen[native@tiny-b]", {"transformers": "4.56.2"})
    assert not issue.covers("gen[remote@tiny-b]", {})


def test_floor_and_as_of_fields(matrix_data, fixture_cases):
    import datetime

    matrix_data["combos"][1]["resolution"] = "lowest-direct"
    matrix_data["combos"][1]["exclude_newer"] = datetime.date(2025, 9, 15)
    from ftcompat.config.matrix import parse

    combo = parse(matrix_data, "matrix.yaml", fixture_cases).combo("canary")
    assert (combo.resolution, combo.exclude_newer) == ("lowest-direct", "2025-09-15")
    assert not combo.tracks_newest
    matrix_data["combos"][1]["resolution"] = "lowest"
    matrix_data["combos"][1]["exclude_newer"] = "last week"
    out = problems(matrix_data, fixture_cases)
    assert any("combos[1].resolution: 'lowest' is not a resolution; did you mean 'lowest-direct'?" in x
               for x in out)
    assert any("combos[1].exclude_newer: 'last week' is not a date" in x for x in out)


def test_a_case_timeout_must_be_positive_seconds(matrix_data, fixture_cases):
    from ftcompat.config.checks import MatrixError
    from ftcompat.config.matrix import parse

    matrix_data["cases"]["gen"]["timeout"] = "soon"
    with pytest.raises(MatrixError, match=r"cases\.gen\.timeout: 'soon' is not a number of seconds"):
        parse(matrix_data, "matrix.yaml", fixture_cases)


# ---- bad input on disk: what the user sees, and nothing already written changes (issue 6) ----------


def _project(tmp_path, matrix_text):
    """A checkout with the fixture cases, a matrix and a results folder holding a previous run."""
    import shutil

    from conftest import FIXTURES

    shutil.copytree(FIXTURES / "cases", tmp_path / "cases")
    shutil.copytree(FIXTURES / "cells", tmp_path / "results" / "cells")
    (tmp_path / "results" / "grid.json").write_text('{"schema": "ftcompat-grid/1"}\n')
    (tmp_path / "results" / "GRID.md").write_text("# the previous grid\n")
    (tmp_path / "matrix.yaml").write_text(matrix_text)
    return tmp_path


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_malformed_yaml_names_file_line_and_column_on_one_line(tmp_path):
    (tmp_path / "cases").mkdir()
    bad = tmp_path / "matrix.yaml"
    bad.write_text("version: 1\ncombos:\n  - id: x\n    pins: {torch: '2.5.1', trl: [0.19\n    python: '3.11'\n")
    with pytest.raises(MatrixError) as err:
        load(bad)
    (line,) = [p.render(str(bad)) for p in err.value.problems]
    assert line.startswith(f"{bad}: line 5, column 11: not valid YAML: ")
    assert "(while parsing a flow sequence that starts at line 4, column 33)" in line
    assert "\n" not in line


def test_a_key_given_twice_is_refused_instead_of_silently_keeping_the_last(tmp_path):
    (tmp_path / "cases").mkdir()
    bad = tmp_path / "matrix.yaml"
    bad.write_text("combos:\n  - id: x\n    pins: {trl: '0.19.1', peft: '0.16.0', trl: '0.20.0'}\n")
    with pytest.raises(MatrixError) as err:
        load(bad)
    assert [p.render("m") for p in err.value.problems] == [
        "m: line 3, column 43: duplicate key 'trl' (first given at line 3, column 12); "
        "YAML would silently keep only the last one"]


def test_yaml_merge_keys_may_still_override(tmp_path):
    import yaml

    from ftcompat.config.yamlfile import unique_key_loader as _unique_key_loader

    text = "base: &b {trl: '0.19.1', peft: '0.16.0'}\ncombo: {<<: *b, trl: '0.20.0'}\n"
    assert yaml.load(text, Loader=_unique_key_loader())["combo"] == {"trl": "0.20.0", "peft": "0.16.0"}  # noqa: S506


@pytest.mark.parametrize("text", [
    "combos:\n  - id: old\n    pins: {torch: \n",                      # malformed YAML
    "combos: []\nmodels: {}\ncases: {gen: {}, api: {}, gne: {}}\n",     # an unknown case
])
def test_render_on_a_broken_matrix_says_why_and_writes_nothing(tmp_path, capsys, text):
    from ftcompat.cli import main

    root = _project(tmp_path, text)
    before = _snapshot(root / "results")
    assert main(["--matrix", str(root / "matrix.yaml"), "render", "--results", str(root / "results")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ftcompat render: {root / 'matrix.yaml'}") and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 3  # one message (a line per problem), no follow-on noise
    assert _snapshot(root / "results") == before


def test_an_unknown_package_far_from_any_known_one_is_an_extra_pin(matrix_data, fixture_cases):
    """Only near misses are typos; other names are extra pins, checked on the index by validate --online."""
    matrix_data["combos"][0]["pins"]["flash-attn"] = "2.7.4"
    m = parse(matrix_data, "matrix.yaml", fixture_cases)
    assert m.combos[0].pins["flash-attn"] == "2.7.4"
    matrix_data["combos"][0]["pins"]["datsets"] = "3.6.0"
    assert problems(matrix_data, fixture_cases) == [
        "matrix.yaml: combos[0].pins.datsets: unknown package 'datsets'; did you mean 'datasets'?"]


def test_prerelease_lane_names_only_unpinned_packages(matrix_data, fixture_cases):
    matrix_data["combos"][1]["prerelease"] = True
    assert parse(matrix_data, "matrix.yaml", fixture_cases).combo("canary").prerelease == (
        "torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate")
    matrix_data["combos"][1]["prerelease"] = ["trl", "transformers"]
    assert parse(matrix_data, "matrix.yaml", fixture_cases).combo("canary").prerelease == ("transformers", "trl")
    assert parse(matrix_data, "matrix.yaml", fixture_cases).combo("old").prerelease == ()


def test_prerelease_lane_refuses_pinned_unknown_and_floor(matrix_data, fixture_cases):
    matrix_data["combos"][0]["prerelease"] = ["trl", "transfomers"]
    matrix_data["combos"][1]["prerelease"] = "yes"
    out = problems(matrix_data, fixture_cases)
    assert any("combos[0].prerelease[0]: trl is pinned to " in x and "only an unpinned (null) package" in x
               for x in out)
    assert any("combos[0].prerelease[1]: 'transfomers' is not one of this combo's pins; did you mean "
               "'transformers'?" in x for x in out)
    assert "matrix.yaml: combos[1].prerelease: expected true, false or a list of unpinned packages, got 'yes'" in out
    matrix_data["combos"][0]["prerelease"] = False
    matrix_data["combos"][1].update(prerelease=True, resolution="lowest-direct")
    assert problems(matrix_data, fixture_cases) == [
        "matrix.yaml: combos[1].prerelease: a pre-release lane takes the newest versions; it cannot be a "
        "lowest-direct combo"]


def test_overrides_force_a_pinned_version_and_must_match_the_pin(matrix_data, fixture_cases):
    pins = matrix_data["combos"][0]["pins"]
    matrix_data["combos"][0]["overrides"] = {"transformers": pins["transformers"]}
    combo = parse(matrix_data, "matrix.yaml", fixture_cases).combo("old")
    assert dict(combo.overrides) == {"transformers": pins["transformers"]}
    matrix_data["combos"][0]["overrides"] = {"transformers": "4.45.2", "trl": None}
    out = problems(matrix_data, fixture_cases)
    assert any("combos[0].overrides.transformers: overrides transformers==4.45.2, but the combo pins" in x for x in out)
    assert "matrix.yaml: combos[0].overrides.trl: an override needs an exact version" in out


def test_a_case_can_name_the_combos_it_runs_in(matrix_data, fixture_cases):
    from ftcompat.config.plan import combo_cases
    from ftcompat.flows.adhoc import adhoc_combo, parse_pins

    matrix_data["cases"]["gen"]["combos"] = ["old", "tag:gpu"]
    m = parse(matrix_data, "matrix.yaml", fixture_cases)
    runs = {c.id: "gen" in combo_cases(m, c) for c in m.combos}
    assert runs["old"] and runs["gpu-nightly"] and not runs["canary"]
    assert "gen" in combo_cases(m, adhoc_combo(parse_pins([]), "3.11"))  # asked for on the spot: it runs
    matrix_data["cases"]["gen"]["combos"] = ["olld", "tag:gpuu"]
    out = problems(matrix_data, fixture_cases)
    assert any("cases.gen.combos[0]: 'olld' selects no combo; did you mean 'old'?" in x for x in out)
    assert any("cases.gen.combos[1]: 'tag:gpuu' selects no combo" in x for x in out)


ENV_ISSUE = {"id": "arrow-numpy", "environment": True, "signature": "requires NumPy 2.0", "url": "https://x/1",
             "when": {"pyarrow": ">=26.0.0", "numpy": "<2"}, "summary": "pyarrow 26 needs NumPy 2, undeclared"}


def test_an_environment_issue_names_no_cells_and_any_distribution(matrix_data, fixture_cases):
    from ftcompat.config.matrix import parse

    matrix_data["known_issues"].append(dict(ENV_ISSUE))
    issue = parse(matrix_data, "matrix.yaml", fixture_cases).known_issues[-1]
    assert issue.environment and issue.cells == ()
    assert issue.matches("ImportError: pyarrow requires NumPy 2.0 or newer, found 1.26.4",
                         {"pyarrow": "26.0.1", "numpy": "1.26.4"})
    assert not issue.matches("ImportError: pyarrow requires NumPy 2.0 or newer", {"pyarrow": "26.0.1", "numpy": "2.0"})
    assert not issue.covers("gen[remote@tiny-b]", {"pyarrow": "26.0.1", "numpy": "1.26.4"})
    matrix_data["known_issues"][-1] = {**ENV_ISSUE, "cells": ["gen[*]"]}
    matrix_data["known_issues"].append({**ENV_ISSUE, "id": "other", "environment": False})
    out = problems(matrix_data, fixture_cases)
    assert any("cells: an environment issue (environment: true) matches the health probe's findings" in x for x in out)
    assert any("known_issues[4]: missing required key 'cells'" in x for x in out)
    assert any("when.pyarrow: unknown package 'pyarrow'" in x for x in out)


def test_an_alias_bomb_is_refused_quickly_and_no_message_echoes_an_unbounded_value(tmp_path, monkeypatch, capsys):
    import time

    from ftcompat.cli import main

    levels = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    (tmp_path / "matrix.yaml").write_text("\n".join(levels) + "\nversion: 1\ncombos:\n  - id: c\n    python: '3.11'\n"
                                          "    description: *a8\n    pins: {torch: null}\n")
    assert (tmp_path / "matrix.yaml").stat().st_size < 2000
    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    assert main(["--config", str(tmp_path / "matrix.yaml"), "validate"]) == 2
    assert time.monotonic() - start < 10
    err = capsys.readouterr().err
    assert "expands to more than 200,000 values through anchors and aliases" in err and len(err) < 2000


def test_a_long_value_in_a_problem_is_cut_short(matrix_data, fixture_cases):
    matrix_data["combos"][0]["python"] = ["x" * 100_000]
    from ftcompat.config.checks import MatrixError
    from ftcompat.config.matrix import parse

    with pytest.raises(MatrixError) as caught:
        parse(matrix_data, "matrix.yaml", fixture_cases)
    assert len(str(caught.value)) < 3000 and "… (cut)" in str(caught.value)


def test_torch_backend_is_a_pytorch_build(matrix_data, fixture_cases):
    matrix_data["combos"][0]["torch_backend"] = "cpu"
    matrix_data["combos"][1]["torch_backend"] = "cuda12"
    out = problems(matrix_data, fixture_cases)
    assert out == ["matrix.yaml: combos[1].torch_backend: 'cuda12' is not a PyTorch build: write cpu, a CUDA build "
                   "such as cu126, a ROCm build such as rocm6.4, xpu, or auto (what this machine's driver takes)"]
    del matrix_data["combos"][1]["torch_backend"]
    assert parse(matrix_data, "matrix.yaml", fixture_cases).combos[0].torch_backend == "cpu"


def test_a_case_naming_a_combo_whose_own_cases_leave_it_out_is_refused(matrix_data, fixture_cases):
    """The case would never run there: `canary` runs only `gen`, so `api` naming it is a mistake in one of the two."""
    matrix_data["cases"]["api"]["combos"] = ["canary"]
    out = problems(matrix_data, fixture_cases)
    assert out == ["matrix.yaml: cases.api.combos[0]: 'canary''s own cases (gen) leave api out, so it never runs "
                   "there; add it to them"]
