"""Environments ftcompat builds from pins: the one nox makes per combo, an ad-hoc one, a bisection step.

All three install the combo's pins with uv (``build``) into a folder of their own; they differ in who
creates the folder and whether it outlives the run.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ftcompat.core.domain import Combo
from ftcompat.core.errors import InputError, NotInstallable
from ftcompat.env import build, evict, installer, preflight, resolved, space
from ftcompat.env.base import Built, Log, Touches


def has_gpu() -> bool:
    """True when this machine shows an NVIDIA GPU (its device file or nvidia-smi)."""
    return Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None


def make_venv(venv: Path, python: str) -> None:
    """Create (or keep) a virtual environment for ``python`` with uv, else the stdlib venv."""
    if (venv / "bin" / "python").exists():
        return
    venv.parent.mkdir(parents=True, exist_ok=True)
    uv = installer.find_uv()
    cmd = [uv, "venv", "-q", "-p", python, str(venv)] if uv else [f"python{python}", "-m", "venv", str(venv)]
    installer.run(cmd, dict(os.environ), log=lambda *_: None, delays=())  # a full disk is a MachineError


@dataclass(frozen=True)
class NoxVenv:
    """The venv nox made for a combo's session: the pins installed into it, or the install reused."""

    kind: ClassVar[str] = "nox"
    touches: ClassVar[Touches] = Touches.OWN_FOLDER
    repairs: ClassVar[bool] = False  # the matrix's pins are data: a broken import there is shown, not changed
    root: Path
    combo: Combo
    venv: Path
    protected: tuple[str, ...]  # the config's combos: their envs count as used when the disk cap evicts

    def prepare(self, log: Log) -> Built:
        """Install the pins (unless the env already holds them) and return the resolved versions."""
        if not build.can_reuse(self.venv, self.combo, dict(os.environ), self.root):
            # A typo'd version says so in one line, instead of as a resolver dump after a slow install.
            reason = preflight.pins_problem(self.combo)
            if reason:
                raise NotInstallable(reason)
            evict.enforce(self.root, list(self.protected), keep=self.venv, log=log)
        result = build.install(self.venv, self.combo, self.root, log=log, ask=self.ask)
        evict.touch(self.venv)
        log(result.output.strip().splitlines()[-1] if result.output.strip() else "installed")
        stamp = build.read_stamp(self.venv)
        versions = stamp.get("resolved") or resolved.resolved(self.venv)
        lock = result.lock or tuple(stamp.get("lock") or ())
        return Built(python=str(self.venv / "bin" / "python"), versions=versions,
                     fingerprint=build.fingerprint(self.combo.python, lock) if lock else None)

    def ask(self, est: space.Estimate) -> None:
        """Nothing to ask: the matrix's combos are what the run is for."""

    def release(self) -> None:
        """Nothing: nox's env is kept for the next run."""

    def with_combo(self, combo: Combo) -> NoxVenv:
        """This environment's folder, to be prepared for ``combo``."""
        return dataclasses.replace(self, combo=combo)


@dataclass(frozen=True)
class AdhocVenv(NoxVenv):
    """A venv ftcompat creates itself (uv) for pins given on the command line; kept, so asking again is cheap."""

    kind: ClassVar[str] = "adhoc"
    repairs: ClassVar[bool] = True
    # Above this many GB of downloads for torch's CUDA build on a machine without a GPU, say so and stop
    # (InputError) unless the user said yes; None: never ask (a search or bisection step, already asked for).
    ask_above_gb: float | None = None

    def ask(self, est: space.Estimate) -> None:
        """Refuse a large CUDA download on a machine without a GPU, unless the command line said yes."""
        if self.ask_above_gb is None or est.needed < self.ask_above_gb * space.GB or has_gpu():
            return
        if not any(n.startswith("nvidia-") for n, _, _ in est.downloads):  # a CPU torch brings none
            return
        raise InputError(
            f"{self.combo.id} would download about {est.needed / space.GB:.1f} GB ({est.names()}): torch's CUDA "
            "build, and this machine has no GPU (it runs on CPU, but the download is the CUDA one). Pass --yes to "
            "go on; or --torch-backend cpu to take the CPU build from PyTorch's CPU index; or pin "
            "a torch whose CPU wheel your find-links hold (PIP_FIND_LINKS)")

    def prepare(self, log: Log) -> Built:
        """Create the venv if it is missing, then install as nox's does."""
        make_venv(self.venv, self.combo.python)
        return super().prepare(log)


@dataclass(frozen=True)
class SideVenv(NoxVenv):
    """A config combo's environment as one side of a handoff pair: created by ftcompat (a pair's nox session
    has no venv of its own), kept, and shared by every pair the combo is in; its pins are data, not repaired."""

    kind: ClassVar[str] = "handoff-side"

    def prepare(self, log: Log) -> Built:
        """Create the venv if it is missing, then install as nox's does."""
        make_venv(self.venv, self.combo.python)
        return super().prepare(log)


@dataclass(frozen=True)
class StepVenv(AdhocVenv):
    """A bisection step's venv: built for one step's pins and removed after it, unless asked to keep it."""

    kind: ClassVar[str] = "bisect-step"
    keep: bool = False

    def release(self) -> None:
        """Remove the step's venv (``--keep-envs`` keeps it)."""
        if not self.keep:
            shutil.rmtree(self.venv, ignore_errors=True)
