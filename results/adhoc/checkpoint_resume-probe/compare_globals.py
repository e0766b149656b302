"""List the pickle GLOBALs of real and emulated rng_state.pth files (see README.md here).

    python compare_globals.py REAL_NUMPY2_RNG REAL_NUMPY1_RNG

Run under numpy 2 and under numpy 1: it re-pickles the real file of this env's numpy the way the case's
foreign variant does and prints the GLOBAL opcodes of the real foreign file and of the emulation.
"""

import importlib.util
import io
import pickletools
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "src"))
for cand in (ROOT / "cases" / "checkpoint_resume.py", ROOT / ".ftcompat/wip/resume/cases/checkpoint_resume.py"):
    if cand.exists():
        spec = importlib.util.spec_from_file_location("checkpoint_resume", cand)
        case = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(case)
        break


def globals_of(path):
    """The GLOBAL opcodes of a torch file's data.pkl."""
    with zipfile.ZipFile(path) as z:
        data = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    out = io.StringIO()
    pickletools.dis(data, out)
    return [ln.split("GLOBAL", 1)[1].strip() for ln in out.getvalue().splitlines() if "GLOBAL" in ln]


real = {2: sys.argv[1], 1: sys.argv[2]}
mine = int(np.__version__.split(".")[0])
foreign = 1 if mine == 2 else 2
emulated = tempfile.mktemp(suffix=".pth")
shutil.copy(real[mine], emulated)
case._rewrite_rng_state(emulated, foreign)
a, b = globals_of(real[foreign]), globals_of(emulated)
print(f"numpy {np.__version__}: emulating numpy {foreign}")
print("  real foreign :", a)
print("  emulated     :", b)
print("  identical GLOBALs:", a == b)
