"""The device site: a lent GPU machine's own interpreter, with one combo's carried wheels unpacked beside it.

The device has no network and its packages must stay as they are, so a combo's wheels (carried
from here, ``flows.device``) are unpacked into a folder of their own that goes first on the
harness's ``PYTHONPATH``; the device's torch, transformers, peft and accelerate stay underneath.
"""

from __future__ import annotations

import os
import shutil
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ftcompat.core.domain import Combo
from ftcompat.core.errors import MachineError
from ftcompat.env.base import Built, Log, Touches

HOME = Path(".ftcompat/device-check")  # carried to the device: name it in the run's `carry`
WHEELS = HOME / "wheels"


def wheel_files(wheels: Path = WHEELS) -> list[Path]:
    """The wheels prepared for carrying, by name."""
    return sorted(wheels.glob("*.whl")) if wheels.is_dir() else []


def dist_of(wheel: Path) -> str:
    """``name==version`` of a wheel file, names normalised the way requirements spell them."""
    name, version = wheel.name.split("-")[:2]
    return f"{name.lower().replace('_', '-')}=={version}"


def wheel_for(req: str, wheels: list[Path], combo_id: str, python: tuple = sys.version_info[:2]) -> Path:
    """The carried wheel of ``name==version`` this python can use (``py3``/``py3XY`` tags); MachineError if none."""
    tags = {"py3", f"py{python[0]}{python[1]}", f"cp{python[0]}{python[1]}"}
    for wheel in wheels:
        if dist_of(wheel) == req and tags & set(wheel.name.split("-")[2].split(".")):
            return wheel
    raise MachineError(f"{combo_id}: no carried wheel of {req} for Python {python[0]}.{python[1]} in {WHEELS} "
                       "(run scripts/device-check prepare, and name the folder in the run's carry)")


def install(combo: Combo, requirements: Sequence[str], target: Path, wheels: Path = WHEELS) -> None:
    """Unpack a combo's carried wheels into ``target`` only: no index, no pip, no dependency resolution.

    Every carried wheel is pure Python or self-contained (bitsandbytes ships its CUDA libraries), so
    unpacking is all an install does for them; the ``.dist-info`` that comes along is what the
    harness reads the installed versions from.
    """
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for req in requirements:
        with zipfile.ZipFile(wheel_for(req, wheel_files(wheels), combo.id)) as whl:
            whl.extractall(target)


@dataclass(frozen=True)
class DeviceSite:
    """The device's interpreter with one combo's wheels in ``target``, first on ``PYTHONPATH``."""

    kind: ClassVar[str] = "device"
    repairs: ClassVar[bool] = False  # the device's own packages are what the check is about
    touches: ClassVar[Touches] = Touches.OWN_FOLDER  # the site folder; the device's packages stay as they are
    root: Path
    combo: Combo
    requirements: tuple[str, ...]
    target: Path
    python: str = sys.executable
    pythonpath: str = ""  # what was set before: it stays last
    workers: int = 8
    wheels: Path = WHEELS

    def prepare(self, log: Log) -> Built:
        """Unpack the wheels and point the harness at them, then at the checkout's harness, then the rest."""
        shown = self.target.relative_to(self.root.resolve()) if self.target.is_relative_to(self.root.resolve()) \
            else self.target.name
        log(f"{self.combo.id}: installing {' '.join(self.requirements)} into {shown}")
        install(self.combo, self.requirements, self.target, self.root / self.wheels)
        path = (str(self.target), str(self.root / "src"), self.pythonpath)
        return Built(python=self.python, env={"PYTHONPATH": os.pathsep.join(p for p in path if p),
                                              "FTCOMPAT_WORKERS": str(self.workers)})

    def release(self) -> None:
        """Nothing: the site stays for a rerun on the warm machine."""

    def with_combo(self, combo: Combo):
        """Itself: this kind is never repaired (``repairs`` is False)."""
        return self
