"""The tools of a repair: the newest release of a package that imports beside the pins, and a pins' date.

``newest_clean`` walks a package's releases down from the installed one, installing each candidate
alone (``uv pip install --no-deps``, seconds with uv's cache) and running the health probe on the
one module that failed: it gallops down (1, 2, 4, ... releases back) to the first that imports, then
bisects the gap, so the boundary costs O(log n) probes. ``pins_date`` is the other way: the day the
newest pinned release came out, for resolving everything else as of then (``--exclude-newer``).
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from ftcompat.core.errors import MachineError, NotInstallable
from ftcompat.core.health import Health
from ftcompat.env import installer, releases
from ftcompat.env.base import Built, Log
from ftcompat.env.health import probe


@dataclass(frozen=True)
class Search:
    """What the walk down a package's releases found."""

    kept: str | None  # the newest release older than the installed one that imports cleanly; None: none did
    first_bad: str  # the oldest release (the installed one at worst) that fails
    steps: int  # candidates installed and probed
    tried: tuple[tuple[str, bool], ...] = ()  # each candidate and whether it imported


def older_finals(versions: Iterable[str], installed: str) -> list[str]:
    """Final releases older than ``installed``, newest first."""
    top = Version(Version(installed).public)
    picked = []
    for text in versions:
        try:
            v = Version(text)
        except InvalidVersion:
            continue
        if not (v.is_prerelease or v.local) and v < top:
            picked.append(v)
    return [str(v) for v in sorted(set(picked), reverse=True)]


def walk(candidates: list[str], good: Callable[[str], bool], installed: str) -> Search:
    """Gallop down ``candidates`` (newest first) to the first good one, then bisect back to the boundary.

    Assumes that once a release imports, every older one down to it does too (a new release brought
    the break); the search checks at most about 2·log2(n) candidates.
    """
    tried: dict[str, bool] = {}

    def test(i: int) -> bool:
        v = candidates[i]
        if v not in tried:
            tried[v] = good(v)
        return tried[v]

    last_bad, step, i, found = -1, 1, 0, None
    while i < len(candidates):
        if test(i):
            found = i
            break
        last_bad, i, step = i, i + step, step * 2
    if found is None and candidates and last_bad != len(candidates) - 1 and test(len(candidates) - 1):
        found = len(candidates) - 1
    if found is None:
        oldest = max((candidates.index(v) for v in tried), default=-1)
        return Search(None, candidates[oldest] if oldest >= 0 else installed, len(tried), tuple(tried.items()))
    lo, hi = last_bad, found
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if test(mid):
            hi = mid
        else:
            lo = mid
    first_bad = candidates[lo] if lo >= 0 else installed
    return Search(candidates[hi], first_bad, len(tried), tuple(tried.items()))


def install_one(venv: Path, requirement: str, environ: Mapping[str, str], log: Log) -> bool:
    """Install one requirement alone (no dependencies touched); False when it cannot be installed here."""
    uv = installer.find_uv()
    cmd = ([uv, "pip", "install", "--python", str(venv / "bin" / "python"), "--no-deps", "-q"] if uv else
           [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "-q"])
    cmd += [*installer.index_args(dict(environ), "uv" if uv else "pip"), requirement]
    try:
        installer.run(cmd, environ, log=log, delays=())
    except NotInstallable:
        return False
    return True


def cured(found: Health, package: str, root: str | None) -> bool:
    """True when the probe no longer shows the root cause, nor any failure that involves ``package``.

    Not "the module imports": another defect (a peft too new beside the same transformers) can break the
    same module, and is another fix's business.
    """
    return found.error is None and not any(d.root == root or package in d.culprits for d in found.defects)


def _pages(environ: Mapping[str, str], listing: Callable[[str], Mapping] | None) -> Callable[[str], Mapping]:
    """How to get a package's page on the index the installer uses (``listing`` in tests)."""
    return listing or (lambda package: releases.fetch(package, releases.index_url(environ)))


def newest_clean(built: Built, package: str, installed: str, module: str, environ: Mapping[str, str] | None = None,
                 log: Log = print, listing: Callable[[str], Mapping] | None = None, root: str | None = None) -> Search:
    """The newest release of ``package`` older than ``installed`` that cures the defect seen importing ``module``."""
    environ = dict(os.environ if environ is None else environ)
    venv = Path(built.python).parent.parent
    try:
        page = _pages(environ, listing)(package)
    except (OSError, ValueError) as exc:
        raise MachineError(f"cannot list the releases of {package}: {exc}; check the network and the index") from None
    candidates = older_finals(releases.available(page), installed)

    def good(version: str) -> bool:
        if not install_one(venv, f"{package}=={version}", environ, log):
            log(f"  {package} {version}: cannot be installed here")
            return False
        found = probe(built, [module], only=True, environ=environ)
        ok = cured(found, package, root)
        log(f"  {package} {version}: import {module} " + ("ok" if found.ok else "no longer fails on it" if ok else
                                                          "fails: " + "; ".join(d.root for d in found.roots())))
        return ok

    log(f"repair: looking for the newest {package} older than {installed} that imports beside the pins "
        f"({len(candidates)} older releases)")
    return walk(candidates, good, installed)


def upload_day(page: Mapping, version: str) -> datetime.date | None:
    """The day a release's first file was uploaded (PEP 700 ``upload-time``), or None when the index does not say."""
    days = []
    for f in page.get("files") or []:
        stamp = f.get("upload-time")
        if stamp and releases.file_version(f.get("filename", "")) == version:
            try:
                days.append(datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).date())
            except ValueError:
                continue
    return min(days) if days else None


def pins_date(pins: Mapping[str, str | None], environ: Mapping[str, str] | None = None,
              listing: Callable[[str], Mapping] | None = None) -> str | None:
    """The day after the newest pinned release came out (YYYY-MM-DD), for ``--exclude-newer``; None when unknown."""
    environ = dict(os.environ if environ is None else environ)
    fetch = _pages(environ, listing)
    days = []
    for package, version in pins.items():
        if not version:
            continue
        try:
            day = upload_day(fetch(package), version)
        except (OSError, ValueError):
            continue  # a local wheel (find-links) has no date on the index
        if day:
            days.append(day)
    return (max(days) + datetime.timedelta(days=1)).isoformat() if days else None
