"""The one timestamp format every ftcompat file uses: UTC, second precision, ``2026-12-01T22:43:27Z``."""

from __future__ import annotations

import time

FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_now() -> str:
    """Now, in UTC, as ftcompat writes it."""
    return time.strftime(FORMAT, time.gmtime())
