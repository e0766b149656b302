"""Run the installer (uv, else pip): find it, hand it the machine's wheel sources, classify its failures.

Every installer call goes through ``run``: a failure becomes ``NotInstallable`` when the versions
are to blame and ``MachineError`` when the machine is, and a network failure is tried again a
bounded number of times first (``FTCOMPAT_INSTALL_RETRIES``, default 2).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from ftcompat.core.errors import MachineError, NotInstallable
from ftcompat.core.redact import redact
from ftcompat.env import diagnose

RETRY_DELAYS = (10.0, 30.0)  # seconds before each retry of a network failure (FTCOMPAT_RETRY_DELAYS="10,30")
TIMEOUT = 3600.0  # an install that takes an hour is stuck, not slow


def find_uv() -> str | None:
    """Return the uv binary: FTCOMPAT_UV, next to this interpreter, uv's package, on PATH, or None."""
    if os.environ.get("FTCOMPAT_UV"):
        return os.environ["FTCOMPAT_UV"]
    local = Path(sys.executable).parent / "uv"
    if local.exists():
        return str(local)
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except Exception:  # noqa: BLE001 - no uv package: fall back to PATH, then pip
        return shutil.which("uv")


def index_args(environ: Mapping[str, str], installer: str) -> list[str]:
    """Pass the machine's wheel sources on to the installer that does not read them itself.

    uv does not read pip's PIP_* settings and pip does not read UV_*, and a machine's own torch
    wheel usually lives behind exactly one of them.
    """
    prefix = "PIP_" if installer == "uv" else "UV_"
    flags = {"FIND_LINKS": "--find-links", "INDEX_URL": "--index-url",
             "EXTRA_INDEX_URL": "--extra-index-url"}
    args = []
    for var, flag in flags.items():
        for value in environ.get(prefix + var, "").split():
            args += [flag, value]
    return args


def retries(environ: Mapping[str, str] | None = None) -> int:
    """How many times a network failure is tried again (FTCOMPAT_INSTALL_RETRIES, default 2)."""
    environ = os.environ if environ is None else environ
    try:
        return max(0, int(environ.get("FTCOMPAT_INSTALL_RETRIES", "2")))
    except ValueError:
        return 2


def _delays(environ: Mapping[str, str]) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in environ["FTCOMPAT_RETRY_DELAYS"].split(",") if x.strip()) or (0.0,)
    except (KeyError, ValueError):
        return RETRY_DELAYS


def run(cmd: list[str], environ: Mapping[str, str], log: Callable[[str], None] = print, input: str | None = None,
        delays: tuple[float, ...] | None = None, sleep=time.sleep) -> subprocess.CompletedProcess:
    """Run an installer command; return it when it succeeds, else raise NotInstallable or MachineError."""
    delays = _delays(environ) if delays is None else delays
    tries = retries(environ) + 1
    for attempt in range(1, tries + 1):
        proc = _once(cmd, environ, input)
        if proc.returncode == 0:
            return proc
        output = redact((proc.stdout or "") + (proc.stderr or ""))
        failure = diagnose.classify(output, proc.returncode)
        if not (failure.transient and attempt < tries):
            raise error(failure, output)
        delay = delays[min(attempt - 1, len(delays) - 1)] if delays else 0.0
        log(f"{failure.reason}; trying again in {delay:g} s (retry {attempt} of {tries - 1})")
        sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def _once(cmd: list[str], environ: Mapping[str, str], input: str | None) -> subprocess.CompletedProcess:
    timeout = float(environ.get("FTCOMPAT_INSTALL_TIMEOUT") or TIMEOUT)
    try:
        return subprocess.run(cmd, input=input, capture_output=True, text=True, env=dict(environ), timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode("utf-8", "replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return subprocess.CompletedProcess(cmd, 124, out, f"error: the installer timed out after {timeout:g} s")
    except OSError as exc:  # no installer binary, no space to start it, too many processes
        return subprocess.CompletedProcess(cmd, 126, "", f"error: could not start {cmd[0]}: "
                                                           f"{exc.strerror or exc} (os error {exc.errno})")


def error(failure: diagnose.Failure, output: str) -> NotInstallable | MachineError:
    """The exception for a classified failure, with the installer's output as its detail."""
    if failure.machine:
        return MachineError(failure.message(), detail=output)
    return NotInstallable(failure.reason, detail=output)
