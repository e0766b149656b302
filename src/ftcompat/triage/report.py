"""Upstream bug reports: one failing cell as Markdown in the project's template, plus repro.py.

Everything comes from the cell's own record (its environment, traceback and details) and the grid
around it (last good and first bad versions), never from the machine writing the report.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ftcompat.config.matrix import load
from ftcompat.core.cellfile import atomic_write
from ftcompat.core.domain import RECORDED
from ftcompat.core.errors import InputError
from ftcompat.core.record import Record
from ftcompat.core.redact import redact
from ftcompat.core.selector import match_column
from ftcompat.core.status import FAILING, Status
from ftcompat.core.versions import key as version_key
from ftcompat.core.versions import public
from ftcompat.results import gridload
from ftcompat.results.grid import Grid
from ftcompat.triage import report_md, repro, scripts, upstream
from ftcompat.triage.commitdoc import SCHEMA as COMMITS_SCHEMA
from ftcompat.triage.report_md import Boundary

REPORTS = Path("results/reports")


class ReportError(InputError):
    """The cell cannot be reported (unknown id, or it did not fail)."""


@dataclass(frozen=True)
class Report:
    """A rendered report: the Markdown, the script and where it should go."""

    cell_id: str
    project: upstream.Project
    markdown: str
    script: str
    producer: str | None = None  # a handoff whose consumer failed: produce.py, run before repro.py


def find_cell(grid: Grid, cell_id: str) -> Record:
    """The cell with this id, or a clear error naming close ids."""
    for record in grid.cells:
        if record.id == cell_id:
            if record.status not in FAILING:
                raise ReportError(f"{cell_id} is {record.status.value}; only failing cells are reported")
            if record.environment:
                # Not a bug of the versions: a package the case merely uses did not import. The defect is
                # worth reporting to whoever raised it, but not as this case's report.
                raise ReportError(f"{cell_id} did not reach its check: {record.message}; that is the environment's "
                                  f"defect, not the case's (`ftcompat doctor` on the environment shows the fix)")
            return record
    combo = cell_id.split("::", 1)[0]
    near = [r.id for r in grid.cells if r.combo == combo and r.status in FAILING][:8]
    hint = f"; failing cells of {combo}: {', '.join(near)}" if near else ""
    raise ReportError(f"no cell {cell_id!r} in the grid{hint}")


def boundary(grid: Grid, cell: Record, package: str) -> Boundary:
    """Last good / first bad ``package`` version for the cell's column, from the other combos."""
    mine = public((cell.env or {}).get("versions", {}).get(package))
    good, bad = [], []
    for other in grid.cells:
        if other.column != cell.column:
            continue
        version = public((other.env or {}).get("versions", {}).get(package))
        if not version:
            continue
        if other.status == Status.PASS:
            good.append(version)
        elif other.status == cell.status and other.exc_type == cell.exc_type:
            bad.append(version)
    older_good = [v for v in good if version_key(v) < version_key(mine)] if mine else []
    last_good = max(older_good, key=version_key) if older_good else None
    later_bad = [v for v in bad if not last_good or version_key(v) > version_key(last_good)]
    first_bad = min(later_bad, key=version_key) if later_bad else mine
    return Boundary(package, last_good, first_bad, "this grid (releases in between were not run)")


def from_bisection(data: Mapping) -> Boundary | None:
    """The boundary a bisection found (``ftcompat bisect`` JSON), if it found one."""
    if data.get("verdict") != "found":
        return None
    if data.get("schema") == COMMITS_SCHEMA:  # a commit bisection: the commit and its pull request
        package, first, before = data.get("package"), data.get("first_bad"), data.get("before") or {}
        if not package or not isinstance(first, Mapping):
            return None
        return Boundary(package, f"commit {before.get('short')}" if before else None, f"commit {first.get('short')}",
                        f"commit bisection: {data.get('line', '')}".strip(), first)
    if not data.get("culprit"):
        return None
    package = data["culprit"][0]
    return Boundary(package, (data.get("last_good") or {}).get(package), (data.get("first_bad") or {}).get(package),
                    f"bisection: {data.get('line', '')}".strip())


def case_doc(source: str) -> str:
    """The case module's docstring."""
    return ast.get_docstring(ast.parse(source)) or ""


def case_source(cases: Path | Mapping[str, str], case_id: str) -> str:
    """A case's source: from the config's case files (built-in, ``case_dirs``, ``ftcompat_cases/``) or a folder."""
    path = Path(cases[case_id]) if isinstance(cases, Mapping) and case_id in cases else \
        None if isinstance(cases, Mapping) else Path(cases) / f"{case_id}.py"
    if path is None or not path.is_file():
        raise ReportError(f"case {case_id!r} has no file here ({path or 'not a case of the config'}); "
                          "run report with the config the grid was made from (--config)")
    return path.read_text(encoding="utf-8")


def build(grid: Grid, cell_id: str, cases: Path | Mapping[str, str], models: Mapping[str, Mapping],
          bisection: Mapping | None = None, project: str | None = None,
          run: tuple[int, str] | None = None) -> Report:
    """Render the report and the script for one failing cell (``cases``: the config's case files, or a folder)."""
    cell = find_cell(grid, cell_id)
    source = case_source(cases, cell.case)
    doc = case_doc(source)
    # A reproduced run's full traceback routes better than an old record's one-line summary.
    run_tb = scripts.run_traceback(run[1]) if run and scripts.verdict(*run) == "REPRODUCED" else None
    if project:
        proj, why = upstream.PROJECTS[project], "chosen on the command line"
    else:
        proj, why = upstream.project_of(cell.with_(traceback=run_tb or cell.traceback), doc)
    model = {"name": cell.model, "spec": dict(models[cell.model])} if cell.model else None
    made = f"from grid {grid.generated_at}"
    # A handoff: the failing half is the reproduction; a consumer's needs the producer's artifact made first.
    side = {"producer": "produce", "consumer": "consume"}.get((cell.handoff or {}).get("failed") or "")
    script = repro.script(cell, source, model, made, side)
    producer = repro.script(cell, source, model, made, "produce") if side == "consume" else None
    found = from_bisection(bisection) if bisection else None
    bound = found or boundary(grid, cell, proj.name if proj.name in RECORDED else "transformers")
    return Report(cell_id, proj, report_md.render(cell, proj, why, doc, bound, script, run, producer), script,
                  producer)


def slug(cell_id: str) -> str:
    """A folder name for a cell id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", cell_id).strip("_")


def write(report: Report, out: Path, meta: Mapping) -> Path:
    """Write REPORT.md, repro.py and report.json (how to rebuild it) into ``out``."""
    # Reports are pasted into public trackers: no HF token may reach them, repro.py included.
    atomic_write(out / "repro.py", redact(report.script))
    if report.producer:
        atomic_write(out / "produce.py", redact(report.producer))
    else:
        (out / "produce.py").unlink(missing_ok=True)  # from an earlier report of another cell
    atomic_write(out / "REPORT.md", redact(report.markdown))
    atomic_write(out / "report.json", redact(json.dumps(dict(meta), indent=2, sort_keys=True) + "\n"))
    return out


def matches(selector: str, cell_id: str) -> bool:
    """True when a bisection's cell selector names this report's cell."""
    return match_column(selector, cell_id.split("::", 1)[1])


def generate(meta: Mapping, run: bool = False, log=print) -> Path:
    """Build and write the report ``meta`` describes (cell, grid, matrix, out, bisection, project)."""
    matrix = load(meta["matrix"])
    grid = gridload.load(meta["grid"])
    data = gridload.read_json(meta["bisection"], "bisection file") if meta.get("bisection") else None
    if data and not isinstance(data, Mapping):
        raise InputError(f"{meta['bisection']}: is a JSON {type(data).__name__}, "
                         "not the object `ftcompat bisect` writes")
    bisection = data if isinstance(data, Mapping) else None  # null or {} means no bisection, as before
    models = {name: spec.to_plan() for name, spec in matrix.models.items()}
    cases = dict(matrix.case_files)  # wherever the config keeps them, not only <config dir>/cases
    out = Path(meta["out"])
    previous = meta.get("run")
    report = build(grid, meta["cell"], cases, models, bisection, meta.get("project"), previous)
    write(report, out, meta)
    if run:
        log(f"running {out / 'repro.py'} with uv in an empty folder ...")
        rc, output = scripts.run_script(out / "repro.py", before=out / "produce.py" if report.producer else None)
        meta = {**meta, "run": [rc, scripts.clean(scripts.tail(output, 400))]}
        report = build(grid, meta["cell"], cases, models, bisection, meta.get("project"), meta["run"])
        write(report, out, meta)
        log(f"repro.py: {scripts.verdict(rc, output)}")
    return out


def refresh_with_bisection(bisect_path: Path, reports: Path = REPORTS, log=print) -> list[Path]:
    """Rewrite every report whose cell a bisection was about, with the release it found."""
    data = json.loads(Path(bisect_path).read_text(encoding="utf-8"))
    done = []
    for meta_file in sorted(Path(reports).glob("*/report.json")):
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if matches(data.get("case", ""), meta["cell"]):
            done.append(generate({**meta, "bisection": str(bisect_path)}, log=log))
            log(f"refreshed {meta_file.parent / 'REPORT.md'} with {bisect_path}")
    return done
