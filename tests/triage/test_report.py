"""Upstream bug reports and their standalone repro scripts."""

import ast
import json
import re
import subprocess
import sys

import pytest
import tomllib
from conftest import FIXTURES, ROOT, record

from ftcompat import cli
from ftcompat.results.grid import Grid
from ftcompat.triage import report, repro, scripts, upstream

CASES = FIXTURES / "repro_cases"
ENV = {"python": "3.11.7", "platform": "Linux-recorded-platform", "implementation": "cpython",
       "device": {"type": "cpu", "name": "Recorded CPU", "cuda": None},
       "versions": {"torch": "2.13.0+cpu", "transformers": "4.54.1", "trl": "0.20.0", "peft": "0.17.0",
                    "bitsandbytes": "0.46.1", "accelerate": "1.9.0", "datasets": "5.0.1", "tokenizers": "0.21.4"},
       "support_versions": {"huggingface_hub": "0.36.2", "safetensors": "0.8.0", "numpy": "2.4.6",
                            "deepspeed": None}}
ISSUE = {"id": "trl-freeze", "url": "https://github.com/huggingface/trl/issues/3926", "summary": "LoRA frozen",
         "workaround": "pass peft_config", "when": {"trl": ">=0.20.0,<0.23.1"}}


def cell(combo="bad", variant="keyerror", status="fail", versions=None, **extra):
    env = {**ENV, "versions": {**ENV["versions"], **(versions or {})}}
    fields = {"exc_type": "KeyError" if status == "fail" else None, "message": "'text'",
              "signature": "KeyError: 'text'" if status == "fail" else None, "step": "load the dataset",
              "env": env, **extra}
    return record(f"{combo}::boom[{variant}]", status, **fields)


def grid(*cells):
    return Grid(tuple(cells), (), ("boom[keyerror]",), "2026-11-22T00:00:00Z")


def test_the_script_pins_the_recorded_versions_in_pep723_metadata():
    text = repro.script(cell(), (CASES / "boom.py").read_text(), None, "test")
    ast.parse(text)
    block = re.search(r"(?m)^# /// script$\s(?P<content>(^#(| .*)$\s)+)^# ///$", text).group("content")
    meta = tomllib.loads("".join(line[2:] if line.startswith("# ") else line[1:]
                                 for line in block.splitlines(keepends=True)))
    assert meta["requires-python"] == "==3.11.*"
    assert "torch==2.13.0" in meta["dependencies"] and "trl==0.20.0" in meta["dependencies"]
    assert "datasets==5.0.1" in meta["dependencies"]


@pytest.mark.parametrize("text", ['a"""b' + "'''c\\d\"", "x\\", "plain", '""""', (CASES / "boom.py").read_text()])
def test_literal_round_trips_any_source(text):
    assert ast.literal_eval(repro.literal(text)) == text


def run_script(tmp_path, variant, status="fail"):
    """Write the script for a fixture cell and run it in a clean folder with this interpreter."""
    c = cell(variant=variant, status=status, exc_type={"fail": "KeyError", "error": "OSError"}.get(status))
    if status == "error":
        c = c.with_(exc_type="OSError", signature="OSError: no weights")
    path = tmp_path / "repro.py"
    path.write_text(repro.script(c, (CASES / "boom.py").read_text(), None, "test"))
    proc = subprocess.run([sys.executable, "-I", str(path)], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"})
    return proc.returncode, proc.stdout + proc.stderr


def test_the_script_reproduces_a_failure_with_its_traceback(tmp_path):
    rc, out = run_script(tmp_path, "keyerror")
    assert rc == 1, out
    assert "REPRODUCED: KeyError: 'text'" in out
    assert 'File "cases/boom.py"' in out and '{}["text"]' in out  # the inlined case shows its lines
    assert "during: load the dataset" in out
    assert scripts.verdict(rc, out) == "REPRODUCED"


def test_the_script_says_when_it_does_not_reproduce(tmp_path):
    rc, out = run_script(tmp_path, "passes")
    assert (rc, scripts.verdict(rc, out)) == (0, "did NOT reproduce (the case passed)")
    rc, out = run_script(tmp_path, "skips")
    assert rc == 2 and "COULD NOT RUN (skipped): needs CUDA" in out
    rc, out = run_script(tmp_path, "setup_breaks", status="error")
    assert rc == 1 and "REPRODUCED: OSError: no weights" in out


def test_a_crashing_script_is_not_taken_for_a_reproduction():
    assert scripts.verdict(1, "Traceback ...\nNameError: name 'null' is not defined\n").startswith("could not run")


def test_project_is_the_one_whose_code_raised():
    frame = 'File "site-packages/transformers/generation/utils.py", line 1\nFile "site-packages/peft/tuners/x.py"'
    assert upstream.project_of(cell(traceback=frame))[0].name == "peft"
    assert upstream.project_of(cell(origin={"package": "bitsandbytes", "file": "x"}))[0].name == "bitsandbytes"
    remote = upstream.project_of(cell(origin={"package": "transformers_modules", "file": "m.py"}))
    assert remote[0].name == "transformers" and "remote code" in remote[1]
    assert upstream.project_of(cell(known_issue=ISSUE))[0].name == "trl"
    assert upstream.project_of(cell(message="cannot import name 'X' from 'trl' (site-packages/trl/__init__.py)"))[
        0].name == "trl"
    assert upstream.project_of(cell(), "see https://github.com/huggingface/peft/issues/1515")[0].name == "peft"


def test_area_comes_from_the_innermost_project_frame():
    tf = upstream.PROJECTS["transformers"]
    files = ["cases/x.py", "site-packages/transformers/trainer.py", "site-packages/transformers/generation/utils.py"]
    assert tf.area(files) == "generate"
    assert tf.area(["site-packages/transformers/quantizers/quantizer_bnb_4bit.py"]) == "quantization (bitsandbytes)"


def test_last_good_and_first_bad_come_from_the_grid():
    g = grid(cell("a", status="pass", versions={"trl": "0.19.1"}),
             cell("b", versions={"trl": "0.20.0"}), cell("c", versions={"trl": "0.22.2"}),
             cell("d", status="pass", versions={"trl": "0.23.1"}))
    b = report.boundary(g, g.cells[2], "trl")
    assert (b.last_good, b.first_bad) == ("0.19.1", "0.20.0")


def test_the_report_uses_the_recorded_environment_and_the_known_issue():
    g = grid(cell("good", status="pass", versions={"trl": "0.19.1"}), cell(known_issue=ISSUE))
    r = report.build(g, "bad::boom[keyerror]", CASES, {})
    md = r.markdown
    assert r.project.name == "trl"
    assert md.index("### Reproduction") < md.index("### System Info")  # TRL's template order
    assert "Platform: Linux-recorded-platform" in md and "Huggingface_hub version: 0.36.2" in md
    assert "CPU: Recorded CPU" in md
    assert "Already reported: https://github.com/huggingface/trl/issues/3926" in md
    assert "last known good: trl 0.19.1" in md and "first bad: trl 0.20.0" in md
    assert "ftcompat bisect" in md
    assert r.script in md  # pasted in full, ready for the tracker


def test_a_script_too_long_for_githubs_limit_is_attached_not_inlined(monkeypatch):
    from ftcompat.triage import report_md

    g = grid(cell(known_issue=ISSUE))
    small = report.build(g, "bad::boom[keyerror]", CASES, {}).markdown
    monkeypatch.setattr(report_md, "BODY_LIMIT", len(small) - 1)
    r = report.build(g, "bad::boom[keyerror]", CASES, {})
    assert len(r.markdown) <= len(small) - 1
    assert r.script not in r.markdown and "Download the attached `repro.py`" in r.markdown
    assert "### Traceback" in r.markdown  # everything else stays


def test_a_bisection_replaces_the_grid_boundary():
    g = grid(cell(known_issue=ISSUE))
    found = {"verdict": "found", "culprit": ["trl"], "last_good": {"trl": "0.19.1"}, "first_bad": {"trl": "0.20.0"},
             "line": "first fails with trl 0.20.0 (last good 0.19.1); 3 environments"}
    md = report.build(g, "bad::boom[keyerror]", CASES, {}, bisection=found).markdown
    assert "from: bisection: first fails with trl 0.20.0" in md and "narrow it down" not in md


def test_only_failing_cells_are_reported():
    g = grid(cell("good", status="pass"), cell())
    with pytest.raises(report.ReportError, match="is pass"):
        report.find_cell(g, "good::boom[keyerror]")
    with pytest.raises(report.ReportError, match="failing cells of bad: bad::boom"):
        report.find_cell(g, "bad::boom[nope]")


def test_cli_writes_report_and_script_for_a_real_cell(tmp_path):
    cell_id = "tf4.54-trl0.20::phi3_generate[remote_seen_tokens@tiny-phi3]"
    out = tmp_path / "r"
    assert cli.main(["--matrix", str(ROOT / "matrix.yaml"), "report", cell_id,
                     "--grid", str(ROOT / "results" / "grid.json"), "--out", str(out)]) == 0
    md = (out / "REPORT.md").read_text()
    assert "huggingface/transformers/issues/new" in md and "transformers/issues/32855" in md
    assert json.loads((out / "report.json").read_text())["cell"] == cell_id
    assert cli.main(["--matrix", str(ROOT / "matrix.yaml"), "report", "latest::nope[x]",
                     "--grid", str(ROOT / "results" / "grid.json"), "--out", str(out)]) == 2


@pytest.mark.e2e
def test_the_script_reproduces_a_real_cell_from_a_clean_folder_with_uv(tmp_path):
    """docs/guide/reports.md's example: `uv run repro.py` on a machine that has never seen this repository."""
    cell_id = "tf4.54-trl0.20::phi3_generate[remote_seen_tokens@tiny-phi3]"
    out = tmp_path / "r"
    assert cli.main(["--matrix", str(ROOT / "matrix.yaml"), "report", cell_id,
                     "--grid", str(ROOT / "results" / "grid.json"), "--out", str(out)]) == 0
    rc, output = scripts.run_script(out / "repro.py")
    assert scripts.verdict(rc, output) == "REPRODUCED", output
    assert "'DynamicCache' object has no attribute 'seen_tokens'" in output
    assert "transformers': '4.54.1'" in output  # the versions its header pinned, not this machine's


def test_a_cell_the_broken_environment_stopped_is_not_reported():
    import pytest
    from conftest import record

    from ftcompat.results.grid import Grid
    from ftcompat.triage.report import ReportError, find_cell

    cell = record("c::case[v]", "error", message="environment broken: import datasets fails: ImportError: x",
                  environment={"module": "datasets", "exc_type": "ImportError", "message": "x"})
    with pytest.raises(ReportError, match="did not reach its check: environment broken: import datasets fails"):
        find_cell(Grid((cell,), ({"id": "c"},), ("case[v]",), "t"), "c::case[v]")


def test_a_report_reads_a_case_where_the_config_keeps_it_not_only_in_cases(tmp_path, monkeypatch):
    import shutil

    from helpers import project

    from ftcompat.cli import main
    from ftcompat.results import grid as grid_mod

    monkeypatch.chdir(tmp_path)
    config = project(tmp_path, case_dirs=["elsewhere"], cases={"boom": {"models": []}})
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(CASES / "boom.py", tmp_path / "elsewhere" / "boom.py")
    failing = cell(combo="prod")
    grid_mod.save(Grid((failing,), ({"id": "prod"},), ("boom[keyerror]",), "2026-11-22T00:00:00Z"),
                  tmp_path / "g.json")
    assert main(["--config", str(config), "report", "prod::boom[keyerror]", "--grid", "g.json", "--out", "rep"]) == 0
    assert '{}["text"]' in (tmp_path / "rep" / "repro.py").read_text()  # the case, read from elsewhere/


def test_a_handoff_cell_is_reproduced_by_the_producers_script_then_the_consumers(tmp_path):
    made = {"torch": "2.13.0", "transformers": "5.4.0", "peft": "0.21.2"}
    base = cell()
    c = record("train~serve::pass_on[note]", "fail", exc_type="KeyError", message="'text'",
               signature="KeyError: 'text'", step="read the note", env=base.env).with_(handoff={
        "from": "train", "to": "serve", "failed": "consumer", "consumer": {"status": "fail"},
        "producer": {"status": "pass", "versions": made, "python": "3.12.1"}})
    source = (CASES / "pass_on.py").read_text()
    scripts_ = {"produce.py": repro.script(c, source, None, "test", "produce"),
                "repro.py": repro.script(c, source, None, "test", "consume")}
    for name, text in scripts_.items():
        (tmp_path / name).write_text(text)
    made_by, used_by = scripts_["produce.py"], scripts_["repro.py"]
    assert 'requires-python = "==3.12.*"' in made_by and '"transformers==5.4.0"' in made_by
    assert 'requires-python = "==3.11.*"' in used_by and '"transformers==4.54.1"' in used_by

    def run(name):
        proc = subprocess.run([sys.executable, "-I", name], cwd=tmp_path, capture_output=True, text=True,
                              env={"PATH": "/usr/bin:/bin"})
        return proc.returncode, proc.stdout + proc.stderr

    rc, out = run("repro.py")  # nothing made yet
    assert rc == 2 and "nothing in" in out and "run `uv run produce.py` here first" in out
    rc, out = run("produce.py")
    assert rc == 0 and "PRODUCED" in out and (tmp_path / "artifact" / "note.json").is_file()
    rc, out = run("repro.py")
    assert rc == 1 and "REPRODUCED: KeyError: 'text'" in out and "during: read the note" in out
    # The report tells the reader to run both, in that order, and says where the artifact was made.
    body = report.build(grid(c), c.id, CASES, {}, None, "peft").markdown
    assert "Made in one environment, loaded in another. Download the attached `produce.py` and `repro.py`" in body
    assert "run `uv run produce.py` (the versions that made the artifact: it writes `./artifact`), then run " \
           "`uv run repro.py`" in body
    assert "made in another environment (Python 3.12.1): peft 0.21.2, torch 2.13.0, transformers 5.4.0" in body
