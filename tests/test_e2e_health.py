"""End to end: a deliberately broken old stack gives `error` (never `fail`) without repair, the right verdicts after it.

torch 2.13.0 (the CPU wheel), transformers 4.46.3 and numpy 1.26.4 pinned; everything else newest. uv
then installs pyarrow 26 (through datasets), which is built for NumPy 2 and says so only at import, so
`transformers.trainer`, `datasets` and trl's trainers cannot be imported. Needs PyPI; a few minutes.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT
from helpers import fingerprint

pytestmark = pytest.mark.e2e

PINS = ["torch==2.13.0", "transformers==4.46.3", "numpy==1.26.4"]
ROOT_CAUSE = "pyarrow requires NumPy 2.0 or newer"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A copy of the project: the built-in matrix and every case."""
    root = tmp_path_factory.mktemp("health")
    for name in ("matrix.yaml", "pyproject.toml"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "cases", root / "cases", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def ftcompat(root, *args):
    proc = subprocess.run([sys.executable, "-m", "ftcompat.cli", *args], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    return proc.returncode, proc.stdout + proc.stderr


def _grid(path):
    data = json.loads(path.read_text())
    return data["combos"][0], data["cells"]


@pytest.fixture(scope="module")
def broken(project):
    """Every case in the broken environment, not repaired."""
    code, log = ftcompat(project, "adhoc", *PINS, "--repair", "none", "--out", "broken.json")
    assert code == 0, log[-3000:]
    return _grid(project / "broken.json")


def _mentions(cell, text):
    return any(text in (cell.get(k) or "") for k in ("signature", "message", "traceback", "log"))


def test_without_repair_a_broken_import_is_error_in_every_case_never_a_verdict(broken):
    combo, cells = broken
    roots = {d["message"] for d in combo["environment"]["health"]["defects"]}
    assert any(ROOT_CAUSE in r for r in roots)
    assert [i["id"] for i in combo["environment"]["known_issues"]] == ["pyarrow26-numpy2-undeclared"]
    hit = [c for c in cells if _mentions(c, ROOT_CAUSE)]
    assert len({c["case"] for c in hit}) >= 8, "the defect reached too few cases to test the rule"
    for c in hit:
        assert c["status"] == "error" and c["environment"]["raised_by"] == "pyarrow", c["id"]
        assert c["message"].startswith("environment broken: ") and c.get("known_issue") is None, c["id"]
        assert c.get("triage") is None, c["id"]
    # cells that never needed the broken import still ran to a verdict
    assert any(c["status"] == "pass" for c in cells)


def test_doctor_names_pyarrow_and_numpy_and_the_fix_and_changes_nothing(project, broken):
    venv = project / ".ftcompat" / "adhoc" / broken[0]["id"] / "venv"
    before = fingerprint(venv)
    code, out = ftcompat(project, "doctor", "--venv", str(venv))
    assert code == 1, out
    assert ROOT_CAUSE in out and "involves numpy 1.26.4, pyarrow 26." in out
    assert 'fix: pip install "pyarrow<26.' in out
    code, out = ftcompat(project, "doctor", "--venv", str(venv), "--verify")
    assert 'fix: pip install "pyarrow<26.0.0" (verified in a copy of this environment' in out, out[-3000:]
    assert "with every fix, the copy imports every module" in out
    assert fingerprint(venv) == before


@pytest.mark.parametrize("transformers, resume", [("4.46.3", "fail"), ("4.47.0", "pass")])
def test_after_repair_the_cells_give_the_versions_verdicts(project, broken, transformers, resume):
    pins = [p for p in PINS if not p.startswith("transformers")] + [f"transformers=={transformers}"]
    code, log = ftcompat(project, "adhoc", *pins, "--cases", "checkpoint_resume", "import_skew", "--out", "fixed.json")
    assert code == 0, log[-3000:]
    assert "repaired: pyarrow<26.0.0, now pyarrow 25." in log
    combo, cells = _grid(project / "fixed.json")
    repair = combo["environment"]["repair"]
    assert repair["healthy"] and [f["requirement"] for f in repair["fixes"]] == ["pyarrow<26.0.0"]
    assert not any("environment" in c for c in cells)
    status = {c["id"].split("::")[1]: c for c in cells}
    assert all(status[k]["status"] == "pass" for k in status if k.startswith("import_skew")), status
    same = status["checkpoint_resume[resume_same_env@tiny-llama]"]
    assert same["status"] == resume, same.get("signature")
    if resume == "fail":
        assert "Weights only load failed" in same["signature"]
