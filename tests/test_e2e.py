"""End to end: nox builds a real pinned environment, runs a real case in it, and renders the grid.

Needs PyPI (and takes a minute or two): it installs torch, transformers, trl, peft, bitsandbytes and
accelerate at fixed pins with uv, exactly as a user's `nox` run does.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.e2e

# The fast CPU combo: torch 2.13.0 has a CPU wheel on this project's machines (PIP_FIND_LINKS).
PINS = ('{torch: "2.13.0", transformers: "5.23.0", trl: "1.16.0", peft: "0.21.2", '
        'bitsandbytes: "0.50.2", accelerate: "1.15.0"}')
MATRIX = f"""
version: 1
combos:
  - id: e2e-cpu
    python: "3.11"
    pins: {PINS}
    tags: [cpu]
    cases: [phi3_generate]
  - id: e2e-unresolvable
    python: "3.11"
    pins: {{torch: "2.13.0", transformers: "4.47.1", trl: "1.16.0", peft: null, bitsandbytes: null, accelerate: null}}
    tags: [cpu]
    cases: [phi3_generate]
models:
  tiny-phi3: {{kind: tiny, arch: phi3, tokenizer: llama2-chat, seed: 0}}
cases:
  phi3_generate: {{models: [tiny-phi3]}}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A fresh copy of the project with a two-combo matrix and one case."""
    root = tmp_path_factory.mktemp("project")
    for name in ("noxfile.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "src", root / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    (root / "cases").mkdir()
    shutil.copy(ROOT / "cases" / "phi3_generate.py", root / "cases")
    (root / "matrix.yaml").write_text(MATRIX)
    return root


def nox(root, *args):
    proc = subprocess.run([sys.executable, "-m", "nox", "-f", str(root / "noxfile.py"), *args],
                          cwd=root, capture_output=True, text=True, env=os.environ.copy())
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def grid(project):
    code, log = nox(project)  # the default run: every cpu combo, then render
    assert code == 0, log
    return json.loads((project / "results" / "grid.json").read_text()), log


def test_real_case_ran_in_pinned_env(grid):
    data, _ = grid
    cells = {c["id"]: c for c in data["cells"]}
    native = cells["e2e-cpu::phi3_generate[native@tiny-phi3]"]
    assert native["status"] == "pass", native
    assert native["env"]["versions"]["transformers"] == "5.23.0"
    assert native["env"]["versions"]["torch"].startswith("2.13.0")
    assert native["env"]["python"].startswith("3.11")
    assert native["env"]["device"]["type"] in ("cpu", "cuda")
    assert "e2e-cpu::phi3_generate[remote_code@tiny-phi3]" in cells


def test_unresolvable_pins_are_not_installable_and_grid_still_renders(grid, project):
    data, _ = grid
    bad = [c for c in data["cells"] if c["combo"] == "e2e-unresolvable"]
    assert bad and all(c["status"] == "not-installable" for c in bad)
    assert "No solution found" in bad[0]["signature"]
    md = (project / "results" / "GRID.md").read_text()
    assert "🚫 not-installable" in md and "✅ pass" in md


def test_unchanged_pins_reuse_the_environment(grid, project):
    code, log = nox(project, "-s", "e2e-cpu")
    assert code == 0, log
    assert "pins unchanged: reusing the environment" in log
