"""A cap on the disk ftcompat's own environments take, kept by evicting the least recently used ones.

Each combo, ad-hoc or bisection environment can take several GB of its own (where uv cannot
hard-link from its cache, every file is a copy). Before a new environment is built, the space
they take *of their own* (what removing them frees; files hard-linked from uv's cache are uv's)
is compared with the cap, ``FTCOMPAT_ENV_CAP`` (``80G``, ``500M``; ``0`` turns it off; default the
smaller of 64 GiB and 40 % of the disk). Over it, ad-hoc and finished bisection environments go
first, then environments no combo uses, least recently used first, each with a line saying what
was removed and why. The environments of the matrix's combos are never evicted.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from ftcompat.core.clock import utc, utc_now
from ftcompat.core.errors import InputError
from ftcompat.env import disk, inodes

GiB = 1 << 30
DEFAULT_MAX = 64 * GiB
DEFAULT_SHARE = 0.40
LAST_USED = ".ftcompat-last-used"
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": GiB, "T": 1 << 40}


def parse_size(text: str) -> int:
    """``80G``, ``80GiB``, ``500M``, ``1.5T`` or a number of bytes; InputError otherwise."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", text or "", re.IGNORECASE)
    if not m:
        raise InputError(f"FTCOMPAT_ENV_CAP={text!r} is not a size; write e.g. 80G, 500M or 0 (no cap)")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def cap(root: Path, environ=None) -> int | None:
    """The cap in bytes for environments under ``root``; None when turned off."""
    environ = os.environ if environ is None else environ
    if environ.get("FTCOMPAT_ENV_CAP"):
        value = parse_size(environ["FTCOMPAT_ENV_CAP"])
        return value or None
    try:
        total = shutil.disk_usage(root).total
    except OSError:
        return DEFAULT_MAX
    return min(DEFAULT_MAX, int(total * DEFAULT_SHARE))


def touch(venv: Path) -> None:
    """Note that an environment was used now (what least recently used is measured by)."""
    try:
        (Path(venv) / LAST_USED).write_text(utc_now())
    except OSError:
        pass  # a full disk is reported by what comes next, not by this note


def last_used(env: disk.EnvUsage) -> float:
    """When an environment was last used: its marker, else its newest top-level entry."""
    marker = env.path / LAST_USED
    try:
        return marker.stat().st_mtime
    except OSError:
        pass
    try:
        return max([env.path.lstat().st_mtime] + [p.lstat().st_mtime for p in env.path.iterdir()])
    except OSError:
        return 0.0


def evictable(envs: Iterable[disk.EnvUsage], keep: Path | None) -> list[disk.EnvUsage]:
    """Ad-hoc and finished bisection envs, then orphan nox envs, least recently used first."""
    keep = Path(keep).resolve() if keep else None
    rank = {"adhoc": 0, "bisect": 0, "nox": 1}
    found = [e for e in envs if e.kind in rank and e.orphan
             and not (keep and (keep == e.path.resolve() or keep.is_relative_to(e.path.resolve())))]
    return sorted(found, key=lambda e: (rank[e.kind], last_used(e)))


def enforce(root: Path, combo_ids: Iterable[str], keep: Path | None = None, log: Callable[[str], None] = print,
            environ=None) -> list[disk.EnvUsage]:
    """Evict environments until their own size is within the cap; return the ones removed."""
    root = Path(root).resolve()
    limit = cap(root, environ)
    if limit is None:
        return []
    envs = disk.find_envs(root, list(combo_ids))
    tables = {id(e): inodes.merge_tables(inodes.scan(p) for p in e.paths) for e in envs}
    cache = disk.uv_cache_dir()
    uv_inodes = inodes.inode_set(cache)
    total = inodes.measure(inodes.merge_tables(tables.values()), uv_inodes).own
    if total <= limit:
        return []
    log(f"ftcompat's environments hold {inodes.human(total)} of their own, over the {inodes.human(limit)} cap "
        "(FTCOMPAT_ENV_CAP): removing the least recently used ad-hoc and bisection environments")
    removed = []
    for env in evictable(envs, keep):
        if total <= limit:
            break
        own = inodes.measure(tables[id(env)], uv_inodes).own
        when = utc(last_used(env))
        disk.remove(root, env)
        total -= own
        removed.append(env)
        log(f"removed {env.path.relative_to(root)} ({env.kind}, {env.note}, last used {when}): "
            f"freed {inodes.human(own)}; now {inodes.human(total)} of {inodes.human(limit)}")
    if total > limit:
        log(f"still {inodes.human(total)} over the {inodes.human(limit)} cap: what is left belongs to the "
            "matrix's combos; raise FTCOMPAT_ENV_CAP, or remove combos you no longer run and `ftcompat clean`")
    return removed
