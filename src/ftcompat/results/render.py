"""Render a grid as Markdown (results/GRID.md) and as a terminal table, both with tabulate."""

from __future__ import annotations

from collections.abc import Mapping

from tabulate import tabulate

from ftcompat.core.domain import RECORDED, STACK
from ftcompat.core.health import EnvReport
from ftcompat.core.markdown import code
from ftcompat.core.record import Record
from ftcompat.core.status import FAILING, LOOK, TRIAGE_LOOK, TRIAGED, Status, Triage
from ftcompat.results import newest
from ftcompat.results.grid import Grid, label

NOT_RUN = "·"
NOTED = set(Status) - {Status.PASS}  # every status but pass gets a numbered note
SYMBOLS = {s: f"{LOOK[s].emoji} {s.value}" for s in Status}
WORDS = {s: s.value.upper() if s in FAILING else s.value for s in Status}
TRIAGE_SYMBOLS = {t: f"{look.emoji} {t.value}" for t, look in TRIAGE_LOOK.items()}
TRIAGE_WORDS = {t: t.value for t in TRIAGE_LOOK}
BROKEN_ENV = "environment"  # the notes section of cells a broken environment stopped (``Record.environment``)
SECTIONS: tuple[tuple[Status | Triage | str, str], ...] = (
    (BROKEN_ENV, "Environment broken (not a verdict: an import outside what the case checks fails)"),
    (Triage.NEW, "New failures and errors"),
    (Status.CRASH, "Crashed: the case's process died"),
    (Status.TIMEOUT, "Timed out"),
    (Triage.KNOWN, "Known issues"),
    (Triage.FIXED, "Possibly fixed: covered by a known issue, but passing"),
    (Status.FLAKY, "Flaky: failed, then passed on the automatic rerun"),
    (Status.SKIP, "Skipped"),
    (Status.NOT_INSTALLABLE, "Not installable"),
)


def _split(column: str) -> tuple[str, str, str | None]:
    case, _, rest = column.partition("[")
    variant, _, model = rest.rstrip("]").partition("@")
    return case, variant, model or None


def header(column: str, sep: str) -> str:
    """Return a column header broken over lines: case, variant, model."""
    case, variant, model = _split(column)
    return sep.join(p for p in (case, variant, f"@{model}" if model else None) if p)


def section_of(record: Record) -> Status | Triage | str:
    """Which notes section a cell belongs to: a broken environment, its triage (known, fixed?), new, else its status."""
    if record.environment:
        return BROKEN_ENV
    if record.triage in TRIAGE_LOOK:
        return record.triage
    if record.status in TRIAGED:
        return Triage.NEW
    return record.status


class _Notes:
    """Numbers each distinct finding once, so repeated failures share a footnote."""

    def __init__(self) -> None:
        self.keys: dict[tuple, int] = {}
        self.info: dict[tuple, dict] = {}

    def ref(self, record: Record) -> tuple:
        """Register the cell under its finding and return the finding's key."""
        issue = record.known_issue or {}
        key = (section_of(record), record.status, record.signature or "", issue.get("id"))
        info = self.info.setdefault(key, {"section": key[0], "status": key[1], "signature": key[2],
                                          "issue": issue, "where": [], "steps": set(), "since": None})
        info["where"].append(record.id)
        since = record.failing_since
        if since and (info["since"] is None or since < info["since"]):
            info["since"] = since
        if record.step and record.status in TRIAGED:
            info["steps"].add(record.step)
        return key

    def number(self) -> None:
        """Number findings in section order, then in order of first appearance."""
        order = [s for s, _ in SECTIONS]
        ranked = sorted(self.info, key=lambda k: order.index(k[0]))
        self.keys = {k: i + 1 for i, k in enumerate(ranked)}

    def by_section(self):
        for section, title in SECTIONS:
            items = sorted((self.keys[k], i) for k, i in self.info.items() if i["section"] == section)
            if items:
                yield title, items


def _cells(where: list[str], limit: int = 6) -> str:
    """List the cells a note covers, cut to ``limit`` so one common skip does not flood the page."""
    shown = ", ".join(code(w) for w in where[:limit])
    return shown + (f" and {len(where) - limit} more" if len(where) > limit else "")


def _cell_text(record: Record | None, notes: _Notes, words: dict, triage_words: dict):
    if record is None:
        return NOT_RUN
    status = record.status
    text = triage_words.get(record.triage, words[status])
    if status in NOTED or record.triage == Triage.FIXED:
        return (text, notes.ref(record))
    return text


def ran_columns(grid: Grid) -> list[str]:
    """Columns with at least one result; a lane nothing here could run (a GPU-only model) is left out."""
    seen = {r.column for r in grid.cells}
    return [c for c in grid.columns if c in seen]


def _table(grid: Grid, words: dict, triage_words: dict, sep: str):
    notes = _Notes()
    columns = ran_columns(grid)
    headers = ["combo"] + [header(c, sep) for c in columns]
    rows = [[label(combo)] + [_cell_text(grid.cell(combo["id"], col), notes, words, triage_words)
                             for col in columns] for combo in grid.combos]
    notes.number()
    rows = [[f"{c[0]} [{notes.keys[c[1]]}]" if isinstance(c, tuple) else c for c in row] for row in rows]
    return headers, rows, notes


def _version(combo: Mapping, pkg: str) -> str:
    got = (combo.get("resolved") or {}).get(pkg)
    pin = (combo.get("pins") or {}).get(pkg)
    if pin is None and pkg in STACK and "current" in (combo.get("tags") or ()):
        return got or "not installed"  # an existing environment (`ftcompat here`): nothing was resolved
    if pin is None and pkg in STACK:
        # A device-check combo runs over whatever the lent machine has installed (flows/device.py).
        lane = ("the device's" if "device" in (combo.get("tags") or ())
                else "lowest allowed" if combo.get("resolution") == "lowest-direct"
                else f"as of {combo['exclude_newer']}" if combo.get("exclude_newer") else "newest")
        if pkg in (combo.get("prerelease") or ()):
            lane += ", pre-releases too"
        capped = [f["requirement"] for f in ((combo.get("environment") or {}).get("repair") or {}).get("fixes") or []
                  if isinstance(f, Mapping) and f.get("package") == pkg]
        if capped:  # not the newest any more: the repair took it below a release that broke an import
            lane = f"repaired: {', '.join(capped)}"
        return f"{got} ({lane})" if got else lane
    return got or (f"=={pin}" if pin else "")


def _producer_versions(grid: Grid, combo_id: str) -> Mapping:
    """A handoff row's producer side: the versions the environment that made the artifacts had."""
    for record in grid.cells:
        if record.combo == combo_id and record.handoff and (record.handoff.get("producer") or {}).get("versions"):
            return record.handoff["producer"]["versions"]
    return {}


def _handoff_version(made: str | None, used: str) -> str:
    """``made → used`` where the two sides of a handoff differ, else the one version."""
    return used if not made or used.startswith(made) else f"{made} → {used}"


def versions_table(grid: Grid, fmt: str) -> str:
    """Return each combo's Python, device and resolved stack versions."""
    headers = ["combo", "python", "device", *RECORDED]  # the stack, and the support packages every cell records
    rows = []
    for combo in grid.combos:
        device = combo.get("device") or {}
        where = device.get("type", "") + (f" ({device['name']})" if device.get("name") else "")
        made = _producer_versions(grid, combo["id"])
        rows.append([label(combo), combo.get("python_resolved") or combo["python"], where or "not run",
                     *(_handoff_version(made.get(p), _version(combo, p)) if made else _version(combo, p)
                       for p in RECORDED)])
    return tabulate(rows, headers=headers, tablefmt=fmt)


def newest_table(grid: Grid, fmt: str) -> str:
    """Per package, the newest version the grid ran, in which combos, when, and its cells' results."""
    rows = [[r.package, r.version, ", ".join(r.combos), (r.finished_at or "")[:10], newest.result_text(r)]
            for r in newest.newest_tested(grid)]
    return tabulate(rows, headers=["package", "newest tested", "combos", "ran", "its cells"], tablefmt=fmt)


def _devices(grid: Grid) -> str:
    seen = sorted({f"{d.get('type')} ({d.get('name')})" for c in grid.combos
                   if (d := c.get("device"))})
    return ", ".join(seen) if seen else "nothing ran yet"


def _issue_line(issue: Mapping) -> str:
    fix = f" Workaround: {issue['workaround']}" if issue.get("workaround") else ""
    return f"{issue['summary']} ({issue['url']}).{fix}"


def environment_lines(grid: Grid) -> list[tuple[str, str]]:
    """Each combo's environment notes (a repair made, an import still broken), as (combo id, line)."""
    out = []
    for combo in grid.combos:
        try:
            report = EnvReport.from_json(combo["environment"]) if combo.get("environment") else None
        except ValueError:
            continue  # a damaged note is not worth failing a render for; the cells still say what happened
        out += [(combo["id"], line) for line in (report.lines() if report else [])]
        out += [(combo["id"], f"known issue {i['id']}: {i['summary']} ({i['url']})")
                for i in (combo.get("environment") or {}).get("known_issues") or []]
    return out


def markdown(grid: Grid, source: str = "matrix.yaml") -> str:
    """Return GRID.md: the grid, its notes by section, the legend and the resolved versions (``source``: the config)."""
    headers, rows, notes = _table(grid, SYMBOLS, TRIAGE_SYMBOLS, "<br>")
    out = [
        "# ftcompat grid",
        "",
        f"Generated {grid.generated_at} from {source}. Ran on: {_devices(grid)}.",
        "Rows are combos, columns are `case[variant@model]`; cell ids are `combo::case[variant@model]`.",
        "",
        tabulate(rows, headers=headers, tablefmt="github"),
        "",
    ]
    idle = [c for c in grid.columns if c not in ran_columns(grid)]
    idle_combos = [c["id"] for c in grid.combos if not c.get("ran")]
    if idle or idle_combos:
        out += ["Not run in this grid (they need a machine this run did not have, or were not selected):"]
        out += [f"combos {', '.join(f'`{c}`' for c in idle_combos)}." if idle_combos else ""]
        out += [f"columns {', '.join(f'`{c}`' for c in idle)}." if idle else "", ""]
    env = environment_lines(grid)
    if env:
        out += ["## Environments", "",
                "What the health probe found before the cells ran, and how an environment ftcompat resolved itself was "
                "repaired. A cell that failed on a broken import outside what its case checks is `error`, not a verdict.",
                ""] + [f"- {code(combo)}: {line}" for combo, line in env] + [""]
    for title, items in notes.by_section():
        out += [f"## {title}", ""]
        for n, info in items:
            at = f" (at step `{', '.join(sorted(info['steps']))}`)" if info["steps"] else ""
            sig = f": {code(info['signature'])}" if info["signature"] else ""
            out.append(f"{n}. **{info['status']}**{at}{sig}  ")
            if info["issue"]:
                out.append(f"   known issue {code(info['issue']['id'])}: {_issue_line(info['issue'])}  ")
            if info["since"]:
                out.append(f"   failing since {info['since']}  ")
            out.append("   cells: " + _cells(info["where"]))
        out.append("")
    out += ["## Legend", ""]
    out += [f"- {SYMBOLS[s]}: {LOOK[s].legend}" for s in Status]
    out += [f"- {TRIAGE_SYMBOLS[t]}: {look.legend}" for t, look in TRIAGE_LOOK.items()]
    out += [f"- {NOT_RUN}: not run in this grid", ""]
    out += ["## Resolved versions", "", versions_table(grid, "github"), ""]
    out += ["## Newest tested", "",
            "The newest version of each package this grid ran, and how its cells came out. A newer release "
            "is untested here, not safe.", "", newest_table(grid, "github"), ""]
    if grid.warnings:
        out += ["## Warnings", ""] + [f"- {w}" for w in grid.warnings] + [""]
    return "\n".join(out)


def terminal(grid: Grid) -> str:
    """Return the grid for a terminal: plain words, numbered notes by section, resolved versions."""
    headers, rows, notes = _table(grid, WORDS, TRIAGE_WORDS, "\n")
    out = [tabulate(rows, headers=headers, tablefmt="simple"), ""]
    env = environment_lines(grid)
    if env:
        out += ["environments:"] + [f"  {combo}: {line}" for combo, line in env] + [""]
    for title, items in notes.by_section():
        out.append(f"{title}:")
        for n, info in items:
            at = f" at {', '.join(sorted(info['steps']))}" if info["steps"] else ""
            count = len(info["where"])
            sig = f": {info['signature']}" if info["signature"] else ""
            out.append(f"  [{n}] {info['status']}{at}{sig}  ({count} cell{'s' * (count > 1)})")
            if info["issue"]:
                out.append(f"      known issue {info['issue']['id']}: {info['issue']['url']}")
    out += ["", versions_table(grid, "simple")]
    out += ["", "newest tested (a newer release is untested, not safe):", newest_table(grid, "simple")]
    out += [f"warning: {w}" for w in grid.warnings]
    return "\n".join(out)
