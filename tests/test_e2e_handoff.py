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
