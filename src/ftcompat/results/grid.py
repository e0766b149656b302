"""Merge per-combo cell files into one grid, and fill in cells that never reported."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ftcompat.config.cases import CaseFile
from ftcompat.core.clock import utc_now
from ftcompat.core.domain import FROM, Cell, Combo, Matrix
from ftcompat.core.paths import Portable
from ftcompat.core.record import Record
from ftcompat.core.status import TRIAGED, Status, Triage
from ftcompat.core.health import root_text
from ftcompat.core.cellfile import read_environment, atomic_write, dumps, read_cells
from ftcompat.results import emulation
from ftcompat.config.plan import planned_cells

SCHEMA = "ftcompat-grid/1"


@dataclass(frozen=True)
class Grid:
    """The merged results: one record per cell, and per combo its pins and what they resolved to."""

    cells: tuple[Record, ...]
    combos: tuple[Mapping, ...]
    columns: tuple[str, ...]
    generated_at: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def cell(self, combo: str, column: str) -> Record | None:
        """Return the record at ``combo`` × ``column``, if any."""
        for record in self.cells:
            if record.combo == combo and record.column == column:
                return record
        return None

    def to_dict(self) -> dict:
        """Return the grid.json form."""
        return {"schema": SCHEMA, "generated_at": self.generated_at,
                "columns": list(self.columns), "combos": [dict(c) for c in self.combos],
                "cells": [c.to_dict() for c in self.cells], "warnings": list(self.warnings)}

    @classmethod
    def from_dict(cls, data: Mapping) -> Grid:
        """The grid of a grid.json's data (already checked to be one, see ``gridfile``)."""
        return cls(tuple(Record.from_dict(c) for c in data["cells"]), tuple(data["combos"]),
                   tuple(data.get("columns") or ()), data.get("generated_at", ""), tuple(data.get("warnings", [])))


def missing_record(cell: Cell, combo: Combo, status: Status, signature: str, message: str = "",
                   env: Mapping | None = None, exc_type: str | None = None) -> Record:
    """Return a record for a cell the harness never reported (not installable, or it crashed)."""
    return Record(cell.id, cell.combo, cell.case, cell.variant, cell.model, status, signature=signature,
                  exc_type=exc_type, message=message or signature, finished_at=utc_now(),
                  env=env or {"python": combo.python, "device": None, "versions": dict(combo.pins)})


def complete(records: list[Record], planned: list[Cell], combo: Combo, why: str) -> list[Record]:
    """Add an ``error`` record, saying ``why``, for every planned cell with no record."""
    have = {r.id for r in records}
    env = records[0].env if records else None
    extra = [missing_record(c, combo, Status.ERROR, why, env=env) for c in planned if c.id not in have]
    return records + extra


def resolved(records: Iterable[Record]) -> dict:
    """Return the versions the combo's env really had, from any cell that recorded them."""
    for record in records:
        if record.status != Status.NOT_INSTALLABLE and any(record.versions.values()):
            return dict(record.versions)
    return {}


def not_refreshed(records: Iterable[Record]) -> dict | None:
    """The latest machine failure that kept these records from being refreshed, with how many it kept."""
    marks = [r.not_refreshed for r in records if r.not_refreshed]
    if not marks:
        return None
    last = max(marks, key=lambda m: m.get("at") or "")
    return {"at": last.get("at"), "reason": last.get("reason"), "cells": len(marks)}


def merge(matrix: Matrix, cases: dict[str, CaseFile], cells_dir: Path | Sequence[Path],
          partial: bool = False) -> Grid:
    """Build the grid from results/cells/*.json for the combos and cases matrix.yaml declares now.

    ``cells_dir`` may be several folders (results/cells and the device check's results/gpu); a
    combo's file is taken from the first that has one. ``partial`` marks a grid of one ad-hoc or
    current-environment row, where a known issue that covers none of its cells is simply about
    other versions, not stale.
    """
    dirs = [Path(cells_dir)] if isinstance(cells_dir, (str, Path)) else [Path(d) for d in cells_dir]
    warnings: list[str] = []
    cells: list[Record] = []
    combos: list[dict] = []
    columns: list[str] = []
    for combo in matrix.combos:
        planned = planned_cells(matrix, combo, cases)
        planned_ids = {c.id for c in planned}
        for c in planned:
            if c.column not in columns:
                columns.append(c.column)
        found = next((d / f"{combo.id}.json" for d in dirs if (d / f"{combo.id}.json").is_file()), None)
        records = read_cells(found, warnings.append) if found else []
        stale = [r.id for r in records if r.id not in planned_ids]
        if stale:
            warnings.append(f"{combo.id}: ignoring {len(stale)} cell(s) no longer planned: {stale[:3]}")
        records = [r for r in records if r.id in planned_ids]
        # The runner writes every planned cell of a run (a cell the harness never reached says so), so a
        # planned cell missing here never ran in this combo: a case or variant added since. Not run, not error.
        never = len(planned_ids - {r.id for r in records}) if records else 0
        if never:
            warnings.append(f"{combo.id}: {never} planned cell(s) have not run in this combo yet (a case or variant "
                            f"added since its last run; `ftcompat run --combos {combo.id}` runs them)")
        cells.extend(records)
        env = next((r.env for r in records if r.status != Status.NOT_INSTALLABLE), None) or {}
        kept = not_refreshed(records)
        if kept:
            warnings.append(f"{combo.id}: not refreshed: its run of {kept['at']} failed for a machine reason, so "
                            f"{kept['cells']} result(s) shown are from earlier runs: {kept['reason']}")
        combos.append({
            "id": combo.id, "python": combo.python, "pins": dict(combo.pins),
            "tags": list(combo.tags), "description": combo.description,
            "resolution": combo.resolution, "exclude_newer": combo.exclude_newer,
            "prerelease": list(combo.prerelease), "overrides": dict(combo.overrides),
            "resolved": resolved(records), "device": env.get("device"),
            "python_resolved": env.get("python"), "ran": bool(records),
            "finished_at": max((r.finished_at or "" for r in records), default="") or None,
            "not_refreshed": kept,
            "environment": with_known(read_environment(found), matrix.known_issues) if found else None,
            **({"pair": {"from": combo.pair[0], "to": combo.pair[1]}} if combo.pair else {}),
        })
    known = {c.id for c in matrix.combos}
    for path in sorted(p for d in dirs for p in d.glob("*.json") if p.name != "device.json"):
        if path.stem not in known:
            warnings.append(f"{path.name}: combo {path.stem!r} is not in {matrix.source}; ignored")
    cells = [triage(r, matrix.known_issues) for r in cells]
    cells.sort(key=lambda r: r.id)
    # A stand-in that fails where the real code passes (or the other way round) is a finding.
    warnings += [p.text() for p in emulation.disagreements(cells)]
    seen_in_envs = {i["id"] for c in combos for i in ((c.get("environment") or {}).get("known_issues") or [])}
    for issue in matrix.known_issues:
        if any((r.known_issue or {}).get("id") == issue.id for r in cells) or issue.id in seen_in_envs:
            continue
        # One environment's row says nothing about other versions' entries, nor a project's few combos
        # about the built-in registry's.
        # An issue about handoff cells only, in a grid with no handoff pair to show it in.
        about_handoffs = bool(issue.cells) and not matrix.pairs and all(
            matrix.cases.get(sel.split("[", 1)[0]) is not None and matrix.cases[sel.split("[", 1)[0]].handoff
            for sel in issue.cells)
        if not partial and not issue.inherited and not about_handoffs:
            warnings.append(f"known issue {issue.id!r} covers no cell in this grid; is it stale?")
    stamp = utc_now()
    portable = Portable(Path(matrix.source).resolve().parent)  # warnings name files: not by this machine's paths
    return Grid(tuple(cells), tuple(combos), tuple(columns), stamp, tuple(portable.text(w) for w in warnings))


def label(combo: Mapping) -> str:
    """A grid row's name as the tables show it: a handoff pair's as producer → consumer."""
    pair = combo.get("pair")
    return f"{pair.get('from')} → {pair.get('to')}" if isinstance(pair, Mapping) else str(combo.get("id"))


def with_known(environment: dict | None, issues) -> dict | None:
    """A combo's environment report with the environment issues its probe's findings match (``known_issues``)."""
    if not environment:
        return environment
    health = environment.get("health") or {}
    repair = environment.get("repair") or {}
    found = [d for d in [*(health.get("defects") or []), *(repair.get("before") or [])] if isinstance(d, dict)]
    hits = [i.to_dict() for i in issues
            if any(i.matches(root_text(str(d.get("exc_type")), d.get("message")), d.get("versions") or {}) for d in found)]
    return {**environment, "known_issues": hits} if hits else environment


def triage_versions(record: Record) -> dict:
    """The versions a known issue's ``when`` reads: the cell's, and for a handoff the producer's as ``from:<pkg>``."""
    made = ((record.handoff or {}).get("producer") or {}).get("versions") or {}
    return {**record.versions, **{f"{FROM}{p}": v for p, v in made.items()}}


def triage(record: Record, issues) -> Record:
    """Mark a cell ``known`` (a registered bug explains its failure), ``fixed?`` or ``new``."""
    covering = [i for i in issues if i.covers(record.column, triage_versions(record))]
    if record.status in TRIAGED:
        # An entry whose signature hint appears in the failure explains it best; one whose hint
        # does not appear is about another failure in the same cells.
        sig = record.signature or ""
        covering = ([i for i in covering if i.signature and i.explains(sig)]
                    + [i for i in covering if not i.signature])
    issue = covering[0] if covering else None
    # The machine failed, or the environment was broken (the health probe's finding, outside what the
    # case checks): nothing to triage about the versions' behaviour.
    if record.exc_type == "MachineError" or record.environment:
        return record.with_(known_issue=None, triage=None)
    if record.status in TRIAGED:
        verdict = Triage.KNOWN if issue else Triage.NEW
    elif record.status == Status.PASS and issue:
        verdict = Triage.FIXED
    else:
        verdict = None
    return record.with_(known_issue=issue.to_dict() if issue and verdict else None, triage=verdict)


def with_failing_since(grid: Grid, since: Mapping[str, str]) -> Grid:
    """The grid with each cell's ``failing_since`` date (null for cells that are not failing)."""
    return dataclasses.replace(grid, cells=tuple(c.with_(failing_since=since.get(c.id)) for c in grid.cells))


def save(grid: Grid, path: Path) -> None:
    """Write grid.json with sorted keys."""
    atomic_write(Path(path), dumps(grid.to_dict()))
