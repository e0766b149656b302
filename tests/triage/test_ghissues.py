"""`ftcompat file-issues`: one issue per regressed cell, found by its id in an open issue's title, through gh."""

import json
import os
import subprocess
import sys

import pytest

from ftcompat.core.errors import MachineError
from ftcompat.triage.ghissues import file_issues

FAKE_GH = """#!/bin/bash
printf '%s\\n' "$*" >>"$GH_LOG"
if [ "$1 $2" = "issue list" ]; then
  echo '[{"number": 7, "title": "ftcompat regression: prod::mine[plain@tiny-llama]"}, {"number": 9, "title": "x"}]'
fi
if [ "$1 $2" = "issue create" ]; then cp "${@: -3:1}" "$GH_BODY"; fi
[ "$1 $2" = "issue comment" ] && [ -n "$GH_FAIL" ] && { echo "HTTP 403" >&2; exit 1; }
exit 0
"""


@pytest.fixture
def gh(tmp_path, monkeypatch):
    (tmp_path / "gh").write_text(FAKE_GH)
    (tmp_path / "gh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setenv("GH_LOG", str(tmp_path / "gh.log"))
    monkeypatch.setenv("GH_BODY", str(tmp_path / "body.md"))
    return lambda: (tmp_path / "gh.log").read_text().splitlines()


def test_comments_on_the_cells_open_issue_else_opens_one(gh, tmp_path):
    hostile = "prod::x[$(touch pwned)@m]"
    done = file_issues([
        {"cell": "prod::mine[plain@tiny-llama]", "title": "t", "body": "first", "labels": ["ftcompat-regression"]},
        {"cell": hostile, "title": f"ftcompat regression: {hostile}", "body": "second `id`",
         "labels": ["ftcompat-regression"]},
    ], "https://example.invalid/run/1")
    assert done == ["commented on #7: prod::mine[plain@tiny-llama]", f"opened: {hostile}"]
    log = gh()
    assert log[0].startswith("label create ftcompat-regression --color B60205")
    assert log[1] == "issue list --label ftcompat-regression --state open --limit 1000 --json number,title"
    assert log[2].startswith("issue comment 7 --body-file ")
    assert log[3].startswith(f"issue create --title ftcompat regression: {hostile} --body-file ")
    assert (tmp_path / "body.md").read_text() == "second `id`\n\n_Seen in run https://example.invalid/run/1._\n"
    assert not (tmp_path / "pwned").exists()


def test_nothing_to_file_calls_nothing(gh, tmp_path):
    assert file_issues([]) == ["No new regressions."]
    assert not (tmp_path / "gh.log").exists()


def test_a_gh_failure_is_a_machine_error(gh, monkeypatch):
    monkeypatch.setenv("GH_FAIL", "1")
    with pytest.raises(MachineError, match="gh issue comment failed with status 1: HTTP 403"):
        file_issues([{"cell": "prod::mine[plain@tiny-llama]", "title": "t", "body": "b"}])


def test_the_command_reads_the_payloads_diff_wrote(gh, tmp_path):
    payloads = tmp_path / "regressions.json"
    payloads.write_text(json.dumps([]))
    proc = subprocess.run([sys.executable, "-m", "ftcompat.cli", "file-issues", str(payloads)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "No new regressions."
