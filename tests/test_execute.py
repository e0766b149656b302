"""Running a combo's cases: the automatic rerun of transient failures."""

import json
from pathlib import Path

from ftcompat.cases import CaseFile
from ftcompat.execute import Runner, node_id, rerun_transient, settle


def rec(cid, status, signature=None, model="tiny"):
    case, variant = cid.split("::")[1].split("[")[0], cid.split("[")[1].split("@")[0].rstrip("]")
    return {"id": cid, "case": case, "variant": variant, "model": model, "status": status,
            "signature": signature, "message": signature, "duration_s": 1.0}


CASES = {"gen": CaseFile("gen", Path("/p/cases/gen.py"), ("a", "b", "c"), (True, True, True), "")}


def fake_runner(second):
    """A runner whose pytest run writes ``second`` (the rerun's records) to the requested file."""
    calls = []

    def run(*cmd, env):
        calls.append(cmd)
        out = Path(cmd[cmd.index("--out") + 1])
        out.write_text(json.dumps({"cells": second}))

    return Runner(log=lambda *_: None, run=run), calls


def command(nodes, dest):
    return ["pytest", "--out", str(dest), *nodes]


def test_only_transient_failures_are_rerun_and_a_pass_makes_them_flaky(tmp_path):
    first = [rec("c::gen[a@tiny]", "error", "WorkerCrashed: node down: Not properly terminated"),
             rec("c::gen[b@tiny]", "fail", "RuntimeError: CUDA error: out of memory"),
             rec("c::gen[c@tiny]", "fail", "KeyError: 'text'")]
    runner, calls = fake_runner([rec("c::gen[a@tiny]", "pass"), rec("c::gen[b@tiny]", "fail", "RuntimeError: oom")])
    got = {r["id"]: r for r in rerun_transient(first, CASES, runner, command, tmp_path / "again.json")}
    assert calls[0][3:] == ("/p/cases/gen.py::test_a[tiny]", "/p/cases/gen.py::test_b[tiny]")
    assert got["c::gen[a@tiny]"]["status"] == "flaky"
    assert got["c::gen[a@tiny]"]["signature"].startswith("flaky: WorkerCrashed")
    assert got["c::gen[b@tiny]"]["status"] == "fail" and got["c::gen[b@tiny]"]["reruns"] == 1
    assert got["c::gen[b@tiny]"]["first_signature"] == "RuntimeError: CUDA error: out of memory"
    assert got["c::gen[c@tiny]"] == first[2]  # a real failure is not retried
    assert not (tmp_path / "again.json").exists()


def test_nothing_transient_runs_nothing(tmp_path):
    runner, calls = fake_runner([])
    records = [rec("c::gen[c@tiny]", "fail", "KeyError: 'text'")]
    assert rerun_transient(records, CASES, runner, command, tmp_path / "x.json") == records and not calls


def test_a_rerun_that_reports_nothing_keeps_the_failure():
    first = rec("c::gen[a@tiny]", "error", "WorkerCrashed: killed")
    assert settle(first, None)["status"] == "error"


def test_node_ids_without_a_model():
    assert node_id(CASES["gen"], rec("c::gen[a]", "fail", model=None)) == "/p/cases/gen.py::test_a"
