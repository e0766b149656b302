"""Glob selectors over ids that contain brackets (``case[variant@model]``): only ``*`` and ``?`` are special."""

from __future__ import annotations

import functools
import re


@functools.cache
def _compile(pattern: str) -> re.Pattern:
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts) + r"\Z")


def match(pattern: str, text: str) -> bool:
    """Match ``text`` against ``pattern``; brackets are literal, unlike fnmatch's character classes."""
    return _compile(pattern).match(text) is not None


def match_column(pattern: str, column: str) -> bool:
    """Match a grid column ``case[variant@model]``; a pattern without ``[`` selects by case id only."""
    target = column if "[" in pattern else column.split("[", 1)[0]
    return match(pattern, target)
