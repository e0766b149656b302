"""The timestamps ftcompat writes: UTC, second precision, ``2026-12-01T22:43:27Z`` in files and
``20261201T224327Z`` in file names."""

from __future__ import annotations

import time

FORMAT = "%Y-%m-%dT%H:%M:%SZ"
NAME_FORMAT = "%Y%m%dT%H%M%SZ"  # sorts like FORMAT, and is safe in a file or folder name


def utc_now() -> str:
    """Now, in UTC, as ftcompat writes it."""
    return utc(time.time())


def utc(epoch: float) -> str:
    """A Unix time, in UTC, as ftcompat writes it."""
    return time.strftime(FORMAT, time.gmtime(epoch))


def name_stamp() -> str:
    """Now, in UTC, for a file or folder name (a bisection run, a set-aside corrupt file)."""
    return time.strftime(NAME_FORMAT, time.gmtime())
