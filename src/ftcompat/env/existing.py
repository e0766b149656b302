"""An environment someone else owns (``ftcompat here``): run in as it is, nothing installed or written inside."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from ftcompat.core.domain import Combo
from ftcompat.env.base import Built, Log, Touches


@dataclass(frozen=True)
class Existing:
    """An interpreter and what it has installed; the harness reaches it through ``env`` (``target``), if at all."""

    kind: ClassVar[str] = "existing"
    repairs: ClassVar[bool] = False  # never changed: a broken import there is reported (``doctor``)
    touches: ClassVar[Touches] = Touches.NOTHING
    combo: Combo  # pinned to what is installed there (``flows.here.current_combo``)
    python: str
    env: Mapping[str, str] = field(default_factory=dict)

    def prepare(self, log: Log) -> Built:
        """Say what the environment lacks; nothing is built, and no cell is taken from the cache."""
        missing = [p for p, v in self.combo.pins.items() if v is None]
        if missing:
            log(f"note: not installed there: {', '.join(missing)}; cases that need them will say so")
        return Built(python=self.python, env=dict(self.env))

    def release(self) -> None:
        """Nothing: the environment was never changed."""

    def with_combo(self, combo: Combo):
        """Itself: this kind is never repaired (``repairs`` is False)."""
        return self
