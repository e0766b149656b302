"""What a case calls while it runs: name its steps, record details, mark setup."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


class CaseSetupError(Exception):
    """Raised when a case could not set itself up; the cell becomes ``error``, not ``fail``."""


@dataclass
class CellLog:
    """What a running case has said about itself so far."""

    step: str | None = None
    failed_step: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    steps: list[str] = field(default_factory=list)


_current: contextvars.ContextVar[CellLog | None] = contextvars.ContextVar("ftcompat_cell", default=None)


def begin() -> CellLog:
    """Start a fresh log for the case about to run (called by the plugin)."""
    log = CellLog()
    _current.set(log)
    return log


def current() -> CellLog:
    """Return the log of the running case, or a throwaway one outside the plugin."""
    log = _current.get()
    if log is None:
        log = begin()
    return log


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    """Name the call a case is about to make, so a failure says which call raised."""
    log = current()
    log.step = name
    log.steps.append(name)
    try:
        yield
    except BaseException:
        if log.failed_step is None:
            log.failed_step = name
        raise
    finally:
        log.step = None


@contextlib.contextmanager
def setup(name: str = "setup") -> Iterator[None]:
    """Run preparation whose failure means the case could not run (status ``error``)."""
    import pytest

    log = current()
    try:
        with step(name):
            yield
    except (pytest.skip.Exception, CaseSetupError):
        raise
    except Exception as exc:
        log.failed_step = name
        raise CaseSetupError(f"{type(exc).__name__}: {exc}") from exc


def record(**details: Any) -> None:
    """Attach JSON-serialisable facts (counts, losses, versions seen) to the cell."""
    current().details.update(details)
