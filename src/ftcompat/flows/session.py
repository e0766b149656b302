"""The body of one combo's nox session: the combo pipeline (``grid.COMBO``), with nox's skip and error."""

from __future__ import annotations

import os
from pathlib import Path

from ftcompat.core.errors import FtcompatError, InputError
from ftcompat.flows import grid


def run_combo(session, combo_id: str, root: Path | None = None, config: Path | None = None) -> None:
    """Build (or reuse) the combo's env, run its cases there and write <root>/results/cells/<combo>.json.

    Not-installable pins are a result (the session is skipped, saying why); bad input and machine
    failures stop the session with one line (the earlier results of the combo are kept).
    """
    start = grid.State(Path(root or Path.cwd()).resolve(), matrix_file=config, combo_id=combo_id,
                           selectors=os.environ.get("FTCOMPAT_CASES"), venv=Path(session.virtualenv.location),
                           log=session.log)
    try:
        state = grid.execute(grid.COMBO, start)
    except InputError as exc:
        session.error(str(exc))
    except FtcompatError as exc:  # the machine, a busy combo: one line, the earlier results unchanged
        session.error(f"{type(exc).__name__}: {exc}")
    if state.done:  # no case selected, or the pins cannot be installed: a result, not a failure
        session.skip(state.done)
