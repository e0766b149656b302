"""Running a combo's cases: transient reruns, the result cache, resuming, unreadable result files."""

import json
from pathlib import Path

from conftest import record

from ftcompat.config.cases import CaseFile
from ftcompat.core.status import Status
from ftcompat.env.base import Built
from ftcompat.runner.cells import Shell, node_id, rerun_transient, settle


def rec(cid, status, signature=None, model="tiny"):
    return record(cid, status, signature=signature, message=signature, duration_s=1.0, model=model)


CASES = {"gen": CaseFile("gen", Path("/p/cases/gen.py"), ("a", "b", "c"), (True, True, True), "")}


def fake_runner(second):
    """A runner whose pytest run writes ``second`` (the rerun's records) to the requested file."""
    calls = []

    def run(*cmd, env):
        calls.append(cmd)
        out = Path(cmd[cmd.index("--out") + 1])
        out.write_text(json.dumps({"cells": [r.to_dict() for r in second]}))

    return Shell(log=lambda *_: None, run=run), calls


def command(nodes, dest):
    return ["pytest", "--out", str(dest), *nodes]


def test_only_transient_failures_are_rerun_and_a_pass_makes_them_flaky(tmp_path):
    first = [rec("c::gen[a@tiny]", "error", "WorkerCrashed: node down: Not properly terminated"),
             rec("c::gen[b@tiny]", "fail", "RuntimeError: CUDA error: out of memory"),
             rec("c::gen[c@tiny]", "fail", "KeyError: 'text'")]
    runner, calls = fake_runner([rec("c::gen[a@tiny]", "pass"), rec("c::gen[b@tiny]", "fail", "RuntimeError: oom")])
    got = {r.id: r for r in rerun_transient(first, CASES, runner, command, tmp_path / "again.json")}
    assert calls[0][3:] == ("/p/cases/gen.py::test_a[tiny]", "/p/cases/gen.py::test_b[tiny]")
    assert got["c::gen[a@tiny]"].status == Status.FLAKY
    assert got["c::gen[a@tiny]"].signature.startswith("flaky: WorkerCrashed")
    assert got["c::gen[b@tiny]"].status == Status.FAIL and got["c::gen[b@tiny]"].reruns == 1
    assert got["c::gen[b@tiny]"].first_signature == "RuntimeError: CUDA error: out of memory"
    assert got["c::gen[c@tiny]"] == first[2]  # a real failure is not retried
    assert not (tmp_path / "again.json").exists()


def test_nothing_transient_runs_nothing(tmp_path):
    runner, calls = fake_runner([])
    records = [rec("c::gen[c@tiny]", "fail", "KeyError: 'text'")]
    assert rerun_transient(records, CASES, runner, command, tmp_path / "x.json") == records and not calls


def test_a_rerun_that_reports_nothing_keeps_the_failure():
    first = rec("c::gen[a@tiny]", "error", "WorkerCrashed: killed")
    assert settle(first, None).status == Status.ERROR


def test_node_ids_without_a_model():
    assert node_id(CASES["gen"], rec("c::gen[a]", "fail", model=None)) == "/p/cases/gen.py::test_a"


# ---------------------------------------------------------------------------------------------
# The result cache, resuming an interrupted run, and unreadable result files


import shutil  # noqa: E402

import pytest  # noqa: E402
from conftest import FIXTURES  # noqa: E402

from ftcompat.runner.cells import run_cases  # noqa: E402

VERSIONS = {"torch": "2.5.1", "transformers": "4.47.1", "trl": "0.13.0"}


class Harness:
    """Stands in for pytest + the plugin: writes a passing record for each node id it is given."""

    def __init__(self, stop_after=None):
        self.calls, self.stop_after = [], stop_after

    def __call__(self, *cmd, env):
        cmd = list(cmd)
        keys = json.loads(Path(cmd[cmd.index("--ftcompat-plan") + 1]).read_text())["cache_keys"]
        out = Path(cmd[cmd.index("--ftcompat-out") + 1])
        out.parent.mkdir(parents=True, exist_ok=True)
        nodes = [c for c in cmd if "::test_" in c]
        self.calls.append(nodes)
        records = []
        for node in nodes:
            case = Path(node.split("::")[0]).stem
            func, _, model = node.split("::")[1].partition("[")
            model = model.rstrip("]") or None
            cid = f"old::{case}[{func.removeprefix('test_')}{'@' + model if model else ''}]"
            records.append(record(cid, "pass", cache_key=keys.get(cid), env={}).to_dict())
            out.write_text(json.dumps({"combo": "old", "cells": records}))
            if self.stop_after and len(records) == self.stop_after:
                raise KeyboardInterrupt


@pytest.fixture
def project(tmp_path, fixture_matrix):
    shutil.copytree(FIXTURES / "cases", tmp_path / "cases")
    from ftcompat.config.cases import discover

    return tmp_path, fixture_matrix, discover(tmp_path / "cases")


def run(project, harness, versions=VERSIONS):
    root, matrix, cases = project
    shell = Shell(log=lambda *_: None, run=harness)
    out = root / "results" / "cells" / "old.json"
    return run_cases(root, matrix, cases, matrix.combo("old"), Built("python", versions), out, shell), out


def test_a_second_run_reuses_every_unchanged_cell(project):
    first = Harness()
    records, _ = run(project, first)
    assert len(first.calls[0]) == len(records) == 5 and all(r.cache_key for r in records)
    again = Harness()
    records, _ = run(project, again)
    assert again.calls == [] and all(r.cached for r in records)


def test_a_changed_case_or_version_runs_again_and_force_runs_everything(project, monkeypatch):
    run(project, Harness())
    root = project[0]
    (root / "cases" / "api.py").write_text((root / "cases" / "api.py").read_text() + "\n# changed\n")
    h = Harness()
    run(project, h)
    assert h.calls == [[f"{root}/cases/api.py::test_import"]]
    h = Harness()
    run(project, h, {**VERSIONS, "trl": "0.14.0"})
    assert len(h.calls[0]) == 5
    monkeypatch.setenv("FTCOMPAT_FORCE", "1")
    h = Harness()
    run(project, h)
    assert len(h.calls[0]) == 5


def test_an_interrupted_run_keeps_finished_cells_and_resumes_with_the_rest(project):
    with pytest.raises(KeyboardInterrupt):
        run(project, Harness(stop_after=2))
    out = project[0] / "results" / "cells" / "old.json"
    assert len(json.loads(out.read_text())["cells"]) == 2
    assert not out.with_name(".old.running.json").exists()
    h = Harness()
    records, _ = run(project, h)
    assert len(h.calls[0]) == 3 and len(records) == 5


def test_a_leftover_from_a_killed_run_is_folded_in(project):
    records, out = run(project, Harness())
    out.unlink()
    leftover = {"combo": "old", "cells": [r.to_dict() for r in records[:3]]}
    out.with_name(".old.running.json").write_text(json.dumps(leftover))
    h = Harness()
    run(project, h)
    assert len(h.calls[0]) == 2


def test_a_corrupted_result_file_is_set_aside_and_its_cells_rerun(project):
    _, out = run(project, Harness())
    out.write_text('{"combo": "old", "cells": [{"id": "old::gen[na')  # truncated mid-write
    h = Harness()
    run(project, h)
    assert len(h.calls[0]) == 5
    aside = list(out.parent.glob("old.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text().endswith("[na")


KILL_CASE = '''"""Fixture: two quick cells and one that takes long unless told otherwise."""
import os
import time


def test_first():
    """Quick."""


def test_second():
    """Quick."""


def test_slow():
    """Slow in the first run, so the run can be killed while it is in flight."""
    if os.environ.get("FTCOMPAT_TEST_SLOW"):
        time.sleep(60)
'''


def test_a_really_killed_harness_resumes_with_only_the_missing_cell(tmp_path, monkeypatch):
    """The harness process is SIGKILLed mid-run; the same command then runs only what is missing."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from conftest import ROOT

    from ftcompat.config.cases import discover
    from ftcompat.config.matrix import parse

    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "killme.py").write_text(KILL_CASE)
    cases = discover(tmp_path / "cases")
    matrix = parse({"version": 1, "combos": [{"id": "k", "python": "3.11", "pins": {}, "tags": ["cpu"]}],
                    "models": {}, "cases": {"killme": {}}}, "matrix.yaml", cases)
    out = tmp_path / "results" / "cells" / "k.json"
    env = {"PYTHONPATH": str(ROOT / "src"), "FTCOMPAT_WORKERS": "1"}
    commands = []

    def killing(*cmd, env):
        commands.append(cmd)
        running = out.with_name(".k.running.json")
        proc = subprocess.Popen(cmd, env={**os.environ, **env, "FTCOMPAT_TEST_SLOW": "1"}, cwd=tmp_path,
                                start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if running.exists() and len(json.loads(running.read_text())["cells"]) == 2:
                break
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)  # the whole harness: controller process and its worker
        proc.wait()
        raise KeyboardInterrupt  # what the killed job's caller sees

    def normal(*cmd, env):
        commands.append(cmd)
        subprocess.run(cmd, env={**os.environ, **env}, cwd=tmp_path, check=False, capture_output=True)

    monkeypatch.setenv("PYTHONPATH", env["PYTHONPATH"])
    monkeypatch.setenv("FTCOMPAT_WORKERS", "1")
    with pytest.raises(KeyboardInterrupt):
        run_cases(tmp_path, matrix, cases, matrix.combo("k"), Built(sys.executable, {"torch": "x"}), out,
                  Shell(log=lambda *_: None, run=killing))
    kept = {r["variant"]: r["status"] for r in json.loads(out.read_text())["cells"]}
    assert kept == {"first": "pass", "second": "pass"}
    records = run_cases(tmp_path, matrix, cases, matrix.combo("k"), Built(sys.executable, {"torch": "x"}), out,
                        Shell(log=lambda *_: None, run=normal))
    assert [c for c in commands[1] if "::" in c] == [f"{tmp_path}/cases/killme.py::test_slow"]
    assert {r.variant: (r.status, bool(r.cached)) for r in records} == {
        "first": (Status.PASS, True), "second": (Status.PASS, True), "slow": (Status.PASS, False)}


def test_cells_are_handed_out_longest_first():
    from ftcompat.core.domain import Cell
    from ftcompat.runner.cells import longest_first

    cells = [Cell("c", "gen", v) for v in ("short", "new", "long")]
    previous = [record("c::gen[short]", duration_s=1.0), record("c::gen[long]", duration_s=25.0)]
    assert [c.variant for c in longest_first(cells, previous)] == ["new", "long", "short"]


def test_a_setup_error_is_cached_but_a_missing_result_or_a_crash_is_not():
    from ftcompat.runner import cache

    records = [record("x::a[v]", "error", exc_type="ImportError", signature="ImportError: no X", cache_key="k"),
               record("x::b[v]", "error", exc_type=None, signature="no result recorded", cache_key="k"),
               record("x::c[v]", "crash", exc_type="WorkerCrashed", signature="died", cache_key="k"),
               record("x::d[v]", "error", exc_type="OSError", signature="OSError: Connection reset", cache_key="k")]
    key = {r.id: "k" for r in records}
    assert [r.id for r in cache.hits(records, key)] == ["x::a[v]"]


# ---------------------------------------------------------------------------------------------
# Machine failures, results that cannot be written, partial runs, two runs of one combo


def test_a_harness_that_cannot_write_its_results_stops_the_run_and_keeps_the_old_file(project):
    from ftcompat.core.cellfile import RESULTS_UNWRITABLE, WriteFailed

    _, out = run(project, Harness())
    before = out.read_bytes()
    calls = []

    def full(*cmd, env):
        calls.append(cmd)
        return RESULTS_UNWRITABLE

    root, matrix, cases = project
    with pytest.raises(WriteFailed, match="the previous results in cells/ are unchanged"):
        run_cases(root, matrix, cases, matrix.combo("old"), Built("python", {**VERSIONS, "trl": "9"}), out,
                  Shell(log=lambda *_: None, run=full))
    assert out.read_bytes() == before and len(calls) == 1  # no transient rerun after it


@pytest.fixture
def fake_install(project, fake_uv, monkeypatch):
    """install_and_run against the uv stand-in, with no index asked."""
    from ftcompat.env import preflight, space

    monkeypatch.setattr(preflight, "pins_problem", lambda combo: None)
    monkeypatch.setattr(space, "sizes", lambda pkgs, *a, **k: {})
    root = project[0]
    venv = root / ".nox" / "old"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    return venv


def _install_and_run(project, venv, harness, combo=None):
    from ftcompat.env.venv import NoxVenv
    from ftcompat.runner import run as runner

    root, matrix, cases = project
    out = root / "results" / "cells" / "old.json"
    env = NoxVenv(root, combo or matrix.combo("old"), venv, tuple(c.id for c in matrix.combos))
    outcome = runner.run(env, runner.Job(root, matrix, cases, (out,), command=harness), lambda *_: None)
    return outcome.refused, out


def test_a_machine_failure_keeps_the_earlier_verdicts_marked_not_refreshed(project, fake_install, monkeypatch):
    from ftcompat.core.errors import MachineError

    _, out = _install_and_run(project, fake_install, Harness())
    earlier = {r["id"]: r["status"] for r in json.loads(out.read_text())["cells"]}
    assert len(earlier) == 5
    (fake_install / "ftcompat-stamp.json").unlink()  # the next run must build again ...
    monkeypatch.setenv("FAKE_UV_FAIL", "sync:nospace")  # ... and the disk is full
    with pytest.raises(MachineError, match="no space left on device"):
        _install_and_run(project, fake_install, Harness())
    after = json.loads(out.read_text())["cells"]
    assert {r["id"]: r["status"] for r in after} == earlier  # not one verdict replaced
    assert all(r["not_refreshed"]["reason"].startswith("no space left on device") for r in after)
    from ftcompat.core.paths import machine_paths

    assert machine_paths(out.read_text()) == []  # uv's own paths made portable
    monkeypatch.delenv("FAKE_UV_FAIL")
    _install_and_run(project, fake_install, Harness())
    assert not any("not_refreshed" in r for r in json.loads(out.read_text())["cells"])


def test_a_machine_failure_with_no_earlier_result_says_what_failed_and_is_no_finding(project, fake_install,
                                                                                     monkeypatch):
    from ftcompat.core.errors import MachineError
    from ftcompat.core.record import Record
    from ftcompat.results.grid import triage
    from ftcompat.runner import cache

    monkeypatch.setenv("FAKE_UV_FAIL", "compile:network")
    with pytest.raises(MachineError):
        _install_and_run(project, fake_install, Harness())
    cells = json.loads((project[0] / "results" / "cells" / "old.json").read_text())["cells"]
    assert {c["status"] for c in cells} == {"error"} and {c["exc_type"] for c in cells} == {"MachineError"}
    assert cells[0]["signature"].startswith("MachineError: the package index could not be reached")
    first = Record.from_dict(cells[0])
    assert not cache.reusable(first) and triage(first, []).triage is None


def test_an_uninstallable_partial_run_keeps_the_other_cases_results(project, fake_install, monkeypatch):
    """FTCOMPAT_CASES=api with pins that cannot install: api's cells say so, gen's earlier cells stay."""
    from ftcompat.flows.combo import only_cases

    _, out = _install_and_run(project, fake_install, Harness())
    (fake_install / "ftcompat-stamp.json").unlink()
    monkeypatch.setenv("FAKE_UV_FAIL", "compile:notfound")
    root, matrix, cases = project
    reason, _ = _install_and_run(project, fake_install, Harness(), only_cases(matrix, matrix.combo("old"), "api"))
    assert "there is no version of transformers==99.0.0" in reason
    got = {r["id"]: r["status"] for r in json.loads(out.read_text())["cells"]}
    assert len(got) == 5 and got["old::api[import]"] == "not-installable"
    assert [s for i, s in got.items() if i.startswith("old::gen")] == ["pass"] * 4


def test_a_case_selector_that_selects_nothing_is_refused(fixture_matrix):
    from ftcompat.core.errors import InputError
    from ftcompat.flows.combo import only_cases

    with pytest.raises(InputError, match="'nosuchcase' selects no case of matrix.yaml"):
        only_cases(fixture_matrix, fixture_matrix.combo("old"), "nosuchcase")
    with pytest.raises(InputError, match="did you mean 'gen'"):
        only_cases(fixture_matrix, fixture_matrix.combo("old"), "gne")
    assert only_cases(fixture_matrix, fixture_matrix.combo("canary"), "api").cases == ()  # not this combo's


SLOW = '''"""Fixture: a case slow enough for a second run to start while the first is in it."""
import time


def test_slow_a():
    """Sleeps."""
    time.sleep(4)


def test_slow_b():
    """Sleeps."""
    time.sleep(4)
'''

RUN_ONE = '''
import sys
from pathlib import Path
from ftcompat.config.cases import discover
from ftcompat.config.matrix import load
from ftcompat.env.venv import NoxVenv
from ftcompat.runner import run as runner

root = Path(sys.argv[1])
matrix = load(root / "matrix.yaml")
combo = matrix.combo("c")
venv = root / ".nox" / "c"
runner.run(NoxVenv(root, combo, venv, ("c",)),
           runner.Job(root, matrix, discover(root / "cases"), (root / "results" / "cells" / "c.json",)),
           lambda line: print(line, flush=True))
'''


@pytest.mark.e2e  # two real harness runs, about 20 s
def test_two_real_runs_of_one_combo_take_turns_and_both_cells_survive(tmp_path, fake_uv, monkeypatch):
    """Two processes run the same combo at once (the real harness); the second waits, nothing is lost."""
    import os
    import subprocess
    import sys
    import time

    from conftest import ROOT

    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "slow.py").write_text(SLOW)
    (tmp_path / "matrix.yaml").write_text('version: 1\ncombos:\n  - {id: c, python: "3.11", pins: {torch: "1", '
                                          'transformers: "1", trl: "1", peft: "1", bitsandbytes: "1", '
                                          'accelerate: "1"}}\nmodels: {}\ncases:\n  slow: {}\n')
    venv = tmp_path / ".nox" / "c"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')  # the harness runs here
    (venv / "bin" / "python").chmod(0o755)
    (tmp_path / "run_one.py").write_text(RUN_ONE)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "FTCOMPAT_WORKERS": "1", "FTCOMPAT_FORCE": "1",
           "FTCOMPAT_ENV_CAP": "0"}
    # The space check and the index check are network calls; the uv stand-in needs neither.
    env["PIP_INDEX_URL"] = "http://127.0.0.1:9/simple"
    for var in ("PIP_FIND_LINKS", "UV_FIND_LINKS", "PIP_EXTRA_INDEX_URL"):
        env.pop(var, None)
    first = subprocess.Popen([sys.executable, str(tmp_path / "run_one.py"), str(tmp_path)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(2)
    second = subprocess.Popen([sys.executable, str(tmp_path / "run_one.py"), str(tmp_path)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out1, out2 = first.communicate(timeout=120)[0], second.communicate(timeout=120)[0]
    assert first.returncode == 0 and second.returncode == 0, out1 + out2
    assert "waiting for pid" in out2 and "to finish this combo" in out2, out2
    cells = json.loads((tmp_path / "results" / "cells" / "c.json").read_text())["cells"]
    assert {c["variant"]: c["status"] for c in cells} == {"slow_a": "pass", "slow_b": "pass"}


def test_the_harness_runs_in_the_project_folder_whatever_the_callers_folder(tmp_path, monkeypatch):
    import sys

    from ftcompat.runner.cells import Shell

    project, elsewhere = tmp_path / "project", tmp_path / "nox-folder"
    project.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # nox runs a session from the noxfile's folder: inside the wheel
    code = Shell(log=lambda *_: None, cwd=project)([sys.executable, "-c", "open('written.txt', 'w').write('x')"], {})
    assert code == 0 and (project / "written.txt").exists() and not (elsewhere / "written.txt").exists()


def test_the_runner_hands_the_run_stage_the_project_folder(tmp_path, monkeypatch):
    from ftcompat.core.domain import Combo, Matrix
    from ftcompat.core.health import Health
    from ftcompat.env.base import Built
    from ftcompat.runner import run as runner

    seen = {}

    class Env:
        kind, repairs, combo = "x", False, Combo("c", "3.11", {})

        def prepare(self, log):
            return Built(python="python")

        def release(self):
            pass

    monkeypatch.setattr(runner.health, "check", lambda *a, **k: Health())
    monkeypatch.setattr(runner.cells, "run_cases", lambda *a, **k: seen.setdefault("cwd", a[6].cwd) and [])
    runner.run(Env(), runner.Job(tmp_path, Matrix((), {}, {}), {}, (tmp_path / "c.json",)), log=lambda *_: None)
    assert seen["cwd"] == tmp_path


def test_a_process_a_case_leaves_running_does_not_outlive_the_run(tmp_path):
    import os
    import sys
    import time

    from ftcompat.runner.cells import Shell

    pidfile = tmp_path / "pid"
    code = ("import subprocess, sys; p = subprocess.Popen(['sleep', '300']); "
            f"open({str(pidfile)!r}, 'w').write(str(p.pid))")
    assert Shell(log=lambda *_: None, cwd=tmp_path)([sys.executable, "-c", code], {}) == 0
    pid = int(pidfile.read_text())
    for _ in range(50):  # killed at once; reaped by init a moment later
        if not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split()[2]:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        raise AssertionError("the case's child process outlived the run")
