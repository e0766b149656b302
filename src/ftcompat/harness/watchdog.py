"""Keep one bad case from costing the night: per-worker output logs, crash dumps and a time limit.

Each xdist worker writes everything it prints (file descriptors 1 and 2, and faulthandler's dump on
a segfault or abort) to ``<work>/logs/<worker>.log``, with a start line per case. When a case hangs
past its limit, the watchdog dumps every thread's stack there, leaves a marker and ends the worker;
xdist reports the worker as crashed and starts a new one for the remaining cases. The controller
side reads the marker (timeout) or the log's last lines (crash) to build the cell.
"""

from __future__ import annotations

import faulthandler
import hashlib
import os
import sys
import threading
from pathlib import Path

from ftcompat.core.redact import redact
from ftcompat.harness import logpipe

DEFAULT_TIMEOUT = 900.0  # seconds; a tiny-model case takes seconds on CPU, a real model minutes on a GPU
START = "=== ftcompat: start "
EXIT_TIMEOUT = 75


def log_path(work: Path, worker: str) -> Path:
    """The log file of one worker."""
    return Path(work) / "logs" / f"{worker}.log"


def capture_worker_output(work: Path, worker: str) -> Path:
    """Send this process's stdout/stderr and crash dumps to the worker's log file, tokens masked."""
    path = log_path(work, worker)
    logpipe.start(path)
    faulthandler.enable(file=sys.stderr, all_threads=True)
    return path


def mark_start(nodeid: str) -> None:
    """Write the line that starts a case's part of the log."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(2, f"\n{START}{nodeid}\n".encode())


def section(path: Path, nodeid: str) -> str | None:
    """Everything a case wrote to the log, from its start line on."""
    logpipe.sync()  # in the worker: what it printed is in the file; elsewhere a no-op
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    start = text.rfind(f"{START}{nodeid}\n")
    return None if start < 0 else redact(text[start:].split("\n", 1)[1])


def tail(path: Path, nodeid: str, lines: int = 40) -> str | None:
    """The last ``lines`` non-empty lines a case wrote to the log."""
    kept = [line for line in (section(path, nodeid) or "").splitlines() if line.strip()]
    return "\n".join(kept[-lines:]) or None


def marker(work: Path, nodeid: str) -> Path:
    """Where the watchdog records that a case ran out of time."""
    return Path(work) / "timeouts" / hashlib.sha256(nodeid.encode()).hexdigest()[:16]


def timed_out(work: Path, nodeid: str) -> float | None:
    """The limit a case overran, if the watchdog stopped it."""
    try:
        return float(marker(work, nodeid).read_text())
    except (OSError, ValueError):
        return None


class Watchdog:
    """Ends the worker when the running case passes its limit, after saying so on disk."""

    def __init__(self, work: Path, nodeid: str, limit: float):
        self.work, self.nodeid, self.limit = Path(work), nodeid, limit
        self.timer = threading.Timer(limit, self._fire)
        self.timer.daemon = True

    def __enter__(self) -> Watchdog:
        marker(self.work, self.nodeid).unlink(missing_ok=True)
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.timer.cancel()

    def _fire(self) -> None:
        path = marker(self.work, self.nodeid)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(self.limit))
        os.write(2, f"\nftcompat: {self.nodeid} ran past its {self.limit:g} s limit; stacks:\n".encode())
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        os._exit(EXIT_TIMEOUT)
