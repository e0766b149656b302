"""A project file extends the built-in library: merged, validated as strictly, errors naming the user's file."""

import textwrap

import pytest
import yaml
from conftest import ROOT
from helpers import CASE, PINS, project

from ftcompat.cli import main
from ftcompat.cli.common import config_path, root_of
from ftcompat.config.cases import cases_of
from ftcompat.config.checks import MatrixError
from ftcompat.config.library import builtin_matrix, library_dir
from ftcompat.config.matrix import load


def problems_of(path):
    with pytest.raises(MatrixError) as err:
        load(path)
    return [p.render(str(path)) for p in err.value.problems]


def test_the_builtin_library_is_the_repository_top_level_in_a_checkout():
    assert library_dir() == ROOT
    assert builtin_matrix() == ROOT / "matrix.yaml"


def test_project_extends_the_builtin_matrix_with_only_its_own_entries(tmp_path):
    matrix = load(project(tmp_path))
    assert [c.id for c in matrix.combos] == ["prod"]  # the built-in combos are not run
    assert set(matrix.cases) == {"api_surface", "mine"}
    assert {"tiny-llama", "tiny-phi3", "phi3-mini"} <= set(matrix.models)  # the built-in models are there
    files = cases_of(matrix)
    assert files["mine"].path == tmp_path / "my_cases" / "mine.py"
    assert files["api_surface"].path == ROOT / "cases" / "api_surface.py"
    # built-in known issues about included cases are inherited (and not called stale in a project's grid)
    ids = {i.id: i for i in matrix.known_issues}
    assert "trl-sftconfig-max-seq-length-removed" in ids and ids["trl-sftconfig-max-seq-length-removed"].inherited
    assert "phi3-remote-seen-tokens" not in ids  # its case is not included


def test_project_known_issues_are_added_and_its_own(tmp_path):
    own = {"id": "ours", "cells": ["mine[*]"], "when": {"peft": ">=0.21"}, "url": "https://example.org/1",
           "summary": "our bug", "workaround": "pin peft"}
    matrix = load(project(tmp_path, known_issues=[own]))
    ours = next(i for i in matrix.known_issues if i.id == "ours")
    assert not ours.inherited and ours.workaround == "pin peft"


def test_builtin_cases_default_to_all(tmp_path):
    path = project(tmp_path)
    data = yaml.safe_load(path.read_text())
    del data["builtin_cases"]
    path.write_text(yaml.safe_dump(data))
    assert set(load(path).cases) == set(load(ROOT / "matrix.yaml").cases) | {"mine"}


@pytest.mark.parametrize("change, expected", [
    ({"builtin_cases": ["api_surfce"]},
     "builtin_cases[0]: 'api_surfce' selects no built-in case; did you mean 'api_surface'?"),
    ({"case_dirs": ["nowhere"]}, "case_dirs[0]: 'nowhere' is not a folder"),
    ({"models": {"tiny-llama": {"kind": "tiny", "arch": "llama"}}},
     "models.tiny-llama: 'tiny-llama' is a built-in model"),
    ({"combos": [{"id": "prod", "python": "3.11", "pins": {**PINS, "trl": "one"}}]}, "combos[0].pins.trl"),
    ({"combos": []}, "combos: a project needs at least one combo of its own"),
    ({"extends": "matrix"}, "extends: 'matrix' cannot be extended; write `extends: builtin`"),
    ({"include": ["x"]}, "include: unknown key 'include'"),
    ({"cases": {"mine": {"models": ["tiny-lama"]}}},
     "cases.mine.models[0]: unknown model 'tiny-lama'; did you mean 'tiny-llama'"),
    ({"known_issues": [{"id": "x", "cells": ["nope[*]"], "url": "https://e.org", "summary": "s"}]},
     "known_issues[0].cells[0]: 'nope[*]' names no case"),
    ({"models": {"ours": {"kind": "local", "path": "missing"}}}, "models.ours.path: 'missing' is not a folder"),
    # the folders named are the user's own (and the built-in one), never a `cases/` the project does not have
    ({"cases": {"mine": {"models": ["tiny-llama"]}, "mien": {}}},
     "cases.mien: unknown case 'mien' (no file mien.py in cases/, my_cases/); did you mean 'mine'?"),
])
def test_problems_name_the_project_file_and_the_path_inside_it(tmp_path, change, expected):
    path = project(tmp_path, **change)
    found = problems_of(path)
    assert any(p.startswith(f"{path}: ") and expected in p for p in found), found


def test_a_case_of_ones_own_may_not_take_a_builtin_id(tmp_path):
    path = project(tmp_path)
    (tmp_path / "my_cases" / "api_surface.py").write_text(CASE)
    assert any("case_dirs[0]: my_cases/api_surface.py has the id of a built-in case" in p for p in problems_of(path))


def test_a_local_model_is_a_folder_fingerprinted_by_its_files(tmp_path):
    model = tmp_path / "ckpt"
    model.mkdir()
    (model / "config.json").write_text("{}")
    path = project(tmp_path, models={"ours": {"kind": "local", "path": "ckpt"}},
                   cases={"mine": {"models": ["ours"]}})
    spec = load(path).models["ours"]
    assert spec.kind == "local" and spec.repo == str(model) and spec.revision.startswith("local-")
    (model / "model.safetensors").write_bytes(b"weights")
    assert load(path).models["ours"].revision != spec.revision  # new weights: cached cells run again


def test_config_discovery_and_work_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config_path(None) == str(builtin_matrix())  # nothing here: the built-in matrix
    assert root_of(config_path(None)) == tmp_path.resolve()  # ... with results here, not in the package
    (tmp_path / "matrix.yaml").write_text("")
    assert config_path(None) == "matrix.yaml"
    project(tmp_path)
    assert config_path(None) == "ftcompat.yaml"  # a project file wins
    assert config_path("other.yaml") == "other.yaml"
    assert root_of(tmp_path / "sub" / "x.yaml") == (tmp_path / "sub").resolve()


def test_init_writes_a_project_that_validates_and_overwrites_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    text = (tmp_path / "ftcompat.yaml").read_text()
    assert text.startswith("# ftcompat project file") and "extends: builtin" in text
    matrix = load(tmp_path / "ftcompat.yaml")
    assert [c.id for c in matrix.combos] == ["prod"] and "my_lora_step" in matrix.cases
    assert main(["validate"]) == 0
    assert "ftcompat.yaml: 1 combos" in capsys.readouterr().out
    (tmp_path / "ftcompat.yaml").write_text("mine")
    assert main(["init"]) == 2
    assert "exists; ftcompat init overwrites nothing" in capsys.readouterr().err
    assert (tmp_path / "ftcompat.yaml").read_text() == "mine"


def test_validate_from_an_empty_folder_reads_the_builtin_matrix(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("the built-in matrix: ") and out.rstrip().endswith("ok")
    assert not any(tmp_path.iterdir())  # validating writes nothing


def test_an_invalid_project_file_is_exit_2_with_its_name(tmp_path, monkeypatch, capsys):
    path = project(tmp_path, combos=[{"id": "prod", "python": 3.11, "pins": PINS}])
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 2
    err = capsys.readouterr().err
    assert "ftcompat.yaml: combos[0].python: 3.11 is a YAML number; quote it" in err
    assert path.read_text()  # nothing lost


def test_the_example_case_uses_the_case_api_only():
    text = (ROOT / "src" / "ftcompat" / "templates" / "my_lora_step.py").read_text()
    assert "from ftcompat.harness import record, setup, step" in text
    assert textwrap.dedent(text).count("def test_") == 1


def test_init_ignores_the_environments_and_work_folders_in_git_and_keeps_what_is_there(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".gitignore").write_text("*.pyc\n/.nox")  # one of the two already, no final newline
    assert main(["init"]) == 0
    lines = (tmp_path / ".gitignore").read_text().splitlines()
    assert lines[:2] == ["*.pyc", "/.nox"] and ".ftcompat/" in lines and ".nox/" not in lines
    (tmp_path / "ftcompat.yaml").unlink()
    assert main(["init", "--force"]) == 0
    assert (tmp_path / ".gitignore").read_text().count(".ftcompat/") == 1  # nothing added twice


def test_config_is_taken_after_the_command_too(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = project(tmp_path)
    assert main(["validate", "--config", str(path)]) == 0
    assert "ftcompat.yaml: 1 combos" in capsys.readouterr().out
    assert main(["--config", str(path), "validate"]) == 0


def test_a_full_disk_is_not_called_a_permission_problem(tmp_path, monkeypatch):
    import errno
    import tempfile

    import pytest

    from ftcompat.env.preflight import NotWritable, check_writable

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", full)
    with pytest.raises(NotWritable, match="no space left on device; free some space") as caught:
        check_writable(tmp_path / "results" / "cells")
    assert "permission" not in str(caught.value)
