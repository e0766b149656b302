"""The harness plugin, run for real in a subprocess on fixture cases that need no ML stack."""

import json
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT

CASE = '''
"""Fixture case exercising every outcome."""
import os
import pytest
from ftcompat.harness import record, setup, step


def test_ok():
    """Passes and records a detail."""
    record(trainable=42)


def test_raises():
    """Fails with a library-style exception inside a named step."""
    print("loading the tiny model")
    with step("model.generate"):
        raise AttributeError("'DynamicCache' object has no attribute 'seen_tokens'\\nsecond line")


def test_asserts():
    """Fails an assertion that states the numbers."""
    trainable = 0
    assert trainable == 4096, f"trainable params {trainable} != LoRA params 4096"


def test_cannot_set_up():
    """Setup failure: the behaviour was never reached."""
    with setup("build model"):
        raise OSError("disk full")


def test_skips():
    """Skips with a reason."""
    pytest.skip("needs CUDA and this machine has none")


def test_crashes():
    """Kills its worker process."""
    os._exit(3)


def test_segfaults():
    """Dies on a null pointer, after printing."""
    import ctypes

    print("about to read address 0")
    ctypes.string_at(0)


def test_hangs():
    """Never returns."""
    import time

    time.sleep(600)


def test_runs_after_them():
    """The worker that crashed is replaced and the combo goes on."""
'''


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("harness")
    (tmp / "cases").mkdir()
    (tmp / "cases" / "outcomes.py").write_text(textwrap.dedent(CASE))
    plan = {"combo": {"id": "here"}, "cases": {"outcomes": {"timeout": 3}}, "models": {},
            "work_dir": str(tmp / "work")}
    (tmp / "plan.json").write_text(json.dumps(plan))
    (tmp / "none.ini").write_text("[pytest]\n")
    out = tmp / "cells.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "ftcompat.harness.plugin", "-p", "no:cacheprovider",
         "-c", str(tmp / "none.ini"), "--rootdir", str(tmp), "--ftcompat-plan", str(tmp / "plan.json"),
         "--ftcompat-out", str(out), "-n", "1", "--capture=no", "--max-worker-restart", "100",
         "cases/outcomes.py"],
        cwd=tmp, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src")},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    return {c["variant"]: c for c in json.loads(out.read_text())["cells"]}


def test_ids_are_stable(cells):
    assert cells["ok"]["id"] == "here::outcomes[ok]"


def test_pass_records_details_and_env(cells):
    ok = cells["ok"]
    assert ok["status"] == "pass"
    assert ok["details"] == {"trainable": 42}
    assert ok["env"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert "transformers" in ok["env"]["versions"]


def test_library_exception_is_fail_with_step(cells):
    got = cells["raises"]
    assert got["status"] == "fail"
    assert got["signature"] == "AttributeError: 'DynamicCache' object has no attribute 'seen_tokens'"
    assert got["step"] == "model.generate"
    assert "seen_tokens" in got["traceback"]


def test_traceback_is_pythons_own_relative_to_the_checkout_without_runner_frames(cells):
    tb = cells["raises"]["traceback"]
    assert tb.startswith("Traceback (most recent call last):")
    assert 'File "cases/outcomes.py", line ' in tb and ", in test_raises" in tb
    assert "_pytest" not in tb and "pluggy" not in tb
    assert cells["raises"]["origin"] == {"package": None, "file": "cases/outcomes.py",
                                         "line": cells["raises"]["origin"]["line"], "function": "test_raises"}


def test_a_failing_cell_keeps_the_end_of_what_it_printed(cells):
    assert cells["raises"]["log"] == "loading the tiny model"
    assert cells["ok"]["log"] is None


def test_setup_error_traceback_shows_the_cause(cells):
    tb = cells["cannot_set_up"]["traceback"]
    assert "OSError: disk full" in tb and "direct cause" in tb and tb.rstrip().endswith("OSError: disk full")


def test_origin_names_the_installed_package_that_raised():
    from ftcompat.harness.tracebacks import origin_of

    def raising():
        exec(compile("raise KeyError('text')", "/x/lib/python3.11/site-packages/datasets/load.py", "exec"))

    try:
        raising()
    except KeyError as exc:
        got = origin_of(exc)
    assert got["package"] == "datasets" and got["file"] == "site-packages/datasets/load.py"


def test_assertion_is_fail(cells):
    assert cells["asserts"]["signature"] == "AssertionError: trainable params 0 != LoRA params 4096"


def test_setup_is_error(cells):
    got = cells["cannot_set_up"]
    assert (got["status"], got["signature"], got["step"]) == ("error", "OSError: disk full", "build model")


def test_skip_has_reason(cells):
    assert cells["skips"]["status"] == "skip"
    assert cells["skips"]["signature"] == "needs CUDA and this machine has none"


def test_a_dead_worker_is_a_crash_and_loses_nothing(cells):
    assert cells["crashes"]["status"] == "crash"
    assert cells["crashes"]["signature"] == ("WorkerCrashed: the case's process died without a Python error "
                                             "(killed, e.g. for memory?)")
    assert cells["runs_after_them"]["status"] == "pass"
    assert len(cells) == 9


def test_a_segfault_is_a_crash_with_the_last_lines_of_its_output(cells):
    got = cells["segfaults"]
    assert (got["status"], got["signature"]) == ("crash", "WorkerCrashed: the case's process died: "
                                                          "Fatal Python error: Segmentation fault")
    assert "about to read address 0" in got["log"]
    assert "in test_segfaults" in got["log"]


def test_a_hang_becomes_a_timeout_after_the_case_limit(cells):
    got = cells["hangs"]
    assert (got["status"], got["signature"]) == ("timeout", "Timeout: ran past its 3 s time limit and was stopped")
    assert "in test_hangs" in got["log"]  # the stacks the watchdog dumped say where it hung


def test_wrapped_import_error_names_its_root_cause():
    from ftcompat.harness.tracebacks import with_root as _with_root

    try:
        try:
            raise ImportError("cannot import name 'CheckpointPolicy' from 'torch.utils.checkpoint'")
        except ImportError as inner:
            raise RuntimeError("Failed to import trl.x because of the following error "
                               "(look up to see its traceback):\n" + str(inner)) from inner
    except RuntimeError as exc:
        got = _with_root(exc)
    assert got.endswith("(look up to see its traceback): ImportError: cannot import name "
                        "'CheckpointPolicy' from 'torch.utils.checkpoint'")
    assert _with_root(ValueError("plain")) == "plain"


# ---------------------------------------------------------------------------------------------
# What the harness leaves on disk: no token anywhere (worker logs and crash dumps included), no
# machine path in a result, and a full disk that stops the run with one line.

TOKEN = "hf_" + "Q" * 8 + "plantedTokenThatMustNeverLeak"
LEAKY = '''
"""Fixture case that prints a token every way a library could."""
import logging
import os
import subprocess
import sys


def test_prints_and_fails():
    """Prints the token through Python, both descriptors, a child process and logging, then fails."""
    token = os.environ["HF_TOKEN"]
    print("python print", token)
    os.write(1, f"fd1 {token}\\n".encode())
    os.write(2, f"fd2 {token}".encode())  # no newline: the writer must still mask it
    os.write(2, b"\\n")
    subprocess.run(["/bin/sh", "-c", "echo child $HF_TOKEN"], check=True)
    logging.getLogger("lib").warning("logging %s", token)
    raise RuntimeError(f"bad token {token} at {sys.prefix}")


def test_prints_and_crashes():
    """Prints the token, then dies on a segfault: the last lines must still be masked."""
    import ctypes

    print("about to crash with", os.environ["HF_TOKEN"], flush=True)
    ctypes.string_at(0)
'''


def _harness(tmp, case_text, out, extra_env=None):
    (tmp / "cases").mkdir(exist_ok=True)
    (tmp / "cases" / "leaky.py").write_text(textwrap.dedent(case_text))
    plan = {"combo": {"id": "here"}, "cases": {"leaky": {"timeout": 30}}, "models": {}, "work_dir": str(tmp / "work")}
    (tmp / "plan.json").write_text(json.dumps(plan))
    (tmp / "none.ini").write_text("[pytest]\n")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "ftcompat.harness.plugin", "-p", "no:cacheprovider",
         "-c", str(tmp / "none.ini"), "--rootdir", str(tmp), "--ftcompat-plan", str(tmp / "plan.json"),
         "--ftcompat-out", str(out), "-n", "1", "--capture=no", "--max-worker-restart", "10", "cases/leaky.py"],
        cwd=tmp, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src"), **(extra_env or {})})


def test_a_printed_token_reaches_no_file_and_no_terminal(tmp_path):
    out = tmp_path / "cells.json"
    proc = _harness(tmp_path, LEAKY, out, {"HF_TOKEN": TOKEN})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    logs = [p for p in files if p.suffix == ".log"]
    assert logs, "the worker logs exist"
    for path in files:
        assert TOKEN not in path.read_text(errors="replace"), path
    text = "".join(p.read_text() for p in logs)
    # (logging goes to pytest's own capture, which the report scrubbing masks)
    for seen in ("python print hf_***", "fd1 hf_***", "fd2 hf_***", "child hf_***", "about to crash with hf_***"):
        assert seen in text
    cells = {c["variant"]: c for c in json.loads(out.read_text())["cells"]}
    assert cells["prints_and_crashes"]["status"] == "crash"
    assert "about to crash with hf_***" in cells["prints_and_crashes"]["log"]
    assert "child hf_***" in cells["prints_and_fails"]["log"]


def test_results_carry_no_path_of_the_machine(tmp_path, cells):
    from ftcompat.core.paths import machine_paths

    out = tmp_path / "cells.json"
    _harness(tmp_path, LEAKY, out, {"HF_TOKEN": TOKEN})
    record = {c["variant"]: c for c in json.loads(out.read_text())["cells"]}["prints_and_fails"]
    assert record["message"].endswith("at <python>") or " at " in record["message"]
    assert machine_paths(out.read_text()) == []
    # The module fixture's outcomes too: tracebacks through the stdlib and the checkout.
    everything = json.dumps(cells)
    assert machine_paths(everything) == [] and "<python>/lib/python3." in everything


def test_a_full_results_disk_stops_the_harness_with_one_line(tmp_path):
    """A real 64 KiB tmpfs, filled: the harness says so once and exits 74, no INTERNALERROR."""
    import os
    import shutil

    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True,
                          text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        try:
            with open(mnt / "filler", "wb") as fh:
                while True:
                    fh.write(b"x" * 4096)
                    fh.flush()
        except OSError:
            pass
        proc = _harness(tmp_path, CASE.replace("def test_hangs", "def _not_a_test_hangs"), mnt / "cells.json")
        assert proc.returncode == 74, proc.stdout + proc.stderr
        said = [line for line in (proc.stdout + proc.stderr).splitlines() if "ftcompat harness:" in line]
        assert len(said) == 1 and "no space left on device" in said[0], proc.stdout + proc.stderr
        assert "INTERNALERROR" not in proc.stdout + proc.stderr
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


BROKEN_AT_IMPORT = '''
"""Fixture case whose module raises at import, with a token in the message."""
import os

raise ValueError("cannot read the config with " + os.environ["HF_TOKEN"])


def test_never(model):
    pass


def test_never_either():
    pass
'''
FINE = '''
"""Fixture case that passes."""


def test_fine():
    assert True
'''


def test_a_case_that_raises_at_import_is_its_own_cells_and_the_other_cases_still_run(tmp_path):
    from ftcompat.runner.cells import pytest_args

    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "broken.py").write_text(textwrap.dedent(BROKEN_AT_IMPORT))
    (tmp_path / "cases" / "fine.py").write_text(textwrap.dedent(FINE))
    plan = {"combo": {"id": "c"}, "cases": {"broken": {"models": ["m1", "m2"], "timeout": 30},
                                              "fine": {"timeout": 30}},
            "models": {}, "work_dir": str(tmp_path / "work")}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    out = tmp_path / "cells.json"
    cmd = pytest_args(sys.executable, tmp_path, tmp_path / "plan.json", out,
                      [tmp_path / "cases" / "broken.py", tmp_path / "cases" / "fine.py"], "1")
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src"), "HF_TOKEN": TOKEN})
    assert TOKEN not in proc.stdout + proc.stderr
    cells = {c["id"]: c for c in json.loads(out.read_text())["cells"]}
    assert cells["c::fine[fine]"]["status"] == "pass"
    broken = [cells[f"c::broken[never@{m}]"] for m in ("m1", "m2")] + [cells["c::broken[never_either]"]]
    for cell in broken:
        assert cell["status"] == "error" and cell["exc_type"] == "ValueError", cell
        assert cell["message"].startswith("cannot read the config with hf_") and TOKEN not in json.dumps(cell)
        assert cell["step"] == "import the case file"
    assert len(cells) == 4
