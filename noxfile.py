"""nox sessions for ftcompat: one per combo in matrix.yaml, plus render and the tool's own tests.

`nox` runs the CPU grid and renders it; `nox -l` lists the combos; `nox -t gpu` runs the GPU ones;
`nox -s <combo>` runs one. The matrix is data: adding a combo to matrix.yaml adds a session here.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT / "src"))  # the controller runs from a checkout, installed or not

from ftcompat.config.matrix import load  # noqa: E402
from ftcompat.core.errors import InputError  # noqa: E402
from ftcompat.run.plan import case_selectors  # noqa: E402
from ftcompat.run.session import run_combo  # noqa: E402

try:
    MATRIX = load(ROOT / "matrix.yaml")
    if os.environ.get("FTCOMPAT_CASES") is not None:  # a typo must not run nothing and succeed
        case_selectors(os.environ["FTCOMPAT_CASES"], MATRIX)
except InputError as _exc:  # one message naming file, place and value, not a traceback
    print(f"nox: {_exc}", file=sys.stderr)
    sys.exit(_exc.return_code)  # the same code as `ftcompat validate` gives the same input

nox.options.default_venv_backend = "uv|virtualenv" if shutil.which("uv") else "virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = [c.id for c in MATRIX.combos if "cpu" in c.tags] + ["render"]


def _register(combo):
    def grid_cell_session(session: nox.Session) -> None:
        run_combo(session, combo.id, ROOT)

    grid_cell_session.__doc__ = combo.description or f"Run the cases in combo {combo.id}."
    nox.session(name=combo.id, python=combo.python, tags=["combo", *combo.tags],
                reuse_venv=True)(grid_cell_session)


for _combo in MATRIX.combos:
    _register(_combo)


@nox.session(python=False, tags=["cpu", "gpu"])
def render(session: nox.Session) -> None:
    """Merge results/cells into results/grid.json and write results/GRID.md."""
    session.run(sys.executable, "-m", "ftcompat.cli", "--matrix", str(ROOT / "matrix.yaml"),
                "render", "--results", str(ROOT / "results"))


@nox.session(python=False)
def tests(session: nox.Session) -> None:
    """Run ftcompat's own test suite (the README's test command)."""
    session.run(sys.executable, "-m", "pytest", *session.posargs)
