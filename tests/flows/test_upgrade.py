"""``ftcompat upgrade`` end to end, across a known break: trl 0.19.1 -> 0.20.0 for the legacy QLoRA flow."""

import json
import os
import subprocess

import pytest
from conftest import ROOT

from ftcompat import cli
from ftcompat.env.build import find_uv
from ftcompat.results import gridload

pytestmark = pytest.mark.e2e

PINS = ["torch==2.13.0", "transformers==4.53.3", "trl==0.19.1", "peft==0.16.0", "bitsandbytes==0.46.1",
        "accelerate==1.9.0"]


def test_upgrade_to_trl_020_flips_the_legacy_flow_and_finds_no_pins_that_keep_it(tmp_path, monkeypatch, capsys):
    uv = find_uv()
    if not uv:
        pytest.skip("uv is not installed")
    env = tmp_path / "train"
    subprocess.run([uv, "venv", "-q", "-p", "3.11", str(env)], check=True)
    links = [a for p in os.environ.get("PIP_FIND_LINKS", "").split() for a in ("--find-links", p)]
    subprocess.run([uv, "pip", "install", "-q", "--python", str(env / "bin" / "python"), *links, *PINS],
                   check=True)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    code = cli.main(["upgrade", "--venv", str(env), "--to", "trl==0.20.0", "--cases", "qlora_sft_trainable",
                     "--out", "up"])
    assert code == 1  # no extra pins keep the legacy flow green on trl 0.20.0
    text = (work / "up" / "UPGRADE.md").read_text()
    assert "| trl | 0.19.1 | 0.20.0 |" in text and "| transformers | 4.53.3 | 4.53.3 |" in text
    assert ("`qlora_sft_trainable[legacy@tiny-llama]`: pass → **fail**: `AssertionError: trainable params 0 != "
            "LoRA params") in text
    assert "`trl-peftmodel-freeze`" in text and "No set found: the kept pins fall inside known issue" in text
    target = json.loads((work / "up" / "target.json").read_text())
    legacy = next(c for c in target["cells"] if c["variant"] == "legacy")
    assert legacy["env"]["versions"]["trl"] == "0.20.0" and legacy["status"] == "fail"
    # The committed grid says the same about these two trl releases.
    grid = gridload.load(ROOT / "results" / "grid.json")
    assert grid.cell("tf4.53-trl0.19", "qlora_sft_trainable[legacy@tiny-llama]").status.value == "pass"
    assert grid.cell("tf4.54-trl0.20", "qlora_sft_trainable[legacy@tiny-llama]").status.value == "fail"
    recommended = next(c for c in target["cells"] if c["variant"] == "recommended")
    assert recommended["status"] == "pass"
