"""Facts about the environment a cell ran in: resolved versions, Python, device."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

from ftcompat.core.domain import RECORDED, SUPPORT
from ftcompat.core.gitref import dist_version


def versions(packages=RECORDED) -> dict[str, str | None]:
    """Return the installed version of each stack package (None where it is absent)."""
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            # A package built from a git commit carries the commit: 0.17.0.dev0+g294f35b, not 0.17.0.dev0.
            out[name] = dist_version(metadata.distribution(name))
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def torch_device() -> str:
    """Return ``cuda`` when torch sees a GPU, else ``cpu``."""
    try:
        import torch
    except Exception:  # noqa: BLE001 - a broken torch still gets cells that say why
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def device_info() -> dict[str, str | None]:
    """Describe the device: kind, name and CUDA version as torch reports them."""
    try:
        import torch
    except Exception as exc:  # noqa: BLE001
        return {"type": "unknown", "name": f"torch import failed: {type(exc).__name__}", "cuda": None}
    if torch.cuda.is_available():
        return {"type": "cuda", "name": torch.cuda.get_device_name(0), "cuda": torch.version.cuda}
    return {"type": "cpu", "name": cpu_name(), "cuda": None}


def cpu_name() -> str:
    """Return the CPU model name where the OS tells it, else the machine architecture."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def collect() -> dict:
    """Return everything a cell records about where it ran."""
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(terse=True),
        "device": device_info(),
        "versions": versions(),
        "support_versions": versions(SUPPORT),
    }
