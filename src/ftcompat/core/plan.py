"""The plan: what the controller tells the harness to run in one environment, the JSON both halves share.

The controller writes it (``config.plan.harness_plan``, then the cache keys); the harness reads it
back with ``Plan.from_json`` inside the environment, where a plan written by hand or by another
version of ftcompat is checked once, at the edge, instead of at every ``.get``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ftcompat.core.health import Health


class PlanError(ValueError):
    """A plan file the harness cannot read: it names the key and what is wrong with it."""


@dataclass(frozen=True)
class PlannedCombo:
    """The combo the plan is for, as the harness records it in each cell."""

    id: str = "adhoc"
    python: str | None = None
    pins: Mapping[str, str | None] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlannedCase:
    """One case of the plan: the models its cells take and its time limit per cell."""

    models: tuple[str, ...] = ()
    timeout: float | None = None
    subject: tuple[str, ...] = ()  # what the case checks among the imports (``core.health.outside``)


@dataclass(frozen=True)
class PlannedHandoff:
    """Which half of a handoff this environment plays and the folder the artifacts pass through."""

    side: str  # "produce": write each cell's artifact; "consume": load and use it
    folder: str  # one subfolder per cell: ``<case>/<variant>@<model>``

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise PlanError(f"handoff.side: {self.side!r} is not one of {', '.join(SIDES)}")


SIDES = ("produce", "consume")


@dataclass(frozen=True)
class Plan:
    """What runs in one environment: the combo, its cases and their models, where cells go."""

    combo: PlannedCombo = PlannedCombo()
    cases: Mapping[str, PlannedCase] = field(default_factory=dict)
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # ``ModelSpec.to_plan()`` by name
    out: str | None = None  # the cell file (the harness's --ftcompat-out wins)
    work_dir: str | None = None  # tiny models and tokenizers are built here
    cache_keys: Mapping[str, str] = field(default_factory=dict)  # cell id -> its result-cache key
    health: Health = Health()  # what the probe found before the cells ran
    handoff: PlannedHandoff | None = None  # set when the cases are one half of a handoff

    def case(self, case_id: str) -> PlannedCase:
        """The planned case, or an empty one for a case outside the plan (pytest then makes no cell of it)."""
        return self.cases.get(case_id) or PlannedCase()

    def to_json(self) -> dict[str, Any]:
        """The JSON form, as the plan file holds it."""
        out: dict[str, Any] = {
            "combo": {"id": self.combo.id, "python": self.combo.python, "pins": dict(self.combo.pins),
                      "tags": list(self.combo.tags)},
            "cases": {c: {"models": list(p.models), "timeout": p.timeout, "subject": list(p.subject)}
                      for c, p in self.cases.items()},
            "models": {m: dict(spec) for m, spec in self.models.items()},
            "out": self.out,
            "work_dir": self.work_dir,
        }
        if self.cache_keys:
            out["cache_keys"] = dict(self.cache_keys)
        if self.health != Health():
            out["health"] = self.health.to_json()
        if self.handoff:
            out["handoff"] = {"side": self.handoff.side, "folder": self.handoff.folder}
        return out

    @classmethod
    def from_json(cls, data: Any) -> Plan:
        """Read a plan file's JSON; PlanError naming the key for anything of the wrong shape."""
        data = _mapping(data, "the plan")
        combo = _mapping(data.get("combo") or {}, "combo")
        cases = {str(c): PlannedCase(tuple(map(str, _list(_mapping(v, f"cases.{c}").get("models") or [],
                                                            f"cases.{c}.models"))),
                                     _number(_mapping(v, f"cases.{c}").get("timeout"), f"cases.{c}.timeout"),
                                     tuple(map(str, _list(v.get("subject") or [], f"cases.{c}.subject"))))
                 for c, v in _mapping(data.get("cases") or {}, "cases").items()}
        try:
            health = Health.from_json(data["health"]) if data.get("health") else Health()
        except ValueError as exc:
            raise PlanError(f"health: {exc}") from None
        models = {str(m): _mapping(v, f"models.{m}") for m, v in _mapping(data.get("models") or {}, "models").items()}
        keys = {str(k): str(v) for k, v in _mapping(data.get("cache_keys") or {}, "cache_keys").items()}
        handoff = None
        if data.get("handoff") is not None:
            raw = _mapping(data["handoff"], "handoff")
            handoff = PlannedHandoff(str(raw.get("side")), _text(raw.get("folder"), "handoff.folder") or "")
        return cls(PlannedCombo(str(combo.get("id") or "adhoc"), combo.get("python"),
                                dict(_mapping(combo.get("pins") or {}, "combo.pins")),
                                tuple(map(str, _list(combo.get("tags") or [], "combo.tags")))),
                   cases, models, _text(data.get("out"), "out"), _text(data.get("work_dir"), "work_dir"), keys,
                   health, handoff)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PlanError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise PlanError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PlanError(f"{where}: expected seconds, got {value!r}")
    return float(value)


def _text(value: Any, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise PlanError(f"{where}: expected a string, got {type(value).__name__}")
    return value
