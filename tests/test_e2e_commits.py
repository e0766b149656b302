"""End to end: a package's git history as pins, built for real with uv (a stand-in ``peft`` the test makes).

The commit bisection builds one environment per commit and finds the break; the upstream-main lane runs a
combo pinned at ``"@main"`` against a local clone, and the grid names the commit that ran.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT
from gitrepo import history

pytestmark = pytest.mark.e2e
FIXTURE = ROOT / "tests" / "fixtures" / "commit_cases"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("commits")
    for name in ("noxfile.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "src", root / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    (root / "cases").mkdir()
    shutil.copy(FIXTURE / "answer.py", root / "cases")
    shutil.copy(FIXTURE / "matrix.yaml", root / "matrix.yaml")
    ids = history(root.parent / "peft-history")
    return root, root.parent / "peft-history", ids


def ftcompat(root, *argv):
    code = "import sys; from ftcompat import cli; sys.exit(cli.main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    return subprocess.run([sys.executable, "-c", code, *argv], cwd=root, capture_output=True, text=True, env=env)


def test_a_commit_bisection_builds_each_commit_and_finds_the_break(project):
    root, repo, ids = project
    proc = ftcompat(root, "bisect", "answer[value]", "--commits", "peft", "--good", "v0.1.1", "--bad", "v0.2.0",
                    "--source", f"peft={repo}", "--flake-runs", "2", "--out", "out/b.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((root / "out" / "b.json").read_text())
    assert doc["verdict"] == "found" and doc["direction"] == "regression"
    assert doc["first_bad"]["sha"] == ids["c3"] and doc["first_bad"]["pr"] == 3
    assert doc["base"] == ids["c1"]  # v0.1.1 is on its own branch: searched from the merge base
    assert doc["source"] == "a local clone (peft-history)" and str(repo) not in (root / "out" / "b.json").read_text()
    bad = next(s for s in doc["steps"] if s["phase"] == "bad side")
    assert len(bad["runs"]) == 2 and bad["env"]["versions"]["peft"] == f"0.99.0.dev0+g{ids['c6'][:7]}"
    assert "answer() is 2, not 1" in bad["signature"]
    assert all(s["env"]["versions"]["peft"].endswith("+g" + s["commit"]["sha"][:7]) for s in doc["steps"])
    assert f"first fails at peft {ids['c3'][:12]} \"Change the answer (#3)\";" in proc.stdout
    assert (root / "out" / "b.md").read_text().count("| search |") == len(doc["steps"]) - 3


def test_the_main_lane_runs_against_a_local_clone_and_the_grid_names_the_commit(project):
    root, repo, ids = project
    proc = ftcompat(root, "run", "--combos", "tag:main", "--source", f"peft={repo}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    grid = json.loads((root / "results" / "grid.json").read_text())
    combo = next(c for c in grid["combos"] if c["id"] == "main-lane")
    assert combo["pins"]["peft"] == "@main" and combo["resolved"]["peft"] == f"0.99.0.dev0+g{ids['c10'][:7]}"
    cell = next(c for c in grid["cells"] if c["id"] == "main-lane::answer[value]")
    assert cell["status"] == "fail" and "answer() is 2, not 1" in cell["signature"]
    assert str(repo) not in (root / "results" / "grid.json").read_text()
