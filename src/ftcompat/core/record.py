"""The cell record: the contract between the harness, the controller and everything that reads a grid.

One frozen type, made and read only through ``Record(...)``, ``Record.from_dict`` and
``Record.to_dict``. The JSON form is the one docs/grid-schema.md describes, key for key: the keys
every record has, plus the optional ones a record carries only once something set them (a cached
result, a rerun, the merge's triage, render's failing-since), so a file read and written again is
byte-for-byte the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ftcompat.core.errors import InputError
from ftcompat.core.status import FAILING, Status, Triage

# Every record has these keys.
ALWAYS = ("id", "combo", "case", "variant", "model", "status", "signature", "exc_type", "message", "step",
          "details", "traceback", "duration_s", "finished_at", "env")
# A record has these once something sets them: the harness (origin, log, cache_key), the result cache
# (cached), the transient rerun (reruns, rerun_status, first_signature), a machine failure
# (not_refreshed), the merge (known_issue, triage), render (failing_since) and the harness when the health
# probe's finding explains the failure (environment: the defect, ``core.health.Defect``'s JSON), and a
# handoff cell (handoff: the producer's environment and outcome, and which side failed).
OPTIONAL = ("origin", "log", "cache_key", "cached", "reruns", "rerun_status", "first_signature", "not_refreshed",
            "known_issue", "triage", "failing_since", "environment", "handoff")


def _plain(value):
    """JSON-able copies of mappings and sequences, so a record never shares mutable data."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Record:
    """One cell's result: what ran, what happened, and where."""

    id: str
    combo: str
    case: str
    variant: str
    model: str | None
    status: Status
    signature: str | None = None
    exc_type: str | None = None
    message: str | None = None
    step: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    traceback: str | None = None
    duration_s: float = 0.0
    finished_at: str | None = None
    env: Mapping[str, Any] = field(default_factory=dict)
    origin: Mapping[str, Any] | None = None
    log: str | None = None
    cache_key: str | None = None
    cached: bool | None = None
    reruns: int | None = None
    rerun_status: Status | None = None
    first_signature: str | None = None
    not_refreshed: Mapping[str, Any] | None = None
    known_issue: Mapping[str, Any] | None = None
    triage: Triage | None = None
    failing_since: str | None = None
    environment: Mapping[str, Any] | None = None
    handoff: Mapping[str, Any] | None = None
    present: frozenset[str] = frozenset()  # the optional keys this record's JSON carries

    # ---- reading and writing ---------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping) -> Record:
        """A record from its JSON form; InputError names what is missing or wrong."""
        if not isinstance(data, Mapping):
            raise InputError(f"a cell record must be an object, got {type(data).__name__}")
        missing = [k for k in ("id", "combo", "case", "variant", "status") if k not in data]
        if missing:
            raise InputError(f"cell record {data.get('id', '?')!r} lacks {', '.join(missing)}")
        try:
            status = Status(data["status"])
            rerun = Status(data["rerun_status"]) if data.get("rerun_status") else None
            triage = Triage(data["triage"]) if data.get("triage") else None
        except ValueError as exc:
            raise InputError(f"cell record {data['id']!r}: {exc}") from None
        values = {k: _plain(data.get(k)) for k in (*ALWAYS, *OPTIONAL) if k in data}
        values.update(status=status, rerun_status=rerun, triage=triage)
        values["details"] = values.get("details") or {}
        values["env"] = values.get("env") or {}
        if values.get("duration_s") is None:
            values["duration_s"] = 0.0
        return cls(**values, present=frozenset(k for k in OPTIONAL if k in data))

    def to_dict(self) -> dict:
        """The JSON form: every record key, then the optional keys this record carries."""
        out = {k: getattr(self, k) for k in ALWAYS}
        out.update({k: getattr(self, k) for k in OPTIONAL if k in self.present})
        for key in ("status", "rerun_status", "triage"):
            if isinstance(out.get(key), Status | Triage):
                out[key] = out[key].value
        return _plain(out)

    def with_(self, **changes) -> Record:
        """A copy with ``changes``; an optional key given here is carried from now on."""
        present = self.present | (set(changes) & set(OPTIONAL))
        return dataclasses.replace(self, **changes, present=frozenset(present))

    def without(self, *keys: str) -> Record:
        """A copy that no longer carries the optional ``keys``."""
        blank: dict[str, Any] = {k: None for k in keys}  # every optional key's field accepts None
        return dataclasses.replace(self, **blank, present=self.present - set(keys))

    # ---- what readers ask ------------------------------------------------------------------------

    @property
    def column(self) -> str:
        """The grid column: ``case[variant@model]``."""
        return self.id.split("::", 1)[1]

    @property
    def versions(self) -> Mapping[str, str | None]:
        """The resolved version of each stack package in the environment the cell ran in."""
        return (self.env or {}).get("versions") or {}

    @property
    def failing(self) -> bool:
        """True when the checked behaviour did not hold (``status.FAILING``)."""
        return self.status in FAILING
