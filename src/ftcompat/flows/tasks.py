"""Every command that runs cases, as a flow, listed in one place (as nox's ``tasks.py`` lists its stages).

A flow composes the one runner (``runner.run``) with its own planning: which environments to prepare
(an ``env.base.Environment`` kind each), in what order, and what to write from their records. The
command line only parses its arguments, calls the flow and prints; a test holds each command to this
table. The commands not listed here run nothing: they read or write files (``VIEWS``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ftcompat.flows import adhoc, bisect, combo, device, doctor, handoff, here, noxdrive, pins, render, upgrade
from ftcompat.triage import report


@dataclass(frozen=True)
class Flow:
    """A command's flow: the function that does it, and the environment kinds it hands the runner."""

    run: Callable[..., Any]
    environments: tuple[str, ...]
    what: str


FLOWS: dict[str, Flow] = {
    "run": Flow(noxdrive.run, ("nox",), "nox builds one venv per combo; each session is flows.combo.COMBO"),
    "nox -s <combo>": Flow(combo.nox_session, ("nox",), "load, choose cases, check output, runner.run(NoxVenv)"),
    "render": Flow(render.flow, (), "cells merged, failures triaged and dated, grid.json/GRID.md/index.html"),
    "adhoc": Flow(adhoc.flow, ("adhoc",), "pins from the command line in a venv of their own"),
    "here": Flow(here.flow, ("existing",), "an environment someone else owns, read and never written"),
    "handoff": Flow(handoff.flow, ("adhoc", "existing"), "produce_ halves in one environment, test_ halves in "
                                                         "another, one cell for both"),
    "doctor": Flow(doctor.flow, (), "the health probe on an environment someone else owns; --verify in a copy"),
    "pins": Flow(pins.flow, ("adhoc",), "the grid's answer, else --search: candidates as ad-hoc venvs"),
    "upgrade": Flow(upgrade.flow, ("existing", "adhoc"), "the current environment beside a target"),
    "bisect": Flow(bisect.flow, ("bisect-step",), "one step venv per release until a cell flips"),
    "report": Flow(report.generate, (), "a bug report; --run runs its repro.py with uv in an empty folder"),
    "device-check": Flow(device.run_all, ("device",), "the device combos on a lent GPU's own interpreter"),
}

# Commands that run no case: they start a project, check a config, or read and write result files.
VIEWS = ("init", "cases", "validate", "ci-plan", "disk", "clean", "show", "page", "diff", "history",
         "file-issues")
