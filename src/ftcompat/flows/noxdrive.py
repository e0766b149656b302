"""``ftcompat run``: a config's combos built and run by nox, with ftcompat's own noxfile.

The packaged noxfile (``ftcompat/library/noxfile.py``, the repository's ``noxfile.py``) registers a
session per combo of whatever config FTCOMPAT_CONFIG names (``noxsessions.register``); nox keeps its
environments in ``<work>/.nox``, and the results go to ``<work>/results``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from ftcompat.config.library import library_dir
from ftcompat.core.domain import Matrix
from ftcompat.core.errors import Busy, InputError
from ftcompat.core.hints import suggest
from ftcompat.env import locks
from ftcompat.flows.ciplan import matches, split_words
from ftcompat.flows.sessions import CONFIG_ENV, WORK_ENV, default_combos


def select(matrix: Matrix, selectors: list[str] | None) -> list[str]:
    """The combo ids the selectors pick (globs, ``tag:GLOB``); none given: every combo that needs no GPU."""
    patterns = split_words(selectors)
    if not patterns:
        return default_combos(matrix)
    sessions: list[dict] = [{"session": c.id, "tags": list(c.tags)} for c in matrix.combos]
    for pattern in patterns:
        if not any(matches(s, pattern) for s in sessions):
            ids = [c.id for c in matrix.combos]
            raise InputError(f"--combos: {pattern!r} selects no combo of {matrix.source}{suggest(pattern, ids)}; "
                             f"combos: {', '.join(ids)}")
    return [s["session"] for s in sessions if any(matches(s, p) for p in patterns)]


def environment(config: Path, work: Path, cases: list[str] | None) -> dict[str, str]:
    """The variables that point the packaged noxfile at the config, its work folder and the chosen cases."""
    env = {**os.environ, CONFIG_ENV: str(Path(config).resolve()), WORK_ENV: str(Path(work).resolve())}
    # pipx and uvx put only ftcompat's own command on PATH; nox and its sessions look for uv there.
    env["PATH"] = os.pathsep.join(filter(None, (str(Path(sys.executable).parent), os.environ.get("PATH"))))
    if cases:
        env["FTCOMPAT_CASES"] = ",".join(split_words(cases))
    return env


def command(work: Path, combos: list[str], render: bool = True, extra: Sequence[str] = ()) -> list[str]:
    """The nox command line: the combos' sessions, then ``render``."""
    sessions = [*combos, *(["render"] if render else [])]
    return [sys.executable, "-m", "nox", "-f", str(library_dir() / "noxfile.py"),
            "--envdir", str(Path(work).resolve() / ".nox"), "-s", *sessions, *extra]


def run(config: Path, work: Path, combos: list[str], cases: list[str] | None, render: bool = True,
        extra: Sequence[str] = ()) -> int:
    """Run nox and return its exit status (a failing cell is a result: nox fails only on errors).

    A session that gave up waiting for its combo's lock leaves a marker; it is raised as ``Busy`` here,
    so the exit code says "busy", not "the machine failed".
    """
    markers = [locks.busy_marker(Path(work).resolve(), c) for c in combos]
    for marker in markers:
        marker.unlink(missing_ok=True)
    cmd = command(work, combos, render, extra)
    print(" ".join(cmd), flush=True)
    code = subprocess.run(cmd, env=environment(config, work, cases), check=False).returncode
    busy = [m for m in markers if m.is_file()]
    if code and busy:
        message = busy[0].read_text(encoding="utf-8").strip()
        for marker in busy:
            marker.unlink(missing_ok=True)
        raise Busy(message)
    return code
