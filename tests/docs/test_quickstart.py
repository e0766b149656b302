"""The README's Quickstart, run as written: a copy of the checkout (what a fresh clone holds) beside an empty
folder, the Quickstart's commands run in that folder by bash, one after the other, and a first grid of the
folder's own at the end.

Needs PyPI (ftcompat's dependencies, the stack's wheels; torch 2.13.0 from the machine's find-links) and a
few minutes.
"""

import json
import os
import shutil
import subprocess

import pytest
from conftest import ROOT

pytestmark = pytest.mark.e2e


def quickstart():
    """The README's Quickstart commands: the bash block between the two ``<!-- quickstart -->`` markers."""
    block = (ROOT / "README.md").read_text(encoding="utf-8").split("<!-- quickstart -->")[1]
    return block.split("```bash\n", 1)[1].split("```", 1)[0]


def clone(dest):
    """The files a clone of the checkout holds (tracked, and new files git does not ignore), copied to ``dest``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def clean_env():
    """The caller's environment without anything that puts the checkout or its venv on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    bindir = os.environ.get("VIRTUAL_ENV")
    if bindir:
        env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if not p.startswith(bindir))
    return {**env, "HF_HUB_OFFLINE": "1"}


def test_a_newcomer_goes_from_a_clone_to_a_first_grid_with_only_the_quickstart(tmp_path):
    clone(tmp_path / "ftcompat")
    repo = tmp_path / "my-repo"
    repo.mkdir()
    script = "set -eo pipefail\n" + quickstart()  # stop at the first command that fails
    proc = subprocess.run(["bash", "-c", script], cwd=repo, capture_output=True, text=True, env=clean_env())
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert (repo / "ftcompat.yaml").is_file() and (repo / "ftcompat_cases" / "my_lora_step.py").is_file()
    grid = json.loads((repo / "results" / "grid.json").read_text())
    cells = {c["id"]: c for c in grid["cells"]}
    assert cells["prod::my_lora_step[adapter_moves@tiny-llama]"]["status"] == "pass", log[-6000:]
    assert cells["prod::api_surface[trainer_train_one_step@tiny-llama]"]["status"] == "pass", log[-6000:]
    assert {c["id"] for c in grid["combos"]} == {"prod"}
    for name in ("GRID.md", "index.html"):
        assert (repo / "results" / name).is_file()
    # `ftcompat show`, the last command, printed the grid: the combo and the project's own case
    assert "prod" in proc.stdout and "my_lora_step" in proc.stdout
    python = repo / ".venv" / "bin" / "python"  # the Quickstart's venv
    installed = subprocess.run([str(python), "-c", "import ftcompat; print(ftcompat.__file__)"], cwd=repo,
                               capture_output=True, text=True, check=True).stdout
    assert "site-packages" in installed and str(ROOT) not in installed  # the clone was installed, not this checkout
