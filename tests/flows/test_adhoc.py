"""Ad-hoc pins and the current-environment mode."""

import json
import textwrap

import pytest

from ftcompat.config.matrix import load
from ftcompat.flows import adhoc, here


def test_parse_pins_leaves_the_rest_unpinned():
    pins = adhoc.parse_pins(["transformers==4.53.3", "trl==0.19.1", "datasets==3.6.0"])
    assert pins["transformers"] == "4.53.3" and pins["trl"] == "0.19.1" and pins["datasets"] == "3.6.0"
    assert pins["torch"] is None and pins["peft"] is None


@pytest.mark.parametrize("bad", ["transformers>=4.53", "trl==", "trl==0.19.x", "==1.0"])
def test_parse_pins_rejects_non_pins(bad):
    with pytest.raises(ValueError, match="PACKAGE==VERSION|not a valid version"):
        adhoc.parse_pins([bad])


def test_adhoc_combo_ids_and_lanes():
    pins = adhoc.parse_pins(["trl==0.19.1", "transformers==4.53.3"])
    combo = adhoc.adhoc_combo(pins, "3.11", ["qlora*"])
    assert combo.id == "adhoc-transformers4.53.3-trl0.19.1"
    assert combo.tracks_newest and combo.cases == ("qlora*",)
    floor = adhoc.adhoc_combo(pins, "3.11", floor=True)
    assert floor.id.endswith("-floor") and floor.resolution == "lowest-direct" and not floor.tracks_newest
    asof = adhoc.adhoc_combo(adhoc.parse_pins([]), "3.11", as_of="2025-09-15")
    assert asof.id == "adhoc-asof2025-09-15" and asof.exclude_newer == "2025-09-15"
    pre = adhoc.adhoc_combo(pins, "3.11", pre=True)
    assert pre.id.endswith("-pre") and pre.prerelease == ("torch", "peft", "bitsandbytes", "accelerate")
    with pytest.raises(ValueError, match="choose one"):
        adhoc.adhoc_combo(pins, "3.11", floor=True, pre=True)
    cpu = adhoc.adhoc_combo(pins, "3.11", torch_backend="cpu")
    assert cpu.id == "adhoc-transformers4.53.3-trl0.19.1-torch-cpu" and cpu.torch_backend == "cpu"  # its own env
    with pytest.raises(ValueError, match=r"--torch-backend: 'cuda' is not a PyTorch build: write cpu, .*cu126"):
        adhoc.adhoc_combo(pins, "3.11", torch_backend="cuda")


MATRIX = """
version: 1
combos: []
models: {}
cases:
  smoke: {}
known_issues:
  - id: old-trl
    cells: [smoke]
    when: {trl: ">=0.1"}
    url: https://github.com/example/upstream/issues/9
    summary: "trl exists"
    workaround: "none needed"
"""

SMOKE = '''
"""Smoke case for the current-environment mode: passes and records the pytest it ran under."""
from ftcompat.harness import record


def test_runs():
    """Records a fact and passes."""
    import pytest

    record(pytest=pytest.__version__)


def test_breaks():
    """Fails with a real exception."""
    raise KeyError("type")
'''


def test_here_runs_in_this_interpreter(tmp_path):
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "smoke.py").write_text(textwrap.dedent(SMOKE))
    (tmp_path / "matrix.yaml").write_text(MATRIX)
    matrix = load(tmp_path / "matrix.yaml")
    combo = here.current_combo()
    out = tmp_path / "current.json"
    grid = here.run_here(matrix, tmp_path, combo, out, log=lambda *_: None)
    cells = {c["variant"]: c for c in json.loads(out.read_text())["cells"]}
    assert cells["runs"]["status"] == "pass" and cells["runs"]["id"] == "current::smoke[runs]"
    assert cells["breaks"]["signature"] == "KeyError: 'type'"
    assert grid.combos[0]["id"] == "current"
    hits = here.issues_affecting(matrix, {"trl": "0.20.0"})
    assert [i.id for i in hits] == ["old-trl"]
    assert here.issues_affecting(matrix, {}) == []


@pytest.mark.parametrize("cases, why", [
    (["mien"], r"--cases: 'mien' selects no case of .*ftcompat.yaml; did you mean 'mine'\?"),
    # a built-in case the project's builtin_cases leaves out is not one of its cases
    (["qlora_sft_trainable"], r"--cases: 'qlora_sft_trainable' selects no case"),
])
def test_cases_that_select_nothing_build_nothing_and_overwrite_no_grid(tmp_path, monkeypatch, capsys, cases, why):
    from helpers import project

    from ftcompat.cli import main

    monkeypatch.chdir(tmp_path)
    config = project(tmp_path)
    earlier = tmp_path / "results" / "adhoc" / "mine.json"
    earlier.parent.mkdir(parents=True)
    earlier.write_text('{"earlier": "good"}')
    assert main(["--config", str(config), "adhoc", "trl==1.16.0", "--cases", *cases, "--out", str(earlier)]) == 2
    assert __import__("re").search(why, capsys.readouterr().err)
    assert earlier.read_text() == '{"earlier": "good"}'
    assert not (tmp_path / ".ftcompat").exists()  # no environment was made
    assert main(["--config", str(config), "here", "--cases", *cases, "--out", str(tmp_path / "h.json")]) == 2
    assert not (tmp_path / "h.json").exists()


def test_ftcompat_cases_that_select_nothing_is_bad_input_for_run(tmp_path, monkeypatch, capsys):
    from helpers import project

    from ftcompat.cli import main

    monkeypatch.chdir(tmp_path)
    config = project(tmp_path)
    monkeypatch.setenv("FTCOMPAT_CASES", "mien")
    assert main(["--config", str(config), "run"]) == 2
    assert "FTCOMPAT_CASES: 'mien' selects no case" in capsys.readouterr().err
    assert not (tmp_path / ".nox").exists()


def test_a_misspelt_package_is_bad_input_and_writes_nothing(tmp_path, monkeypatch, capsys):
    from helpers import project

    from ftcompat.cli import main
    from ftcompat.env import preflight
    from ftcompat.env.pkgindex import NotOnIndex

    def lister(pkg):
        if pkg == "torhc":
            raise NotOnIndex(pkg)
        return ["2.0.0"]

    monkeypatch.setattr(preflight, "default_lister", lambda: lister)
    monkeypatch.chdir(tmp_path)
    config = project(tmp_path)
    out = tmp_path / "g.json"
    assert main(["--config", str(config), "adhoc", "torhc==2.0", "--out", str(out)]) == 2
    assert "no package 'torhc' on the package index; did you mean 'torch'?" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / ".ftcompat").exists()


@pytest.mark.parametrize("python, why", [("2.7", "Python 2.7 is not supported"), ("3.8", "Python 3.8 is not supported"),
                                         ("three", "give a version like 3.11")])
def test_an_unsupported_python_is_refused_by_adhoc_and_validate(tmp_path, monkeypatch, capsys, python, why):
    from helpers import PINS, project

    from ftcompat.cli import main

    monkeypatch.chdir(tmp_path)
    config = project(tmp_path)
    assert main(["--config", str(config), "adhoc", "trl==1.16.0", "--python", python]) == 2
    assert why in capsys.readouterr().err
    if python == "3.8":
        project(tmp_path, combos=[{"id": "prod", "python": python, "pins": PINS}])
        assert main(["--config", str(config), "validate"]) == 2
        assert f"combos[0].python: {why}" in capsys.readouterr().err


def test_a_combo_id_too_long_for_a_file_name_is_refused(tmp_path, monkeypatch, capsys):
    from helpers import PINS, project

    from ftcompat.cli import main

    monkeypatch.chdir(tmp_path)
    config = project(tmp_path, combos=[{"id": "x" * 300, "python": "3.11", "pins": PINS}])
    assert main(["--config", str(config), "validate"]) == 2
    assert "is 300 characters; an id names files and folders, keep it to 100" in capsys.readouterr().err
