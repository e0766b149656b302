"""Outcome vocabulary and the pure rules that turn what a case did into a cell status."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ftcompat.core.status import Status

# Failures that say more about the machine than the stack: such a cell is run once more.
TRANSIENT = re.compile(
    r"out of memory|OutOfMemoryError|CUDA error: out of memory|MemoryError|Killed|WorkerCrashed|worker .*crashed"
    r"|node down|timed? ?out|TimeoutError|ReadTimeout|ConnectTimeout|Connection (?:reset|refused|aborted)"
    r"|Temporary failure in name resolution|503 Service Unavailable|502 Bad Gateway",
    re.IGNORECASE,
)


def is_transient(signature: str | None) -> bool:
    """True when a failure's text matches a transient pattern worth one automatic rerun."""
    return bool(TRANSIENT.search(signature or ""))

# Exceptions that mean the harness or its setup broke, never the behaviour under test.
# A refused trust_remote_code is the harness's policy stopping the case, not the stack failing.
SETUP_ERROR_TYPES = frozenset({"CaseSetupError", "RemoteCodeRefused"})


@dataclass(frozen=True)
class Outcome:
    """A classified result: status plus the text a user would search upstream for."""

    status: Status
    signature: str = ""
    exc_type: str | None = None
    message: str | None = None

    def to_dict(self) -> dict:
        """Return the JSON form with lowercase status."""
        return {
            "status": self.status.value,
            "signature": self.signature,
            "exc_type": self.exc_type,
            "message": self.message,
        }


def root_cause(exc: BaseException) -> BaseException:
    """Follow an exception's chain to the error that started it (import wrappers hide it)."""
    seen = set()
    while (nxt := exc.__cause__ or exc.__context__) is not None and id(nxt) not in seen:
        seen.add(id(exc))
        exc = nxt
    return exc


# Terminal colour codes some libraries put in messages (torch's weights_only error bolds a sentence).
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def first_line(text: str | None, limit: int = 300) -> str:
    """Return the first non-empty line of ``text`` without terminal colour codes, cut to ``limit`` characters."""
    for line in _ANSI.sub("", text or "").splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


_SITE = re.compile(r"(?:[A-Za-z]:)?[/\\][^\s'\"()]*?[/\\](?:site|dist)-packages[/\\]")


def without_env_paths(text: str) -> str:
    """Drop the environment's own prefix from paths (``.../site-packages/trl/__init__.py``).

    The same ImportError then reads the same in every combo, and nobody pastes a machine's
    virtualenv path into an upstream search.
    """
    return _SITE.sub("site-packages/", text)


def signature_of(exc_type: str, message: str | None) -> str:
    """Format an exception the way users paste it into an issue search: ``Type: first line``."""
    line = without_env_paths(first_line(message))
    return f"{exc_type}: {line}" if line else exc_type


def classify(
    phase: str,
    pytest_outcome: str,
    exc_type: str | None = None,
    message: str | None = None,
    cause_type: str | None = None,
    cause_message: str | None = None,
    skip_reason: str | None = None,
) -> Outcome:
    """Turn one pytest phase report into an outcome.

    ``phase`` is setup/call/teardown; a failure outside the call phase, or a ``CaseSetupError``
    inside it, means the case never reached the behaviour it checks, so it is an error. For a
    ``CaseSetupError`` the signature shows the exception underneath it.
    """
    if pytest_outcome == "passed":
        return Outcome(Status.PASS)
    if pytest_outcome == "skipped":
        reason = first_line(skip_reason) or "skipped"
        return Outcome(Status.SKIP, signature=reason, message=reason)
    exc_type = exc_type or "UnknownError"
    if exc_type in SETUP_ERROR_TYPES and cause_type:
        return Outcome(
            Status.ERROR, signature_of(cause_type, cause_message), cause_type, first_line(cause_message)
        )
    status = Status.FAIL if phase == "call" and exc_type not in SETUP_ERROR_TYPES else Status.ERROR
    return Outcome(status, signature_of(exc_type, message), exc_type, first_line(message))
