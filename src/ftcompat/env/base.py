"""The ``Environment`` protocol: what every kind of environment the cases run in offers the one runner.

Modelled on nox's ``ProcessEnv`` behind ``VirtualEnv``/``PassthroughEnv``: the runner
(``runner.run``) knows only this protocol. A kind says what it may touch, ``prepare``s itself into a
``Built`` (the interpreter, its resolved versions, the variables the harness needs there) and
``release``s what it holds. Adding a kind of environment (a git ref of an upstream package, one half
of a handoff) is one class here, not a new path through the code.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from ftcompat.core.domain import Combo

Log = Callable[[str], None]


class Touches(str, enum.Enum):
    """What preparing and running an environment may change on the machine."""

    OWN_FOLDER = "its own folder"  # ftcompat made it and may install into it, reuse it, evict it
    NOTHING = "nothing"  # someone else's environment: read, never written (``here``)


@dataclass(frozen=True)
class Built:
    """A prepared environment: where the harness runs and what it runs against."""

    python: str  # the interpreter the harness is started with
    versions: Mapping[str, str | None] | None = None  # resolved versions; None: unknown, no cell is taken from cache
    env: Mapping[str, str] = field(default_factory=dict)  # variables every harness command gets (PYTHONPATH, ...)
    fingerprint: str | None = None  # its exact content (the lock's hash); None: unknown, probed every time


class Environment(Protocol):
    """One environment a combo's cases run in.

    ``prepare`` raises ``NotInstallable`` when the pins cannot be installed (a result: the runner
    records it in the cells) and ``MachineError`` when the machine failed (not a result: the run
    stops, the earlier cells kept). ``release`` is called once, after the cells ran or not.
    """

    kind: ClassVar[str]
    touches: ClassVar[Touches]
    # True for a kind that resolved the unpinned packages itself (ad-hoc, a bisection step): a package it
    # chose that breaks an import is its own mistake, repaired before any cell runs (``runner.repairs``).
    repairs: ClassVar[bool]

    @property
    def combo(self) -> Combo:
        """The combo this environment holds."""
        ...

    def prepare(self, log: Log) -> Built:
        """Build the environment, or reuse it, and say what it is."""
        ...

    def release(self) -> None:
        """Give back what ``prepare`` took that is not kept (a bisection step's folder)."""
        ...

    def with_combo(self, combo: Combo) -> Environment:
        """The same kind and folder, to be prepared for ``combo`` (a repair adds requirements or a date to it)."""
        ...
