"""A combo's cell file when its run could not get through: pins refused, the machine failed, results unwritable.

Each keeps what the file already holds where it still stands, and says in the cells why nothing new is there.
"""

from __future__ import annotations

from pathlib import Path

from ftcompat.config import plan
from ftcompat.config.cases import CaseFile
from ftcompat.core.cellfile import WriteFailed, read_cells, write_cells
from ftcompat.core.clock import utc_now
from ftcompat.core.domain import Combo, Matrix
from ftcompat.core.errors import MachineError, NotInstallable
from ftcompat.core.paths import Portable
from ftcompat.core.status import Status
from ftcompat.results.grid import missing_record


def results_unwritable(out: Path) -> WriteFailed:
    """The controller's side of a harness that could not write its cells (it printed the details)."""
    import shutil

    try:
        free = shutil.disk_usage(out.parent).free
    except OSError:
        free = None
    why = ("no space left on device" if free is not None and free < (64 << 20)
           else "the results folder could not be written")
    return WriteFailed(None, f"{why} while the harness wrote {out.name}; the previous results in {out.parent.name}/ "
                             "are unchanged; free some space or fix the folder, then run again")


def not_installable(matrix: Matrix, cases: dict[str, CaseFile], combo: Combo, out: Path,
                    error: NotInstallable, root: Path | None = None) -> str:
    """Record the run's planned cells as not-installable with the installer's reason; return the reason.

    The combo's results for cases this run did not select (FTCOMPAT_CASES) are kept.
    """
    portable = Portable(root)
    reason = portable.text(error.message)
    tail = portable.text("\n".join((error.detail or error.message).strip().splitlines()[-40:]))
    planned = plan.planned_cells(matrix, combo, cases)
    selected = set(plan.combo_cases(matrix, combo))
    kept = [r for r in read_cells(out) if r.case not in selected]
    write_cells(out, combo.id, kept + [missing_record(c, combo, Status.NOT_INSTALLABLE, reason, tail)
                                       for c in planned])
    return reason


def machine_failure(matrix: Matrix, cases: dict[str, CaseFile], combo: Combo, out: Path, error: MachineError,
                    root: Path | None = None, log=print) -> None:
    """Keep the combo's earlier verdicts, marked not refreshed; cells with none say what the machine did.

    A full disk or a dead index says nothing about the versions, so it never replaces a result.
    """
    message = Portable(root).text(error.message)
    at = utc_now()
    previous = {r.id: r for r in read_cells(out, log)}
    planned = plan.planned_cells(matrix, combo, cases)
    stale = {"at": at, "reason": message}
    records, kept = [], 0
    for cell in planned:
        if cell.id in previous:
            records.append(previous.pop(cell.id).with_(not_refreshed=stale))
            kept += 1
        else:
            records.append(missing_record(cell, combo, Status.ERROR, f"MachineError: {message}",
                                          exc_type="MachineError"))
    write_cells(out, combo.id, records + list(previous.values()))
    log(f"{combo.id}: {message}")
    log(f"{combo.id}: kept {kept} earlier result(s), marked not refreshed; "
        f"{len(planned) - kept} cell(s) with no earlier result say what failed")
