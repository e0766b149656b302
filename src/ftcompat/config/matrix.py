"""Read matrix.yaml and validate it at the edge: every problem named by file, path and value.

Validation collects all problems and raises one ``MatrixError`` listing them, each with the path
inside the file (``combos[3].pins.trl``), the bad value and the closest valid names, so a typo
costs one edit and nothing runs on a half-valid matrix.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any

from ftcompat.config import localmodel, project
from ftcompat.config.cases import CaseFile, discover
from ftcompat.config.checks import Checker, MatrixError, Problem
from ftcompat.config.pairs import parse_pairs
from ftcompat.config.yamlfile import read_yaml
from ftcompat.core import gitref
from ftcompat.core.domain import (
    FROM,
    RECORDED,
    STACK,
    SUPPORT,
    CaseSpec,
    Combo,
    KnownIssue,
    Matrix,
    ModelSpec,
    frozen_map,
    torch_backend_problem,
)
from ftcompat.core.hints import suggest
from ftcompat.core.selector import match

TOP_KEYS = ("version", "combos", "models", "cases", "known_issues", "handoffs", "sources")
COMBO_KEYS = ("id", "python", "pins", "tags", "cases", "description", "resolution", "exclude_newer",
              "prerelease", "overrides", "torch_backend")
ISSUE_KEYS = ("id", "cells", "when", "url", "summary", "workaround", "signature", "environment")
RESOLUTIONS = ("highest", "lowest-direct")
TINY_KEYS = ("kind", "arch", "tokenizer", "seed", "config", "description", "needs")
HUB_KEYS = ("kind", "repo", "revision", "arch", "needs", "description", "gated")
CASE_KEYS = ("models", "timeout", "combos")
MODEL_KINDS = ("tiny", "hub", "local")
NEEDS = ("network", "cuda")
TOKENIZERS = ("llama2-chat", "llama3")
ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
PYTHON_RE = re.compile(r"^3\.\d{1,2}$")
MIN_PYTHON = (3, 10)  # the harness (and transformers 5) need it; older ones would be fetched only to fail
MAX_ID = 100  # a combo id names its cell file, environment folder and lock: well under a file name's 255 bytes


def python_problem(version: str) -> str | None:
    """Why a combo's Python cannot be used, or None."""
    major, _, minor = version.partition(".")
    if (int(major), int(minor or 0)) < MIN_PYTHON:
        return (f"Python {version} is not supported: the harness runs on Python "
                f"{'.'.join(map(str, MIN_PYTHON))} or newer")
    return None
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
PKG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Besides the stack, the packages combos pin most (the ones every cell records); a near miss of one
# of these is a typo, anything else is taken as an extra pin and checked on the index online.
KNOWN_PACKAGES = tuple(dict.fromkeys((*RECORDED, *SUPPORT)))
# A known issue's `when` matches the versions every cell records (domain.RECORDED).
# nox session names the noxfile defines besides the combos, and ids ftcompat uses for its own runs.
RESERVED_IDS = ("render", "tests", "current")
RESERVED_PREFIXES = ("adhoc-", "bisect-")
COMMIT_HELP = ("trust_remote_code runs the repo's own code, so ftcompat only allows it at a fixed commit, and "
               "results are only reproducible at one; take the 40-character commit id from "
               "https://huggingface.co/{repo}/commits/main or `python -c \"from huggingface_hub import HfApi; "
               "print(HfApi().model_info('{repo}', revision='{rev}').sha)\"`")


class _Checker(Checker):
    """The checks of matrix.yaml's own entries: combos, known issues, pins, models, cases."""

    base: Path  # where a local model's relative path starts; ``parse`` sets it

    def shown(self, path: Path) -> str:
        """``path`` relative to the config's folder where it lies inside it (messages name no machine path)."""
        try:
            return Path(path).resolve().relative_to(self.base).as_posix()
        except ValueError:
            return Path(path).name

    def case_folders(self) -> str:
        """The folders the case files were read from, as the user would write them ("cases/")."""
        folders = sorted({self.shown(Path(c.path).parent) + "/" for c in self.cases.values()})
        return ", ".join(folders) if folders else "the case folders (none was found)"

    def combo(self, raw, i: int, seen: set[str]) -> Combo | None:
        path = f"combos[{i}]"
        data = self.mapping(raw, path, COMBO_KEYS, ("id", "python", "pins"))
        if not data:
            return None
        cid = self.string(data.get("id"), f"{path}.id", ID_RE,
                          "a lowercase id (letters, digits, '.', '_', '-')") if "id" in data else None
        if cid and len(cid) > MAX_ID:
            self.add(f"{path}.id", f"{cid[:40]}... is {len(cid)} characters; an id names files and folders, "
                                   f"keep it to {MAX_ID}")
            cid = None
        if cid in seen:
            self.add(f"{path}.id", f"duplicate combo id {cid!r}")
        if cid in RESERVED_IDS or (cid or "").startswith(RESERVED_PREFIXES):
            self.add(f"{path}.id", f"{cid!r} is reserved (a nox session or ftcompat's own runs use it: "
                                   f"{', '.join(RESERVED_IDS)}, {', '.join(p + '*' for p in RESERVED_PREFIXES)}); "
                                   "choose another id")
            cid = None
        if cid:
            seen.add(cid)
        python = data.get("python")
        if isinstance(python, float):
            python = None
            self.add(f"{path}.python", f"{data['python']!r} is a YAML number; quote it (\"3.11\")")
        elif "python" in data:
            python = self.string(python, f"{path}.python", PYTHON_RE, "a Python version like '3.11'")
            why = python_problem(python) if python else None
            if why:
                self.add(f"{path}.python", why)
                python = None
        pins = self.pins(data.get("pins", {}), f"{path}.pins") if "pins" in data else {}
        tags = self.str_list(data.get("tags", []), f"{path}.tags")
        for j, tag in enumerate(tags):
            if not ID_RE.match(tag):
                self.add(f"{path}.tags[{j}]", f"{tag!r} is not a lowercase tag")
        selectors = self.str_list(data.get("cases", ["*"]), f"{path}.cases")
        for j, sel in enumerate(selectors):
            if not any(match(sel, c) for c in self.cases):
                self.add(f"{path}.cases[{j}]", f"{sel!r} selects no case{suggest(sel, self.cases)}")
        resolution = data.get("resolution", "highest")
        if resolution not in RESOLUTIONS:
            self.add(f"{path}.resolution", f"{resolution!r} is not a resolution{suggest(resolution, RESOLUTIONS)}")
        exclude_newer = self.date(data.get("exclude_newer"), f"{path}.exclude_newer")
        prerelease = self.prerelease(data.get("prerelease", False), f"{path}.prerelease", pins or {}, resolution)
        overrides = self.overrides(data.get("overrides", {}), f"{path}.overrides", pins or {})
        backend = data.get("torch_backend")
        if backend is not None and torch_backend_problem(backend):
            self.add(f"{path}.torch_backend", str(torch_backend_problem(backend)))
            backend = None
        if not (cid and python and pins is not None):
            return None
        return Combo(cid, python, frozen_map(pins), tuple(tags), tuple(selectors),
                     str(data.get("description", "")), resolution, exclude_newer, prerelease, frozen_map(overrides),
                     torch_backend=backend)

    def overrides(self, raw, path: str, pins: dict) -> dict:
        """Exact versions forced over the others' declared requirements: each must equal the combo's own pin."""
        if not isinstance(raw, dict):
            self.add(path, f"expected a mapping of package: version, got {raw!r}")
            return {}
        out = {}
        for pkg, value in raw.items():
            version = self.version(value, f"{path}.{pkg}")
            if version is None:
                self.add(f"{path}.{pkg}", "an override needs an exact version")
            elif pins.get(pkg) != version:
                self.add(f"{path}.{pkg}", f"overrides {pkg}=={version}, but the combo pins {pkg} to "
                                          f"{pins.get(pkg)!r}; pin the same version in pins")
            else:
                out[pkg] = version
        return out

    def prerelease(self, raw, path: str, pins: dict, resolution: str) -> tuple[str, ...]:
        """``true`` (every unpinned stack package) or a list of unpinned packages that may take a pre-release."""
        if raw is False:
            return ()
        if resolution != "highest":
            self.add(path, f"a pre-release lane takes the newest versions; it cannot be a {resolution} combo")
            return ()
        if raw is True:
            return tuple(p for p in STACK if p in pins and pins[p] is None)
        if not isinstance(raw, list):
            self.add(path, f"expected true, false or a list of unpinned packages, got {raw!r}")
            return ()
        names = self.str_list(raw, path)
        for j, name in enumerate(names):
            if name not in pins:
                self.add(f"{path}[{j}]", f"{name!r} is not one of this combo's pins{suggest(name, list(pins))}")
            elif pins[name] is not None:
                self.add(f"{path}[{j}]", f"{name} is pinned to {pins[name]}; only an unpinned (null) package "
                                         "can take its newest pre-release")
        return tuple(sorted(n for n in names if pins.get(n, "") is None))

    def known_issue(self, raw, i: int, seen: set[str | None]) -> KnownIssue | None:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        path = f"known_issues[{i}]"
        environment = isinstance(raw, dict) and raw.get("environment") is True
        # An environment issue is about what the health probe finds, not about cells: it names none.
        data = self.mapping(raw, path, ISSUE_KEYS, ("id", "url", "summary") if environment
                            else ("id", "cells", "url", "summary"))
        if not data:
            return None
        if "environment" in data and not isinstance(data["environment"], bool):
            self.add(f"{path}.environment", f"expected true or false, got {data['environment']!r}")
        iid = self.string(data.get("id"), f"{path}.id", ID_RE, "a lowercase id") if "id" in data else None
        if iid in seen:
            self.add(f"{path}.id", f"duplicate known issue id {iid!r}")
        seen.add(iid)
        cells = self.str_list(data.get("cells", []), f"{path}.cells")
        for j, sel in enumerate(cells):
            case = sel.split("[", 1)[0]
            if not any(match(case, c) for c in self.cases):
                self.add(f"{path}.cells[{j}]", f"{sel!r} names no case{suggest(case, self.cases)}")
        when = data.get("when", {})
        if not isinstance(when, dict):
            self.add(f"{path}.when", f"expected a mapping of package: specifier, got {when!r}")
            when = {}
        if environment and data.get("cells"):
            self.add(f"{path}.cells", "an environment issue (environment: true) matches the health probe's "
                                      "findings, not cells; remove cells")
        for pkg, spec in when.items():
            # ``from:peft``: the producer's version, for a handoff cell (``core.domain.FROM``)
            name = pkg.removeprefix(FROM) if isinstance(pkg, str) and not environment else pkg
            if name not in RECORDED and not environment:
                self.add(f"{path}.when.{pkg}", f"unknown package {pkg!r}{suggest(name, RECORDED)} (a known issue "
                                               f"matches the versions every cell records: {', '.join(RECORDED)}; "
                                               f"a handoff's producer's as {FROM}<package>)")
                continue
            try:
                SpecifierSet(str(spec))
            except InvalidSpecifier:
                self.add(f"{path}.when.{pkg}", f"{spec!r} is not a version specifier (e.g. '>=0.20,<0.23.1')")
        url = data.get("url")
        if not (isinstance(url, str) and url.startswith(("https://", "http://"))):
            self.add(f"{path}.url", f"{url!r} is not a link to the upstream report")
        summary = data.get("summary")
        if not (isinstance(summary, str) and summary.strip()):
            self.add(f"{path}.summary", "a one-line summary is required")
        if not (iid and isinstance(url, str) and isinstance(summary, str)):
            return None
        return KnownIssue(iid, tuple(cells), frozen_map({k: str(v) for k, v in when.items()}), url,
                          summary.strip(), str(data.get("workaround", "")).strip(),
                          str(data.get("signature", "")), environment=environment)

    def pins(self, raw, path: str) -> dict | None:
        data = self.mapping(raw, path, allowed=list(raw) if isinstance(raw, dict) else STACK)
        if not data:
            return None if not isinstance(raw, dict) else {}
        out = {}
        for pkg in STACK:
            if pkg not in data:
                self.add(path, f"missing pin for {pkg!r} (write `{pkg}: null` to take the newest release)")
        for pkg, value in data.items():
            key = f"{path}.{pkg}"
            if pkg not in STACK:
                close = difflib.get_close_matches(str(pkg), KNOWN_PACKAGES, n=1, cutoff=0.75)
                if close and close[0] != pkg:
                    self.add(key, f"unknown package {pkg!r}; did you mean {close[0]!r}?")
                    continue
                if not isinstance(pkg, str) or not PKG_RE.match(pkg):
                    self.add(key, f"{pkg!r} is not a package name")
                    continue
            ref = gitref.ref_of(value)
            if ref is not None:
                problem = gitref.pin_problem(str(pkg), ref)
                if problem:
                    self.add(key, problem)
                    continue
                out[pkg] = value
                continue
            out[pkg] = self.version(value, key)
        return out

    def sources(self, raw, path: str = "sources") -> dict[str, str]:
        """Where git-pinned packages take their history: a folder (relative to the config) or a URL."""
        data = self.mapping(raw, path, allowed=list(raw) if isinstance(raw, dict) else ())
        out = {}
        for pkg, value in data.items():
            if not isinstance(value, str) or not value.strip():
                self.add(f"{path}.{pkg}", f"expected a folder or a git URL, got {value!r}")
                continue
            out[str(pkg)] = value if gitref.is_url(value) else str((self.base / Path(value).expanduser()).resolve())
        return out

    def model(self, name, raw, path: str) -> ModelSpec | None:
        if not isinstance(name, str) or not ID_RE.match(name):
            self.add(path, f"model name {name!r} is not a lowercase id")
        kind = raw.get("kind") if isinstance(raw, dict) else None
        if kind not in MODEL_KINDS:
            self.add(f"{path}.kind", f"{kind!r} is not a model kind{suggest(kind, MODEL_KINDS)}")
            return None
        keys = {"tiny": (TINY_KEYS, ("arch",)), "hub": (HUB_KEYS, ("repo",)), "local": (localmodel.LOCAL_KEYS, ())}
        data = self.mapping(raw, path, *keys[kind])
        folder = revision = None
        if kind == "local":
            folder, revision = localmodel.check(self.add, data, path, self.base)
        needs = self.str_list(data.get("needs", []), f"{path}.needs")
        for j, need in enumerate(needs):
            if need not in NEEDS:
                self.add(f"{path}.needs[{j}]", f"unknown need {need!r}{suggest(need, NEEDS)}")
        if kind == "hub":
            self.revision(data, path)
            needs = sorted(set(needs) | {"network"})
            if not isinstance(data.get("gated", False), bool):
                self.add(f"{path}.gated", f"expected true or false, got {data['gated']!r}")
        tokenizer = data.get("tokenizer")
        if tokenizer is not None and tokenizer not in TOKENIZERS:
            self.add(f"{path}.tokenizer", f"unknown tokenizer {tokenizer!r}{suggest(tokenizer, TOKENIZERS)}")
        config = data.get("config", {})
        if not isinstance(config, dict):
            self.add(f"{path}.config", f"expected a mapping of config overrides, got {config!r}")
            config = {}
        seed = data.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            self.add(f"{path}.seed", f"expected an integer seed, got {seed!r}")
            seed = 0
        return ModelSpec(
            name=name, kind=kind, arch=data.get("arch"),
            tokenizer=tokenizer or ("llama2-chat" if kind == "tiny" else None), seed=seed,
            config=frozen_map(config), repo=data.get("repo") or folder, revision=data.get("revision") or revision,
            needs=tuple(needs), description=str(data.get("description", "")),
            gated=bool(data.get("gated", False)),
        )

    def revision(self, data: dict, path: str) -> None:
        """A hub model's revision must be a full commit: a branch or tag moves under the grid."""
        repo = data.get("repo") if isinstance(data.get("repo"), str) else "<repo>"
        if "revision" not in data:
            self.add(path, "missing required key 'revision': a hub model is pinned to a full 40-character commit. "
                           + COMMIT_HELP.format(repo=repo, rev="main"))
            return
        rev = data["revision"]
        if isinstance(rev, str) and SHA_RE.match(rev):
            return
        if isinstance(rev, str) and re.fullmatch(r"[0-9a-fA-F]{7,39}", rev):
            why = f"{rev!r} is a short commit id; write all 40 characters"
        elif isinstance(rev, str) and re.fullmatch(r"[0-9A-F]{40}", rev, re.IGNORECASE):
            why = f"{rev!r} must be written in lowercase hex, as the Hub does"
        elif isinstance(rev, str):
            why = f"{rev!r} is a branch or tag, not a commit: it can point at new code tomorrow"
        else:
            why = f"{rev!r} is not a commit id (a YAML number or null?); quote the 40-character commit"
        ref = rev if isinstance(rev, str) else "main"
        self.add(f"{path}.revision", f"{why}. {COMMIT_HELP.format(repo=repo, rev=ref)}")

    def case(self, cid, raw, path: str, models: dict) -> CaseSpec | None:
        if cid not in self.cases:
            self.add(path, f"unknown case {cid!r} (no file {cid}.py in {self.case_folders()})"
                           f"{suggest(cid, self.cases)}")
            return None
        data = self.mapping(raw if raw is not None else {}, path, CASE_KEYS)
        names = self.str_list(data.get("models", []), f"{path}.models")
        for j, name in enumerate(names):
            if name not in models:
                self.add(f"{path}.models[{j}]", f"unknown model {name!r}{suggest(name, models)}")
        if any(self.cases[cid].uses_model) and not names:
            self.add(f"{path}.models", f"case {cid!r} runs on a model; list at least one")
        timeout = data.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                    or timeout <= 0):
            self.add(f"{path}.timeout", f"{timeout!r} is not a number of seconds > 0 (e.g. timeout: 600)")
            timeout = None
        combos = self.str_list(data.get("combos", ["*"]), f"{path}.combos")
        return CaseSpec(cid, tuple(names), float(timeout) if timeout else None, tuple(combos) or ("*",),
                        self.cases[cid].handoff)


def parse(data: Any, source: str, cases: dict[str, CaseFile], problems: tuple[Problem, ...] = ()) -> Matrix:
    """Validate parsed YAML into a Matrix, or raise one MatrixError naming every problem (and ``problems``)."""
    check = _Checker(cases)
    check.base = Path(source).resolve().parent  # where a local model's relative path starts
    check.problems.extend(problems)
    if data is None:
        raise MatrixError(source, [Problem("(file)", "the file is empty; it needs `version: 1`, `combos:`, "
                                                      "`models:` and `cases:` (see README.md)")])
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise MatrixError(source, [Problem("(top level)", "the top level must be a mapping (version, combos, "
                                                          f"models, cases, known_issues), not a {kind}")])
    top = check.mapping(data, "", TOP_KEYS, ("combos", "models", "cases"))
    if top.get("version", 1) != 1:
        check.add("version", f"unsupported matrix version {top['version']!r}; this ftcompat reads 1")
    raw_models = check.mapping(top.get("models", {}), "models", allowed=list(top.get("models") or {}))
    models = {}
    for name, raw in raw_models.items():
        spec = check.model(name, raw, f"models.{name}")
        if spec:
            models[name] = spec
    raw_cases = check.mapping(top.get("cases", {}), "cases", allowed=list(top.get("cases") or {}))
    case_specs = {}
    for cid, raw in raw_cases.items():
        case_spec = check.case(cid, raw, f"cases.{cid}", raw_models)
        if case_spec:
            case_specs[cid] = case_spec
    for cid in cases:
        if cid not in raw_cases:
            check.add("cases", f"{check.shown(cases[cid].path)} has no entry here; add `{cid}: {{models: [...]}}`")
    combos: list[Combo] = []
    seen: set[str] = set()
    raw_combos = top.get("combos", [])
    if not isinstance(raw_combos, list):
        check.add("combos", f"expected a list of combos, got {type(raw_combos).__name__}")
        raw_combos = []
    sources = {**check.sources(top.get("sources", {}) or {}), **overriding_sources(check)}
    for i, raw in enumerate(raw_combos):
        combo = check.combo(raw, i, seen)
        if combo:
            combos.append(with_sources(check, combo, sources, f"combos[{i}]"))
    _check_case_combos(check, case_specs, combos)
    combos += parse_pairs(check, top.get("handoffs"), combos, case_specs)
    raw_issues = top.get("known_issues", [])
    if not isinstance(raw_issues, list):
        check.add("known_issues", f"expected a list, got {type(raw_issues).__name__}")
        raw_issues = []
    issues: list[KnownIssue] = []
    seen_issues: set[str | None] = set()  # None too: a second issue without an id is reported as a duplicate
    for i, raw in enumerate(raw_issues):
        issue = check.known_issue(raw, i, seen_issues)
        if issue:
            issues.append(issue)
    if check.problems:
        raise MatrixError(source, check.problems)
    return Matrix(tuple(combos), frozen_map(models), frozen_map(case_specs), source, tuple(issues),
                  frozen_map({cid: str(c.path) for cid, c in cases.items()}), frozen_map(sources))


SOURCES_ENV = "FTCOMPAT_SOURCES"  # PKG=PATH_OR_URL[,PKG=...]: --source, handed to nox's sessions


def overriding_sources(check: _Checker) -> dict[str, str]:
    """The sources ``--source`` gave (through FTCOMPAT_SOURCES), over the config's own."""
    out = {}
    for item in filter(None, os.environ.get(SOURCES_ENV, "").split(",")):
        pkg, sep, value = item.partition("=")
        if not sep or not pkg or not value:
            check.add("--source", f"{item!r} is not PKG=PATH_OR_URL")
            continue
        out[pkg.strip()] = value.strip() if gitref.is_url(value.strip()) else str(Path(value.strip()).resolve())
    return out


def with_sources(check: _Checker, combo: Combo, sources: dict[str, str], path: str) -> Combo:
    """The combo with the sources of its git-pinned packages; one with no source for such a package is refused."""
    for pkg, ref in combo.git_pins.items():
        if gitref.source_of(pkg, sources) is None:
            check.add(f"{path}.pins.{pkg}", f"{pkg} is pinned at {ref!r} but has no public repository ftcompat knows; "
                                            f"say where its history is: `sources: {{{pkg}: PATH_OR_URL}}`")
    return combo.with_sources(sources)


def _check_case_combos(check: _Checker, specs: dict[str, CaseSpec], combos: list[Combo]) -> None:
    """Each of a case's ``combos`` selectors must name a combo (id glob or ``tag:NAME``): a typo runs nothing."""
    ids = [c.id for c in combos]
    tags = sorted({t for c in combos for t in c.tags})
    for cid, spec in specs.items():
        for j, sel in enumerate(spec.combos):
            if sel == "*":
                continue
            hit = (any(match(sel[4:], t) for t in tags) if sel.startswith("tag:")
                   else any(match(sel, i) for i in ids))
            if not hit:
                known = [f"tag:{t}" for t in tags] if sel.startswith("tag:") else ids
                check.add(f"cases.{cid}.combos[{j}]", f"{sel!r} selects no combo{suggest(sel, known)}")
            # A combo named by id whose own `cases:` leaves the case out would never run it there.
            for combo in combos:
                if (not sel.startswith("tag:") and "*" not in sel and match(sel, combo.id)
                        and not any(match(s, cid) for s in combo.cases)):
                    check.add(f"cases.{cid}.combos[{j}]", f"{sel!r}'s own cases ({', '.join(combo.cases)}) leave "
                                                          f"{cid} out, so it never runs there; add it to them")


def load(path: str | Path = "matrix.yaml", cases_dir: str | Path | None = None) -> Matrix:
    """Read and validate ``path``: a full matrix (cases in ``cases/`` beside it unless given), or a
    project file that extends the built-in library (``extends: builtin``, see ``config/project``)."""

    path = Path(path)
    data = read_yaml(path)
    if project.is_project(data):
        document, cases, own, problems = project.project_document(data, path)
        return project.mark_inherited(parse(document, str(path), cases, problems), own)
    cases_dir = Path(cases_dir) if cases_dir else path.parent / "cases"
    return parse(data, str(path), discover(cases_dir))
