"""Version text as the grid holds it: compare by PEP 440, ignoring local labels such as ``+cpu``."""

from __future__ import annotations

from typing import overload


@overload
def public(version: str) -> str: ...
@overload
def public(version: None) -> None: ...
@overload
def public(version: str | None) -> str | None: ...
def public(version: str | None) -> str | None:
    """Drop a local label (``2.13.0+cpu`` -> ``2.13.0``): ``==2.13.0`` matches every local build."""
    return version.split("+", 1)[0] if version else version


def key(version: str | None):
    """PEP 440 sort key (4.9 < 4.10) of the public version; text that is no version sorts first."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(public(version) or "0")
    except InvalidVersion:
        return Version("0")
