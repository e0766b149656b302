"""Upstream bug reports: one failing cell as Markdown in the project's template, plus repro.py.

Everything comes from the cell's own record (its environment, traceback and details) and the grid
around it (last good and first bad versions), never from the machine writing the report.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ftcompat.core.errors import InputError
from ftcompat.core.outcome import FAILING, first_line, without_env_paths
from ftcompat.core.redact import redact
from ftcompat.core.selector import match_column
from ftcompat.core.versions import key as version_key
from ftcompat.core.versions import public
from ftcompat.harness.cellfile import atomic_write
from ftcompat.results.grid import Grid, column_of
from ftcompat.triage import repro, upstream

REPORTS = Path("results/reports")


class ReportError(InputError):
    """The cell cannot be reported (unknown id, or it did not fail)."""


@dataclass(frozen=True)
class Boundary:
    """The versions of one package around a failure: last good and first bad, and where they come from."""

    package: str
    last_good: str | None
    first_bad: str | None
    source: str


@dataclass(frozen=True)
class Report:
    """A rendered report: the Markdown, the script and where it should go."""

    cell_id: str
    project: upstream.Project
    markdown: str
    script: str


def find_cell(grid: Grid, cell_id: str) -> Mapping:
    """The cell with this id, or a clear error naming close ids."""
    for record in grid.cells:
        if record["id"] == cell_id:
            if record["status"] not in FAILING:
                raise ReportError(f"{cell_id} is {record['status']}; only failing cells are reported")
            return record
    combo = cell_id.split("::", 1)[0]
    near = [r["id"] for r in grid.cells if r["combo"] == combo and r["status"] in FAILING][:8]
    hint = f"; failing cells of {combo}: {', '.join(near)}" if near else ""
    raise ReportError(f"no cell {cell_id!r} in the grid{hint}")


def boundary(grid: Grid, cell: Mapping, package: str) -> Boundary:
    """Last good / first bad ``package`` version for the cell's column, from the other combos."""
    mine = public((cell.get("env") or {}).get("versions", {}).get(package))
    good, bad = [], []
    for other in grid.cells:
        if column_of(other) != column_of(cell):
            continue
        version = public((other.get("env") or {}).get("versions", {}).get(package))
        if not version:
            continue
        if other["status"] == "pass":
            good.append(version)
        elif other["status"] == cell["status"] and other.get("exc_type") == cell.get("exc_type"):
            bad.append(version)
    older_good = [v for v in good if version_key(v) < version_key(mine)] if mine else []
    last_good = max(older_good, key=version_key) if older_good else None
    later_bad = [v for v in bad if not last_good or version_key(v) > version_key(last_good)]
    first_bad = min(later_bad, key=version_key) if later_bad else mine
    return Boundary(package, last_good, first_bad, "this grid (releases in between were not run)")


def from_bisection(data: Mapping) -> Boundary | None:
    """The boundary a bisection found (``ftcompat bisect`` JSON), if it found one."""
    if data.get("verdict") != "found" or not data.get("culprit"):
        return None
    package = data["culprit"][0]
    return Boundary(package, (data.get("last_good") or {}).get(package), (data.get("first_bad") or {}).get(package),
                    f"bisection: {data.get('line', '')}".strip())


def case_doc(source: str) -> str:
    """The case module's docstring."""
    return ast.get_docstring(ast.parse(source)) or ""


def build(grid: Grid, cell_id: str, cases_dir: Path, models: Mapping[str, Mapping],
          bisection: Mapping | None = None, project: str | None = None,
          run: tuple[int, str] | None = None) -> Report:
    """Render the report and the script for one failing cell."""
    cell = find_cell(grid, cell_id)
    source = (Path(cases_dir) / f"{cell['case']}.py").read_text(encoding="utf-8")
    doc = case_doc(source)
    # A reproduced run's full traceback routes better than an old record's one-line summary.
    run_tb = run_traceback(run[1]) if run and verdict(*run) == "REPRODUCED" else None
    if project:
        proj, why = upstream.PROJECTS[project], "chosen on the command line"
    else:
        proj, why = upstream.project_of({**cell, "traceback": run_tb or cell.get("traceback")}, doc)
    model = {"name": cell["model"], "spec": dict(models[cell["model"]])} if cell.get("model") else None
    script = repro.script(cell, source, model, f"from grid {grid.generated_at}")
    found = from_bisection(bisection) if bisection else None
    bound = found or boundary(grid, cell, proj.name if proj.name in repro.STACK_ORDER else "transformers")
    return Report(cell_id, proj, render(cell, proj, why, doc, bound, script, run), script)


def render(cell: Mapping, proj: upstream.Project, why: str, doc: str, bound: Boundary, script: str,
           run: tuple[int, str] | None = None) -> str:
    """The Markdown body, in the project's template order, with ftcompat's extra sections after."""
    sections = {
        "System Info": _system_info(cell, proj),
        "Who can help?": _who(cell, proj),
        "Reproduction": _reproduction(cell, script, run),
        "Expected behavior": _expected(cell, doc),
        "Checklist": "- [x] the script above is minimal, complete and runs on its own (`uv run repro.py`)\n"
                     "- [x] the traceback is complete",
    }
    title = f"{cell['exc_type'] or 'Failure'} in {cell['case']}: {first_line(cell.get('message'), 90)}"
    lines = [f"<!-- ftcompat bug report for {cell['id']}; paste below the line into {proj.new_issue_url} -->",
             f"**Title:** {title}", ""]
    issue = cell.get("known_issue")
    if issue:
        lines += [f"> **Already reported: {issue['url']}** ({issue['summary']}). This cell is that bug; add "
                  "these versions and the script there as a comment instead of opening a new issue."
                  + (f" Workaround: {issue['workaround']}." if issue.get("workaround") else ""), ""]
    lines += [f"Upstream: **{proj.repo}** ({why}).", "", "---", ""]
    for name in proj.sections:
        lines += [f"### {name}", "", sections[name], ""]
    if "Expected behavior" not in proj.sections:
        lines += ["### Expected behavior", "", sections["Expected behavior"], ""]
    tb = (run_traceback(run[1]) if run and verdict(*run) == "REPRODUCED" else None) or cell.get("traceback")
    lines += ["### Actual behavior", "", _actual(cell), "",
              "### Traceback", "", _fence(tb or "(not recorded; run the script)", "text"), "",
              "### Versions", "", _versions(bound, cell), ""]
    lines += ["### Existing reports", "", _existing(cell, doc), ""]
    return "\n".join(lines)


def _system_info(cell: Mapping, proj: upstream.Project) -> str:
    env = cell.get("env") or {}
    v, more = env.get("versions") or {}, env.get("support_versions") or {}
    dev = env.get("device") or {}
    accel = f"cuda {dev.get('cuda')}, {dev.get('name')}" if dev.get("type") == "cuda" else "NA (CPU only)"
    unknown = "not recorded"
    rows = [
        ("`transformers` version", v.get("transformers")), ("Platform", env.get("platform")),
        ("Python version", env.get("python")), ("Huggingface_hub version", more.get("huggingface_hub", unknown)),
        ("Safetensors version", more.get("safetensors", unknown)), ("Accelerate version", v.get("accelerate")),
        ("Accelerate config", "not found"), ("DeepSpeed version", more.get("deepspeed") or "not installed"),
        ("PyTorch version (accelerator?)", f"{v.get('torch')} ({accel})"),
        ("Using distributed or parallel set-up in script?", "No"),
        ("Using GPU in script?", "Yes" if dev.get("type") == "cuda" else "No"),
        ("GPU type", dev.get("name") if dev.get("type") == "cuda" else "none"),
        ("TRL version", v.get("trl")), ("PEFT version", v.get("peft")),
        ("bitsandbytes version", v.get("bitsandbytes")), ("Datasets version", v.get("datasets")),
        ("Tokenizers version", v.get("tokenizers")), ("CPU", dev.get("name") if dev.get("type") != "cuda" else None),
    ]
    body = "\n".join(f"- {k}: {val if val is not None else 'not installed'}" for k, val in rows
                     if not (k == "CPU" and val is None))
    cmd = f"`{proj.env_command}` fields" if proj.env_command else "fields"
    return f"{body}\n\n(The {cmd} from the environment the failure was recorded in, by ftcompat.)"


def _who(cell: Mapping, proj: upstream.Project) -> str:
    area = proj.area(upstream.frames(cell.get("traceback")) + [(cell.get("origin") or {}).get("file") or ""])
    area = area or _area_from_step(cell)
    what = f"the **{area}** area" if area else "the core maintainers (they route it)"
    return f"{what}; the people for it are listed in the template's guide: {proj.template_url}"


def _area_from_step(cell: Mapping) -> str | None:
    step = cell.get("step") or ""
    for pattern, area in (("generate", "generate"), ("Trainer|train", "trainer"),
                          ("from_pretrained|load", "Big Model Inference"), ("okenizer", "tokenizers")):
        if re.search(pattern, step):
            return area
    return None


def _reproduction(cell: Mapping, script: str, run: tuple[int, str] | None) -> str:
    out = ["Save the script below as `repro.py` and run `uv run repro.py`: uv installs the exact versions its "
           "header pins. It needs no GPU, network or download: it builds a tiny model and tokenizer from a config "
           f"with a fixed seed and calls `test_{cell['variant']}` of ftcompat's case `{cell['case']}` (inlined, "
           "with the few helpers it imports). It exits 1 and prints `REPRODUCED` when the failure shows.", "",
           "<details><summary>repro.py</summary>", "", _fence(script, "python"), "", "</details>"]
    if run:
        rc, output = run
        clean = _clean(output)
        out += ["", f"Output of `uv run repro.py` in an empty folder ({verdict(rc, output)}, exit status {rc}):", "",
                _fence(_head_tail(clean, 4, 60), "text")]
    return "\n".join(out)


def _head_tail(text: str, head: int, tail: int) -> str:
    kept = text.rstrip().splitlines()
    if len(kept) <= head + tail:
        return "\n".join(kept)
    return "\n".join([*kept[:head], "…", *kept[-tail:]])


def _tail(text: str, lines: int) -> str:
    kept = text.rstrip().splitlines()
    return "\n".join(kept if len(kept) <= lines else ["…", *kept[-lines:]])


def _expected(cell: Mapping, doc: str) -> str:
    first = doc.strip().splitlines()[0] if doc.strip() else cell["case"]
    return (f"The case checks: {first} The variant `{cell['variant']}` passes in the combos listed under "
            "Versions (last good) and is expected to pass here too.")


def _actual(cell: Mapping) -> str:
    step = f" while running `{cell['step']}`" if cell.get("step") else ""
    details = cell.get("details") or {}
    facts = f"\n\nWhat the case recorded:\n\n{_fence(json.dumps(details, indent=2, sort_keys=True), 'json')}" \
        if details else ""
    return f"`{cell['signature']}`{step} ({cell['status']}).{facts}"


def _versions(bound: Boundary, cell: Mapping) -> str:
    mine = public((cell.get("env") or {}).get("versions", {}).get(bound.package))
    good = f"{bound.package} {bound.last_good}" if bound.last_good else "none seen"
    lines = [f"- failing: {bound.package} {mine} (cell `{cell['id']}`)",
             f"- last known good: {good}", f"- first bad: {bound.package} {bound.first_bad}",
             f"- from: {bound.source}"]
    if bound.source.startswith("this grid") and bound.last_good:
        lines.append(f"- narrow it down: `ftcompat bisect \"{column_of(cell)}\" --good {bound.package}=="
                     f"{bound.last_good} --bad {bound.package}=={mine}` (other packages as in the failing cell)")
    return "\n".join(lines)


def _existing(cell: Mapping, doc: str) -> str:
    issue = cell.get("known_issue")
    cited = sorted(set(re.findall(r"https://github\.com/[\w.-]+/[\w.-]+/(?:issues|pull)/\d+", doc)))
    out = [f"- **covers this cell:** {issue['url']}: {issue['summary']}"] if issue else \
        ["- no entry in ftcompat's known-issue registry covers this cell"]
    out += [f"- cited by the case: {url}" for url in cited if not issue or url != issue["url"]]
    return "\n".join(out)


def _fence(text: str, lang: str = "") -> str:
    # Longer than any backtick run inside, so a case that holds ``` cannot end the block early.
    ticks = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def slug(cell_id: str) -> str:
    """A folder name for a cell id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", cell_id).strip("_")


def write(report: Report, out: Path, meta: Mapping) -> Path:
    """Write REPORT.md, repro.py and report.json (how to rebuild it) into ``out``."""
    # Reports are pasted into public trackers: no HF token may reach them, repro.py included.
    atomic_write(out / "repro.py", redact(report.script))
    atomic_write(out / "REPORT.md", redact(report.markdown))
    atomic_write(out / "report.json", redact(json.dumps(dict(meta), indent=2, sort_keys=True) + "\n"))
    return out


def run_script(path: Path, timeout: int = 1800) -> tuple[int, str]:
    """Run a generated script with ``uv run`` from an empty folder, as someone without ftcompat would."""
    from ftcompat.run.install import find_uv

    uv = find_uv()
    if not uv:
        raise ReportError("uv is needed to run the script (pip install uv)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env["PYTHONUNBUFFERED"] = "1"  # one stream in the order it was written
    if os.environ.get("PIP_FIND_LINKS") and not os.environ.get("UV_FIND_LINKS"):
        env["UV_FIND_LINKS"] = os.environ["PIP_FIND_LINKS"]  # uv does not read pip's settings
    with tempfile.TemporaryDirectory(prefix="ftcompat-repro-run-") as empty:
        script = Path(empty) / "repro.py"
        script.write_text(Path(path).read_text(encoding="utf-8"), encoding="utf-8")
        proc = subprocess.run([uv, "run", "--no-project", "-q", str(script)], cwd=empty, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return proc.returncode, proc.stdout


def matches(selector: str, cell_id: str) -> bool:
    """True when a bisection's cell selector names this report's cell."""
    return match_column(selector, cell_id.split("::", 1)[1])


def generate(meta: Mapping, run: bool = False, log=print) -> Path:
    """Build and write the report ``meta`` describes (cell, grid, matrix, out, bisection, project)."""
    from ftcompat.config.matrix import load
    from ftcompat.results import grid as grid_mod

    matrix = load(meta["matrix"])
    grid = grid_mod.load(Path(meta["grid"]))
    bisection = json.loads(Path(meta["bisection"]).read_text()) if meta.get("bisection") else None
    models = {name: spec.to_plan() for name, spec in matrix.models.items()}
    cases = Path(meta["matrix"]).resolve().parent / "cases"
    out = Path(meta["out"])
    previous = meta.get("run")
    report = build(grid, meta["cell"], cases, models, bisection, meta.get("project"), previous)
    write(report, out, meta)
    if run:
        log(f"running {out / 'repro.py'} with uv in an empty folder ...")
        rc, output = run_script(out / "repro.py")
        meta = {**meta, "run": [rc, _clean(_tail(output, 400))]}
        report = build(grid, meta["cell"], cases, models, bisection, meta.get("project"), meta["run"])
        write(report, out, meta)
        log(f"repro.py: {verdict(rc, output)}")
    return out


def verdict(rc: int, output: str) -> str:
    """What a run of repro.py showed; exit 1 alone could also be the script itself crashing."""
    if rc == 1 and "\nREPRODUCED:" in output:
        return "REPRODUCED"
    if rc == 0 and "NOT REPRODUCED" in output:
        return "did NOT reproduce (the case passed)"
    return f"could not run it (exit {rc}); see the output"


def run_traceback(output: str) -> str | None:
    """The traceback a reproduced run printed, without the machine's paths."""
    start = output.find("Traceback (most recent call last):")
    end = output.find("\nfailed", start)
    if start < 0 or end < 0:
        return None
    return _clean(output[start:end])


def _clean(output: str) -> str:
    """Output without the machine's folders: the temporary run folder and the env's prefix."""
    return without_env_paths(re.sub(r"/\S*?/ftcompat-repro-[\w-]+/", "", output))


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
