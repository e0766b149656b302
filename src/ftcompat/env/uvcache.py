"""What uv's cache holds: whether a wheel is already unpacked there, and what ``uv cache prune`` frees.

uv unpacks each wheel once into ``archive-v0/<id>`` and points at it from
``wheels-v*/<index>/<package>/<version>-<tags>`` (a symlink); environments hard-link the files.
An archive no pointer names is dangling: ``uv cache prune`` removes those, and the buckets of older
cache versions. This module reads the layout; it never writes into the cache.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from ftcompat.env.installer import find_uv


def cache_dir() -> Path | None:
    """uv's cache folder as ``uv cache dir`` reports it (UV_CACHE_DIR honoured), or None without uv."""
    uv = find_uv()
    if not uv:
        return None
    try:
        proc = subprocess.run([uv, "cache", "dir"], capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    out = proc.stdout.strip()
    return Path(out) if proc.returncode == 0 and out else None


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def has_wheel(cache: Path | None, name: str, version: str) -> bool:
    """True when uv has this release of ``name`` unpacked (``2.13.0`` also matches ``2.13.0+cpu``)."""
    if cache is None:
        return False
    name = _normal(name)
    for bucket in Path(cache).glob("wheels-v*"):
        for folder in (*bucket.glob(f"*/{name}"), *bucket.glob(f"*/*/{name}")):
            for entry in folder.glob(f"{version}*"):
                stem = entry.name
                if stem.endswith((".msgpack", ".http", ".lock", ".rev")):
                    continue
                if (stem.startswith(f"{version}-") or stem.startswith(f"{version}+")) and entry.exists():
                    return True  # a live pointer: its archive is there
    return False


def _referenced(cache: Path) -> set[str]:
    """The archive ids some pointer in the cache still names."""
    names = set()
    for dirpath, dirnames, filenames in os.walk(cache):
        if os.path.basename(dirpath) == "archive-v0":
            dirnames[:] = []
            continue
        for entry in dirnames + filenames:
            path = os.path.join(dirpath, entry)
            if os.path.islink(path):
                target = os.readlink(path)
                if "archive-v0" in target:
                    names.add(os.path.basename(target.rstrip("/")))
    return names


def _size(path: Path) -> int:
    """Bytes under ``path`` (file sizes, as uv counts them), each inode once."""
    seen, total = set(), 0
    for dirpath, _dirnames, filenames in os.walk(path):
        for name in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def prunable(cache: Path | None) -> tuple[int, int]:
    """About what ``uv cache prune`` would free: (bytes, entries) of dangling archives and old buckets.

    Bytes counted here may still be hard-linked from environments; those stay on disk until the
    environments go too.
    """
    if cache is None or not Path(cache).is_dir():
        return 0, 0
    cache = Path(cache)
    entries = []
    archive = cache / "archive-v0"
    if archive.is_dir():
        live = _referenced(cache)
        entries += [p for p in archive.iterdir() if p.name not in live]
    newest: dict[str, int] = {}
    buckets = [(m.group(1), int(m.group(2)), p) for p in cache.iterdir()
               if p.is_dir() and (m := re.fullmatch(r"([a-z-]+)-v(\d+)", p.name)) and m.group(1) != "archive"]
    for kind, version, _ in buckets:
        newest[kind] = max(newest.get(kind, 0), version)
    entries += [p for kind, version, p in buckets if version < newest[kind]]
    return sum(_size(p) for p in entries), len(entries)


def prune(log=print) -> int:
    """Run ``uv cache prune``; return its exit status (0 also when there is no uv)."""
    uv = find_uv()
    if not uv:
        log("no uv: nothing to prune")
        return 0
    proc = subprocess.run([uv, "cache", "prune"], capture_output=True, text=True, check=False)
    for line in (proc.stdout + proc.stderr).strip().splitlines():
        log(line)
    return proc.returncode
