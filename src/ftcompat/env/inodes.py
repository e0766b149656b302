"""Sizes that count each inode once: what a folder occupies, holds alone, and shares with uv's cache.

uv installs by hard-linking files from its cache, so an environment's apparent size says little
about what deleting it frees. ``disk`` is what a folder occupies, ``own`` what only it holds (what
removing it frees), ``shared_uv`` what is also linked from uv's cache (stays there).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Sizes:
    """Bytes: apparent (file sizes), on disk (each inode once) = own + shared with uv's cache + shared elsewhere."""

    apparent: int = 0
    disk: int = 0
    own: int = 0
    shared_uv: int = 0
    shared_other: int = 0
    files: int = 0


Inode = tuple[int, int]


def scan(path: Path) -> dict[Inode, tuple[int, int, int, int]]:
    """Inodes under ``path`` (never following symlinks): inode -> (links seen here, nlink, bytes, size)."""
    seen: dict[Inode, tuple[int, int, int, int]] = {}
    try:
        top = os.lstat(path)
    except FileNotFoundError:
        return seen
    _add(seen, top, 0 if stat.S_ISDIR(top.st_mode) else top.st_size)
    if not stat.S_ISDIR(top.st_mode):
        return seen
    stack = [str(path)]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
                    _add(seen, st, 0)
                else:
                    _add(seen, st, st.st_size)
    return seen


def _add(seen: dict, st: os.stat_result, size: int) -> None:
    key = (st.st_dev, st.st_ino)
    links, _, blocks, _ = seen.get(key, (0, 0, 0, 0))
    # Directories' link counts are about subfolders, not sharing: treat each as held here alone.
    nlink = 1 if stat.S_ISDIR(st.st_mode) else st.st_nlink
    seen[key] = (links + 1, nlink, st.st_blocks * 512, size)


def inode_set(path: Path | None) -> set[Inode]:
    """The inodes of the files under ``path`` (uv's cache), for telling shared from own."""
    return set(scan(path)) if path else set()


def measure(seen: dict[Inode, tuple[int, int, int, int]], uv_inodes: set[Inode]) -> Sizes:
    """Sizes of one inode table: own = inodes whose every link is in it; shared_uv = also in uv's cache."""
    sizes = Sizes()
    for key, (links, nlink, blocks, size) in seen.items():
        sizes.apparent += size * links
        sizes.disk += blocks
        sizes.files += links
        if key in uv_inodes:
            sizes.shared_uv += blocks
        elif links >= nlink:
            sizes.own += blocks
        else:
            sizes.shared_other += blocks
    return sizes


def merge_tables(tables: Iterable[dict]) -> dict[Inode, tuple[int, int, int, int]]:
    """One inode table for several folders, so a file linked from two of them counts once."""
    merged: dict[Inode, tuple[int, int, int, int]] = {}
    for table in tables:
        for key, (links, nlink, blocks, size) in table.items():
            prev = merged.get(key)
            merged[key] = (links + (prev[0] if prev else 0), nlink, blocks, size)
    return merged


def human(n: int | None) -> str:
    """Bytes as a short human-readable size (binary units)."""
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
