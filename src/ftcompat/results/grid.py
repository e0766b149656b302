"""Merge per-combo cell files into one grid, and fill in cells that never reported."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ftcompat.results import emulation
from ftcompat.config.cases import CaseFile
from ftcompat.core.domain import Cell, Combo, Matrix
from ftcompat.core.errors import InputError
from ftcompat.harness.cellfile import atomic_write, dumps
from ftcompat.core.outcome import Status
from ftcompat.core.paths import Portable
from ftcompat.run.plan import planned_cells

SCHEMA = "ftcompat-grid/1"


@dataclass(frozen=True)
class Grid:
    """The merged results: one record per cell, and per combo its pins and what they resolved to."""

    cells: tuple[Mapping, ...]
    combos: tuple[Mapping, ...]
    columns: tuple[str, ...]
    generated_at: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def cell(self, combo: str, column: str) -> Mapping | None:
        """Return the record at ``combo`` × ``column``, if any."""
        for record in self.cells:
            if record["combo"] == combo and column_of(record) == column:
                return record
        return None

    def to_dict(self) -> dict:
        """Return the grid.json form."""
        return {"schema": SCHEMA, "generated_at": self.generated_at,
                "columns": list(self.columns), "combos": [dict(c) for c in self.combos],
                "cells": [dict(c) for c in self.cells], "warnings": list(self.warnings)}


def column_of(record: Mapping) -> str:
    """Return the column id of a cell record: ``case[variant@model]``."""
    return record["id"].split("::", 1)[1]


def missing_record(cell: Cell, combo: Combo, status: Status, signature: str, message: str = "",
                   env: dict | None = None, exc_type: str | None = None) -> dict:
    """Return a record for a cell the harness never reported (not installable, or it crashed)."""
    return {
        "id": cell.id, "combo": cell.combo, "case": cell.case, "variant": cell.variant,
        "model": cell.model, "status": status.value, "signature": signature,
        "exc_type": exc_type, "message": message or signature, "step": None, "details": {},
        "traceback": None, "duration_s": 0.0,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "env": env or {"python": combo.python, "device": None, "versions": dict(combo.pins)},
    }


def complete(records: list[dict], planned: list[Cell], combo: Combo, why: str) -> list[dict]:
    """Add an ``error`` record, saying ``why``, for every planned cell with no record."""
    have = {r["id"] for r in records}
    env = records[0]["env"] if records else None
    extra = [missing_record(c, combo, Status.ERROR, why, env=env) for c in planned if c.id not in have]
    return records + extra


def read_cells(path: Path, log=None) -> list[dict]:
    """Read one combo's cell file (empty when absent).

    A truncated or corrupted file is never trusted nor silently dropped: it is moved aside as
    ``<name>.corrupt-<time>``, ``log`` is told where, and its cells count as not run.
    """
    path = Path(path)
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        cells = data["cells"]
        if not isinstance(cells, list) or not all(isinstance(c, dict) and "id" in c for c in cells):
            raise ValueError("'cells' is not a list of cell records")
        return cells
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        path.replace(aside)
        (log or print)(f"{path}: unreadable result file ({type(exc).__name__}: {exc}); moved aside to "
                       f"{aside.name}; its cells will be run again")
        return []


def resolved(records: list[Mapping]) -> dict:
    """Return the versions the combo's env really had, from any cell that recorded them."""
    for record in records:
        versions = (record.get("env") or {}).get("versions") or {}
        if record.get("status") != Status.NOT_INSTALLABLE.value and any(versions.values()):
            return dict(versions)
    return {}


def not_refreshed(records: list[Mapping]) -> dict | None:
    """The latest machine failure that kept these records from being refreshed, with how many it kept."""
    marks = [r["not_refreshed"] for r in records if r.get("not_refreshed")]
    if not marks:
        return None
    last = max(marks, key=lambda m: m.get("at") or "")
    return {"at": last.get("at"), "reason": last.get("reason"), "cells": len(marks)}


def merge(matrix: Matrix, cases: dict[str, CaseFile], cells_dir: Path, partial: bool = False) -> Grid:
    """Build the grid from results/cells/*.json for the combos and cases matrix.yaml declares now.

    ``partial`` marks a grid of one ad-hoc or current-environment row, where a known issue that
    covers none of its cells is simply about other versions, not stale.
    """
    warnings, cells, combos, columns = [], [], [], []
    for combo in matrix.combos:
        planned = planned_cells(matrix, combo, cases)
        planned_ids = {c.id for c in planned}
        for c in planned:
            if c.column not in columns:
                columns.append(c.column)
        records = read_cells(Path(cells_dir) / f"{combo.id}.json", warnings.append)
        stale = [r["id"] for r in records if r["id"] not in planned_ids]
        if stale:
            warnings.append(f"{combo.id}: ignoring {len(stale)} cell(s) no longer planned: {stale[:3]}")
        records = [r for r in records if r["id"] in planned_ids]
        if records:
            records = complete(records, planned, combo, "no result recorded for this cell")
        cells.extend(records)
        env = next((r.get("env") for r in records if r["status"] != "not-installable"), None) or {}
        stale = not_refreshed(records)
        if stale:
            warnings.append(f"{combo.id}: not refreshed: its run of {stale['at']} failed for a machine reason, so "
                            f"{stale['cells']} result(s) shown are from earlier runs: {stale['reason']}")
        combos.append({
            "id": combo.id, "python": combo.python, "pins": dict(combo.pins),
            "tags": list(combo.tags), "description": combo.description,
            "resolution": combo.resolution, "exclude_newer": combo.exclude_newer,
            "resolved": resolved(records), "device": env.get("device"),
            "python_resolved": env.get("python"), "ran": bool(records),
            "finished_at": max((r.get("finished_at") or "" for r in records), default="") or None,
            "not_refreshed": stale,
        })
    known = {c.id for c in matrix.combos}
    for path in sorted(Path(cells_dir).glob("*.json")):
        if path.stem not in known:
            warnings.append(f"{path.name}: combo {path.stem!r} is not in {matrix.source}; ignored")
    cells = [triage(r, matrix.known_issues) for r in cells]
    cells.sort(key=lambda r: r["id"])
    # A stand-in that fails where the real code passes (or the other way round) is a finding.
    warnings += [p.text() for p in emulation.disagreements(cells)]
    for issue in matrix.known_issues:
        if any((r.get("known_issue") or {}).get("id") == issue.id for r in cells):
            continue
        if not partial:  # one environment's row says nothing about other versions' entries
            warnings.append(f"known issue {issue.id!r} covers no cell in this grid; is it stale?")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    portable = Portable(Path(matrix.source).resolve().parent)  # warnings name files: not by this machine's paths
    return Grid(tuple(cells), tuple(combos), tuple(columns), stamp, tuple(portable.text(w) for w in warnings))


def triage(record: dict, issues) -> dict:
    """Mark a cell ``known`` (a registered bug explains its failure), ``fixed?`` or ``new``."""
    versions = (record.get("env") or {}).get("versions") or {}
    status = record["status"]
    covering = [i for i in issues if i.covers(column_of(record), versions)]
    if status in ("fail", "error"):
        # An entry whose signature hint appears in the failure explains it best; one whose hint
        # does not appear is about another failure in the same cells.
        sig = record.get("signature") or ""
        covering = ([i for i in covering if i.signature and i.explains(sig)]
                    + [i for i in covering if not i.signature])
    issue = covering[0] if covering else None
    if record.get("exc_type") == "MachineError":  # the machine failed: nothing to triage about versions
        return {**record, "known_issue": None, "triage": None}
    if status in ("fail", "error"):
        verdict = "known" if issue else "new"
    elif status == "pass" and issue:
        verdict = "fixed?"
    else:
        verdict = None
    covered = issue.to_dict() if issue and verdict else None
    return {**record, "known_issue": covered, "triage": verdict}


def with_failing_since(grid: Grid, since: Mapping[str, str]) -> Grid:
    """The grid with each cell's ``failing_since`` date (null for cells that are not failing)."""
    cells = tuple({**c, "failing_since": since.get(c["id"])} for c in grid.cells)
    return dataclasses.replace(grid, cells=cells)


def save(grid: Grid, path: Path) -> None:
    """Write grid.json with sorted keys."""
    atomic_write(Path(path), dumps(grid.to_dict()))


def read_json(path: Path | str, what: str = "file") -> object:
    """A JSON file's data, or InputError saying in one line why it cannot be read."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a {what}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: is not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})") from None
    if not text.strip():
        raise InputError(f"{path}: is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: is not valid JSON ({exc.msg}: line {exc.lineno}, column {exc.colno}); "
                         "is it truncated?") from None


def read_grid(path: Path | str) -> dict:
    """A grid JSON file as a dict, checked to be one: InputError names what is wrong."""
    data = read_json(path, "grid file")
    if not isinstance(data, dict):
        raise InputError(f"{path}: is a JSON {type(data).__name__}, not an ftcompat grid (want an object with "
                         f"schema {SCHEMA!r})")
    if data.get("schema") != SCHEMA:
        raise InputError(f"{path}: not an ftcompat grid (schema {data.get('schema')!r}, want {SCHEMA!r})")
    for key in ("cells", "combos"):
        if not isinstance(data.get(key), list):
            raise InputError(f"{path}: its {key!r} is missing or not a list; the file is damaged")
    bad = [i for i, c in enumerate(data["cells"]) if not (isinstance(c, dict) and {"id", "combo", "status"} <= set(c))]
    if bad:
        raise InputError(f"{path}: cells[{bad[0]}] is not a cell record (needs id, combo and status)")
    if any(not (isinstance(c, dict) and "id" in c) for c in data["combos"]):
        raise InputError(f"{path}: a combo entry has no id; the file is damaged")
    return data


def load(path: Path) -> Grid:
    """Read a grid.json back (InputError, one line, when it is not a readable grid)."""
    data = read_grid(path)
    return Grid(tuple(data["cells"]), tuple(data["combos"]), tuple(data.get("columns") or ()),
                data.get("generated_at", ""), tuple(data.get("warnings", [])))


__all__ = ["Grid", "complete", "load", "merge", "missing_record", "read_grid", "read_json", "save", "triage",
           "with_failing_since"]
