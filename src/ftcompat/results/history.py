"""Grid history: every run's grid kept under results/history/, and how long each failure has lasted."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from ftcompat.core.cellfile import atomic_write
from ftcompat.core.record import Record
from ftcompat.results.grid import Grid
from ftcompat.core.errors import InputError
from ftcompat.results.gridload import load

HISTORY = Path("results/history")


def matrix_hash(matrix_path: Path) -> str:
    """The first 8 hex digits of matrix.yaml's SHA-256: grids of different matrices sit apart."""
    return hashlib.sha256(Path(matrix_path).read_bytes()).hexdigest()[:8]


def entry_name(generated_at: str, mhash: str) -> str:
    """``YYYY-MM-DD-<hash>.json``: one entry per day and matrix (a rerun the same day replaces it)."""
    return f"{generated_at[:10]}-{mhash}.json"


def add(grid_path: Path, matrix_path: Path, history: Path = HISTORY) -> Path:
    """Copy a grid into the history, named by its date and the matrix hash."""
    text = Path(grid_path).read_text(encoding="utf-8")
    generated = json.loads(text).get("generated_at") or ""
    if len(generated) < 10:
        raise ValueError(f"{grid_path}: no generated_at date, cannot file it in the history")
    dest = Path(history) / entry_name(generated, matrix_hash(matrix_path))
    atomic_write(dest, text)
    return dest


def entries(history: Path = HISTORY) -> list[Path]:
    """History grids, oldest first (by their generated_at, then name)."""
    found = []
    for path in Path(history).glob("*.json"):
        try:
            stamp = json.loads(path.read_text(encoding="utf-8")).get("generated_at") or ""
        except (OSError, ValueError):
            continue  # a broken entry must not hide the others; `history check` names it
        found.append((stamp, path.name, path))
    return [p for _, _, p in sorted(found)]


def latest(history: Path = HISTORY, before: str | None = None) -> Path | None:
    """The newest history grid (generated before ``before``, an ISO time, when given)."""
    paths = entries(history)
    if before:
        paths = [p for p in paths if (json.loads(p.read_text(encoding="utf-8")).get("generated_at") or "") < before]
    return paths[-1] if paths else None


def failing_since(cells: Sequence[Record], generated_at: str, past: Sequence[Grid]) -> dict[str, str]:
    """For each failing cell, the date of the earliest run in an unbroken run of failures up to now.

    A run's date is the day its cell finished (else the grid's date). ``past`` are history grids,
    oldest first; any from this same run are ignored.
    """
    earlier = [g for g in past if (g.generated_at or "") < generated_at]
    runs = [{c.id: c for c in g.cells} for g in earlier]
    since = {}
    for cell in cells:
        if not cell.failing:
            continue
        first = _day(cell, generated_at)
        for grid, by_id in zip(reversed(earlier), reversed(runs), strict=True):
            old = by_id.get(cell.id)
            if old is None or not old.failing:
                break
            first = _day(old, grid.generated_at or "")
        since[cell.id] = first
    return since


def _day(cell: Record, fallback: str) -> str:
    return (cell.finished_at or fallback)[:10]


def load_all(history: Path = HISTORY) -> list[Grid]:
    """Every history grid, oldest first (one that cannot be read is left out: it must not hide the others)."""
    grids = []
    for path in entries(history):
        try:
            grids.append(load(path))
        except InputError:
            continue
    return grids
