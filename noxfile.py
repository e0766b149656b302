"""nox sessions for ftcompat: one per combo in matrix.yaml, plus render and the tool's own tests.

`nox` runs the CPU grid and renders it; `nox -l` lists the combos; `nox -t gpu` runs the GPU ones;
`nox -s <combo>` runs one. The matrix is data: adding a combo to matrix.yaml adds a session here.
The wheel ships this file as ftcompat/library/noxfile.py: `ftcompat run` drives it with
FTCOMPAT_CONFIG (a project's file) and FTCOMPAT_WORK (where results go) set.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
if (ROOT / "src" / "ftcompat").is_dir():
    sys.path.insert(0, str(ROOT / "src"))  # a checkout runs its own controller, installed or not

from ftcompat.noxsessions import register  # noqa: E402

MATRIX = register(ROOT / "matrix.yaml", work=ROOT)

if (ROOT / "tests").is_dir():

    @nox.session(python=False)
    def tests(session: nox.Session) -> None:
        """Run ftcompat's own test suite (the README's test command)."""
        session.run(sys.executable, "-m", "pytest", *session.posargs)
