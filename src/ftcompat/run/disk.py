"""Disk use of the environments ftcompat made, and ``ftcompat clean`` for those no combo uses.

uv installs by hard-linking files from its cache, so an environment's apparent size says little
about what deleting it frees. Sizes here count each inode once: ``disk`` is what the environment
occupies, ``own`` what only it holds (what removing it frees), ``shared_uv`` what is also linked
from uv's cache (stays there).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ftcompat.core.errors import InputError, MachineError
from ftcompat.run import uvcache

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
class Sizes:
    """Bytes: apparent (file sizes), on disk (each inode once) = own + shared with uv's cache + shared elsewhere."""

    apparent: int = 0
    disk: int = 0
    own: int = 0
    shared_uv: int = 0
    shared_other: int = 0
    files: int = 0


@dataclass
class EnvUsage:
    """One environment (or work folder) ftcompat made: what it is, who uses it, and its size."""

    kind: str  # nox, adhoc, bisect, work
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
        """True when no combo of the current matrix.yaml uses it."""
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


def find_envs(root: Path, combo_ids: Iterable[str], now: float | None = None) -> list[EnvUsage]:
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
                              note="" if cid else "no combo in matrix.yaml has this nox session"))
    for d in _subdirs(root / WORK / "adhoc"):
        venv = d / "venv"
        if venv.is_dir() and not venv.is_symlink():
            found.append(EnvUsage("adhoc", (venv,), d.name, ORPHAN, note="ad-hoc env (ftcompat adhoc)"))
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


# ---------------------------------------------------------------------------------------------
# Measuring


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
    envs = find_envs(root, [c.id for c in matrix.combos], now)
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


# ---------------------------------------------------------------------------------------------
# Command line


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


def _shown(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def table(rep: Report, root: Path) -> str:
    """The ``ftcompat disk`` table: one row per env, then the total and uv's cache."""
    from tabulate import tabulate

    rows = [[_shown(root, e.path), e.kind, e.used_by, human(e.sizes.apparent), human(e.sizes.disk),
             human(e.sizes.own), human(e.sizes.shared_uv)] for e in rep.envs]
    rows.append(["total (hard links counted once)", "", f"{sum(e.orphan for e in rep.envs)} orphan(s)",
                 human(rep.total.apparent), human(rep.total.disk), human(rep.total.own),
                 human(rep.total.shared_uv)])
    if rep.uv_cache_sizes is not None:
        rows.append([f"uv cache: {rep.uv_cache}", "", "", human(rep.uv_cache_sizes.apparent),
                     human(rep.uv_cache_sizes.disk), "", ""])
    heads = ["environment", "kind", "used by", "apparent", "on disk", "own (freed if removed)",
             "shared with uv cache"]
    return tabulate(rows, headers=heads, disable_numparse=True)


def add_parser(subparsers) -> None:
    """Register ``ftcompat disk`` and ``ftcompat clean`` on the CLI's subparsers."""
    p = subparsers.add_parser("disk", help=cmd_disk.__doc__)
    p.add_argument("--no-uv-cache", action="store_true",
                   help="do not scan uv's cache (faster; 'shared with uv cache' is then unknown)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_disk)
    p = subparsers.add_parser("clean", help=cmd_clean.__doc__)
    p.add_argument("--dry-run", action="store_true", help="say what would be removed and freed; remove nothing")
    p.add_argument("--all", action="store_true",
                   help="remove every environment ftcompat made, used or not (never results/ or uv's cache)")
    p.add_argument("--prune-uv-cache", action="store_true",
                   help="then run `uv cache prune`: drop uv's dangling cache entries (what `ftcompat disk` lists)")
    p.set_defaults(func=cmd_clean)


def _root_and_matrix(args):
    from ftcompat.config.matrix import load

    matrix = load(args.matrix)
    return Path(args.matrix).resolve().parent, matrix


def cmd_disk(args) -> int:
    """Report disk use per environment ftcompat made and in total, uv's cache, and the cap."""
    import json

    from ftcompat.run import envcap

    root, matrix = _root_and_matrix(args)
    rep = report(root, matrix, uv_cache=not args.no_uv_cache)
    if args.format == "json":
        print(json.dumps({"envs": [{"path": _shown(root, e.path), "kind": e.kind, "combo": e.combo,
                                    "used_by": e.used_by, "note": e.note, **e.sizes.__dict__} for e in rep.envs],
                          "total": rep.total.__dict__, "uv_cache": str(rep.uv_cache) if rep.uv_cache else None,
                          "uv_cache_sizes": rep.uv_cache_sizes.__dict__ if rep.uv_cache_sizes else None,
                          "uv_cache_prunable": dict(zip(("bytes", "entries"), uvcache.prunable(rep.uv_cache),
                                                        strict=True)),
                          "cap": envcap.cap(root), "own_total": rep.total.own}, indent=2))
        return 0
    print(table(rep, root))
    if rep.total.shared_other:
        print(f"{human(rep.total.shared_other)} of the total is hard-linked from outside these envs and uv's cache")
    if rep.uv_cache_sizes is not None:
        together = rep.uv_cache_sizes.disk + rep.total.own + rep.total.shared_other
        print(f"environments and uv's cache together: {human(together)} on disk")
    if rep.uv_cache is None and not args.no_uv_cache:
        print("uv's cache: not found (no uv); 'shared with uv cache' counts nothing")
    elif rep.uv_cache is not None:
        size, entries = uvcache.prunable(rep.uv_cache)
        print(f"`uv cache prune` would free about {human(size)} ({entries} dangling entries; "
              "`ftcompat clean --prune-uv-cache` runs it)" if entries else "`uv cache prune` would free nothing")
    limit = envcap.cap(root)
    print(f"cap on what the environments hold of their own: {human(limit)} (FTCOMPAT_ENV_CAP); "
          f"now {human(rep.total.own)}" if limit else "no cap on the environments (FTCOMPAT_ENV_CAP=0)")
    return 0


def cmd_clean(args) -> int:
    """Remove environments no combo in matrix.yaml uses (--all: every one ftcompat made); print what it freed."""
    root, matrix = _root_and_matrix(args)
    clean(root, [c.id for c in matrix.combos], dry_run=args.dry_run, everything=args.all)
    if args.prune_uv_cache:
        size, entries = uvcache.prunable(uv_cache_dir())
        if args.dry_run:
            print(f"would run `uv cache prune`: about {human(size)} in {entries} dangling entries")
        else:
            return uvcache.prune() and 4
    return 0


def clean(root: Path, combo_ids: Iterable[str], dry_run: bool = False, everything: bool = False,
          uv_cache: Path | None | bool = True, echo=print) -> tuple[list[EnvUsage], Sizes]:
    """Remove (or with ``dry_run`` list) the orphan envs, or all with ``everything``; return them and what it freed."""
    root = Path(root).resolve()
    cache = uv_cache_dir() if uv_cache is True else (uv_cache or None)
    uv_inodes = inode_set(cache)
    envs = find_envs(root, combo_ids)
    chosen = removable(envs, everything)
    for e in envs:
        if e.kind == "bisect" and not e.orphan:
            echo(f"kept {_shown(root, e.path)}: {e.note} (remove it by hand if it is not)")
    if not chosen:
        echo("nothing to remove: every environment is used by a combo in matrix.yaml")
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
        echo(f"{verb} {_shown(root, e.path)} ({e.kind}, {e.used_by}: {e.note}): {human(e.sizes.own)} own, "
             f"{human(e.sizes.disk)} on disk, {human(e.sizes.apparent)} apparent")
    echo(f"{'would free' if dry_run else 'freed'} {human(total.own)} in {len(chosen)} environment(s) "
         f"({human(total.shared_uv)} more is hard-linked from uv's cache and stays there; "
         f"{human(total.apparent)} apparent)")
    return chosen, total
