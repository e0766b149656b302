"""A user's project file (``ftcompat.yaml``): their own combos, models, cases and known issues on top
of the built-in library, which it extends rather than copies.

The file names only what is the project's own::

    version: 1
    extends: builtin                  # the built-in models, cases and known issues
    builtin_cases: [api_surface]      # which built-in cases to run (globs; default: all)
    case_dirs: [ftcompat_cases]       # folders of the project's own cases (same case API)
    combos: [...]                     # the project's combos; the built-in ones are not run
    models: {...}                     # added to the built-in models
    cases: {...}                      # the project's cases; an entry for a built-in case replaces its models
    known_issues: [...]               # added to the built-in registry
    handoffs: [...]                   # pairs of the project's combos (``config.pairs``)

It is merged into one matrix document and validated by the same checks as ``matrix.yaml``, so the
rules are exactly as strict; every problem names the project's file and the path inside it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ftcompat.config.cases import CaseFile, discover
from ftcompat.config.checks import MatrixError, Problem
from ftcompat.config.library import builtin_matrix, library_dir
from ftcompat.config.yamlfile import read_yaml
from ftcompat.core.domain import Matrix
from ftcompat.core.hints import suggest
from ftcompat.core.selector import match

EXTENDS = ("builtin",)
PROJECT_KEYS = ("version", "extends", "builtin_cases", "case_dirs", "combos", "models", "cases", "known_issues",
                "handoffs", "sources")
FILE_NAME = "ftcompat.yaml"


def is_project(data: Any) -> bool:
    """True for a project file (it says what it extends), not a full matrix."""
    return isinstance(data, dict) and "extends" in data


def _globs(value, path: str, problems: list[Problem]) -> list[str]:
    if value is None:
        return []
    if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        problems.append(Problem(path, f"expected a list of strings, got {value!r}"))
        return []
    return value


def _builtin_cases(data: dict, every: dict[str, CaseFile], problems: list[Problem]) -> dict[str, CaseFile]:
    """The built-in cases the project includes (``builtin_cases`` globs; every one by default)."""
    globs = _globs(data.get("builtin_cases", ["*"]), "builtin_cases", problems)
    for j, glob in enumerate(globs):
        if not any(match(glob, c) for c in every):
            problems.append(Problem(f"builtin_cases[{j}]", f"{glob!r} selects no built-in case"
                                                           f"{suggest(glob, every)} (built-in: {', '.join(every)})"))
    return {cid: c for cid, c in every.items() if any(match(g, cid) for g in globs)}


def _own_cases(data: dict, folder: Path, builtin_ids, problems: list[Problem]) -> dict[str, CaseFile]:
    """The project's own cases, from its ``case_dirs`` (relative to the project file); none may take a
    built-in case's id, included or not."""
    found: dict[str, CaseFile] = {}
    for j, name in enumerate(_globs(data.get("case_dirs", []), "case_dirs", problems)):
        where = (folder / name).resolve()
        if not where.is_dir():
            problems.append(Problem(f"case_dirs[{j}]", f"{name!r} is not a folder (looked in {where})"))
            continue
        for cid, case in discover(where).items():
            clash = "a built-in case" if cid in builtin_ids else (
                "another case folder's case" if cid in found else "")
            if clash:
                problems.append(Problem(f"case_dirs[{j}]", f"{name}/{cid}.py has the id of {clash}; rename the file"))
                continue
            found[cid] = case
    return found


def _mapping(data: dict, key: str, problems: list[Problem]) -> dict:
    value = data.get(key) or {}
    if not isinstance(value, dict):
        problems.append(Problem(key, f"expected a mapping, got {type(value).__name__} {value!r}"))
        return {}
    return value


def _issues_for(issues: list, included: set[str]) -> list:
    """The built-in known issues about included cases, each narrowed to its selectors for them (and every
    environment issue: any project's environments can have the defect)."""
    kept = []
    for issue in issues:
        if issue.get("environment") is True:
            kept.append(issue)
            continue
        cells = [s for s in issue.get("cells", []) if any(match(s.split("[", 1)[0], c) for c in included)]
        if cells:
            kept.append({**issue, "cells": cells})
    return kept


def merged_document(data: dict, folder: Path, problems: list[Problem]) -> tuple[dict, dict[str, CaseFile], set]:
    """The project file merged over the built-in matrix, as one matrix document, with its case files
    and the ids of the project's own known issues.

    The project's own entries come first, so a problem's path (``combos[0]``, ``known_issues[1]``) is
    the path in the project's file.
    """
    base = read_yaml(builtin_matrix())
    every = discover(library_dir() / "cases")
    builtin = _builtin_cases(data, every, problems)
    own = _own_cases(data, folder, set(every), problems)
    models, own_models = dict(base.get("models") or {}), _mapping(data, "models", problems)
    for name in own_models:
        if name in models:
            problems.append(Problem(f"models.{name}", f"{name!r} is a built-in model; choose another name "
                                                      "(the built-in one can be used as it is)"))
    # A built-in case's `combos` name the built-in combos; in a project it runs in the project's own.
    cases = {cid: {k: v for k, v in (spec or {}).items() if k != "combos"}
             for cid, spec in (base.get("cases") or {}).items() if cid in builtin}
    cases.update(_mapping(data, "cases", problems))
    issues = data.get("known_issues") or []
    if not isinstance(issues, list):
        problems.append(Problem("known_issues", f"expected a list, got {type(issues).__name__}"))
        issues = []
    document = {"version": data.get("version", 1), "combos": data.get("combos") or [],
                "handoffs": data.get("handoffs"), "sources": data.get("sources"),
                "models": {**models, **own_models}, "cases": cases,
                "known_issues": [*issues, *_issues_for(base.get("known_issues") or [], set(builtin) | set(own))]}
    own_ids = {i.get("id") for i in issues if isinstance(i, dict)}
    return document, {**builtin, **own}, own_ids


def project_document(data: dict, path: Path) -> tuple[dict, dict[str, CaseFile], set, tuple[Problem, ...]]:
    """A project file as the one matrix document it means (for ``matrix.parse``), with its case files, the
    ids of its own known issues and the problems found so far; MatrixError for a file that extends nothing."""
    problems: list[Problem] = []
    for key in data:
        if key not in PROJECT_KEYS:
            problems.append(Problem(str(key), f"unknown key {key!r}{suggest(key, PROJECT_KEYS)}"))
    if data.get("extends") not in EXTENDS:
        problems.append(Problem("extends", f"{data.get('extends')!r} cannot be extended; write `extends: builtin`"))
        raise MatrixError(str(path), problems)
    if not data.get("combos"):
        problems.append(Problem("combos", "a project needs at least one combo of its own (`ftcompat init` writes one)"))
    document, cases, own = merged_document({k: v for k, v in data.items() if k in PROJECT_KEYS},
                                           path.resolve().parent, problems)
    return document, cases, own, tuple(problems)


def mark_inherited(matrix: Matrix, own: set) -> Matrix:
    """The matrix with every known issue the project did not write itself marked as inherited."""
    return dataclasses.replace(matrix, known_issues=tuple(
        i if i.id in own else dataclasses.replace(i, inherited=True) for i in matrix.known_issues))
