"""The body of one combo's nox session: install the pins, run the harness, complete the cells."""

from __future__ import annotations

import os
from pathlib import Path

from ftcompat.config.cases import discover
from ftcompat.config.matrix import load
from ftcompat.core.errors import FtcompatError, InputError
from ftcompat.run.execute import Runner, install_and_run, only_cases

CELLS = Path("results") / "cells"


def run_combo(session, combo_id: str, root: Path | None = None) -> None:
    """Build (or reuse) the combo's env, run its cases there and write results/cells/<combo>.json.

    Not-installable pins are a result (the session is skipped, saying why); bad input and machine
    failures stop the session with one line (the earlier results of the combo are kept).
    """
    from ftcompat.run.preflight import check_writable

    root = Path(root or Path.cwd()).resolve()
    matrix = load(root / "matrix.yaml")
    try:
        check_writable(root / CELLS, hint="fix the folder's permissions")
        combo = only_cases(matrix, matrix.combo(combo_id), os.environ.get("FTCOMPAT_CASES"))
        if not combo.cases:
            session.skip(f"FTCOMPAT_CASES selects none of {combo_id}'s cases")
        # The harness's command line is printed by the session log; its exit status is read here.
        reason = install_and_run(root, matrix, discover(root / "cases"), combo, Path(session.virtualenv.location),
                                 root / CELLS / f"{combo.id}.json", Runner(log=session.log))
    except InputError as exc:
        session.error(str(exc))
    except FtcompatError as exc:  # the machine, a busy combo: one line, the earlier results unchanged
        session.error(f"{type(exc).__name__}: {exc}")
    if reason:
        session.skip(f"not-installable: {reason}")
