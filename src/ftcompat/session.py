"""The body of one combo's nox session: install the pins, run the harness, complete the cells."""

from __future__ import annotations

import os
from pathlib import Path

from ftcompat.cases import discover
from ftcompat.execute import Runner, install_and_run, only_cases
from ftcompat.matrix import load

CELLS = Path("results") / "cells"


def run_combo(session, combo_id: str, root: Path | None = None) -> None:
    """Build (or reuse) the combo's env, run its cases there and write results/cells/<combo>.json."""
    from ftcompat.harness.cellfile import WriteFailed
    from ftcompat.preflight import NotWritable, check_writable

    root = Path(root or Path.cwd()).resolve()
    matrix = load(root / "matrix.yaml")
    try:
        check_writable(root / CELLS, hint="fix the folder's permissions")
    except NotWritable as exc:
        session.error(str(exc))
    combo = only_cases(matrix.combo(combo_id), os.environ.get("FTCOMPAT_CASES"))
    runner = Runner(log=session.log, run=lambda *cmd, env: session.run(
        *cmd, env=env, success_codes=list(range(0, 6)), external=True))
    try:
        reason = install_and_run(root, matrix, discover(root / "cases"), combo,
                                 Path(session.virtualenv.location), root / CELLS / f"{combo.id}.json", runner)
    except WriteFailed as exc:  # a full disk: the earlier results are unchanged, say so and stop
        session.error(str(exc))
    if reason:
        session.skip(f"not-installable: {reason}")
