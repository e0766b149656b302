"""Running a pipeline: stages in order, each taking the state so far and returning it with its part added.

Modelled on nox's ``workflow.execute`` over ``tasks.py``: a stage is a function ``state -> state``; a
stage that leaves nothing more to do sets ``done``; what a stage holds open (a lock) goes on the
state's ``exits`` and is closed after the last stage, whatever happened.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar


class Staged(Protocol):
    """What every pipeline's state has: why it stopped early, if it did, and what to close at the end."""

    @property
    def done(self) -> str | None:
        """Set by a stage after which nothing is left to do, saying why."""
        ...

    @property
    def exits(self) -> contextlib.ExitStack:
        """What the stages hold open until the pipeline ends."""
        ...


S = TypeVar("S", bound=Staged)


def execute(stages: Iterable[Callable[[S], S]], state: S) -> S:
    """Run the stages in order until one says it is done; what a stage held open is closed at the end."""
    with state.exits:
        for stage in stages:
            state = stage(state)
            if state.done:
                break
    return state
