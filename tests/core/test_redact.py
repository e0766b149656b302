"""An HF token never reaches results, logs, reports or the page: a planted token, end to end."""

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT

from ftcompat.core import redact

TOKEN = "hf_plantedTOKENabcdefghijklmnopqrstuvwxyz0123"  # shaped like a real Hub token
PLAIN = "plain-secret-without-the-hf-prefix"  # an old-style token the pattern alone would miss

CASE = '''
"""Fixture case that leaks the Hub token every way a library can."""
import os

import pytest

from ftcompat.harness import record, step


def test_raises():
    """Prints the token, records it and raises with it, inside a named step."""
    token = os.environ["HF_TOKEN"]
    print(f"downloading with Authorization: Bearer {token}")
    record(url=f"https://huggingface.co/api/models?token={token}", other=os.environ["HUGGING_FACE_HUB_TOKEN"])
    with step("snapshot_download"):
        raise OSError(f"401 Client Error for https://user:{token}@huggingface.co/x (token {token})")


def test_skips():
    """Skips with the token in its reason."""
    pytest.skip(f"gated: token {os.environ['HF_TOKEN']} has no access")


def test_asserts():
    """Fails an assertion whose message holds the other variable's token."""
    assert False, f"bad token {os.environ['HUGGING_FACE_HUB_TOKEN']}"
'''

MATRIX = '''version: 1
combos:
  - id: here
    python: "3.11"
    pins: {torch: null, transformers: null, trl: null, peft: null, bitsandbytes: null, accelerate: null}
    tags: [cpu]
models: {}
cases:
  leaky: {}
'''


def test_redact_masks_env_tokens_token_shapes_and_url_passwords(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", PLAIN)
    text = (f"a {TOKEN} b {PLAIN} c hf_{'x' * 34} d https://me:s3cr3t@index.example/simple "
            f"e {json.dumps(PLAIN + chr(10))}")
    got = redact.redact(text)
    assert TOKEN not in got and PLAIN not in got and "s3cr3t" not in got and "x" * 34 not in got
    assert got.startswith("a hf_*** b hf_*** c hf_*** d https://me:***@index.example/simple e ")


def test_redact_leaves_ordinary_text_alone(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "1")  # too short to be a secret: masking it would wreck every number
    text = "hf_hub_download(repo, revision=1) at https://huggingface.co:443/x and git+ssh://git@github.com/a"
    assert redact.redact(text) == text


def test_secrets_from_env_reads_every_token_variable():
    env = {"HF_TOKEN": TOKEN, "HUGGINGFACE_HUB_TOKEN": PLAIN, "HUGGING_FACE_HUB_TOKEN": PLAIN, "OTHER": "x" * 40}
    assert redact.secrets_from_env(env) == [TOKEN, PLAIN]


def test_cell_json_is_redacted(monkeypatch):
    from ftcompat.core.cellfile import dumps

    monkeypatch.setenv("HF_TOKEN", PLAIN)
    out = dumps({"message": f"token {PLAIN}\n", PLAIN: [TOKEN]})
    assert PLAIN not in out and TOKEN not in out and json.loads(out) == {"message": "token hf_***\n",
                                                                           "hf_***": ["hf_***"]}


@pytest.fixture(scope="module")
def leaked(tmp_path_factory):
    """Run the harness on the leaky case with a planted token, then render the grid and write a report."""
    tmp = tmp_path_factory.mktemp("redact")
    (tmp / "cases").mkdir()
    (tmp / "cases" / "leaky.py").write_text(textwrap.dedent(CASE))
    (tmp / "matrix.yaml").write_text(MATRIX)
    plan = {"combo": {"id": "here"}, "cases": {}, "models": {}, "work_dir": str(tmp / "work")}
    (tmp / "plan.json").write_text(json.dumps(plan))
    (tmp / "none.ini").write_text("[pytest]\n")
    out = tmp / "results" / "cells" / "here.json"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src"), "HF_TOKEN": TOKEN,
           "HUGGING_FACE_HUB_TOKEN": PLAIN}
    # The harness's own command line (execute.pytest_args): its terminal output is the nox log.
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "ftcompat.harness.plugin", "-p", "no:cacheprovider",
         "-c", str(tmp / "none.ini"), "--rootdir", str(tmp), "--ftcompat-plan", str(tmp / "plan.json"),
         "--ftcompat-out", str(out), "-n", "1", "-q", "-rN", "--tb=line", "--disable-warnings", "cases/leaky.py"],
        cwd=tmp, capture_output=True, text=True, env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    run = subprocess.run(
        [sys.executable, "-c", "import sys; from ftcompat.cli import main; sys.exit(main(sys.argv[1:]))",
         "--matrix", str(tmp / "matrix.yaml"), "render", "--results", str(tmp / "results")],
        cwd=tmp, capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    report = subprocess.run(
        [sys.executable, "-c", "import sys; from ftcompat.cli import main; sys.exit(main(sys.argv[1:]))",
         "--matrix", str(tmp / "matrix.yaml"), "report", "here::leaky[raises]",
         "--grid", str(tmp / "results" / "grid.json"), "--out", str(tmp / "results" / "reports" / "raises")],
        cwd=tmp, capture_output=True, text=True, env=env)
    assert report.returncode == 0, report.stdout + report.stderr
    files = {p.relative_to(tmp).as_posix(): p.read_text(encoding="utf-8")
             for p in (tmp / "results").rglob("*") if p.is_file()}
    return {"files": files, "harness_log": proc.stdout + proc.stderr,
            "cli_log": run.stdout + run.stderr + report.stdout + report.stderr,
            "cells": {c["variant"]: c for c in json.loads(out.read_text())["cells"]}}


def test_the_token_really_went_through_every_field(leaked):
    """Guard against a vacuous pass: the case did leak, and what it leaked was masked, not lost."""
    raises = leaked["cells"]["raises"]
    assert raises["message"] == "401 Client Error for https://user:***@huggingface.co/x (token hf_***)"
    # What the case printed, where the harness keeps it (the worker's log under xdist may be off).
    assert raises["log"] in (None, "downloading with Authorization: Bearer hf_***")
    assert raises["details"] == {"url": "https://huggingface.co/api/models?token=hf_***", "other": "hf_***"}
    assert "hf_***" in raises["traceback"]
    assert leaked["cells"]["skips"]["signature"] == "gated: token hf_*** has no access"
    assert leaked["cells"]["asserts"]["signature"] == "AssertionError: bad token hf_***"


def test_no_written_file_holds_the_token(leaked):
    names = set(leaked["files"])
    assert {"results/cells/here.json", "results/grid.json", "results/GRID.md",
            "results/reports/raises/REPORT.md", "results/reports/raises/repro.py",
            "results/reports/raises/report.json"} <= names
    assert any(n.startswith("results/history/") for n in names)
    for name, text in leaked["files"].items():
        assert TOKEN not in text and PLAIN not in text, name


def test_the_command_line_output_does_not_hold_the_token(leaked):
    assert TOKEN not in leaked["cli_log"] and PLAIN not in leaked["cli_log"]


def test_the_harness_log_does_not_hold_the_token(leaked):
    assert "leaky.py" in leaked["harness_log"]  # the failures are listed ...
    assert TOKEN not in leaked["harness_log"] and PLAIN not in leaked["harness_log"]  # ... without the token


def test_scrub_report_cleans_what_pytest_prints():
    from _pytest.reports import TestReport

    rep = TestReport("n", ("f", 1, "n"), {}, "failed", f"E   OSError: token {TOKEN}", "call",
                     sections=[("Captured stdout call", f"Bearer {TOKEN}")])
    redact.scrub_report(rep)
    assert TOKEN not in str(rep.longrepr) and rep.sections == [("Captured stdout call", "Bearer hf_***")]
    skip = TestReport("n", ("f", 1, "n"), {}, "skipped", ("f", 1, f"Skipped: {TOKEN}"), "setup")
    redact.scrub_report(skip)
    assert skip.longrepr == ("f", 1, "Skipped: hf_***")


def test_masking_is_linear_on_a_long_line_without_a_newline():
    import time

    from ftcompat.core.redact import redact

    line = "a" * 4_000_000 + " https://me:s3cret@example.org/simple hf_" + "Q" * 30 + " " + "b://" * 200_000
    start = time.monotonic()
    out = redact(line, [])
    assert time.monotonic() - start < 5  # 4 MB took 308 s when the URL pattern's scheme was unbounded
    assert "https://me:***@example.org" in out and "hf_***" in out and "s3cret" not in out
