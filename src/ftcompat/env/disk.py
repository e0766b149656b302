"""The environments ftcompat made, who uses them, their disk use, and ``clean`` for those no combo uses.

Sizes count each inode once (``inodes``): uv hard-links files from its cache, so what deleting an
environment frees is its ``own`` bytes, not its apparent size.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ftcompat.core.errors import InputError, MachineError
from ftcompat.env import uvcache
from ftcompat.env.inodes import Inode, Sizes, human, inode_set, measure, merge_tables, scan

NOX = ".nox"
WORK = ".ftcompat"
ORPHAN = "orphan"
# A bisection folder touched this recently may belong to a bisection still running: not removed.
ACTIVE_BISECT_S = 1800
# nox's own folders beside the session envs: not environments of a combo.
NOX_INTERNAL = {"_nox_script_mode"}


class DiskError(InputError):
    """A path ftcompat will not measure or delete, with the reason."""


@dataclass
class EnvUsage:
    """One environment (or work folder) ftcompat made: what it is, who uses it, and its size."""

    kind: str  # nox, adhoc, handoff, bisect, work
    paths: tuple[Path, ...]
    combo: str | None
    used_by: str  # a current combo id, or "orphan"
    sizes: Sizes = field(default_factory=Sizes)
    note: str = ""

    @property
    def path(self) -> Path:
        """The main folder of this entry."""
        return self.paths[0]

    @property
    def orphan(self) -> bool:
        """True when no combo of the current config uses it."""
        return self.used_by == ORPHAN


def nox_dirname(session: str, envdir: str = NOX) -> str:
    """The folder name nox gives a session's env (nox.sessions._normalize_path, including its hashing)."""
    path = unicodedata.normalize("NFKD", session).encode("ascii", "ignore").decode("ascii")
    path = re.sub(r"[^\w\s-]", "-", path).strip().lower()
    path = re.sub(r"[-\s]+", "-", path).strip("-")
    if not path:
        path = hashlib.sha1(session.encode("utf-8")).hexdigest()[:8]  # noqa: S324 - nox's own rule
    if len(os.path.join(envdir, path)) > 100 - len("bin/pythonX.Y") and len(envdir) < 100 - 9:
        path = hashlib.sha1(path.encode("ascii")).hexdigest()[:8]  # noqa: S324
    return path


# ---------------------------------------------------------------------------------------------
# Finding the environments


def find_envs(root: Path, combo_ids: Iterable[str], now: float | None = None,
              config: str = "the config") -> list[EnvUsage]:
    """Every environment and work folder ftcompat made under ``root``, each marked used or orphan."""
    root = Path(root)
    ids = list(combo_ids)
    now = time.time() if now is None else now
    by_dir = {nox_dirname(cid): cid for cid in ids}
    found: list[EnvUsage] = []
    for d in _subdirs(root / NOX):
        if d.name.startswith(".") or d.name in NOX_INTERNAL:
            continue
        cid = by_dir.get(d.name)
        found.append(EnvUsage("nox", (d,), cid, cid or ORPHAN,
                              note="" if cid else f"no combo in {config} has this nox session"))
    for d in _subdirs(root / WORK / "adhoc"):
        venv = d / "venv"
        if venv.is_dir() and not venv.is_symlink():
            found.append(EnvUsage("adhoc", (venv,), d.name, ORPHAN, note="ad-hoc env (ftcompat adhoc)"))
    for d in _subdirs(root / WORK / "handoff" / "envs"):  # a config pair's sides (``flows.handoff.matrix_side``)
        venv = d / "venv"
        if venv.is_dir() and not venv.is_symlink():
            cid = d.name if d.name in ids else None
            found.append(EnvUsage("handoff", (venv,), cid, cid or ORPHAN,
                                  note="one side of the config's handoff pairs" if cid
                                  else f"no combo in {config} has this id"))
    for d in _subdirs(root / WORK / "bisect"):
        age = now - _newest_mtime(d)
        running = age < ACTIVE_BISECT_S
        found.append(EnvUsage("bisect", (d,), None, "bisection running?" if running else ORPHAN,
                              note=f"touched {age / 60:.0f} min ago" + ("; looks in progress" if running else "")))
    known = set(ids)
    plans = root / WORK / "plans"
    for d in _subdirs(root / WORK / "work"):
        extra = tuple(p for p in (plans / f"{d.name}.json", plans / f"{d.name}.ini") if p.is_file())
        used = d.name in known
        found.append(EnvUsage("work", (d, *extra), d.name, d.name if used else ORPHAN,
                              note="tiny models, remote-code cache" + ("" if used else "; no such combo")))
    return found


def _subdirs(path: Path) -> list[Path]:
    """Real subfolders (symlinks too: they are reported, never followed), sorted by name."""
    if not path.is_dir():
        return []
    return sorted((p for p in path.iterdir() if p.is_dir() or p.is_symlink()), key=lambda p: p.name)


def _newest_mtime(path: Path) -> float:
    newest = path.lstat().st_mtime
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            try:
                newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
            except OSError:
                continue
    return newest


def uv_cache_dir() -> Path | None:
    """uv's cache folder as ``uv cache dir`` reports it (UV_CACHE_DIR honoured), or None without uv."""
    return uvcache.cache_dir()


@dataclass
class Report:
    """Every env with its sizes, the total over all of them, and uv's cache."""

    envs: list[EnvUsage]
    total: Sizes
    uv_cache: Path | None
    uv_cache_sizes: Sizes | None


def usage(root: Path, matrix, uv_cache: Path | None | bool = True) -> list[EnvUsage]:
    """Every environment ftcompat made under ``root``, measured; ``uv_cache=True`` asks uv where its cache is."""
    return report(root, matrix, uv_cache).envs


def report(root: Path, matrix, uv_cache: Path | None | bool = True, now: float | None = None) -> Report:
    """Measure every env, their total (hard links counted once) and uv's cache."""
    cache = uv_cache_dir() if uv_cache is True else (uv_cache or None)
    cache_table = scan(cache) if cache else {}
    uv_inodes = set(cache_table)
    envs = find_envs(root, [c.id for c in matrix.combos], now, Path(matrix.source).name)
    tables = []
    for env in envs:
        table = merge_tables(scan(p) for p in env.paths)
        env.sizes = measure(table, uv_inodes)
        tables.append(table)
    total = measure(merge_tables(tables), uv_inodes)
    return Report(envs, total, cache, measure(cache_table, set()) if cache else None)


# ---------------------------------------------------------------------------------------------
# Cleaning


def check_removable(root: Path, path: Path) -> None:
    """Refuse a path that is not strictly inside root/.nox or root/.ftcompat, or leads out through a symlink."""
    root = Path(root).resolve()
    path = Path(os.path.abspath(path))
    for name in (NOX, WORK):
        base = root / name
        if path != base and path.is_relative_to(base):
            break
    else:
        raise DiskError(f"refusing to delete {path}: it is not inside {root / NOX} or {root / WORK}")
    if base.is_symlink():
        raise DiskError(f"refusing to delete {path}: {base} is a symlink (to {os.readlink(base)}) and ftcompat "
                        f"clean does not follow symlinks out of the project; remove what it points to by hand")
    # Resolve the parent only: a symlinked env is itself removed (the link), never its target.
    parent = path.parent.resolve()
    if parent != base and not parent.is_relative_to(base):
        raise DiskError(f"refusing to delete {path}: its folder leads out of {base} through a symlink "
                        f"(to {parent})")


def removable(envs: list[EnvUsage], everything: bool) -> list[EnvUsage]:
    """What clean removes: orphans, or with ``everything`` every env (a bisection in progress never)."""
    return [e for e in envs if e.orphan or (everything and e.kind != "bisect")]


def freed(envs: list[EnvUsage], uv_inodes: set[Inode]) -> Sizes:
    """What removing these envs together frees: inodes all of whose links are inside them."""
    return measure(merge_tables(merge_tables(scan(p) for p in e.paths) for e in envs), uv_inodes)


def remove(root: Path, env: EnvUsage) -> None:
    """Delete one env's paths after checking each lies inside the project's .nox or .ftcompat."""
    for path in env.paths:
        check_removable(root, path)
    for path in env.paths:
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        elif path.is_dir():
            shutil.rmtree(path)


def shown(root: Path, path: Path) -> str:
    """``path`` relative to the project root where it lies inside it, else as it is."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def clean(root: Path, combo_ids: Iterable[str], dry_run: bool = False, everything: bool = False,
          uv_cache: Path | None | bool = True, echo=print,
          config: str = "the config") -> tuple[list[EnvUsage], Sizes]:
    """Remove (or with ``dry_run`` list) the orphan envs, or all with ``everything``; return them and what it freed."""
    root = Path(root).resolve()
    cache = uv_cache_dir() if uv_cache is True else (uv_cache or None)
    uv_inodes = inode_set(cache)
    envs = find_envs(root, combo_ids, config=config)
    chosen = removable(envs, everything)
    for e in envs:
        if e.kind == "bisect" and not e.orphan:
            echo(f"kept {shown(root, e.path)}: {e.note} (remove it by hand if it is not)")
    if not chosen:
        echo(f"nothing to remove: every environment is used by a combo in {config}")
        return [], Sizes()
    for e in chosen:  # every path is checked before anything is deleted
        for p in e.paths:
            check_removable(root, p)
    total = freed(chosen, uv_inodes)  # measured together, before anything goes: shared links count once
    verb = "would remove" if dry_run else "removed"
    for e in chosen:
        e.sizes = measure(merge_tables(scan(p) for p in e.paths), uv_inodes)
        if not dry_run:
            try:
                remove(root, e)
            except OSError as exc:
                raise MachineError(f"could not remove {e.path}: {exc}") from exc
        echo(f"{verb} {shown(root, e.path)} ({e.kind}, {e.used_by}: {e.note}): {human(e.sizes.own)} own, "
             f"{human(e.sizes.disk)} on disk, {human(e.sizes.apparent)} apparent")
    echo(f"{'would free' if dry_run else 'freed'} {human(total.own)} in {len(chosen)} environment(s) "
         f"({human(total.shared_uv)} more is hard-linked from uv's cache and stays there; "
         f"{human(total.apparent)} apparent)")
    return chosen, total
