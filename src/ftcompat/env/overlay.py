"""Give an environment ftcompat's harness without installing ftcompat (or anything) into it.

The harness is a copy of the ``ftcompat`` package under ``<work>/.ftcompat/harness/<digest>/``, one
per version of its source, so a run never sees a half-copied or newer harness. A pinned env that
ftcompat built gets a ``.pth`` file naming that folder (nox's envs are ftcompat's own); an env that
is not ftcompat's (``ftcompat here --python``) gets it through ``PYTHONPATH`` only, and nothing is
written into it. Either way the env's own packages stay exactly what its pins resolved to: the
controller's dependencies (nox, uv, tabulate, pyyaml) never enter it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import ftcompat

HOME = Path(".ftcompat") / "harness"
PTH = "_ftcompat_harness.pth"
SKIP = ("__pycache__", "*.pyc", "library")  # the case library is read from its files, not imported


def source() -> Path:
    """The ``ftcompat`` package the controller runs from."""
    return Path(ftcompat.__file__).resolve().parent


def _files(package: Path) -> list[Path]:
    return sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and p.suffix != ".pyc" and p.relative_to(package).parts[0] != "library")


def digest(package: Path | None = None) -> str:
    """A short hash of the harness's source: a new one for every change of it."""
    package = package or source()
    h = hashlib.sha256()
    for path in _files(package):
        h.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def harness_dir(work: Path) -> Path:
    """The folder to put on an env's path: it holds a copy of ``ftcompat`` at this version (made once)."""
    package = source()
    target = Path(work) / HOME / digest(package)
    if (target / "ftcompat" / "__init__.py").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".copy-", dir=target.parent))
    shutil.copytree(package, tmp / "ftcompat", ignore=shutil.ignore_patterns(*SKIP))
    try:
        os.rename(tmp, target)  # atomic: a concurrent run finds a whole copy or none
    except OSError:  # another run made it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def site_packages(venv: Path) -> Path:
    """The env's site-packages folder."""
    found = sorted(Path(venv).glob("lib/python3*/site-packages")) or sorted(Path(venv).glob("Lib/site-packages"))
    if not found:
        raise FileNotFoundError(f"no site-packages in {venv}")
    return found[0]


def attach(venv: Path, work: Path) -> Path:
    """Point an ftcompat-built env at the harness with a ``.pth`` file; return the harness folder."""
    where = harness_dir(work)
    pth = site_packages(venv) / PTH
    text = str(where.resolve()) + "\n"
    if not pth.is_file() or pth.read_text() != text:
        pth.write_text(text)
    return where
