"""bitsandbytes beside a triton without ``triton.ops``: ``import bitsandbytes`` fails.

Symptom: ``import bitsandbytes`` (and so ``import unsloth``, a 4-bit ``from_pretrained``, anything importing it)
stops with ``ModuleNotFoundError: No module named 'triton.ops'`` once triton 3.2 is installed (torch 2.6's CUDA build
pulls it in): bitsandbytes <= 0.45.0 imports its SwitchBack kernels at import time whenever a triton is installed, and
one of them imports ``triton.ops.matmul_perf_model``, which triton 3.2 removed
(https://github.com/triton-lang/triton/pull/4156). Reported as
https://github.com/bitsandbytes-foundation/bitsandbytes/issues/1492; bitsandbytes 0.45.1 carries its own copy of the
module (https://github.com/bitsandbytes-foundation/bitsandbytes/pull/1413), and 0.45.2 defines the kernels only where
torch has a working triton (https://github.com/bitsandbytes-foundation/bitsandbytes/pull/1497). Each import runs in a
fresh ``sys.executable`` process (a failed or patched import must not leak into the next variant); the step fails with
the child's last line, the real exception. No feature detection for the import (the idiom).
* ``import_bitsandbytes``: ``import bitsandbytes`` as this machine runs it; passes when it imports. On a machine
  without a GPU bitsandbytes < 0.45.2 beside triton 3.2 stops earlier, at its first ``@triton.autotune`` kernel:
  ``RuntimeError: 0 active drivers ([]). There should only be one.`` (what CPU-only CI sees).
* ``import_gpu_driver_view``: the same import where triton has an active driver. On a GPU machine nothing is changed; on
  a CPU one the child first gives triton a stand-in driver (``triton.runtime.driver.driver.set_active``) that answers
  only ``get_benchmarker()``, all ``@triton.autotune`` asks for when a kernel is defined, so the import goes on as on a
  GPU machine and reaches ``triton.ops``. The stand-in runs no kernel: it cannot show a failure in one. Passes when the
  import succeeds; ``record`` says whether the stand-in was used.
No in-code twin: each variant's twin is the same variant in the neighbouring combo (same triton with bitsandbytes
0.45.1 for ``import_gpu_driver_view``, 0.45.2 for ``import_bitsandbytes``; or the same bitsandbytes beside triton 3.1,
which still has ``triton.ops``). Boundaries, exact errors and the wheels'
contents: docs/findings/bnb_triton_ops.md.
"""

from ftcompat.harness import record, step

# What this case checks: bitsandbytes importing beside a triton. Its ModuleNotFoundError names triton.ops (a module of
# triton) and is raised from bitsandbytes' code: the verdict here, not a broken environment.
SUBJECT = ("bitsandbytes", "triton")

# The child: optionally gives triton a stand-in driver where none is active, imports bitsandbytes, says what happened.
_CHILD = r'''
import json, sys
facts = {"driver_stand_in": False}
if sys.argv[1] == "gpu_view":
    import torch
    try:  # triton absent, or too old to have a driver registry: nothing to stand in for
        from triton.runtime.driver import driver
    except ImportError:
        driver = None
    facts["triton_driver_registry"] = hasattr(driver, "set_active")
    if hasattr(driver, "set_active") and not torch.cuda.is_available():

        class StandInDriver:
            """What @triton.autotune asks for when a kernel is defined; nothing else."""

            def get_benchmarker(self):
                from triton.testing import do_bench
                return do_bench

        driver.set_active(StandInDriver())
        facts["driver_stand_in"] = True
print(json.dumps(facts), flush=True)
import bitsandbytes
print(json.dumps({"imported": bitsandbytes.__name__}), flush=True)
'''


def _versions():
    import importlib.metadata as md
    import importlib.util

    out = {}
    for name in ("bitsandbytes", "triton", "torch"):
        try:
            out[f"{name}_version"] = md.version(name)
        except md.PackageNotFoundError:
            out[f"{name}_version"] = None
    try:
        out["triton_has_ops"] = importlib.util.find_spec("triton.ops") is not None
    except (ImportError, ValueError):
        out["triton_has_ops"] = False
    return out


def _import_in_child(mode, tmp_path):
    """Run ``import bitsandbytes`` in a fresh interpreter; raise with the child's last line when it fails."""
    import json
    import subprocess
    import sys

    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    proc = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, timeout=600)
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            record(**json.loads(line))
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()] or [f"no output, exit {proc.returncode}"]
        raise RuntimeError(f"child exited {proc.returncode}: {lines[-1]}")


def test_import_bitsandbytes(tmp_path):
    """import bitsandbytes in a fresh process, as this machine runs it."""
    record(**_versions())
    with step("import bitsandbytes"):
        _import_in_child("plain", tmp_path)


def test_import_gpu_driver_view(tmp_path):
    """import bitsandbytes in a fresh process where triton has an active driver (a stand-in on a CPU machine)."""
    record(**_versions())
    with step("import bitsandbytes (triton with an active driver)"):
        _import_in_child("gpu_view", tmp_path)
