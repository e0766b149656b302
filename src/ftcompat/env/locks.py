"""One run per combo at a time: a lock file under .ftcompat/locks/ held while the combo builds and runs.

Two runs of the same combo share its environment, its plan, its running-cells file and its worker
logs; without the lock the one that finishes last overwrites the other's good cells. The second
run waits, saying who holds the lock, and gives up after ``FTCOMPAT_LOCK_WAIT`` seconds (default
an hour) with ``Busy``. The lock is an ``flock``: the kernel drops it when its holder dies, so a
killed run never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ftcompat.core.clock import utc_now
from ftcompat.core.errors import Busy, MachineError

DEFAULT_WAIT = 3600.0


def lock_path(root: Path, combo_id: str) -> Path:
    """Where the lock of one combo lives."""
    return Path(root) / ".ftcompat" / "locks" / f"{combo_id}.lock"


def wait_limit(environ=None) -> float:
    """Seconds to wait for another run (FTCOMPAT_LOCK_WAIT; 0 means do not wait)."""
    environ = os.environ if environ is None else environ
    try:
        return max(0.0, float(environ.get("FTCOMPAT_LOCK_WAIT", DEFAULT_WAIT)))
    except ValueError:
        return DEFAULT_WAIT


def busy_marker(root: Path, combo_id: str) -> Path:
    """Where a nox session that gave up waiting for the combo's lock says so, for ``ftcompat run``'s exit code."""
    return lock_path(root, combo_id).with_suffix(".busy")


def holder(path: Path) -> str:
    """Who holds the lock, as its holder wrote it: ``pid 123 on host since 12:00:00``."""
    try:
        info = json.loads(Path(path).read_text() or "{}")
        return f"pid {info['pid']} on {info['host']} since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another ftcompat run"


@contextlib.contextmanager
def combo_lock(root: Path, combo_id: str, log: Callable[[str], None] = print, wait: float | None = None,
               poll: float = 1.0) -> Iterator[Path]:
    """Hold the combo's lock for the block; wait for another holder, or raise Busy after ``wait`` s."""
    path = lock_path(root, combo_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    wait = wait_limit() if wait is None else wait
    try:
        # Never through a symbolic link: someone could point the lock at a file it would overwrite.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        if path.is_symlink():
            raise MachineError(f"{path} is a symbolic link; ftcompat writes its lock only to a plain file there "
                               "(remove the link and run again)") from None
        raise MachineError(f"cannot open the combo's lock {path}: {exc.strerror or exc}") from None
    try:
        deadline, said = time.monotonic() + wait, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Busy(f"combo {combo_id!r} is being run by {holder(path)}; waited {wait:g} s "
                               f"(FTCOMPAT_LOCK_WAIT); run again when it has finished") from None
                if not said:
                    log(f"{combo_id}: waiting for {holder(path)} to finish this combo (one run per combo at a time)")
                    said = True
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": utc_now()}).encode())
        if said:
            log(f"{combo_id}: the other run has finished; going on")
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the flock
