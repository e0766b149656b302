"""Render a grid as one self-contained HTML page (results/index.html): filters, legend, per-cell details.

The page carries its CSS, its script and the grid data (a trimmed copy, as JSON) inline, so it opens
from disk with no server and no network. Everything taken from the grid is escaped: HTML text through
``html.escape``, the embedded JSON with ``<``, ``>`` and ``&`` as ``\\u`` escapes (so no ``</script>``
inside a message can close the data block), and the script builds the detail panel with textContent.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping
from pathlib import Path

from ftcompat.core.domain import STACK

# Versions a filter can select on: the stack plus the two packages every case also ran with.
FILTER_PACKAGES = (*STACK, "datasets", "tokenizers")
LOG_LINES = 40
DATA_ID = "ftcompat-data"
NOT_RUN = "·"

# status -> (css class, symbol, word). Symbols are plain Unicode in DejaVu/Liberation, not emoji:
# a CI runner's headless Chromium (and many desktops) has no colour-emoji font.
STATUS_LOOK = {
    "pass": ("pass", "✓", "pass"),
    "fail": ("fail", "✗", "fail"),
    "error": ("error", "!", "error"),
    "flaky": ("flaky", "≈", "flaky"),
    "skip": ("skip", "–", "skip"),
    "not-installable": ("not-installable", "⊘", "not installable"),
    "crash": ("crash", "†", "crash"),
    "timeout": ("timeout", "◷", "timeout"),
}
TRIAGE_LOOK = {
    "known": ("known", "⚑", "known issue"),
    "fixed?": ("fixed", "✓?", "fixed?"),
}
EXTRA_LEGEND = {
    "known": "fails, and a registered known issue (matrix.yaml known_issues) explains it; the panel links it",
    "fixed?": "a known issue covers this cell but it passes: the entry may be stale",
}
STATUS_FILTERS = (
    ("", "any status"),
    ("failing", "failing (fail, error, crash, timeout, flaky)"),
    ("new", "new failures (no known issue)"),
    ("known", "known issues"),
    ("fixed?", "fixed?"),
    *((s, s) for s in STATUS_LOOK),
)


def esc(value) -> str:
    """Escape any value for HTML text or a double-quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def column_of(record: Mapping) -> str:
    """Return a cell record's column id, ``case[variant@model]``."""
    return record["id"].split("::", 1)[1]


def split_column(column: str) -> tuple[str, str, str | None]:
    """Split ``case[variant@model]`` into case, variant and model (None for a case without one)."""
    case, _, rest = column.partition("[")
    variant, _, model = rest.rstrip("]").partition("@")
    return case, variant, model or None


def ran_columns(grid: Mapping) -> list[str]:
    """Columns with at least one result, in grid order; a lane nothing here could run is hidden."""
    seen = {column_of(r) for r in grid.get("cells", [])}
    return [c for c in grid.get("columns", []) if c in seen]


def case_groups(columns: list[str]) -> list[tuple[str, int]]:
    """Group consecutive columns of the same case: ``[(case, how many columns), ...]``."""
    groups: list[tuple[str, int]] = []
    for column in columns:
        case = split_column(column)[0]
        if groups and groups[-1][0] == case:
            groups[-1] = (case, groups[-1][1] + 1)
        else:
            groups.append((case, 1))
    return groups


def look(record: Mapping) -> tuple[str, str, str]:
    """Return (css class, symbol, word) for a cell: its triage where known/fixed?, else its status."""
    if record.get("triage") in TRIAGE_LOOK:
        return TRIAGE_LOOK[record["triage"]]
    return STATUS_LOOK.get(record.get("status"), ("unknown", "•", str(record.get("status"))))


def log_tail(record: Mapping, lines: int = LOG_LINES) -> tuple[str | None, str | None]:
    """Return (the last ``lines`` lines of the cell's log, else of its traceback; which one it was)."""
    for key in ("log", "traceback"):
        text = record.get(key)
        if text:
            return "\n".join(str(text).splitlines()[-lines:]), key
    return None, None


def combo_finished(combo: Mapping, cells: list[Mapping]) -> str | None:
    """When the combo's last cell finished: the combo's own ``finished_at``, else the latest cell's."""
    if combo.get("finished_at"):
        return combo["finished_at"]
    stamps = [c["finished_at"] for c in cells if c.get("finished_at")]
    return max(stamps) if stamps else None


def device_text(device: Mapping | None) -> str:
    """Describe a device record: ``cpu (AMD EPYC)``, ``cuda (H100, CUDA 12.4)``, or ``not run``."""
    if not device:
        return "not run"
    extra = ", ".join(str(x) for x in (device.get("name"), device.get("cuda") and f"CUDA {device['cuda']}") if x)
    return f"{device.get('type') or '?'}" + (f" ({extra})" if extra else "")


def _env(record: Mapping) -> dict:
    env = record.get("env") or {}
    return {k: env.get(k) for k in ("python", "platform", "device", "versions")}


def _cell_data(record: Mapping, combo_env: Mapping | None) -> dict:
    log, source = log_tail(record)
    env = _env(record)
    return {
        "id": record["id"], "combo": record.get("combo"), "column": column_of(record),
        "case": record.get("case"), "status": record.get("status"), "triage": record.get("triage"),
        "signature": record.get("signature"), "step": record.get("step"),
        "duration_s": record.get("duration_s"), "finished_at": record.get("finished_at"),
        "failing_since": record.get("failing_since"), "known_issue": record.get("known_issue"),
        "not_refreshed": record.get("not_refreshed"),
        "log": log, "log_source": source, "details": record.get("details") or {},
        # Most cells share their combo's environment: carry it once, on the combo.
        "env": None if env == combo_env else env,
    }


def _common_env(records: list[Mapping]) -> dict | None:
    envs = [_env(r) for r in records if r.get("status") != "not-installable"]
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


def page_data(grid: Mapping) -> dict:
    """Return the data the page embeds: the combos, the ran columns and a trimmed record per cell."""
    by_combo: dict[str, list[Mapping]] = {}
    for record in grid.get("cells", []):
        by_combo.setdefault(record.get("combo"), []).append(record)
    envs = {cid: _common_env(records) for cid, records in by_combo.items()}
    combos = [{
        "id": c["id"], "env": envs.get(c["id"]), "description": c.get("description", ""), "tags": c.get("tags", []),
        "device": c.get("device"), "python": c.get("python_resolved") or c.get("python"),
        "finished_at": combo_finished(c, by_combo.get(c["id"], [])), "pins": c.get("pins") or {},
        "resolved": c.get("resolved") or {}, "ran": bool(c.get("ran", c["id"] in by_combo)),
    } for c in grid.get("combos", [])]
    return json_safe({
        "generated_at": grid.get("generated_at"), "packages": list(FILTER_PACKAGES),
        "columns": ran_columns(grid), "combos": combos,
        "cells": {r["id"]: _cell_data(r, envs.get(r.get("combo"))) for r in grid.get("cells", [])},
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


def _asset(name: str) -> str:
    from importlib.resources import files

    return files("ftcompat.results").joinpath("page_assets", name).read_text(encoding="utf-8")


def _cell_title(record: Mapping, word: str) -> str:
    sig = record.get("signature") or ""
    sig = sig if len(sig) <= 240 else sig[:239] + "…"
    since = f" (failing since {record['failing_since']})" if record.get("failing_since") else ""
    return f"{record['id']}\n{word}{since}" + (f": {sig}" if sig else "")


def _cell_td(record: Mapping | None, first: bool, combo: str, column: str) -> str:
    edge = " first" if first else ""
    if record is None:
        return f'<td class="cell notrun{edge}" title="{esc(combo)} × {esc(column)}: not run">{NOT_RUN}</td>'
    cls, symbol, word = look(record)
    attrs = (f'type="button" class="st-{esc(cls)}" data-cell="{esc(record["id"])}" '
             f'data-status="{esc(record.get("status"))}" data-triage="{esc(record.get("triage") or "")}" '
             f'title="{esc(_cell_title(record, word))}" aria-label="{esc(record["id"])}: {esc(word)}"')
    return f'<td class="cell{edge}"><button {attrs}>{esc(symbol)}</button></td>'


def _thead(columns: list[str]) -> str:
    groups = "".join(
        f'<th class="group" scope="colgroup" colspan="{n}" data-span="{n}" title="{esc(case)}">'
        f'{esc(case).replace("_", "_<wbr>")}</th>' for case, n in case_groups(columns))
    variants = []
    previous = None
    for column in columns:
        case, variant, model = split_column(column)
        first = " first" if case != previous else ""
        previous = case
        at = f"<br><small>@{esc(model)}</small>" if model else ""  # a second line beside the rotated variant
        variants.append(f'<th class="variant{first}" scope="col" data-col="{esc(column)}" title="{esc(column)}">'
                        f"<span>{esc(variant)}{at}</span></th>")
    return (f'<thead><tr class="cases"><th class="corner" rowspan="2" scope="col">combo<br>'
            f'<small>device · finished (UTC)</small></th>{groups}</tr>'
            f'<tr class="variants">{"".join(variants)}</tr></thead>')


def _row(combo: Mapping, columns: list[str], cells: Mapping, info: Mapping) -> str:
    cid = combo["id"]
    when = (info.get("finished_at") or "").replace("T", " ").rstrip("Z")[5:16]
    where = device_text(combo.get("device")) + (f" · {when}" if when else "")
    title = f"{cid}: {combo.get('description') or ''}\nran on {where}"
    stale = combo.get("not_refreshed")
    if stale:
        title += f"\nnot refreshed: the run of {stale.get('at')} failed ({stale.get('reason')}); results are older"
        where = "⚠ not refreshed · " + where
    previous, tds = None, []
    for column in columns:
        case = split_column(column)[0]
        tds.append(_cell_td(cells.get((cid, column)), case != previous, cid, column))
        previous = case
    notran = "" if info.get("ran") else ' class="notran"'
    return (f'<tr data-combo="{esc(cid)}"{notran}><th scope="row" title="{esc(title)}">'
            f'<span class="cid">{esc(cid)}</span><span class="where">{esc(where)}</span></th>{"".join(tds)}</tr>')


def _table(grid: Mapping, columns: list[str], data: Mapping) -> str:
    cells = {(r.get("combo"), column_of(r)): r for r in grid.get("cells", [])}
    info = {c["id"]: c for c in data["combos"]}
    rows = "".join(_row(c, columns, cells, info[c["id"]]) for c in grid.get("combos", []))
    return f'<table class="grid" id="grid">{_thead(columns)}<tbody>{rows}</tbody></table>'


def _legend() -> str:
    from ftcompat.core.outcome import LEGEND

    meaning = {s.value: text for s, text in LEGEND.items()} | EXTRA_LEGEND
    items = [(STATUS_LOOK[s], meaning.get(s, s)) for s in STATUS_LOOK]
    items += [(TRIAGE_LOOK[t], meaning[t]) for t in TRIAGE_LOOK]
    lis = "".join(f'<li title="{esc(text)}"><span class="sym st-{esc(cls)}">{esc(sym)}</span>{esc(word)}</li>'
                  for (cls, sym, word), text in items)
    lis += f'<li title="not run in this grid"><span class="sym">{NOT_RUN}</span>not run</li>'
    return f'<ul class="legend" aria-label="legend">{lis}</ul>'


def _filters(columns: list[str]) -> str:
    cases = list(dict.fromkeys(split_column(c)[0] for c in columns))
    case_opts = '<option value="">all cases</option>' + "".join(
        f'<option value="{esc(c)}">{esc(c)}</option>' for c in cases)
    status_opts = "".join(f'<option value="{esc(v)}">{esc(t)}</option>' for v, t in STATUS_FILTERS)
    pkg_opts = "".join(f'<option value="{esc(p)}">{esc(p)}</option>' for p in FILTER_PACKAGES)
    ops = "".join(f'<option value="{esc(o)}">{esc(o)}</option>' for o in ("==", "!=", ">=", "<="))
    return (
        '<form class="filters" id="filters" role="search" aria-label="filters">'
        f'<label>Case <select id="f-case" title="show only this case\'s columns">{case_opts}</select></label>'
        f'<label>Status <select id="f-status" title="show only cells with this status">{status_opts}</select></label>'
        f'<label>Version <select id="f-pkg" title="package">{pkg_opts}</select>'
        f'<select id="f-op" title="comparison">{ops}</select>'
        '<select id="f-ver" title="resolved version"><option value="">any version</option></select></label>'
        '<button type="button" id="f-clear">Clear filters</button>'
        '<span id="count" aria-live="polite"></span></form>'
    )


def _versions_table(data: Mapping) -> str:
    head = "".join(f"<th scope=\"col\">{esc(h)}</th>" for h in ("combo", "device", "python", "finished (UTC)",
                                                                 *FILTER_PACKAGES))
    rows = []
    for c in data["combos"]:
        tds = [device_text(c["device"]), c["python"] or "", c["finished_at"] or "not run"]
        tds += [c["resolved"].get(p) or (f"=={c['pins'][p]}" if c["pins"].get(p) else "") for p in FILTER_PACKAGES]
        rows.append(f'<tr data-combo="{esc(c["id"])}"><th scope="row" title="{esc(c["description"])}">'
                    f'{esc(c["id"])}</th>' + "".join(f"<td>{esc(t)}</td>" for t in tds) + "</tr>")
    return (f'<table class="versions" id="versions"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _header(grid: Mapping, data: Mapping, columns: list[str]) -> str:
    ran = [c for c in data["combos"] if c["ran"]]
    devices = {}
    for c in ran:
        devices[device_text(c["device"])] = devices.get(device_text(c["device"]), 0) + 1
    where = ", ".join(f"{d} × {n}" for d, n in devices.items()) or "nothing ran yet"
    idle = [c["id"] for c in data["combos"] if not c["ran"]]
    idle_text = f"; not run: {', '.join(idle)}" if idle else ""
    return (
        '<header class="top"><h1>ftcompat grid</h1>'
        f'<p class="meta">Generated <time>{esc(grid.get("generated_at") or "?")}</time> · '
        f'{len(ran)} of {len(data["combos"])} combos ran{esc(idle_text)} · '
        f'{len(columns)} of {len(grid.get("columns", []))} columns ran · ran on: {esc(where)}</p>'
        '<p class="meta">Rows are combos (pinned environments), columns are <code>case[variant@model]</code>. '
        'Click a cell (or focus it and press Enter) for its signature, versions, log and the commands that '
        'reproduce it. Filters are kept in the address (#...), so a filtered view can be bookmarked.</p></header>'
    )


def _notes(grid: Mapping, columns: list[str]) -> str:
    idle = [c for c in grid.get("columns", []) if c not in columns]
    out = []
    if idle:
        out.append(f'<p class="notes">Columns hidden because no combo ran them (they need a machine this run did '
                   f'not have): {esc(", ".join(idle))}.</p>')
    out += [f'<p class="notes">warning: {esc(w)}</p>' for w in grid.get("warnings", [])]
    return "".join(out)


def render_page(grid: Mapping) -> str:
    """Return the self-contained HTML page for a grid (the grid.json dict)."""
    data = page_data(grid)
    columns = data["columns"]
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>ftcompat grid {esc(grid.get('generated_at') or '')}</title>",
        f"<style>{_asset('page.css')}</style></head><body>",
        _header(grid, data, columns),
        "<main>",
        _filters(columns),
        _legend(),
        f'<div class="scroll">{_table(grid, columns, data)}</div>',
        _notes(grid, columns),
        "<h2>Combos: where and when they ran, and what they resolved to</h2>",
        _versions_table(data),
        "</main>",
        '<aside id="panel" hidden tabindex="-1" aria-labelledby="panel-title" aria-live="polite"></aside>',
        f'<script type="application/json" id="{DATA_ID}">{embed_json(data)}</script>',
        f"<script>{_asset('page.js')}</script>",
        "</body></html>",
        "",
    ])


def load_grid(path: Path) -> dict:
    """Read a grid.json as a dict, checking it is one."""
    from ftcompat.results.grid import read_grid

    return read_grid(path)


def cmd_page(args) -> int:
    """Write the grid as one self-contained HTML page (results/index.html)."""
    grid = load_grid(Path(args.grid))
    out = Path(args.out)
    from ftcompat.harness.cellfile import atomic_write
    from ftcompat.core.redact import redact

    atomic_write(out, redact(render_page(grid)))
    print(f"wrote {out} (open it in a browser; it needs no server)")
    return 0


def add_parser(subparsers) -> None:
    """Register ``ftcompat page`` on the CLI's subparsers."""
    p = subparsers.add_parser("page", help=cmd_page.__doc__)
    p.add_argument("--grid", default="results/grid.json", help="grid JSON to read (default results/grid.json)")
    p.add_argument("--out", default="results/index.html", help="HTML file to write (default results/index.html)")
    p.set_defaults(func=cmd_page)
