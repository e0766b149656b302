"""matrix.yaml validation: every class of bad input gets one error naming file, path and fix."""

import copy

import pytest

from ftcompat.matrix import MatrixError, load, parse


def problems(data, cases):
    with pytest.raises(MatrixError) as err:
        parse(data, "matrix.yaml", cases)
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
    assert "matrix.yaml: cases.gne: unknown case 'gne' (no file cases/gne.py); did you mean 'gen'?" in out


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
    assert out == ["matrix.yaml: models.real.revision: 'main' is not a full 40-hex commit"]


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
    from ftcompat.matrix import parse

    combo = parse(matrix_data, "matrix.yaml", fixture_cases).combo("canary")
    assert (combo.resolution, combo.exclude_newer) == ("lowest-direct", "2025-09-15")
    assert not combo.tracks_newest
    matrix_data["combos"][1]["resolution"] = "lowest"
    matrix_data["combos"][1]["exclude_newer"] = "last week"
    out = problems(matrix_data, fixture_cases)
    assert any("combos[1].resolution: 'lowest' is not a resolution; did you mean 'lowest-direct'?" in x
               for x in out)
    assert any("combos[1].exclude_newer: 'last week' is not a date" in x for x in out)
