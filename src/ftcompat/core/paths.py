"""Make every path in a result portable: no machine's folders in what ftcompat writes.

A cell's message, traceback and log quote file paths. Results are committed, published and pasted
into upstream issues, so they must read the same on every machine and reveal nobody's home folder:

- ``.../site-packages/trl/__init__.py``  -> ``site-packages/trl/__init__.py``
- ``/root/.pyenv/versions/3.11.7/lib/python3.11/contextlib.py`` -> ``<python>/lib/python3.11/contextlib.py``
- ``<project>/cases/x.py`` -> ``cases/x.py``; ``<project>/.nox/c/bin/python`` -> ``.nox/c/bin/python``
- uv's cache -> ``<uv-cache>``, the temp folder -> ``<tmp>`` (pytest's ``pytest-of-<user>/pytest-<n>`` too),
  the home folder -> ``~``

Pure apart from reading where those folders are on this machine.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import overload

_END = r"(?=[/\\]|$|[\s'\"()`,:;\]])"
SITE = re.compile(r"(?:[A-Za-z]:)?[/\\][^\s'\"()`]*?[/\\](?:site|dist)-packages[/\\]")
PYTEST_TMP = re.compile(r"<tmp>[/\\]pytest-of-[^/\\\s]+[/\\]pytest-\d+[/\\]")
STDLIB = re.compile(r"(?:[A-Za-z]:)?[/\\][^\s'\"()`]*?[/\\]lib[/\\](python3\.\d+)[/\\]")


def uv_cache_guess(environ=None) -> str | None:
    """Where uv keeps its cache, from its settings, without running uv."""
    environ = os.environ if environ is None else environ
    if environ.get("UV_CACHE_DIR"):
        return environ["UV_CACHE_DIR"]
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "uv")


class Portable:
    """Rewrites the absolute paths of this machine in text (and in JSON-able data) to portable ones."""

    def __init__(self, root: Path | str | None = None, extra: Iterable[tuple[str, str]] = ()):
        folders: list[tuple[str, str]] = []
        # ftcompat's own files read as ``ftcompat/harness/api.py`` wherever it is installed.
        own = str(Path(__file__).resolve().parents[2])
        self.strip = re.compile(re.escape(own) + r"[/\\](?=ftcompat[/\\])")
        if root:
            for form in {str(root), str(Path(root).resolve())}:
                folders.append((form.rstrip("/\\"), "."))
        folders += list(extra)
        for var in ("PIP_FIND_LINKS", "UV_FIND_LINKS"):  # a machine's own wheel folders
            folders += [(v.removeprefix("file://").rstrip("/"), "<find-links>")
                        for v in os.environ.get(var, "").split() if "://" not in v.removeprefix("file://")]
        folders += [(p, "<python>") for p in {sys.base_prefix, sys.base_exec_prefix}]
        cache = uv_cache_guess()
        if cache:
            folders.append((cache, "<uv-cache>"))
        folders.append((tempfile.gettempdir(), "<tmp>"))
        folders.append((os.path.expanduser("~"), "~"))
        self.under_root = bool(root and Path(own).is_relative_to(Path(root).resolve()))
        # Longest first, so a project inside the home folder becomes relative, not ``~/...``.
        seen, self.folders = set(), []
        for path, name in sorted(folders, key=lambda f: -len(f[0])):
            if len(path) > 1 and path not in seen:
                seen.add(path)
                self.folders.append((re.compile(re.escape(path) + _END), name))

    @overload
    def text(self, value: str) -> str: ...
    @overload
    def text(self, value: None) -> None: ...
    @overload
    def text(self, value: str | None) -> str | None: ...
    def text(self, value: str | None) -> str | None:
        """``value`` with this machine's paths made portable."""
        if not value:
            return value
        value = SITE.sub("site-packages/", value)
        value = STDLIB.sub(r"<python>/lib/\1/", value)
        if not self.under_root:
            value = self.strip.sub("", value)
        for pattern, name in self.folders:
            value = pattern.sub(name, value)
        value = PYTEST_TMP.sub("<tmp>/", value)  # pytest's base temp names the user and the run
        value = value.replace(STAGED_CASES + "/", "cases/")
        # ``./cases/x.py`` reads better as ``cases/x.py``; a bare ``.`` (the project itself) stays.
        return re.sub(r"(?<![\w.~>])\./(?=\S)", "", value)

    def data(self, value):
        """A copy of JSON-able ``value`` with every string made portable."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value


# Cases whose files lie outside the work folder (the installed library's) run from a copy here, so
# every case is under pytest's rootdir; they read as ``cases/<id>.py``, as in the repository.
STAGED_CASES = ".ftcompat/cases"


ABSOLUTE = re.compile(r"(?<![\w.<>~-])/(?:root|home|Users|tmp|var/folders|work|opt|srv|mnt)/[^\s'\"]*")


USER_TEMP = re.compile(r"pytest-of-[^/\\\s]+")


def machine_paths(text: str) -> list[str]:
    """Absolute paths of the kind that identify a machine (home, temp, work folders, a user's pytest temp)."""
    return ABSOLUTE.findall(text or "") + USER_TEMP.findall(text or "")
