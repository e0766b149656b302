"""An environment's health: which of its modules fail to import beside the others, and why.

The probe (``harness.health``) imports the stack's modules inside the environment before any cell
runs and reports each failure by its root cause: the innermost exception, the distribution whose
code raised it and the one a failed import named. This module is the pure half: the typed result
both halves share through JSON, and the rule that decides whether a failing cell is a verdict about
the versions or a broken environment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ftcompat.core.outcome import first_line, without_env_paths


def canonical(name: str) -> str:
    """A distribution name as packaging spells it: lowercase, runs of ``-_.`` as one ``-``."""
    out, dash = [], False
    for ch in name.strip().lower():
        if ch in "-_.":
            if not dash:
                out.append("-")
            dash = True
        else:
            out.append(ch)
            dash = False
    return "".join(out)


def root_text(exc_type: str, message: str | None) -> str:
    """How a root cause is compared: its type and the first line of its message, without machine paths."""
    return f"{exc_type}: {without_env_paths(first_line(message, 500))}"


@dataclass(frozen=True)
class Defect:
    """One module that does not import in the environment, by its root cause."""

    module: str  # what the probe imported: ``datasets``, ``transformers.trainer``
    exc_type: str  # the root cause's type: ``ImportError``
    message: str  # its first line, without machine paths
    raised_by: str | None = None  # the distribution whose code raised it: ``pyarrow``
    missing: str | None = None  # the distribution a failed import named: ``rich`` (absent), ``transformers``
    versions: Mapping[str, str | None] = field(default_factory=dict)  # of those two and of any the message names

    @property
    def culprits(self) -> frozenset[str]:
        """The distributions between which the import failed."""
        return frozenset(canonical(d) for d in (self.raised_by, self.missing) if d)

    @property
    def root(self) -> str:
        """``Type: message``, as compared with a failing cell's root cause."""
        return root_text(self.exc_type, self.message)

    def summary(self) -> str:
        """One line: what fails to import, why, and whose code raised it."""
        who = f" (raised by {self.raised_by} {self.versions.get(canonical(self.raised_by)) or ''}".rstrip() + ")" \
            if self.raised_by else ""
        return f"import {self.module} fails: {self.root}{who}"

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {"module": self.module, "exc_type": self.exc_type, "message": self.message,
                "raised_by": self.raised_by, "missing": self.missing, "versions": dict(sorted(self.versions.items()))}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Defect:
        """Read the JSON form; ValueError names what is missing."""
        if not isinstance(data, Mapping) or not all(isinstance(data.get(k), str) for k in ("module", "exc_type")):
            raise ValueError(f"an environment defect needs 'module' and 'exc_type', got {data!r}")
        versions = data.get("versions") or {}
        if not isinstance(versions, Mapping):
            raise ValueError(f"defect {data['module']}: 'versions' must be a mapping")
        held = {canonical(str(k)): (None if v is None else str(v)) for k, v in versions.items()}
        return cls(data["module"], data["exc_type"], str(data.get("message") or ""), data.get("raised_by"),
                   data.get("missing"), held)


@dataclass(frozen=True)
class Health:
    """What the probe found: the modules it imported, those it did not find, and the defects."""

    probed: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    defects: tuple[Defect, ...] = ()
    seconds: float = 0.0
    error: str | None = None  # the probe itself could not run (the interpreter did not start): say why

    @property
    def ok(self) -> bool:
        """True when every probed module imported."""
        return not self.defects and self.error is None

    def roots(self) -> tuple[Defect, ...]:
        """One defect per root cause (a broken pyarrow breaks datasets, transformers.trainer and trl alike)."""
        seen: dict[str, Defect] = {}
        for d in self.defects:
            seen.setdefault(d.root, d)
        return tuple(seen.values())

    def to_json(self) -> dict[str, Any]:
        """The JSON form, as the probe writes it and the plan carries it."""
        out: dict[str, Any] = {"probed": list(self.probed), "absent": list(self.absent),
                               "defects": [d.to_json() for d in self.defects], "seconds": round(self.seconds, 2)}
        if self.error:
            out["error"] = self.error
        return out

    @classmethod
    def from_json(cls, data: Any) -> Health:
        """Read the JSON form; ValueError for anything of the wrong shape."""
        if not isinstance(data, Mapping):
            raise ValueError(f"environment health must be a mapping, got {type(data).__name__}")
        defects = data.get("defects") or []
        if not isinstance(defects, list):
            raise ValueError("environment health: 'defects' must be a list")
        return cls(tuple(map(str, data.get("probed") or ())), tuple(map(str, data.get("absent") or ())),
                   tuple(Defect.from_json(d) for d in defects), float(data.get("seconds") or 0.0),
                   data.get("error"))


def outside(defect: Defect, subject: Iterable[str]) -> bool:
    """True when the defect lies outside what a case checks: some culprit is not in its subject.

    ``import_skew`` checks that trl and peft import beside a transformers (its subject: those three);
    trl failing on ``top_k_top_p_filtering`` from transformers is its verdict, trl failing on a
    missing ``rich`` or datasets on a pyarrow built for NumPy 2 is the environment's.
    """
    wanted = {canonical(s) for s in subject}
    return not defect.culprits or not defect.culprits <= wanted


def explains(health: Health, subject: Iterable[str], exc_type: str, message: str | None) -> Defect | None:
    """The environment defect behind a failing cell's root cause, when it lies outside the case's subject."""
    text = root_text(exc_type, message)
    subject = tuple(subject)
    return next((d for d in health.defects if d.root == text and outside(d, subject)), None)


def broken_message(defect: Defect) -> str:
    """What an environment-broken cell says instead of a verdict."""
    return f"environment broken: {defect.summary()}"


@dataclass(frozen=True)
class Fix:
    """One change a repair made: a requirement added beside the pins, and why."""

    requirement: str  # ``pyarrow<26.0.0`` (a cap) or ``rich`` (an undeclared requirement added)
    package: str
    why: str  # the defect it cures, as ``Defect.summary``
    first_bad: str | None = None  # the oldest release that fails to import beside the pins
    kept: str | None = None  # the release the environment holds after the repair

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {"requirement": self.requirement, "package": self.package, "why": self.why,
                "first_bad": self.first_bad, "kept": self.kept}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fix:
        """Read the JSON form."""
        if not isinstance(data, Mapping) or not isinstance(data.get("requirement"), str):
            raise ValueError(f"a repair fix needs a 'requirement', got {data!r}")
        return cls(data["requirement"], str(data.get("package") or ""), str(data.get("why") or ""),
                   data.get("first_bad"), data.get("kept"))


@dataclass(frozen=True)
class Repair:
    """How ftcompat repaired an environment it resolved itself, and what that cost."""

    method: str  # ``cap``: each offending package capped below its first release that fails; ``asof``: by date
    fixes: tuple[Fix, ...] = ()
    before: tuple[Defect, ...] = ()  # the root causes the first probe found
    healthy: bool = False  # the probe after the repair found nothing
    steps: int = 0  # candidate versions installed and probed
    seconds: float = 0.0
    note: str = ""  # why nothing could be repaired, where nothing was

    def requirements(self) -> tuple[str, ...]:
        """What the repair adds beside the pins (``pyarrow<26.0.0``), as ``pins`` can emit it."""
        return tuple(f.requirement for f in self.fixes)

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {"method": self.method, "fixes": [f.to_json() for f in self.fixes],
                "before": [d.to_json() for d in self.before], "healthy": self.healthy, "steps": self.steps,
                "seconds": round(self.seconds, 1), "note": self.note}

    @classmethod
    def from_json(cls, data: Any) -> Repair:
        """Read the JSON form."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a repair must be a mapping, got {type(data).__name__}")
        return cls(str(data.get("method") or ""), tuple(Fix.from_json(f) for f in data.get("fixes") or ()),
                   tuple(Defect.from_json(d) for d in data.get("before") or ()), bool(data.get("healthy")),
                   int(data.get("steps") or 0), float(data.get("seconds") or 0.0), str(data.get("note") or ""))


@dataclass(frozen=True)
class EnvReport:
    """What a combo's cell file says about its environment: the probe's answer and any repair."""

    health: Health = Health()
    repair: Repair | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form, under the cell file's (and the grid combo's) ``environment`` key."""
        return {"health": self.health.to_json(), "repair": self.repair.to_json() if self.repair else None}

    @classmethod
    def from_json(cls, data: Any) -> EnvReport:
        """Read the JSON form."""
        if not isinstance(data, Mapping):
            raise ValueError(f"an environment report must be a mapping, got {type(data).__name__}")
        return cls(Health.from_json(data.get("health") or {}),
                   Repair.from_json(data["repair"]) if data.get("repair") else None)

    def lines(self) -> list[str]:
        """What the terminal and GRID.md say about the environment: repairs first, then what is still broken."""
        out = []
        if self.repair:
            for fix in self.repair.fixes:
                kept = f", now {fix.package} {fix.kept}" if fix.kept else ""
                out.append(f"repaired: {fix.requirement}{kept} (before: {fix.why})")
            if self.repair.note:
                out.append(f"not repaired: {self.repair.note}")
        if self.health.error:
            out.append(f"health probe failed: {self.health.error}")
        out += [f"environment broken: {d.summary()}" for d in self.health.roots()]
        return out
