"""The domain: combos, models, cases, cells and the grid, as frozen dataclasses."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from ftcompat.core import gitref
from ftcompat.core.selector import match, match_column

# The packages the matrix varies; every combo pins each (null = newest).
STACK = ("torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate")
# The packages every cell records the version of: the stack, and those every case also runs with, whose
# releases break things on their own (a tokenizer's format, a checkpoint's pickles, the Hub client's API).
RECORDED = (*STACK, "datasets", "tokenizers", "huggingface_hub", "numpy")
# Not varied by the matrix, but asked for by upstream bug templates (`transformers env`, `trl env`).
SUPPORT = ("huggingface_hub", "safetensors", "numpy", "deepspeed")


def frozen_map(data: Mapping | None) -> Mapping:
    """Return a read-only copy of ``data`` so frozen dataclasses stay immutable all the way down."""
    return MappingProxyType(dict(data or {}))


@dataclass(frozen=True)
class Combo:
    """One pinned environment: a Python version plus a version (or None = newest) per package."""

    id: str
    python: str
    pins: Mapping[str, str | None]
    tags: tuple[str, ...] = ()
    cases: tuple[str, ...] = ("*",)
    description: str = ""
    resolution: str = "highest"
    exclude_newer: str | None = None
    # Unpinned packages that take their newest version on the index, pre-releases (rc, dev) included:
    # the pre-release lane, so a break shows before the release ships.
    prerelease: tuple[str, ...] = ()
    # Versions forced over what the other pins declare (uv's --override), as `pip install --no-deps`
    # recipes leave an environment: a skew no resolver would pick.
    overrides: Mapping[str, str] = field(default_factory=dict)
    # Requirements a repair added beside the pins (``pyarrow<26.0.0``, an undeclared ``rich``): set by
    # ftcompat for an environment it resolved itself, never by the matrix (``core.health.Repair``).
    extra: tuple[str, ...] = ()
    # The PyTorch build uv takes torch and its family from (``cpu``, ``cu126``, ``auto``): PyTorch's own
    # index for that build (uv's --torch-backend) instead of PyPI, whose Linux torch is the CUDA one.
    torch_backend: str | None = None
    # A handoff pair's row (``handoffs:`` in the config): the producer's and the consumer's combo ids. The
    # row's own pins are the consumer's; its cells are the consumer's records with the producer's beside them.
    pair: tuple[str, str] | None = None
    # Where a package pinned at a git ref (``"@main"``) takes its history from, when not its public
    # repository (``core.gitref``): a local clone or a mirror. Only the git-pinned packages are listed.
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def tracks_newest(self) -> bool:
        """True when what the unpinned packages (or a branch or tag pin) resolve to can change between runs."""
        if any(not gitref.is_commit(ref) for ref in self.git_pins.values()):
            return True
        return bool(self.unpinned) and self.exclude_newer is None and self.resolution == "highest"

    def with_sources(self, sources: Mapping[str, str]) -> Combo:
        """This combo with the sources (config, --source) of the packages it pins at a git ref, and no other."""
        mine = {p: sources[p] for p in self.git_pins if p in sources}
        return replace(self, sources=MappingProxyType(mine)) if mine else self

    @property
    def git_pins(self) -> dict[str, str]:
        """The packages pinned at a git ref, each with its ref (``{"trl": "main"}``)."""
        return {p: ref for p, v in sorted(self.pins.items()) if (ref := gitref.ref_of(v)) is not None}

    @property
    def unpinned(self) -> tuple[str, ...]:
        """Packages this combo leaves to resolve to their newest release at run time."""
        return tuple(sorted(p for p, v in self.pins.items() if v is None))

    def requirements(self) -> list[str]:
        """Return pip requirement strings for the pins (and a repair's additions), in stable order."""
        return [self._requirement(p, v) for p, v in sorted(self.pins.items())] + list(self.extra)

    def _requirement(self, pkg: str, version: str | None) -> str:
        ref = gitref.ref_of(version)
        if ref is None:
            return f"{pkg}=={version}" if version else pkg
        source = gitref.source_of(pkg, self.sources)
        if source is None:  # validation refuses it first; kept loud for a combo built in code
            raise ValueError(f"{pkg} is pinned at {ref} but no source says where its git history is")
        return gitref.requirement(pkg, ref, source)


# The tag of a combo that is one half of a handoff (or the pair itself): only handoff cases run there.
HANDOFF = "handoff"
# The tag of a matrix combo playing one side of a handoff pair: it runs the pair's cases, chosen already.
SIDE = "side"
# Tags of environments that run whatever cases they are asked to (a case's ``combos:`` names matrix rows).
ON_REQUEST = frozenset({"adhoc", "current", "bisect", SIDE})
# A known issue's ``when`` key for the version a handoff's producer had (``from:peft``); plain keys are the
# consumer's, the environment the cell's record is from.
FROM = "from:"

# uv's --torch-backend values: a build (cpu, xpu, cuXYZ, rocmX.Y[.Z]) or auto (what this machine's driver takes)
TORCH_BACKEND_RE = re.compile(r"^(auto|cpu|xpu|cu\d{2,3}|rocm\d+\.\d+(\.\d+)?)$")


def torch_backend_problem(value) -> str | None:
    """Why ``value`` is not a PyTorch build uv knows, or None."""
    if isinstance(value, str) and TORCH_BACKEND_RE.match(value):
        return None
    return (f"{value!r} is not a PyTorch build: write cpu, a CUDA build such as cu126, a ROCm build such as "
            "rocm6.4, xpu, or auto (what this machine's driver takes)")


@dataclass(frozen=True)
class ModelSpec:
    """A model cases run on: tiny (built from a config) or hub (repo at a pinned revision)."""

    name: str
    kind: str
    arch: str | None = None
    tokenizer: str | None = None
    seed: int = 0
    config: Mapping[str, Any] = field(default_factory=lambda: frozen_map({}))
    repo: str | None = None
    revision: str | None = None
    needs: tuple[str, ...] = ()
    description: str = ""
    gated: bool = False

    def to_plan(self) -> dict:
        """Return the JSON form the harness reads."""
        out = {"kind": self.kind, "seed": self.seed, "needs": list(self.needs)}
        if self.gated:
            out["gated"] = True
        for key in ("arch", "tokenizer", "repo", "revision"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.config:
            out["config"] = dict(self.config)
        return out


@dataclass(frozen=True)
class CaseSpec:
    """A case as the matrix assigns it: its id and the models it runs on."""

    id: str
    models: tuple[str, ...] = ()
    timeout: float | None = None  # seconds per cell; None: the harness default
    # The matrix's combos it runs in (id globs, or tag:NAME); ad-hoc and existing environments run
    # whatever they are asked to. Lets a case that marks one boundary run at that boundary.
    combos: tuple[str, ...] = ("*",)
    # A handoff case: it runs only in a pair of environments (a combo tagged ``handoff``), never in one.
    handoff: bool = False

    def runs_in(self, combo: Combo) -> bool:
        """True when this case runs in ``combo``: one asked for on the spot, or one its selectors name."""
        if self.handoff != (HANDOFF in combo.tags):
            return False
        if ON_REQUEST & set(combo.tags):
            return True
        return any(match(s[4:], t) for s in self.combos if s.startswith("tag:") for t in combo.tags) or any(
            match(s, combo.id) for s in self.combos if not s.startswith("tag:"))


@dataclass(frozen=True)
class KnownIssue:
    """A registered upstream bug: which cells it covers and where to read about it."""

    id: str
    cells: tuple[str, ...]
    when: Mapping[str, str]
    url: str
    summary: str
    workaround: str = ""
    signature: str = ""
    inherited: bool = False  # from the built-in registry, in a project that extends it
    # A defect of environments, not of a behaviour (an undeclared requirement: pyarrow 26 needs NumPy 2 but
    # does not say so): matched against what the health probe found (``matches``), never against cells.
    environment: bool = False

    def explains(self, signature: str) -> bool:
        """True when this issue's signature hint (if any) appears in a failing cell's signature."""
        return not self.signature or self.signature in (signature or "")

    def covers(self, column: str, versions: Mapping[str, str | None]) -> bool:
        """True when ``column`` matches a selector and every version specifier holds."""
        from packaging.specifiers import SpecifierSet
        from packaging.version import InvalidVersion, Version


        if not any(match_column(sel, column) for sel in self.cells):
            return False
        for pkg, spec in self.when.items():
            got = versions.get(pkg)
            if not got:
                return False
            try:
                if Version(got) not in SpecifierSet(spec, prereleases=True):
                    return False
            except InvalidVersion:
                return False
        return True

    def matches(self, root: str, versions: Mapping[str, str | None]) -> bool:
        """True for an environment issue whose signature is in a probe's root cause and whose versions hold."""
        from packaging.specifiers import SpecifierSet
        from packaging.version import InvalidVersion, Version

        if not self.environment or not self.explains(root):
            return False
        try:
            return all((v := versions.get(p)) and Version(v) in SpecifierSet(s, prereleases=True)
                       for p, s in self.when.items())
        except InvalidVersion:
            return False

    def to_dict(self) -> dict:
        """Return the JSON form carried by covered cells."""
        return {"id": self.id, "url": self.url, "summary": self.summary, "workaround": self.workaround,
                "when": dict(self.when)}


@dataclass(frozen=True)
class Matrix:
    """Everything matrix.yaml declares, validated."""

    combos: tuple[Combo, ...]
    models: Mapping[str, ModelSpec]
    cases: Mapping[str, CaseSpec]
    source: str = "matrix.yaml"
    known_issues: tuple[KnownIssue, ...] = ()
    case_files: Mapping[str, str] = field(default_factory=dict)  # case id -> its file (cases/<id>.py)
    # Where packages pinned at a git ref take their history (``sources:``, then --source over it).
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def environments(self) -> tuple[Combo, ...]:
        """The combos that are one environment each: all but the handoff pairs' rows."""
        return tuple(c for c in self.combos if not c.pair)

    @property
    def pairs(self) -> tuple[Combo, ...]:
        """The handoff pairs' rows (``handoffs:``), each made in one combo and loaded in another."""
        return tuple(c for c in self.combos if c.pair)

    def combo(self, combo_id: str) -> Combo:
        """Return the combo with this id."""
        for combo in self.combos:
            if combo.id == combo_id:
                return combo
        raise KeyError(combo_id)


@dataclass(frozen=True)
class Cell:
    """One planned cell: a case variant on a model in a combo, with its stable id."""

    combo: str
    case: str
    variant: str
    model: str | None = None

    @property
    def id(self) -> str:
        """Stable id ``combo::case[variant@model]``."""
        inner = f"{self.variant}@{self.model}" if self.model else self.variant
        return f"{self.combo}::{self.case}[{inner}]"

    @property
    def column(self) -> str:
        """The grid column this cell belongs to: the id without the combo."""
        return self.id.split("::", 1)[1]
