"""A package's releases from the package index (PEP 691 JSON simple API), for bisection.

Index access is one function (``fetch``) so tests can stub it; everything else is pure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping

from ftcompat.core.errors import MachineError

DEFAULT_INDEX = "https://pypi.org/simple"
ACCEPT = "application/vnd.pypi.simple.v1+json"

Fetch = Callable[[str, str], Mapping]


def index_url(environ: Mapping[str, str] | None = None) -> str:
    """The index the installer uses: PIP_INDEX_URL, else UV_INDEX_URL, else PyPI.

    PIP_INDEX_URL first because install.py hands it to uv as ``--index-url``, which beats uv's own
    UV_INDEX_URL; the bisection must list the releases of the index it installs from.
    """
    environ = os.environ if environ is None else environ
    for var in ("PIP_INDEX_URL", "UV_INDEX_URL"):
        value = (environ.get(var) or "").split()
        if value:
            return value[0].rstrip("/")
    return DEFAULT_INDEX


def normalize(name: str) -> str:
    """PEP 503 project name normalisation: ``Foo_Bar.baz`` -> ``foo-bar-baz``."""
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def fetch(package: str, index: str, timeout: float = 60.0) -> Mapping:
    """GET the project's JSON page from ``index`` (the only network access in this module)."""
    import urllib.request

    url = f"{index.rstrip('/')}/{normalize(package)}/"
    request = urllib.request.Request(url, headers={"Accept": ACCEPT})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the user's index
        return json.loads(response.read().decode("utf-8"))


def file_version(filename: str) -> str | None:
    """The version a wheel or sdist file belongs to, or None when its name cannot be read."""
    from packaging.utils import parse_sdist_filename, parse_wheel_filename

    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1])
        return str(parse_sdist_filename(filename)[1])
    except ValueError:  # eggs, .exe installers, non-PEP 440 names: not bisectable anyway
        return None


def yanked_versions(files: Iterable[Mapping]) -> set[str]:
    """Versions all of whose files are yanked (PEP 592: a release is yanked when every file is)."""
    state: dict[str, bool] = {}
    for f in files:
        version = file_version(f.get("filename", ""))
        if version is None:
            continue
        yanked = bool(f.get("yanked"))
        state[version] = state.get(version, True) and yanked
    return {v for v, all_yanked in state.items() if all_yanked}


def available(page: Mapping) -> list[str]:
    """Every valid, unyanked version on a project page, oldest first (PEP 440 order)."""
    from packaging.version import InvalidVersion, Version

    files = page.get("files") or []
    # PEP 700's ``versions`` lists releases even without files; older indexes only have the files.
    raw = page.get("versions")
    if raw is None:
        raw = {v for v in (file_version(f.get("filename", "")) for f in files) if v}
    yanked = yanked_versions(files)
    parsed = {}
    for text in raw:
        try:
            version = Version(text)
        except InvalidVersion:
            continue  # legacy non-PEP 440 versions cannot be ordered, so they cannot be bisected
        if str(version) not in yanked:
            parsed[str(version)] = version
    return [str(v) for v in sorted(parsed.values())]


def between(versions: Iterable[str], a: str, b: str, pre: bool = False) -> list[str]:
    """Versions strictly between ``a`` and ``b`` (either order), oldest first; finals unless ``pre``.

    Local labels (``2.13.0+cpu``) are ignored when comparing, so an endpoint's own build never
    counts as a release in between.
    """
    from packaging.version import Version

    lo, hi = sorted((Version(Version(a).public), Version(Version(b).public)))
    picked = []
    for text in versions:
        v = Version(text)
        if v.local or not lo < v < hi:
            continue
        if v.is_prerelease and not pre:  # dev releases count as pre-releases too
            continue
        picked.append(v)
    return [str(v) for v in sorted(set(picked))]


def releases_between(package: str, a: str, b: str, pre: bool = False, index: str | None = None,
                     fetcher: Fetch | None = None) -> list[str]:
    """The index's unyanked releases of ``package`` strictly between versions ``a`` and ``b``."""
    page = (fetcher or fetch)(package, index or index_url())
    return between(available(page), a, b, pre)


def lister(pre: bool = False, index: str | None = None) -> Callable[[str, str, str], list[str]]:
    """A bisection's release lister for ``index``: an unreachable index is a MachineError, not a verdict."""
    index = index or index_url()

    def between_sides(package: str, a: str, b: str) -> list[str]:
        try:
            return releases_between(package, a, b, pre=pre, index=index)
        except (OSError, ValueError) as exc:  # URLError is an OSError; a non-JSON page a ValueError
            raise MachineError(f"cannot list the releases of {package} from {index}: {exc}; check the network "
                               "and the index, then run again") from None
    return between_sides
