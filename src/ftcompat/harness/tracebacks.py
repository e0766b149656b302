"""What a cell keeps of an exception: the message with its root cause, a clean traceback, where it was raised."""

from __future__ import annotations

import re
import traceback

from ftcompat.core import outcome as oc


def with_root(exc: BaseException) -> str:
    """The message, completed with the root cause where it only points at one.

    transformers' lazy imports raise ``RuntimeError: Failed to import X because of the following
    error (look up to see its traceback):``; the error worth searching for is the one underneath.
    """
    message = str(exc)
    head = oc.first_line(message)
    if not head.endswith(":"):
        return message
    root = oc.root_cause(exc)
    if root is exc:
        return message
    return f"{head} {type(root).__name__}: {oc.first_line(str(root))}"


# Frames of the test runner itself say nothing about the bug; they are dropped from tracebacks.
_RUNNER = re.compile(r"[/\\](_pytest|pluggy|xdist|execnet)[/\\]")
_CAUSED = "\nThe above exception was the direct cause of the following exception:\n\n"
_DURING = "\nDuring handling of the above exception, another exception occurred:\n\n"
_PACKAGE = re.compile(r"(?:site|dist)-packages[/\\]([A-Za-z0-9_]+)[/\\]")


def frames(exc: BaseException) -> list[traceback.FrameSummary]:
    """The frames of ``exc``'s traceback, without the test runner's own."""
    return [f for f in traceback.extract_tb(exc.__traceback__) if not _RUNNER.search(f.filename)]


def native_traceback(exc: BaseException, limit: int = 8000) -> str:
    """Python's own traceback of ``exc`` and its causes, without runner frames or env paths."""
    chain: list[tuple[BaseException, str | None]] = []
    seen: set[int] = set()
    link: str | None = None
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        link = _CAUSED if current.__cause__ is not None else _DURING
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    parts = []
    for item, link in reversed(chain):
        parts += ["Traceback (most recent call last):\n", *traceback.format_list(frames(item)),
                  *traceback.format_exception_only(type(item), item)]
        if link:
            parts.append(link)
    text = oc.without_env_paths("".join(parts))
    return text if len(text) <= limit else "…" + text[-limit:]


def origin_of(exc: BaseException) -> dict | None:
    """Where the error was raised: the innermost frame in an installed package, else the innermost.

    Bug reports go to the project whose code raised; remote code from a model repo counts as
    ``transformers_modules``.
    """
    found = frames(oc.root_cause(exc))
    if not found:
        return None
    for frame in reversed(found):
        m = _PACKAGE.search(frame.filename)
        package = m.group(1) if m else ("transformers_modules" if "transformers_modules" in frame.filename else None)
        if package and package != "ftcompat":
            return _where(frame, package)
    return _where(found[-1], None)


def _where(frame: traceback.FrameSummary, package: str | None) -> dict:
    return {"package": package, "file": oc.without_env_paths(frame.filename), "line": frame.lineno,
            "function": frame.name}
