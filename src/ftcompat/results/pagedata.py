"""The data the grid page embeds and shows: a trimmed copy of each cell, the combos, how each status looks."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from ftcompat.core.domain import RECORDED
from ftcompat.core.record import Record
from ftcompat.core.status import FAILING, LOOK, NEEDS_ATTENTION, NOT_CHECKED, TRIAGE_LOOK, Triage
from ftcompat.results.grid import Grid, label

LOG_LINES = 40


def split_column(column: str) -> tuple[str, str, str | None]:
    """Split ``case[variant@model]`` into case, variant and model (None for a case without one)."""
    case, _, rest = column.partition("[")
    variant, _, model = rest.rstrip("]").partition("@")
    return case, variant, model or None


def ran_columns(grid: Grid) -> list[str]:
    """Columns with at least one result, in grid order; a lane nothing here could run is hidden."""
    seen = {r.column for r in grid.cells}
    return [c for c in grid.columns if c in seen]


def look(record: Record) -> tuple[str, str, str]:
    """Return (css class, symbol, word) for a cell: its triage where known/fixed?, else its status."""
    shown = TRIAGE_LOOK[record.triage] if record.triage in TRIAGE_LOOK else LOOK[record.status]
    return shown.css, shown.symbol, shown.word


def log_tail(record: Record, lines: int = LOG_LINES) -> tuple[str | None, str | None]:
    """Return (the last ``lines`` lines of the cell's log, else of its traceback; which one it was)."""
    for key in ("log", "traceback"):
        text = getattr(record, key)
        if text:
            return "\n".join(str(text).splitlines()[-lines:]), key
    return None, None


def combo_finished(combo: Mapping, cells: list[Record]) -> str | None:
    """When the combo's last cell finished: the combo's own ``finished_at``, else the latest cell's."""
    if combo.get("finished_at"):
        return combo["finished_at"]
    stamps = [c.finished_at for c in cells if c.finished_at]
    return max(stamps) if stamps else None


def _env(record: Record) -> dict:
    return {k: (record.env or {}).get(k) for k in ("python", "platform", "device", "versions")}


def _cell_data(record: Record, combo_env: Mapping | None) -> dict:
    log, source = log_tail(record)
    env = _env(record)
    return {
        "id": record.id, "combo": record.combo, "column": record.column, "case": record.case,
        "status": record.status.value, "triage": record.triage.value if record.triage else None,
        "signature": record.signature, "step": record.step, "duration_s": record.duration_s,
        "finished_at": record.finished_at, "failing_since": record.failing_since,
        "known_issue": record.known_issue, "not_refreshed": record.not_refreshed,
        "log": log, "log_source": source, "details": record.details or {},
        # Most cells share their combo's environment: carry it once, on the combo.
        "env": None if env == combo_env else env,
    }


def _common_env(records: list[Record]) -> dict | None:
    envs = [_env(r) for r in records if r.status not in NOT_CHECKED]
    return max(envs, key=envs.count) if envs else None


def json_safe(value):
    """Return ``value`` with NaN and infinities as strings: JSON has no such numbers (JSON.parse rejects them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def looks() -> dict:
    """How the page script shows each status and triage, which statuses its "failing" filter means, and which
    of them get the bug-report command."""
    shown = {s.value: [look.css, look.symbol, look.word] for s, look in LOOK.items()}
    shown |= {t.value: [look.css, look.symbol, look.word] for t, look in TRIAGE_LOOK.items()}
    return {"look": shown, "needs_attention": sorted(s.value for s in NEEDS_ATTENTION),
            "failing": sorted(s.value for s in FAILING), "triages": [t.value for t in Triage]}


def page_data(grid: Grid) -> dict:
    """Return the data the page embeds: the combos, the ran columns and a trimmed record per cell."""
    by_combo: dict[str, list[Record]] = {}
    for record in grid.cells:
        by_combo.setdefault(record.combo, []).append(record)
    envs = {cid: _common_env(records) for cid, records in by_combo.items()}
    combos = [{
        "id": c["id"], "env": envs.get(c["id"]), "description": c.get("description", ""), "tags": c.get("tags", []),
        "device": c.get("device"), "python": c.get("python_resolved") or c.get("python"),
        "finished_at": combo_finished(c, by_combo.get(c["id"], [])), "pins": c.get("pins") or {},
        "resolved": c.get("resolved") or {}, "ran": bool(c.get("ran", c["id"] in by_combo)),
        "label": label(c),
    } for c in grid.combos]
    return json_safe({
        "generated_at": grid.generated_at, "packages": list(RECORDED), "statuses": looks(),
        "columns": ran_columns(grid), "combos": combos,
        "cells": {r.id: _cell_data(r, envs.get(r.combo)) for r in grid.cells},
    })


def embed_json(data) -> str:
    """Serialise ``data`` for a ``<script type="application/json">``: no ``<``, ``>`` or ``&`` left raw.

    JSON allows ``\\u003c`` for ``<``, so the text parses back to the same data, and no ``</script>``
    or ``<!--`` in a message can end or confuse the script element.
    """
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    for raw, escaped in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text
