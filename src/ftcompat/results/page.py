"""Render a grid as one self-contained HTML page (results/index.html): filters, legend, per-cell details.

The page carries its CSS, its script and the grid data (a trimmed copy, as JSON) inline, so it opens
from disk with no server and no network. Everything taken from the grid is escaped: HTML text through
``html.escape``, the embedded JSON with ``<``, ``>`` and ``&`` as ``\\u`` escapes (so no ``</script>``
inside a message can close the data block), and the script builds the detail panel with textContent.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

from ftcompat.core.domain import RECORDED
from ftcompat.core.record import Record
from ftcompat.core.status import LOOK, NEEDS_ATTENTION, TRIAGE_LOOK, Status, Triage
from ftcompat.results import newest
from ftcompat.results.grid import Grid, label
from ftcompat.results.pagedata import embed_json, look, page_data, ran_columns, split_column

DATA_ID = "ftcompat-data"
NOT_RUN = "·"
STATUS_FILTERS = (
    ("", "any status"),
    ("failing", f"failing ({', '.join(s.value for s in Status if s in NEEDS_ATTENTION)})"),
    (Triage.NEW.value, "new failures (no known issue)"),
    (Triage.KNOWN.value, "known issues"),
    (Triage.FIXED.value, "fixed?"),
    *((s.value, s.value) for s in Status),
)


def esc(value) -> str:
    """Escape any value for HTML text or a double-quoted attribute."""
    return html.escape("" if value is None else str(value), quote=True)


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


def device_text(device: Mapping | None) -> str:
    """Describe a device record: ``cpu (AMD EPYC)``, ``cuda (H100, CUDA 12.4)``, or ``not run``."""
    if not device:
        return "not run"
    extra = ", ".join(str(x) for x in (device.get("name"), device.get("cuda") and f"CUDA {device['cuda']}") if x)
    return f"{device.get('type') or '?'}" + (f" ({extra})" if extra else "")


def _asset(name: str) -> str:
    from importlib.resources import files

    # One part per joinpath: Traversable.joinpath takes several only from Python 3.11.
    return files("ftcompat.results").joinpath("page_assets").joinpath(name).read_text(encoding="utf-8")


def _cell_title(record: Record, word: str) -> str:
    sig = record.signature or ""
    sig = sig if len(sig) <= 240 else sig[:239] + "…"
    since = f" (failing since {record.failing_since})" if record.failing_since else ""
    return f"{record.id}\n{word}{since}" + (f": {sig}" if sig else "")


def _cell_td(record: Record | None, first: bool, combo: str, column: str) -> str:
    edge = " first" if first else ""
    if record is None:
        return f'<td class="cell notrun{edge}" title="{esc(combo)} × {esc(column)}: not run">{NOT_RUN}</td>'
    cls, symbol, word = look(record)
    triage = record.triage.value if record.triage else ""
    attrs = (f'type="button" class="st-{esc(cls)}" data-cell="{esc(record.id)}" '
             f'data-status="{esc(record.status.value)}" data-triage="{esc(triage)}" '
             f'title="{esc(_cell_title(record, word))}" aria-label="{esc(record.id)}: {esc(word)}"')
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
            f'<span class="cid">{esc(label(combo))}</span><span class="where">{esc(where)}</span></th>{"".join(tds)}</tr>')


def _table(grid: Grid, columns: list[str], data: Mapping) -> str:
    cells = {(r.combo, r.column): r for r in grid.cells}
    info = {c["id"]: c for c in data["combos"]}
    rows = "".join(_row(c, columns, cells, info[c["id"]]) for c in grid.combos)
    return f'<table class="grid" id="grid">{_thead(columns)}<tbody>{rows}</tbody></table>'


def _legend() -> str:
    items = [*LOOK.values(), *TRIAGE_LOOK.values()]
    lis = "".join(f'<li title="{esc(i.legend)}"><span class="sym st-{esc(i.css)}">{esc(i.symbol)}</span>'
                  f"{esc(i.word)}</li>" for i in items)
    lis += f'<li title="not run in this grid"><span class="sym">{NOT_RUN}</span>not run</li>'
    return f'<ul class="legend" aria-label="legend">{lis}</ul>'


def _filters(columns: list[str]) -> str:
    cases = list(dict.fromkeys(split_column(c)[0] for c in columns))
    case_opts = '<option value="">all cases</option>' + "".join(
        f'<option value="{esc(c)}">{esc(c)}</option>' for c in cases)
    status_opts = "".join(f'<option value="{esc(v)}">{esc(t)}</option>' for v, t in STATUS_FILTERS)
    pkg_opts = "".join(f'<option value="{esc(p)}">{esc(p)}</option>' for p in RECORDED)
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
                                                                 *RECORDED))
    rows = []
    for c in data["combos"]:
        tds = [device_text(c["device"]), c["python"] or "", c["finished_at"] or "not run"]
        tds += [c["resolved"].get(p) or (f"=={c['pins'][p]}" if c["pins"].get(p) else "") for p in RECORDED]
        rows.append(f'<tr data-combo="{esc(c["id"])}"><th scope="row" title="{esc(c["description"])}">'
                    f'{esc(c["id"])}</th>' + "".join(f"<td>{esc(t)}</td>" for t in tds) + "</tr>")
    return (f'<table class="versions" id="versions"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _newest_table(grid: Grid) -> str:
    head = "".join(f'<th scope="col">{h}</th>' for h in ("package", "newest tested", "combos", "ran", "its cells"))
    rows = [f'<tr><th scope="row">{esc(r.package)}</th><td>{esc(r.version)}</td><td>{esc(", ".join(r.combos))}</td>'
            f'<td>{esc((r.finished_at or "")[:10])}</td><td>{esc(newest.result_text(r).replace("`", ""))}</td></tr>'
            for r in newest.newest_tested(grid)]
    return (f'<table class="versions" id="newest"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _header(grid: Grid, data: Mapping, columns: list[str]) -> str:
    ran = [c for c in data["combos"] if c["ran"]]
    devices: dict[str, int] = {}
    for c in ran:
        devices[device_text(c["device"])] = devices.get(device_text(c["device"]), 0) + 1
    where = ", ".join(f"{d} × {n}" for d, n in devices.items()) or "nothing ran yet"
    idle = [c["id"] for c in data["combos"] if not c["ran"]]
    idle_text = f"; not run: {', '.join(idle)}" if idle else ""
    return (
        '<header class="top"><h1>ftcompat grid</h1>'
        f'<p class="meta">Generated <time>{esc(grid.generated_at or "?")}</time> · '
        f'{len(ran)} of {len(data["combos"])} combos ran{esc(idle_text)} · '
        f'{len(columns)} of {len(grid.columns)} columns ran · ran on: {esc(where)}</p>'
        '<p class="meta">Rows are combos (pinned environments), columns are <code>case[variant@model]</code>. '
        'Click a cell (or focus it and press Enter) for its signature, versions, log and the commands that '
        'reproduce it. Filters are kept in the address (#...), so a filtered view can be bookmarked.</p></header>'
    )


def _notes(grid: Grid, columns: list[str]) -> str:
    idle = [c for c in grid.columns if c not in columns]
    out = []
    if idle:
        out.append(f'<p class="notes">Columns hidden because no combo ran them (they need a machine this run did '
                   f'not have): {esc(", ".join(idle))}.</p>')
    out += [f'<p class="notes">warning: {esc(w)}</p>' for w in grid.warnings]
    return "".join(out)


def render_page(grid: Grid) -> str:
    """Return the self-contained HTML page for a grid."""
    data = page_data(grid)
    columns = data["columns"]
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>ftcompat grid {esc(grid.generated_at or '')}</title>",
        f"<style>{_asset('page.css')}</style></head><body>",
        _header(grid, data, columns),
        "<main>",
        _filters(columns),
        _legend(),
        f'<div class="scroll">{_table(grid, columns, data)}</div>',
        _notes(grid, columns),
        "<h2>Combos: where and when they ran, and what they resolved to</h2>",
        _versions_table(data),
        "<h2>Newest tested: where testing stops (a newer release is untested, not safe)</h2>",
        _newest_table(grid),
        "</main>",
        '<aside id="panel" hidden tabindex="-1" aria-labelledby="panel-title" aria-live="polite"></aside>',
        f'<script type="application/json" id="{DATA_ID}">{embed_json(data)}</script>',
        f"<script>{_asset('page.js')}</script>",
        "</body></html>",
        "",
    ])
