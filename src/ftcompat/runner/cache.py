"""The result cache: a cell whose versions, case source and device are unchanged is not run again.

A cell's key hashes what decides its result: the environment's resolved versions and Python, the
case file's source, the harness's source, the model it runs on, its time limit and the machine's
device. The harness writes the key into the record; the next run reuses a record whose key matches.
``FTCOMPAT_FORCE=1`` runs everything again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

from ftcompat.core import imports
from ftcompat.core.domain import Cell
from ftcompat.core.outcome import is_transient
from ftcompat.core.plan import Plan
from ftcompat.core.record import Record
from ftcompat.core.status import REUSABLE, Status
from ftcompat.harness.envinfo import cpu_name

PACKAGE = Path(__file__).resolve().parents[1]
HARNESS = PACKAGE / "harness"


def forced() -> bool:
    """True when FTCOMPAT_FORCE asks for every cell to run again."""
    return os.environ.get("FTCOMPAT_FORCE", "").lower() not in ("", "0", "false", "no")


def digest(data) -> str:
    """A short, stable hash of JSON-able data."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    """The hash of one file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@cache
def harness_digest() -> str:
    """The hash of the source the harness runs: its own files, stand-ins included, and every ftcompat module
    they import (the outcome rules, token masking, paths): a change there may change any result."""
    return digest({str(p.relative_to(PACKAGE)): file_digest(p) for p in harness_files()})


def harness_files() -> list[Path]:
    """The harness's files and, transitively, the ftcompat modules they import."""
    return sorted(imports.closure(imports.name_of(p) for p in HARNESS.rglob("*.py")).values())


@cache
def device() -> dict:
    """The machine's device as the controller sees it without importing torch: GPUs, else the CPU."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        gpus = [line.strip() for line in out.splitlines() if line.strip()]
        if gpus:
            return {"type": "cuda", "names": gpus}
    return {"type": "cpu", "name": cpu_name()}


def keys(cells: Iterable[Cell], case_paths: Mapping[str, Path], versions: Mapping, python: str,
         plan: Plan) -> dict[str, str]:
    """The cache key of every planned cell."""
    cases = {c: file_digest(p) for c, p in case_paths.items()}
    base = {"versions": dict(versions), "python": python, "harness": harness_digest(), "device": device()}
    if plan.health.defects:  # a result in a broken environment never stands for one in a repaired one
        base["broken"] = sorted(d.root for d in plan.health.roots())
    out = {}
    for cell in cells:
        model = plan.models.get(cell.model) if cell.model else None
        timeout = plan.case(cell.case).timeout
        out[cell.id] = digest({**base, "case": cases[cell.case], "model": model, "timeout": timeout})
    return out


def hits(records: list[Record], wanted: Mapping[str, str]) -> list[Record]:
    """Records that can stand for this run: same key, a result that is not an accident of the run."""
    if forced():
        return []
    # A reused result is current again: a "not refreshed" mark from a failed run no longer applies.
    return [r.without("not_refreshed").with_(cached=True) for r in records
            if r.cache_key and wanted.get(r.id) == r.cache_key and reusable(r)]


def reusable(record: Record) -> bool:
    """A result of the versions themselves: not a crash, a timeout, a transient or a missing result.

    A setup error with a real exception (an import that fails on these pins) is as repeatable as a
    failure; an error with no exception type is a cell the harness never reached, and a machine
    failure says nothing about the versions.
    """

    if record.status in REUSABLE:
        return True
    return (record.status == Status.ERROR and bool(record.exc_type) and record.exc_type != "MachineError"
            and not is_transient(f"{record.signature} {record.message}"))
