"""Check there is room for an environment before building it, from the sizes of the wheels it needs.

An environment whose wheels are all in uv's cache costs almost nothing (uv hard-links them); one
that needs a new CUDA torch costs several GB in the cache. The estimate counts only the wheels that
are neither installed in the environment nor unpacked in uv's cache, at their size on the index
times the usual unpacked-to-compressed ratio, and compares it with the free space where they will go.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ftcompat.core.errors import MachineError
from ftcompat.env import releases, uvcache
from ftcompat.env.resolved import site_packages

# Unpacked size over wheel size: 1.84 for the newest stack with a CUDA torch (3.0 GB of wheels took 5.5 GB
# in uv's cache, benchmarks/env-reuse-2026-12-01.json); a little over, so the check errs on the safe side.
UNPACK_FACTOR = 2.0
RESERVE = 1 << 30  # keep a GiB free for results, logs and the tiny models
GB = 1e9


@dataclass(frozen=True)
class Estimate:
    """Bytes an install will add, which wheels they come from, and the ones whose size is unknown."""

    needed: int
    downloads: tuple[tuple[str, str, int], ...] = ()
    unknown: tuple[str, ...] = field(default_factory=tuple)

    def names(self, n: int = 3) -> str:
        """The biggest downloads, for a message: ``torch 2.8.0, nvidia-cudnn-cu12 9.10.2.21 and 20 more``."""
        big = sorted(self.downloads, key=lambda d: -d[2])
        head = ", ".join(f"{name} {version}" for name, version, _ in big[:n])
        rest = len(big) - n
        return head + (f" and {rest} more" if rest > 0 else "")


def parse_lock(lock: Iterable[str]) -> list[tuple[str, str]]:
    """``name==version`` lines as (name, version) pairs."""
    out = []
    for line in lock:
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;]+)", line.strip())
        if m:
            out.append((m.group(1), m.group(2)))
    return out


def installed(venv: Path) -> set[tuple[str, str]]:
    """(normalised name, version) of every distribution in the environment, from its dist-info folders."""
    sp = site_packages(venv)
    found = set()
    for info in (sp.glob("*.dist-info") if sp else ()):
        name, _, version = info.name[: -len(".dist-info")].rpartition("-")
        found.add((releases.normalize(name), version))
    return found


def wanted_file(files: list[Mapping], version: str, python: str) -> Mapping | None:
    """The file of ``version`` the installer would take for this Python on this machine, or None."""
    from packaging.tags import compatible_tags, cpython_tags
    from packaging.utils import parse_sdist_filename, parse_wheel_filename
    from packaging.version import InvalidVersion, Version

    try:
        want = Version(version)
    except InvalidVersion:
        return None
    major, minor = (int(x) for x in python.split(".")[:2])
    order = {str(t): i for i, t in enumerate([*cpython_tags((major, minor)), *compatible_tags((major, minor))])}
    best, rank, sdist = None, None, None
    for f in files:
        name = f.get("filename", "")
        try:
            if name.endswith(".whl"):
                _, v, _, tags = parse_wheel_filename(name)
                score = min((order[str(t)] for t in tags if str(t) in order), default=None)
                if Version(v.public) == Version(want.public) and score is not None and (rank is None or score < rank):
                    best, rank = f, score
            elif name.endswith((".tar.gz", ".zip")) and Version(str(parse_sdist_filename(name)[1])) == want:
                sdist = f
        except (ValueError, InvalidVersion):
            continue
    return best or sdist


def sizes(packages: list[tuple[str, str]], python: str, environ: Mapping[str, str],
          fetch: Callable[[str, str], Mapping] | None = None) -> dict[str, int | None]:
    """The size of the file each (name, version) would install, from the index pages and find-links folders."""
    fetch = fetch or (lambda pkg, index: releases.fetch(pkg, index, timeout=20))
    indexes = [releases.index_url(environ)] + _values(environ, "EXTRA_INDEX_URL")
    links = [Path(v.removeprefix("file://")) for v in _values(environ, "FIND_LINKS") if "://" not in
             v.removeprefix("file://")]

    def one(item):
        name, version = item
        files = []
        for folder in links:
            files += [{"filename": p.name, "size": p.stat().st_size} for p in _glob(folder, name)]
        chosen = wanted_file(files, version, python)
        for index in indexes:
            if chosen is not None:
                break
            try:
                chosen = wanted_file(list(fetch(name, index).get("files") or []), version, python)
            except Exception:  # noqa: BLE001 - an index we cannot ask leaves the size unknown
                continue
        return name, (chosen or {}).get("size")

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(one, packages))


def _glob(folder: Path, name: str) -> list[Path]:
    if not folder.is_dir():
        return []
    stem = re.sub(r"[-_.]+", "_", name).lower()
    return [p for p in folder.iterdir() if re.sub(r"[-_.]+", "_", p.name.split("-", 1)[0]).lower() == stem]


def _values(environ: Mapping[str, str], suffix: str) -> list[str]:
    out = []
    for prefix in ("PIP_", "UV_"):
        out += [v.rstrip("/") for v in environ.get(prefix + suffix, "").split()]
    return list(dict.fromkeys(out))


def estimate(lock: Iterable[str], venv: Path, python: str, environ: Mapping[str, str], cache: Path | None,
             fetch=None) -> Estimate:
    """What installing ``lock`` into ``venv`` will add: the wheels neither installed there nor in uv's cache."""
    have = installed(venv)
    todo = [(n, v) for n, v in parse_lock(lock)
            if (releases.normalize(n), v) not in have and not uvcache.has_wheel(cache, n, v)]
    found = sizes(todo, python, environ, fetch) if todo else {}
    downloads = tuple((n, v, int(size)) for n, v in todo if (size := found.get(n)))
    unknown = tuple(n for n, _ in todo if not found.get(n))
    return Estimate(int(sum(d[2] for d in downloads) * UNPACK_FACTOR), downloads, unknown)


def _existing(path: Path) -> Path:
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check(est: Estimate, venv: Path, cache: Path | None, shown: str,
          free: Callable[[Path], int] = lambda p: shutil.disk_usage(p).free) -> None:
    """Raise MachineError when the disk(s) the install writes to cannot take the estimate."""
    if est.needed <= 0:
        return
    where = {_existing(venv.parent)}
    if cache is not None:
        where.add(_existing(cache))
    devices = {os.stat(p).st_dev: p for p in where}
    # Separate disks: the cache takes the unpacked wheels and the environment a copy of them.
    for path in devices.values():
        room = free(path)
        if room < est.needed + RESERVE:
            disk = "the disk of " + (shown if path == _existing(venv.parent) else "uv's cache")
            if len(devices) == 1 and cache is not None:
                disk = f"the disk of {shown} and uv's cache"
            raise MachineError(
                f"no space left on device: this environment needs about {est.needed / GB:.1f} GB "
                f"({est.names()} to download and unpack), {room / GB:.1f} GB free on {disk}; run `ftcompat clean` "
                "(environments no combo uses) or `ftcompat clean --prune-uv-cache`, or set UV_CACHE_DIR to a "
                "bigger disk", errno=28)
