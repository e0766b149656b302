"""A combo's cell file: records written atomically with sorted keys (so diffs stay small), and read back."""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from ftcompat.core.clock import name_stamp
from ftcompat.core.errors import MachineError
from ftcompat.core.record import Record
from ftcompat.core.redact import redact

# The harness's exit status when it could not write its cell file (sysexits' EX_IOERR): the
# controller then stops without rerunning anything or touching the earlier results.
RESULTS_UNWRITABLE = 74


class WriteFailed(MachineError):
    """A result file could not be written; the previous version of it is unchanged."""

    def __init__(self, code: int | None, message: str):
        super().__init__(message, errno=code)


def dumps(data) -> str:
    """Serialise with the one JSON style every ftcompat file uses, with HF tokens masked."""
    return redact(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n")


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so a reader never sees half a file; on failure keep the old one."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise write_failed(path, exc) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            # mkstemp makes the file private (0600); results are for sharing, so keep the old
            # file's mode, or the usual 0644 for a new one.
            os.fchmod(fh.fileno(), stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644)
            fh.write(text)
            fh.flush()
            # A full disk can show only at fsync (delayed allocation); find out before the rename.
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise write_failed(path, exc) from exc
        raise


def write_failed(path: Path, exc: OSError) -> WriteFailed:
    """The error to show: what happened, to which file, and that the old file is intact."""
    kept = f"the previous {path} is unchanged" if path.exists() else f"{path} was not created"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "no space left on device" if exc.errno == errno.ENOSPC else "disk quota exceeded"
        hint = "free some space (old environments under .nox/ or .ftcompat/ are the big ones) and run again"
    else:
        what = f"{type(exc).__name__}: {exc.strerror or exc}"
        hint = "check the folder's permissions, or write the results elsewhere (--results)"
    return WriteFailed(exc.errno, f"{what} while writing {path}; {kept}; {hint}")


def write_cells(path: Path, combo: str, cells: Iterable[Record], environment: Mapping | None = None) -> None:
    """Write one combo's cells, ordered by id, with what the health probe and a repair said of its environment."""
    body: dict = {"combo": combo, "cells": [c.to_dict() for c in sorted(cells, key=lambda c: c.id)]}
    if environment is not None:
        body["environment"] = environment
    atomic_write(Path(path), dumps(body))


def read_environment(path: Path) -> dict | None:
    """The ``environment`` a cell file carries (``core.health.EnvReport``'s JSON), or None."""
    try:
        found = json.loads(Path(path).read_text(encoding="utf-8")).get("environment")
    except (OSError, ValueError, AttributeError):
        return None
    return found if isinstance(found, dict) else None


def read_cells(path: Path, log=None) -> list[Record]:
    """Read one combo's cell file (empty when absent).

    A truncated or corrupted file is never trusted nor silently dropped: it is moved aside as
    ``<name>.corrupt-<time>``, ``log`` is told where, and its cells count as not run.
    """
    path = Path(path)
    if not path.exists():
        return []
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        if not isinstance(cells, list):
            raise ValueError("'cells' is not a list of cell records")
        return [Record.from_dict(c) for c in cells]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:  # InputError is a ValueError
        aside = path.with_name(f"{path.name}.corrupt-{name_stamp()}")
        path.replace(aside)
        (log or print)(f"{path}: unreadable result file ({type(exc).__name__}: {exc}); moved aside to "
                       f"{aside.name}; its cells will be run again")
        return []
