"""What versions of a package the installer can see: every index and find-links source uv will read."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from ftcompat.env import releases


class NotOnIndex(LookupError):
    """The package does not exist on any of the sources the installer reads."""


class ListingError(RuntimeError):
    """The sources could not be asked (network down, index error): nothing is known either way."""


class IndexLister:
    """Lists a package's versions on every source uv will read, once per package per run.

    Sources as install.py passes them on: the index (PIP_INDEX_URL, UV_INDEX_URL, else PyPI),
    extra indexes and find-links folders or pages (PIP_* and UV_* both).
    """

    def __init__(self, environ: Mapping[str, str] | None = None, fetch=None, timeout: float = 30.0):
        environ = dict(os.environ if environ is None else environ)
        self.indexes = [releases.index_url(environ)] + _values(environ, "EXTRA_INDEX_URL")
        self.find_links = _values(environ, "FIND_LINKS")
        self.fetch = fetch or (lambda pkg, index: releases.fetch(pkg, index, timeout=timeout))
        self.timeout = timeout
        self.cache: dict[str, list[str] | BaseException] = {}
        self.where = " + ".join([*self.indexes, *self.find_links])

    def __call__(self, package: str) -> list[str]:
        """The versions of ``package`` found on any source; NotOnIndex or ListingError otherwise."""
        key = releases.normalize(package)
        if key not in self.cache:
            try:
                self.cache[key] = self._list(key)
            except (NotOnIndex, ListingError) as exc:
                self.cache[key] = exc
        got = self.cache[key]
        if isinstance(got, BaseException):
            raise got
        return got

    def _list(self, package: str) -> list[str]:
        found: set[str] = set()
        errors = []
        for index in self.indexes:
            try:
                found |= page_versions(self.fetch(package, index))
            except Exception as exc:  # noqa: BLE001 - 404 means absent; anything else means unknown
                if getattr(exc, "code", None) != 404:
                    errors.append(f"{index}: {type(exc).__name__}: {exc}")
        for link in self.find_links:
            try:
                found |= link_versions(package, link, self.timeout)
            except OSError as exc:
                errors.append(f"{link}: {type(exc).__name__}: {exc}")
        if found:
            return sorted(found)
        if errors:
            raise ListingError("; ".join(errors))
        raise NotOnIndex(package)


_shared: IndexLister | None = None


def default_lister() -> IndexLister:
    """One lister per process, so a nox run asks the index about each package once."""
    global _shared
    if _shared is None:
        _shared = IndexLister()
    return _shared


def _values(environ: Mapping[str, str], suffix: str) -> list[str]:
    out = []
    for prefix in ("PIP_", "UV_"):
        out += [v.rstrip("/") for v in environ.get(prefix + suffix, "").split()]
    return list(dict.fromkeys(out))


def page_versions(page: Mapping) -> set[str]:
    """Every version with a file on a PEP 691 project page, yanked ones included (``==`` still installs them)."""
    versions = {v for v in (_file_version(f.get("filename", "")) for f in page.get("files") or []) if v}
    return versions or set(page.get("versions") or [])


def link_versions(package: str, link: str, timeout: float = 30.0) -> set[str]:
    """Versions of ``package`` among the files of a find-links folder or HTML page."""
    if re.match(r"^https?://", link):
        import urllib.request

        with urllib.request.urlopen(link, timeout=timeout) as response:  # noqa: S310 - the user's own source
            html = response.read().decode("utf-8", "replace")
        names = [n.rsplit("/", 1)[-1].split("#", 1)[0] for n in re.findall(r'href="([^"]+)"', html)]
    else:
        folder = Path(link.removeprefix("file://"))
        names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    return {v for v in (_file_version(n, package) for n in names) if v}


def _file_version(filename: str, package: str | None = None) -> str | None:
    """The version in a wheel or sdist name (of ``package`` when given), or None."""
    from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

    try:
        if filename.endswith(".whl"):
            name, version = parse_wheel_filename(filename)[:2]
        elif filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
        else:
            return None
    except ValueError:
        return None
    if package and canonicalize_name(name) != canonicalize_name(package):
        return None
    return str(version)
