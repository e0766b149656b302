"""End to end: a LoRA adapter saved in one real environment and loaded in another, built and then as the user's own.

Needs PyPI and a few minutes: two ad-hoc environments (peft 0.15.2 and peft 0.13.2, torch 2.13.0's CPU wheel
from the machine's find-links), the handoff run in them, then the same two environments named with
--from-venv/--to-venv, which must come out of it unchanged.
"""

import json
import os
import subprocess
import sys

import pytest
from helpers import fingerprint

pytestmark = pytest.mark.e2e

NEW = ["torch==2.13.0", "transformers==4.52.0", "trl==0.18.2", "peft==0.15.2", "bitsandbytes==0.46.1",
       "accelerate==1.7.0"]
OLD = ["torch==2.13.0", "transformers==4.46.0", "trl==0.12.0", "peft==0.13.2", "bitsandbytes==0.46.1",
       "accelerate==1.0.1"]


def ftcompat(cwd, *args):
    proc = subprocess.run([sys.executable, "-m", "ftcompat.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "FTCOMPAT_WORKERS": "1"})
    return proc.returncode, proc.stdout + proc.stderr


def cells(path):
    return {c["variant"]: c for c in json.loads(path.read_text())["cells"]}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The handoff from two environments ftcompat builds: newer peft saves, older peft loads."""
    folder = tmp_path_factory.mktemp("handoff")
    code, text = ftcompat(folder, "handoff", "--from", *NEW, "--to", *OLD, "--cases", "lora_adapter_handoff",
                          "--out", "built.json")
    assert code == 0, text[-3000:]
    return folder


def test_a_newer_pefts_adapter_fails_to_load_in_the_older_one_and_its_twin_loads(built):
    got = cells(built / "built.json")
    plain, trimmed = got["lora_adapter"], got["lora_adapter_trimmed_config"]
    assert plain["status"] == "fail" and plain["handoff"]["failed"] == "consumer"
    assert "LoraConfig.__init__() got an unexpected keyword argument" in plain["signature"]
    assert plain["handoff"]["producer"]["versions"]["peft"] == "0.15.2"
    assert plain["env"]["versions"]["peft"] == "0.13.2"
    assert trimmed["status"] == "pass" and trimmed["details"]["dropped_keys"]
    assert trimmed["details"]["missing_tensors"] == [] and trimmed["details"]["changed_tensors"] == []


def test_the_users_own_environments_give_the_same_answer_and_are_not_changed(built):
    venvs = sorted((built / ".ftcompat" / "adhoc").glob("*/venv"))
    new = next(v for v in venvs if "peft0.15.2" in str(v))
    old = next(v for v in venvs if "peft0.13.2" in str(v))
    before = [fingerprint(new), fingerprint(old)]
    code, text = ftcompat(built, "handoff", "--from-venv", str(new), "--to-venv", str(old),
                          "--cases", "lora_adapter_handoff", "--out", "own.json")
    assert code == 0, text[-3000:]
    assert [fingerprint(new), fingerprint(old)] == before
    got = cells(built / "own.json")
    assert {v: c["status"] for v, c in got.items()} == {"lora_adapter": "fail", "lora_adapter_trimmed_config": "pass"}
    assert {c["combo"] for c in got.values()} == {"from-env~to-env"}


def test_a_pair_in_the_config_is_run_by_run_and_drawn_producer_to_consumer(built):
    import yaml

    def combo(cid, pins):
        return {"id": cid, "python": "3.11", "pins": dict(p.split("==") for p in pins)}

    (built / "ftcompat.yaml").write_text(yaml.safe_dump({
        "version": 1, "extends": "builtin", "builtin_cases": ["lora_adapter_handoff"],
        "combos": [combo("train", NEW), combo("serve", OLD)],
        "handoffs": [{"from": "train", "to": "serve"}]}))
    code, text = ftcompat(built, "run")
    assert code == 0, text[-3000:]
    grid = json.loads((built / "results" / "grid.json").read_text())
    row = next(c for c in grid["combos"] if c["id"] == "train~serve")
    assert row["pair"] == {"from": "train", "to": "serve"} and row["resolved"]["peft"] == "0.13.2"
    got = {c["variant"]: c for c in grid["cells"] if c["combo"] == "train~serve"}
    assert got["lora_adapter"]["status"] == "fail" and got["lora_adapter"]["handoff"]["failed"] == "consumer"
    assert got["lora_adapter"]["handoff"]["producer"]["versions"]["peft"] == "0.15.2"
    assert got["lora_adapter_trimmed_config"]["status"] == "pass"
    assert "| train → serve " in (built / "results" / "GRID.md").read_text()
    # The sides' own combos run no case alone, so nox installed nothing into their sessions' environments.
    assert not any((built / ".nox").glob("*/lib/python*/site-packages/torch"))
    assert (built / ".ftcompat" / "handoff" / "envs" / "serve" / "venv" / "bin" / "python").exists()


def test_a_report_of_the_handoff_reproduces_it_with_two_scripts_from_an_empty_folder(built):
    cell = cells(built / "built.json")["lora_adapter"]["id"]
    code, text = ftcompat(built, "report", cell, "--grid", "built.json", "--out", "report", "--run")
    assert code == 0 and "repro.py: REPRODUCED" in text, text[-3000:]
    assert '"peft==0.15.2"' in (built / "report" / "produce.py").read_text()
    assert '"peft==0.13.2"' in (built / "report" / "repro.py").read_text()
    assert "REPRODUCED: TypeError: LoraConfig.__init__() got an unexpected keyword argument" in \
        (built / "report" / "REPORT.md").read_text()
