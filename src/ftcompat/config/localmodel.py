"""A model of the project's own on disk (``kind: local``): checked at the edge and fingerprinted.

The folder is read once, when the config is validated. Its fingerprint (every file's name, size and
modification time) goes into the plan, so a cell cached on yesterday's weights is run again when
the folder changes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

LOCAL_KEYS = ("kind", "path", "arch", "needs", "description")


def fingerprint(folder: Path) -> str:
    """``local-<hash>`` of the folder's files: names, sizes and modification times (not contents: GBs)."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        h.update(f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return "local-" + h.hexdigest()[:16]


def check(add, data: dict, where: str, base: Path) -> tuple[str | None, str | None]:
    """The model folder's absolute path and fingerprint, or (None, None) after noting the problem."""
    raw = data.get("path")
    if not isinstance(raw, str) or not raw:
        add(f"{where}.path", "a local model needs `path:`, its folder (relative to this file, or absolute)")
        return None, None
    folder = (base / raw).resolve()
    if not (folder / "config.json").is_file():
        why = "is not a folder" if not folder.is_dir() else "has no config.json (save_pretrained writes one)"
        add(f"{where}.path", f"{raw!r} {why} (looked in {folder})")
        return None, None
    return str(folder), fingerprint(folder)
