"""``ftcompat doctor`` on a real venv with planted packages: what it finds, and that it changes nothing."""

import subprocess
import sys

import pytest
from helpers import fingerprint, plant

from ftcompat.cli import main
from ftcompat.core.health import Defect
from ftcompat.flows import doctor


@pytest.fixture
def venv(tmp_path):
    where = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    plant(next(where.glob("lib/python3*/site-packages")))
    return where


def test_doctor_names_every_failing_import_its_root_cause_and_the_fix_and_changes_nothing(tmp_path, venv):
    before = fingerprint(venv)
    found = doctor.flow(tmp_path, venv=str(venv))
    assert fingerprint(venv) == before
    assert not found.ok and {"fakeok"} <= set(found.health.probed)
    advice = {a.defect.root: a for a in found.advice}
    arrow = advice["ImportError: fakearrow requires NumPy 2.0 or newer, found 1.26.4"]
    assert set(arrow.modules) == {"fakearrow", "fakedatasets"}
    assert (arrow.package, arrow.change, arrow.verified) == ("fakearrow", "fakearrow<26.0.1", None)
    rich = advice["ModuleNotFoundError: No module named 'undeclaredrich'"]
    assert (rich.modules, rich.change) == (("faketrl",), "undeclaredrich")
    text = "\n".join(doctor.report(found))
    assert 'fix: pip install "fakearrow<26.0.1" (not checked' in text
    assert "2 root causes" in text


def test_doctor_exits_1_when_an_import_fails_and_0_when_none_does(tmp_path, venv, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ftcompat.yaml").write_text("version: 1\n")
    assert main(["doctor", "--venv", str(venv)]) == 1
    for name in ("fakearrow", "fakedatasets", "faketrl"):
        site = next(venv.glob("lib/python3*/site-packages"))
        (site / name / "__init__.py").write_text("")
    assert main(["doctor", "--venv", str(venv)]) == 0
    assert "every one imports" in capsys.readouterr().out


def test_a_bad_venv_is_exit_2(tmp_path, capsys):
    assert main(["doctor", "--venv", str(tmp_path / "nothing")]) == 2
    assert "no bin/python" in capsys.readouterr().err


def test_smallest_change_adds_a_missing_package_else_goes_below_the_raising_release():
    missing = Defect("trl", "ModuleNotFoundError", "No module named 'rich'", "trl", "rich",
                     {"trl": "0.8", "rich": None})
    assert doctor.smallest_change(missing) == ("rich", "rich")
    raising = Defect("datasets", "ImportError", "x", "pyarrow", None, {"pyarrow": "26.0.1"})
    assert doctor.smallest_change(raising) == ("pyarrow", "pyarrow<26.0.1")
    assert doctor.smallest_change(Defect("m", "SyntaxError", "x")) == (None, None)
