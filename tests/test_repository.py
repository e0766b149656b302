"""Repository hygiene: nothing ignored is tracked, and the committed results carry no machine's paths."""

import shutil
import subprocess

import pytest
from conftest import ROOT

from ftcompat.core.paths import machine_paths


def _git(*args):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_no_tracked_file_is_one_gitignore_excludes():
    assert _git("ls-files", "--cached", "--ignored", "--exclude-standard") == ""


def test_no_work_folder_is_tracked():
    assert _git("ls-files", ".ftcompat", ".nox", ".venv") == ""


def test_committed_results_carry_no_path_of_the_machine_that_ran_them():
    found = {}
    for path in sorted((ROOT / "results").rglob("*")):
        if path.is_file() and path.suffix in (".json", ".md", ".html", ".txt", ".py", ".log"):
            hits = machine_paths(path.read_text(encoding="utf-8", errors="replace"))
            if hits:
                found[str(path.relative_to(ROOT))] = hits[:2]
    assert found == {}


def test_a_plain_pytest_is_the_fast_run_and_ci_runs_everything():
    import re
    import shlex

    line = re.search(r'^addopts = "(.*)"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE).group(1)
    addopts = shlex.split(line)
    assert addopts[addopts.index("-m") + 1] == "not e2e"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert any(shlex.split(line.split("#")[0]) == ["pytest", "-m", ""] for line in ci)
    contributing = (ROOT / "docs" / "contributing" / "index.md").read_text()  # the Development block, moved there
    assert 'pytest -m ""                   # everything' in contributing
    assert '`pytest -m ""` runs everything' in (ROOT / "README.md").read_text()
