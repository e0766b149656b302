"""``ftcompat pins --search`` end to end: real candidates resolved by uv, built and run, cached on a second ask."""

import json
import shutil

import pytest
import yaml
from conftest import ROOT

from ftcompat import cli

pytestmark = pytest.mark.e2e

PROJECT = {"version": 1, "extends": "builtin", "builtin_cases": ["api_surface"], "combos": [
    {"id": "prod", "python": "3.11", "pins": {"torch": "2.13.0", "transformers": "4.55.4", "trl": "0.19.1",
                                              "peft": None, "bitsandbytes": None, "accelerate": None}}]}
GRID = str(ROOT / "results" / "grid.json")
ASK = ["pins", "--grid", GRID, "--keep", "transformers==4.55.4", "--keep", "torch==2.13.0",
       "--cases", "api_surface[sftconfig_max_seq_length]", "--search"]


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "ftcompat.yaml").write_text(yaml.safe_dump(PROJECT, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_grid_answers_without_building_anything(project):
    out = project / "from-grid"
    assert cli.main(["pins", "--grid", GRID, "--keep", "torch==2.13.0", "--keep", "transformers<5",
                     "--cases", "qlora_sft_trainable", "--search", "--out", str(out)]) == 0
    assert "transformers==4.57.6" in (out / "constraints.txt").read_text()
    assert not (project / ".ftcompat" / "adhoc").exists() and not (out / "search-grid.json").exists()


def test_search_steps_out_of_a_known_issue_and_runs_the_candidate_then_reuses_it(project, capsys):
    """No grid combo has transformers 4.55.4. uv's newest trl for it is in trl>=0.20 (SFTConfig lost
    max_seq_length, a known issue), so the search steps below 0.20 without running that, builds trl 0.19.1,
    runs the case there and pins it; asked again it builds nothing and runs no cell."""
    out = project / "pins"
    assert cli.main([*ASK, "--out", str(out)]) == 0
    constraints = (out / "constraints.txt").read_text()
    assert "transformers==4.55.4" in constraints and "trl==0.19.1" in constraints and "torch==2.13.0" in constraints
    pins_md = (out / "PINS.md").read_text()
    assert "2 candidate(s), 1 run, 1 environment(s) built" in pins_md
    assert "not run; then trl<0.20.0: trl " in pins_md and "trl-sftconfig-max-seq-length-removed" in pins_md
    evidence = json.loads((out / "search-grid.json").read_text())
    cell = next(c for c in evidence["cells"] if c["variant"] == "sftconfig_max_seq_length")
    assert cell["status"] == "pass" and cell["env"]["versions"]["trl"] == "0.19.1"
    assert cell["env"]["versions"]["transformers"] == "4.55.4"
    capsys.readouterr()
    again = project / "again"
    assert cli.main([*ASK, "--out", str(again)]) == 0
    said = capsys.readouterr().out
    assert "0 environment(s) built" in said and "0 to run" in said
    assert (again / "constraints.txt").read_text().splitlines()[3:] == constraints.splitlines()[3:]


def test_a_search_that_cannot_succeed_gives_up_within_its_bounds_and_writes_nothing(project, capsys):
    out = project / "none"
    code = cli.main(["pins", "--grid", GRID, "--keep", "torch==2.13.0", "--keep", "trl==1.16.0",
                     "--cases", "api_surface[sftconfig_max_seq_length]", "--search", "--max-envs", "1",
                     "--out", str(out)])
    assert code == 1 and not out.exists()
    said = capsys.readouterr().out
    assert "Gave up: the kept pins fall inside known issue trl-sftconfig-max-seq-length-removed" in said
    assert not (project / ".ftcompat" / "adhoc").exists()  # seen from the registry: nothing was built

EXAMPLE = ROOT / "results" / "adhoc" / "search-bisect-example"  # docs/guide/pins.md's example: project, case

def test_a_failure_no_known_issue_explains_is_bisected_from_the_grids_pass(tmp_path, monkeypatch, capsys):
    """A project's own case: its grid passes on transformers 4.53.3 with trl 0.19.1. Kept on 4.55.4, uv's
    newest trl (0.22.2) fails with a TypeError raised at the case's own call, which names no package, so the
    search bisects trl from the grid's pass and steps below the first release that fails (0.20.0, the
    boundary the built-in registry's known issue gives from the same change)."""
    shutil.copytree(EXAMPLE / "cases", tmp_path / "cases")
    shutil.copy(EXAMPLE / "ftcompat.yaml", tmp_path / "ftcompat.yaml")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["adhoc", "torch==2.13.0", "transformers==4.53.3", "trl==0.19.1", "--cases", "mine",
                     "--out", "grid.json"]) == 0
    ask = ["pins", "--grid", "grid.json", "--keep", "transformers==4.55.4", "--keep", "torch==2.13.0",
           "--cases", "mine", "--search"]
    capsys.readouterr()
    assert cli.main([*ask, "--out", "pins"]) == 0
    said = capsys.readouterr().out
    assert "bisecting from grid combo adhoc-torch2.13.0-transformers4.53.3-trl0.19.1" in said
    assert "trl 0.20.0 is the first release that fails; next: trl<0.20.0" in said
    constraints = (tmp_path / "pins" / "constraints.txt").read_text()
    assert "trl==0.19.1" in constraints and "transformers==4.55.4" in constraints
    evidence = json.loads((tmp_path / "pins" / "search-grid.json").read_text())
    trl = {c["env"]["versions"]["trl"]: c["status"] for c in evidence["cells"]}
    assert trl["0.19.1"] == "pass" and trl["0.20.0"] == "fail" and trl["0.22.2"] == "fail"
    assert all(c["signature"].startswith("TypeError: SFTConfig.__init__() got an unexpected keyword argument")
               for c in evidence["cells"] if c["status"] == "fail")
    assert cli.main([*ask, "--out", "again"]) == 0
    assert "0 environment(s) built" in capsys.readouterr().out
