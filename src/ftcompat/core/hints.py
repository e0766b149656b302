"""The "did you mean" every message about a mistyped name ends with."""

from __future__ import annotations

import difflib
from typing import Any


def suggest(value: Any, choices, n: int = 3) -> str:
    """Return ``; did you mean 'x'?`` for the closest choices, or ``; valid: ...`` when none is close."""
    choices = sorted(str(c) for c in choices)
    close = difflib.get_close_matches(str(value), choices, n=n, cutoff=0.6)
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    return "; valid: " + ", ".join(choices) if choices else ""
