"""A worker's output goes to its log file through a small process that masks tokens on the way.

Everything a case prints reaches the worker's log: Python's own output, C libraries writing to
file descriptors 1 and 2, child processes, faulthandler's dump on a crash. Masking only when the
log is read would leave the raw token on disk, so the worker's descriptors point at a pipe and a
separate process (this module, ``python -m ftcompat.harness.logpipe LOG``) writes the masked text.
Being a process of its own, it outlives a worker that segfaults or is stopped by the watchdog and
still writes the last lines. ``sync`` lets the worker wait until all it wrote is in the file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from ftcompat.core.redact import redact

SYNC = "\x1eftcompat-sync "  # a line starting with this is an acknowledgement request, never logged
CHUNK = 1 << 16
KEEP = 256  # a token is shorter than this: an overlong line is cut where it cannot split one

_active: dict = {}


def start(path: Path) -> None:
    """Point this process's stdout and stderr at a masking writer that appends to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    read, write = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "ftcompat.harness.logpipe", str(path)], stdin=read,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True)
    os.close(read)
    sys.stdout.flush()
    sys.stderr.flush()
    # execnet talks to the controller over duplicates of the original descriptors, so 1 and 2 are free.
    os.dup2(write, 1)
    os.dup2(write, 2)
    os.close(write)
    _active.update(path=path, proc=proc, n=0)


def sync(timeout: float = 5.0) -> None:
    """Wait until everything written so far is in the log file (no-op when not started)."""
    if not _active:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    _active["n"] += 1
    n = _active["n"]
    ack = ack_path(_active["path"])
    os.write(1, f"\n{SYNC}{n}\n".encode())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if int(ack.read_text() or 0) >= n:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.005)


def ack_path(path: Path) -> Path:
    """Where the writer records the last sync request it has written through."""
    return Path(path).with_name(Path(path).name + ".ack")


def settle(path: Path, quiet: float = 0.2, timeout: float = 3.0) -> None:
    """Wait (briefly) until the log stops growing: a dead worker's writer is draining the pipe."""
    deadline, last, still = time.monotonic() + timeout, -1, time.monotonic()
    while time.monotonic() < deadline:
        try:
            size = Path(path).stat().st_size
        except OSError:
            size = -1
        if size != last:
            last, still = size, time.monotonic()
        elif time.monotonic() - still >= quiet:
            return
        time.sleep(0.02)


def _split(buffer: str) -> tuple[str, str]:
    """What can be written now (whole lines, or an overlong line up to a safe cut) and what waits."""
    cut = buffer.rfind("\n") + 1
    if cut == 0 and len(buffer) > CHUNK:
        # No newline for a long while: write all but the tail, cut at a space so no token is split.
        space = buffer.rfind(" ", 0, len(buffer) - KEEP)
        cut = space + 1 if space >= 0 else len(buffer) - KEEP
    return buffer[:cut], buffer[cut:]


def _write(out, ack: Path, text: str) -> None:

    kept: list[str] = []
    for line in re.findall(r"[^\n]*\n|[^\n]+$", text):  # only \n ends a line (splitlines also splits at \x1e)
        if line.startswith(SYNC):
            out.write(redact("".join(kept)))
            out.flush()
            kept = []
            ack.write_text(line[len(SYNC):].strip())
        else:
            kept.append(line)
    out.write(redact("".join(kept)))
    out.flush()


def main(argv: list[str]) -> int:
    """Copy standard input to the log file named in ``argv``, masking tokens, until the pipe closes."""
    import codecs

    path = Path(argv[0])
    ack = ack_path(path)
    decode = codecs.getincrementaldecoder("utf-8")("replace").decode  # a character may span two reads
    pending = ""
    with open(path, "a", encoding="utf-8") as out:
        while True:
            data = os.read(0, CHUNK)
            if not data:
                break
            ready, pending = _split(pending + decode(data))
            if ready:
                _write(out, ack, ready)
        pending += decode(b"", final=True)
        if pending:
            _write(out, ack, pending)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
