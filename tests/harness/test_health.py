"""The health probe and the harness's verdict rule, run for real on planted packages that break at import."""

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT
from helpers import plant

from ftcompat.core.health import Health
from ftcompat.env.base import Built
from ftcompat.env.health import probe


@pytest.fixture
def site(tmp_path):
    """A site-packages folder holding the planted distributions, with their metadata."""
    return plant(tmp_path / "lib" / "site-packages")


def _probe(site, *modules):
    built = Built(python=sys.executable, env={"PYTHONPATH": f"{ROOT / 'src'}:{site}"})
    return probe(built, modules, only=True)


def test_the_probe_names_each_root_cause_and_the_distribution_behind_it(site):
    found = _probe(site, "fakeok", "fakedatasets", "faketrl", "notinstalledatall")
    assert found.error is None
    assert found.probed == ("fakeok", "fakedatasets", "faketrl")
    assert found.absent == ("notinstalledatall",)
    by_module = {d.module: d for d in found.defects}
    assert set(by_module) == {"fakedatasets", "faketrl"}
    arrow = by_module["fakedatasets"]
    assert (arrow.exc_type, arrow.message) == ("ImportError", "fakearrow requires NumPy 2.0 or newer, found 1.26.4")
    assert arrow.raised_by == "fakearrow" and arrow.missing is None
    assert arrow.versions["fakearrow"] == "26.0.1"
    rich = by_module["faketrl"]
    assert (rich.exc_type, rich.raised_by, rich.missing) == ("ModuleNotFoundError", "faketrl", "undeclaredrich")
    assert rich.versions == {"faketrl": "0.8.0", "undeclaredrich": None}
    assert rich.culprits == {"faketrl", "undeclaredrich"}


def test_the_probe_sees_the_same_root_through_every_module_that_needs_it(site):
    found = _probe(site, "fakearrow", "fakedatasets")
    assert [d.module for d in found.defects] == ["fakearrow", "fakedatasets"]
    assert len(found.roots()) == 1


def test_a_probe_that_cannot_start_says_why():
    found = probe(Built(python="/nonexistent/python"), ["os"], only=True)
    assert not found.ok and "could not be started" in found.error


def test_the_probe_writes_nothing_an_imported_module_prints_into_its_answer(site, tmp_path):
    (site / "fakeok" / "__init__.py").write_text("print('hello from an import')\n")
    proc = subprocess.run([sys.executable, "-m", "ftcompat.harness.health", "-", "--only", "--module", "fakeok"],
                          capture_output=True, text=True, env={"PYTHONPATH": f"{ROOT / 'src'}:{site}"}, check=True)
    assert Health.from_json(json.loads(proc.stdout)).ok
    assert "hello from an import" in proc.stderr


CASE = '''
"""Uses the planted datasets; checks something else."""
from ftcompat.harness import step
{subject}

def test_uses_datasets():
    with step("import fakedatasets"):
        import fakedatasets  # noqa: F401


def test_needs_nothing_broken():
    import fakeok
    assert fakeok.VALUE == 1


def test_really_fails():
    assert 1 == 2, "a real verdict"
'''


def _run_case(tmp_path, site, subject, health):
    (tmp_path / "cases").mkdir(exist_ok=True)
    (tmp_path / "cases" / "user.py").write_text(textwrap.dedent(CASE.format(subject=subject)))
    from ftcompat.config.cases import read_case

    case = read_case(tmp_path / "cases" / "user.py")
    plan = {"combo": {"id": "c"}, "cases": {"user": {"timeout": 60, "subject": list(case.subject)}}, "models": {},
            "work_dir": str(tmp_path / "work"), "health": health.to_json()}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    (tmp_path / "none.ini").write_text("[pytest]\n")
    out = tmp_path / "cells.json"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "ftcompat.harness.plugin", "-p", "no:cacheprovider",
         "-c", str(tmp_path / "none.ini"), "--rootdir", str(tmp_path), "--ftcompat-plan", str(tmp_path / "plan.json"),
         "--ftcompat-out", str(out), "cases/user.py"],
        cwd=tmp_path, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT / 'src'}:{site}"})
    return {c["variant"]: c for c in json.loads(out.read_text())["cells"]}


def test_a_broken_import_outside_the_subject_is_error_not_fail(tmp_path, site):
    health = _probe(site, "fakedatasets")
    cells = _run_case(tmp_path, site, "", health)
    broken = cells["uses_datasets"]
    assert broken["status"] == "error"
    assert broken["exc_type"] == "ImportError"
    assert broken["message"].startswith("environment broken: import fakedatasets fails: ImportError: fakearrow "
                                        "requires NumPy 2.0")
    assert broken["environment"]["raised_by"] == "fakearrow"
    # the same environment's other cells are verdicts as usual
    assert cells["needs_nothing_broken"]["status"] == "pass"
    assert cells["really_fails"]["status"] == "fail" and "environment" not in cells["really_fails"]


def test_a_case_whose_subject_is_the_broken_import_keeps_its_verdict(tmp_path, site):
    health = _probe(site, "fakedatasets")
    cells = _run_case(tmp_path, site, 'SUBJECT = ("fakearrow", "fakedatasets")', health)
    assert cells["uses_datasets"]["status"] == "fail"
    assert "environment" not in cells["uses_datasets"]


def test_without_the_probe_finding_the_same_failure_stays_a_verdict(tmp_path, site):
    cells = _run_case(tmp_path, site, "", Health())
    assert cells["uses_datasets"]["status"] == "fail"
