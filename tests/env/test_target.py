"""`ftcompat here --python`: the cases run inside another interpreter, and its environment is left unchanged.

Needs uv and the package index (the test runner is fetched into ftcompat's own folder, once).
"""

import json
import shutil
import subprocess
import sys

import pytest
import yaml
from helpers import fingerprint

pytestmark = pytest.mark.e2e

PROBE = '''"""Probe: runs in the target and says what it sees."""

from ftcompat.harness import record, step


def test_plain():
    import sys

    import pytest
    import six

    with step("look around"):
        record(six=six.__version__, prefix=sys.prefix, pytest_from=pytest.__file__)
'''


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    """A bare venv with one small package and no pytest: an environment ftcompat did not make."""
    uv = shutil.which("uv")
    if not uv:
        pytest.skip("uv is not installed")
    venv = tmp_path_factory.mktemp("target") / "venv"
    subprocess.run([uv, "venv", "-q", "-p", f"{sys.version_info.major}.{sys.version_info.minor}", str(venv)],
                   check=True)
    subprocess.run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "six"], check=True)
    return venv


def test_here_python_runs_the_cases_there_and_changes_nothing(target, tmp_path):
    (tmp_path / "cases_here").mkdir()
    (tmp_path / "cases_here" / "probe.py").write_text(PROBE)
    (tmp_path / "ftcompat.yaml").write_text(yaml.safe_dump({
        "version": 1, "extends": "builtin", "builtin_cases": ["api_surface"], "case_dirs": ["cases_here"],
        "combos": [{"id": "prod", "python": "3.11", "pins": dict.fromkeys(
            ("torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate"))}],
        "cases": {"probe": {}}}))
    before = fingerprint(target)
    assert "pytest" not in before[1] and "six==" in before[1]
    proc = subprocess.run([sys.executable, "-m", "ftcompat.cli", "here", "--venv", str(target), "--out", "here.json"],
                          cwd=tmp_path, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fingerprint(target) == before  # byte for byte: no package, no .pth, no __pycache__
    cells = {c["id"]: c for c in json.loads((tmp_path / "here.json").read_text())["cells"]}
    probe = cells["current::probe[plain]"]
    assert probe["status"] == "pass", probe
    assert probe["details"]["six"] == before[1].split("six==")[1].split()[0]
    assert not probe["details"]["pytest_from"].startswith(str(target))  # the runner came from outside
    missing = cells["current::api_surface[sftconfig_max_seq_length]"]
    assert missing["status"] == "error" and "No module named 'trl'" in missing["message"]
    out = proc.stdout
    assert "Cells that could not run to a verdict, and why:" in out
    assert "api_surface[sftconfig_max_seq_length]: error: ModuleNotFoundError: No module named 'trl'" in out
    assert "not installed" in out  # the versions table: nothing resolved, nothing newest


def test_here_refuses_a_folder_that_is_not_a_venv(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ftcompat.cli", "here", "--venv", str(tmp_path)],
                          cwd=tmp_path, capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert f"--venv {tmp_path}: no bin/python in it" in proc.stderr
