"""Render a grid as Markdown (results/GRID.md) and as a terminal table, both with tabulate."""

from __future__ import annotations

from collections.abc import Mapping

from tabulate import tabulate

from ftcompat.domain import STACK
from ftcompat.grid import Grid
from ftcompat.outcome import LEGEND, SYMBOLS, Status

NOT_RUN = "·"
NOTED = {Status.FAIL, Status.ERROR, Status.SKIP, Status.NOT_INSTALLABLE}
WORDS = {s: s.value.upper() if s in (Status.FAIL, Status.ERROR) else s.value for s in Status}


def _split(column: str) -> tuple[str, str, str | None]:
    case, _, rest = column.partition("[")
    variant, _, model = rest.rstrip("]").partition("@")
    return case, variant, model or None


def header(column: str, sep: str) -> str:
    """Return a column header broken over lines: case, variant, model."""
    case, variant, model = _split(column)
    return sep.join(p for p in (case, variant, f"@{model}" if model else None) if p)


class _Notes:
    """Numbers each distinct (status, signature) once, so repeated failures share a footnote."""

    def __init__(self):
        self.keys: dict[tuple[str, str], int] = {}
        self.where: dict[int, list[str]] = {}
        self.steps: dict[int, set[str]] = {}

    def ref(self, record: Mapping) -> int:
        key = (record["status"], record.get("signature") or "")
        n = self.keys.setdefault(key, len(self.keys) + 1)
        self.where.setdefault(n, []).append(record["id"])
        if record.get("step") and record["status"] in ("fail", "error"):
            self.steps.setdefault(n, set()).add(record["step"])
        return n

    def rows(self):
        for (status, signature), n in self.keys.items():
            yield n, status, signature, self.where[n], sorted(self.steps.get(n, ()))


def _cells(where: list[str], limit: int = 6) -> str:
    """List the cells a note covers, cut to ``limit`` so one common skip does not flood the page."""
    shown = ", ".join(f"`{w}`" for w in where[:limit])
    return shown + (f" and {len(where) - limit} more" if len(where) > limit else "")


def _cell_text(record: Mapping | None, notes: _Notes, words: dict) -> str:
    if record is None:
        return NOT_RUN
    status = Status(record["status"])
    text = words[status]
    if status in NOTED:
        text += f" [{notes.ref(record)}]"
    return text


def _table(grid: Grid, words: dict, sep: str):
    notes = _Notes()
    headers = ["combo"] + [header(c, sep) for c in grid.columns]
    rows = [[combo["id"]] + [_cell_text(grid.cell(combo["id"], col), notes, words)
                             for col in grid.columns] for combo in grid.combos]
    return headers, rows, notes


def _version(combo: Mapping, pkg: str) -> str:
    got = (combo.get("resolved") or {}).get(pkg)
    pin = (combo.get("pins") or {}).get(pkg)
    if pin is None and pkg in STACK:
        return f"{got} (newest)" if got else "newest"
    return got or (f"=={pin}" if pin else "")


def versions_table(grid: Grid, fmt: str) -> str:
    """Return each combo's Python, device and resolved stack versions."""
    headers = ["combo", "python", "device", *STACK]
    rows = []
    for combo in grid.combos:
        device = combo.get("device") or {}
        where = device.get("type", "") + (f" ({device['name']})" if device.get("name") else "")
        rows.append([combo["id"], combo.get("python_resolved") or combo["python"], where or "not run",
                     *(_version(combo, p) for p in STACK)])
    return tabulate(rows, headers=headers, tablefmt=fmt)


def _devices(grid: Grid) -> str:
    seen = sorted({f"{d.get('type')} ({d.get('name')})" for c in grid.combos
                   if (d := c.get("device"))})
    return ", ".join(seen) if seen else "nothing ran yet"


def markdown(grid: Grid) -> str:
    """Return GRID.md: the grid, its footnotes, the legend and the resolved versions."""
    headers, rows, notes = _table(grid, SYMBOLS, "<br>")
    out = [
        "# ftcompat grid",
        "",
        f"Generated {grid.generated_at} from matrix.yaml. Ran on: {_devices(grid)}.",
        "Rows are combos, columns are `case[variant@model]`; cell ids are `combo::case[variant@model]`.",
        "",
        tabulate(rows, headers=headers, tablefmt="github"),
        "",
    ]
    if notes.keys:
        out += ["## What failed, errored or was skipped", ""]
        for n, status, signature, where, steps in notes.rows():
            at = f" (at step `{', '.join(steps)}`)" if steps else ""
            out.append(f"{n}. **{status}**{at}: `{signature}`  ")
            out.append("   cells: " + _cells(where))
        out.append("")
    out += ["## Legend", ""]
    out += [f"- {SYMBOLS[s]}: {LEGEND[s]}" for s in Status]
    out += [f"- {NOT_RUN}: not run in this grid", ""]
    out += ["## Resolved versions", "", versions_table(grid, "github"), ""]
    if grid.warnings:
        out += ["## Warnings", ""] + [f"- {w}" for w in grid.warnings] + [""]
    return "\n".join(out)


def terminal(grid: Grid) -> str:
    """Return the grid for a terminal: plain words, numbered notes, resolved versions."""
    headers, rows, notes = _table(grid, WORDS, "\n")
    out = [tabulate(rows, headers=headers, tablefmt="simple"), ""]
    for n, status, signature, where, steps in notes.rows():
        at = f" at {', '.join(steps)}" if steps else ""
        out.append(f"[{n}] {status}{at}: {signature}  ({len(where)} cell{'s' * (len(where) > 1)})")
    out += ["", versions_table(grid, "simple")]
    out += [f"warning: {w}" for w in grid.warnings]
    return "\n".join(out)
