"""The device check (scripts/device-check): its plan on the repository's matrix, its carry, its refusals."""

import importlib.machinery
import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ftcompat.config.cases import discover
from ftcompat.config.matrix import load
from ftcompat.core.errors import InputError, MachineError
from ftcompat.env import device as site
from ftcompat.flows import device as dc
from ftcompat.results import gridload

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "device-check"


def _script():
    loader = importlib.machinery.SourceFileLoader("device_check", str(SCRIPT))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("device_check", loader))
    loader.exec_module(module)
    return module


def _steps():
    return dc.steps(load(ROOT / "matrix.yaml"), discover(ROOT / "cases"), {})


def _trl(step):
    return tuple(int(x) for x in step.combo.pins["trl"].split("."))


def test_the_dry_run_prints_carry_cells_time_and_a_command_within_the_device_limits():
    done = subprocess.run([sys.executable, str(SCRIPT), "plan"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    for step in _steps():
        assert step.combo.id in text
    assert "bitsandbytes==0.50.2" in text and "datasets==5.2.0" in text
    assert "leaves room for one rerun" in text
    timeout = int(text.split("timeout_s=")[1].split(")")[0])
    assert 120 <= timeout <= dc.COMMAND_LIMIT_S
    assert 'carry=[".ftcompat/device-check"]' in text


def test_it_runs_the_cuda_side_of_every_emulated_case():
    steps = _steps()
    cells = {cid for s in steps for cid in s.cells}
    columns = {c.split("::")[1] for c in cells}
    assert {"qlora_sft_trainable[legacy@tiny-llama]", "qlora_sft_trainable[recommended@tiny-llama]",
            "load_memory_4bit[default@tiny-llama]", "load_memory_4bit[sync_load@tiny-llama]"} <= columns
    assert {v for v in ("plain", "autocast_off", "autocast_bf16") if f"bf16_eval_generate[{v}@tiny-llama]" in columns} \
        == {"plain", "autocast_off", "autocast_bf16"}
    # trl#3926: the last release before the freeze, one with it, and the fix
    qlora = [_trl(s) for s in steps if any("qlora_sft_trainable" in c for c in s.cells)]
    assert any(v < (0, 20) for v in qlora)
    assert any((0, 20) <= v < (0, 23, 1) for v in qlora)
    assert any(v >= (0, 23, 1) for v in qlora)
    # nothing that needs the Hub: the device has no network
    assert not [c for c in cells if "qwen3-1.7b" in c or "phi3-mini" in c]


def test_the_estimate_fits_the_session_with_a_rerun():
    steps = dc.steps(load(ROOT / "matrix.yaml"), discover(ROOT / "cases"),
                     dc.column_durations(gridload.load(ROOT / "results" / "grid.json")))
    run_s = sum(dc.INSTALL_S + s.estimate_s for s in steps)
    assert dc.START_S + 2 * run_s <= dc.BUDGET_S


def test_the_plan_says_when_the_carry_does_not_fit(tmp_path):
    big = tmp_path / "bitsandbytes-0.50.2-py3-none-manylinux_2_24_x86_64.whl"
    with open(big, "wb") as f:
        f.truncate(dc.CARRY_LIMIT)
    text = dc.plan_text(_steps(), [big], tree=1)
    assert "DOES NOT FIT" in text
    assert "trl==0.20.0                  missing: run scripts/device-check prepare" in text


def _wheel(folder: Path, name: str, files: dict) -> Path:
    path = folder / name
    with zipfile.ZipFile(path, "w") as whl:
        for inner, text in files.items():
            whl.writestr(inner, text)
    return path


def test_install_unpacks_the_right_wheel_into_the_target_only(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "multiprocess-0.70.19-py312-none-any.whl", {"multiprocess/__init__.py": "V = 312"})
    _wheel(wheels, "multiprocess-0.70.19-py311-none-any.whl", {"multiprocess/__init__.py": "V = 311"})
    _wheel(wheels, "trl-0.20.0-py3-none-any.whl", {"trl/__init__.py": "", "trl-0.20.0.dist-info/METADATA": "x"})
    step = dc.Step(_steps()[0].combo, ("trl==0.20.0", "multiprocess==0.70.19"), (), 0.0)
    target = tmp_path / "site"
    site.install(step.combo, step.requirements, target, wheels)
    mine = f"V = {sys.version_info[0]}{sys.version_info[1]}"
    assert (target / "trl-0.20.0.dist-info" / "METADATA").is_file()
    if sys.version_info[:2] in ((3, 11), (3, 12)):
        assert (target / "multiprocess" / "__init__.py").read_text() == mine
    with pytest.raises(MachineError, match="no carried wheel of bitsandbytes==0.50.2"):
        site.wheel_for("bitsandbytes==0.50.2", site.wheel_files(wheels), "c")


def test_run_refuses_a_machine_without_cuda_and_writes_nothing(tmp_path, monkeypatch):
    script = _script()
    monkeypatch.setattr(dc, "probe_device", lambda python: {"device": None, "versions": {}})
    monkeypatch.setattr(dc, "run_all", lambda *a, **k: pytest.fail("ran cases without CUDA"))
    assert script.main(["run", "--out", str(tmp_path / "gpu")]) == InputError.return_code
    # --allow-cpu still never writes CPU cells where CUDA cells belong
    assert script.main(["run", "--allow-cpu"]) == InputError.return_code
    assert not (tmp_path / "gpu").exists()


def test_a_matrix_without_device_combos_is_refused(fixture_matrix, fixture_cases):
    with pytest.raises(InputError, match="no combo is tagged 'device'"):
        dc.steps(fixture_matrix, fixture_cases, {})
