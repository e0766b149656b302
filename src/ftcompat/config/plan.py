"""Plan what runs: which cases a combo selects, the cells they produce, the harness's plan file."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from pathlib import Path

from ftcompat.config.cases import CaseFile
from ftcompat.core.domain import Cell, Combo, Matrix
from ftcompat.core.errors import InputError
from ftcompat.core.health import Health
from ftcompat.core.hints import suggest
from ftcompat.core.plan import Plan, PlannedCase, PlannedCombo, PlannedHandoff
from ftcompat.core.selector import match


def select_combos(matrix: Matrix, selectors=(), tags=()) -> list[Combo]:
    """Return combos whose id matches any glob selector and that carry every tag given."""
    picked = []
    for combo in matrix.combos:
        if selectors and not any(fnmatch.fnmatchcase(combo.id, s) for s in selectors):
            continue
        if tags and not set(tags) <= set(combo.tags):
            continue
        picked.append(combo)
    return picked


def case_selectors(text: str, matrix: Matrix, flag: str = "FTCOMPAT_CASES") -> tuple[str, ...]:
    """Parse comma-separated case globs (FTCOMPAT_CASES); refuse one that selects no case of the matrix."""
    wanted = tuple(s.strip() for s in text.split(",") if s.strip())
    if not wanted:
        raise InputError(f"{flag}={text!r} names no case; give case ids or globs, e.g. 'qlora*,phi3_generate'")
    for sel in wanted:
        if not any(match(sel, c) for c in matrix.cases):
            raise InputError(f"{flag}: {sel!r} selects no case of {matrix.source}{suggest(sel, matrix.cases)}")
    return wanted


def check_cases(matrix: Matrix, combo: Combo, flag: str = "--cases") -> None:
    """Refuse case globs that select nothing before anything is built: each must name a case, and together
    they must select one that runs in ``combo`` (a built-in case a project leaves out selects nothing)."""
    if tuple(combo.cases) == ("*",):
        return
    case_selectors(",".join(combo.cases), matrix, flag)
    if not combo_cases(matrix, combo):
        raise InputError(f"{flag} {' '.join(combo.cases)}: selects no case that runs in {combo.id} "
                         f"(cases of {matrix.source}: {', '.join(sorted(matrix.cases)) or 'none'})")


def combo_cases(matrix: Matrix, combo: Combo) -> list[str]:
    """Return the case ids a combo runs, in matrix order: the combo selects them and they select the combo."""
    return [c for c in matrix.cases if any(match(s, c) for s in combo.cases) and matrix.cases[c].runs_in(combo)]


def combo_models(matrix: Matrix, combo: Combo, case_id: str) -> list[str]:
    """The case's models this combo runs: a model that needs CUDA only in combos tagged ``gpu``."""
    return [m for m in matrix.cases[case_id].models
            if "cuda" not in matrix.models[m].needs or "gpu" in combo.tags]


def planned_cells(matrix: Matrix, combo: Combo, cases: Mapping[str, CaseFile]) -> list[Cell]:
    """Return every cell the combo should produce: each variant on each of its case's models."""
    cells: list[Cell] = []
    for cid in combo_cases(matrix, combo):
        case = cases[cid]
        for variant, uses_model in zip(case.variants, case.uses_model, strict=True):
            if uses_model:
                cells.extend(Cell(combo.id, cid, variant, m) for m in combo_models(matrix, combo, cid))
            else:
                cells.append(Cell(combo.id, cid, variant))
    return cells


def harness_plan(matrix: Matrix, combo: Combo, out: Path, work_dir: Path,
                 cases: Mapping[str, CaseFile] | None = None, health: Health | None = None,
                 handoff: PlannedHandoff | None = None) -> Plan:
    """Return the plan the harness reads inside the combo's environment (with what each case checks)."""
    case_ids = combo_cases(matrix, combo)
    models = {c: combo_models(matrix, combo, c) for c in case_ids}
    model_names = sorted({m for names in models.values() for m in names})
    subject = {c: cases[c].subject if cases and c in cases else () for c in case_ids}
    return Plan(PlannedCombo(combo.id, combo.python, dict(combo.pins), tuple(combo.tags)),
                {c: PlannedCase(tuple(models[c]), matrix.cases[c].timeout, subject[c]) for c in case_ids},
                {m: matrix.models[m].to_plan() for m in model_names}, str(out), str(work_dir),
                health=health or Health(), handoff=handoff)
