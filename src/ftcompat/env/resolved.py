"""What an environment really holds, read from its files: no interpreter start, no imports.

Used to fill the result-cache key with the resolved versions, and to notice a reused environment
that was broken by hand (a package deleted, files missing) before trusting it.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from ftcompat.core.domain import RECORDED
from ftcompat.core.gitref import dist_version


def site_packages(venv: Path) -> Path | None:
    """The environment's site-packages folder."""
    found = sorted(Path(venv).glob("lib/python3*/site-packages")) or sorted(Path(venv).glob("Lib/site-packages"))
    return found[0] if found else None


def _dists(venv: Path) -> dict[str, metadata.Distribution]:
    sp = site_packages(venv)
    if sp is None:
        return {}
    out: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions(path=[str(sp)]):
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        out.setdefault(name, dist)
    return out


def resolved(venv: Path, packages=RECORDED) -> dict[str, str | None]:
    """The installed version of each stack package (None where it is absent)."""
    dists = _dists(venv)
    return {p: (dist_version(dists[p]) if p in dists else None) for p in packages}


def problems(venv: Path, expected: dict[str, str | None]) -> list[str]:
    """What is wrong with the environment compared with what was installed: missing packages or files."""
    return list(broken(venv, expected).values())


def broken(venv: Path, expected: dict[str, str | None]) -> dict[str, str]:
    """The packages that differ from what was installed, each with what is wrong with it."""
    if not (Path(venv) / "bin" / "python").exists():
        return {"python": "bin/python is missing"}
    dists = _dists(venv)
    found = {}
    for name, version in expected.items():
        if version is None:
            continue
        dist = dists.get(name)
        if dist is None:
            found[name] = f"{name} {version} is not installed any more"
        elif dist_version(dist) != version:
            found[name] = f"{name} is {dist_version(dist)}, not {version}"
        else:
            # locate_file is typed as the SimplePath protocol; a folder's distributions give real paths.
            missing = [f for f in (dist.files or [])
                       if f.suffix == ".py" and not Path(str(dist.locate_file(f))).exists()]
            if missing:
                found[name] = f"{name} {version} lost {len(missing)} file(s), e.g. {missing[0]}"
    return found
