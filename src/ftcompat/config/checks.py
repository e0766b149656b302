"""Checking parsed YAML at the edge: problems located by their path in the file, all collected, one error."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ftcompat.config.cases import CaseFile
from ftcompat.core.errors import InputError
from ftcompat.core.hints import suggest

MAX_SHOWN = 400  # characters of a problem shown: a value from the file can be as long as the file

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?Z?)?$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the matrix, located by its path inside the file."""

    path: str
    message: str

    def render(self, source: str) -> str:
        """Return ``file: path: message``, a value echoed in it cut short (it came from the file)."""
        message = self.message if len(self.message) <= MAX_SHOWN else self.message[:MAX_SHOWN] + "… (cut)"
        return f"{source}: {self.path[:MAX_SHOWN]}: {message}"


class MatrixError(InputError):
    """matrix.yaml is invalid; ``problems`` says where and what."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        lines = [p.render(source) for p in problems]
        head = f"{source} is invalid ({len(problems)} problem{'s' * (len(problems) != 1)}):"
        text = lines[0] if len(lines) == 1 else "\n".join([head, *("  " + line for line in lines)])
        super().__init__(text)


class Checker:
    """Walks parsed YAML, collecting problems instead of stopping at the first; the checks of plain values."""

    def __init__(self, cases: dict[str, CaseFile]):
        self.problems: list[Problem] = []
        self.cases = cases

    def add(self, path: str, message: str) -> None:
        """Note one problem at ``path``."""
        self.problems.append(Problem(path, message))

    def mapping(self, value, path: str, allowed, required=()) -> dict:
        """The value if it is a mapping with only ``allowed`` keys and every ``required`` one."""
        if not isinstance(value, dict):
            self.add(path, f"expected a mapping, got {type(value).__name__} {value!r}")
            return {}
        for key in value:
            if key not in allowed:
                self.add(f"{path}.{key}" if path else str(key),
                         f"unknown key {key!r}{suggest(key, allowed)}")
        for key in required:
            if key not in value:
                self.add(path or "(top level)", f"missing required key {key!r}")
        return value

    def string(self, value, path: str, pattern: re.Pattern | None = None, what: str = "") -> str | None:
        """The value if it is a string matching ``pattern``, else None (and a problem)."""
        if not isinstance(value, str):
            self.add(path, f"expected a string{' (' + what + ')' if what else ''}, got {value!r}")
            return None
        if pattern and not pattern.match(value):
            self.add(path, f"{value!r} is not {what or 'valid'}")
            return None
        return value

    def str_list(self, value, path: str) -> list[str]:
        """The value if it is a list of strings, else [] (and a problem)."""
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(path, f"expected a list of strings, got {value!r}")
            return []
        return value

    def version(self, value, path: str) -> str | None:
        """An exact PEP 440 version string, or None for "newest"; a YAML number is refused."""
        from packaging.version import InvalidVersion, Version

        if value is None:
            return None
        if isinstance(value, (int, float)):
            self.add(path, f"{value!r} is a YAML number; quote versions (\"{value}\") so 4.50 stays 4.50")
            return None
        if not isinstance(value, str):
            self.add(path, f"expected a version string or null, got {value!r}")
            return None
        try:
            Version(value)
        except InvalidVersion:
            self.add(path, f"{value!r} is not a valid version (an exact PEP 440 version such as "
                           "'4.56.2', or null for the newest release)")
            return None
        return value

    def date(self, value, path: str) -> str | None:
        """A YYYY-MM-DD date or an RFC 3339 UTC time, as a string."""
        import datetime

        if value is None:
            return None
        if isinstance(value, datetime.date):  # YAML reads an unquoted 2025-09-15 as a date
            return value.isoformat()
        if isinstance(value, str) and DATE_RE.match(value):
            return value
        self.add(path, f"{value!r} is not a date (YYYY-MM-DD, or an RFC 3339 UTC time)")
        return None
