"""Tell a real not-installable from a machine failure in what an installer printed.

"These pins cannot be installed" is a verdict about versions and goes into the grid. "The disk is
full", "the index did not answer" or "the installer was killed" is about the machine: it must
never be recorded as a verdict, and a network error is worth a few more tries. Pure: text in,
classification out.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class Kind(str, enum.Enum):
    """Whose fault an install failure is."""

    NOT_INSTALLABLE = "not-installable"  # the versions': a verdict that goes into the grid
    MACHINE = "machine"  # the machine's: never a verdict


NOT_INSTALLABLE, MACHINE = Kind.NOT_INSTALLABLE, Kind.MACHINE

# What the machine did wrong, most specific first; each with what to tell the user.
_MACHINE = (
    (r"No space left on device|os error 28\b|ENOSPC", "no space left on device",
     "free some space (`ftcompat disk` shows what the environments take; `ftcompat clean` removes the ones no "
     "combo uses, `ftcompat clean --prune-uv-cache` uv's dangling cache entries) and run again", False),
    (r"Disk quota exceeded|os error 122\b|EDQUOT", "disk quota exceeded",
     "free some space or raise the quota, then run again", False),
    (r"Read-only file system|os error 30\b", "read-only file system",
     "point UV_CACHE_DIR and the project at a writable disk", False),
    (r"Failed to (?:write to|read from) the client cache|Failed to (?:create|read|write) .*cache", "uv's cache "
     "could not be used", "check the disk and the permissions of uv's cache (`uv cache dir`), then run again", False),
    (r"Permission denied|os error 13\b", "permission denied",
     "check the permissions of the environment folder and of uv's cache", False),
    (r"Too many open files|os error 24\b", "too many open files", "raise `ulimit -n` and run again", False),
    (r"401 Unauthorized|403 Forbidden|lack of valid authentication credentials",
     "the package index refused the credentials", "check the index URL and its credentials", False),
    # --torch-backend / torch_backend: torch comes from PyTorch's own index, which may be the one out of reach
    (r"Failed to fetch:?\s*`?https://download\.pytorch\.org", "PyTorch's index could not be reached",
     "check the network to download.pytorch.org (--torch-backend / torch_backend take torch from there), or leave "
     "the backend out and pin a torch whose wheel your find-links hold (PIP_FIND_LINKS)", True),
    (r"error sending request|dns error|failed to lookup address|Name or service not known|"
     r"Temporary failure in name resolution|Connection (?:reset|refused|aborted|closed)|tcp connect error|"
     r"Network is unreachable|No route to host|timed out|deadline has elapsed|HTTP status server error|"
     r"(?:HTTP|status|status code) 50[0234]\b|Service Unavailable|Bad Gateway|Gateway Timeout|"
     r"error decoding response body|"
     r"request or response body error|unexpected end of file|Failed to fetch|Could not fetch|"
     r"Failed to download|Max retries exceeded|NewConnectionError|ReadTimeout|ConnectTimeout|SSLError|"
     r"certificate verify failed|Connection broken", "the package index could not be reached or broke off",
     "check the network and the index (PIP_INDEX_URL / UV_INDEX_URL), then run again", True),
)
_MACHINE_RE = [(re.compile(p, re.IGNORECASE), what, todo, transient) for p, what, todo, transient in _MACHINE]

# What only the versions themselves can cause: no solution, no such release, no wheel for here.
_VERDICT = re.compile(
    r"No solution found|unsatisfiable|not found in the package registry|there is no version of|"
    r"no versions? of .* (?:match|available)|Could not find a version that satisfies|No matching distribution|"
    r"has no wheels with a matching|only has wheels|doesn't have a source distribution or wheel|"
    r"is not available for|requires-python|Requires-Python|Failed to build|ResolutionImpossible|"
    r"conflicting dependencies|versions have conflicting",
    re.IGNORECASE,
)

KILLED_CODES = (-9, -15, 137, 143)


@dataclass(frozen=True)
class Failure:
    """Why an install failed: ``kind`` says whether it is a verdict about the versions or the machine's fault."""

    kind: Kind
    reason: str
    todo: str = ""
    transient: bool = False

    @property
    def machine(self) -> bool:
        """True when the machine, not the versions, made the install fail."""
        return self.kind == MACHINE

    def message(self) -> str:
        """One line for a log or a cell: what failed and what to do."""
        return f"{self.reason}; {self.todo}" if self.todo else self.reason


def classify(output: str, returncode: int | None = None) -> Failure:
    """Classify a failed installer run from its output and exit status."""
    output = output or ""
    if returncode in KILLED_CODES or re.search(r"^Killed\b", output, re.MULTILINE):
        return Failure(MACHINE, f"the installer was killed (exit status {returncode}; out of memory?): "
                       f"{detail(output)}", "check the machine's memory and run again")
    # The machine is asked first: pip prints "Could not find a version" after failing to reach the
    # index, and uv's "Failed to download" hides a full disk underneath. Resolver verdicts name no
    # such trouble.
    for pattern, what, todo, transient in _MACHINE_RE:
        if pattern.search(output):
            return Failure(MACHINE, f"{what}: {detail(output)}", todo, transient)
    if _VERDICT.search(output):
        return Failure(NOT_INSTALLABLE, summary(output))
    return Failure(MACHINE, f"the installer failed for a reason ftcompat does not know: {detail(output)}",
                   "read the installer's output; nothing was recorded about these versions")


_NOISE = re.compile(r"^[\s×╰─▶│|]+")
_PREFIX = re.compile(r"^(?:error|cause|hint|Caused by):\s*")  # uv's words; pip's ERROR: stays


def _clean(line: str) -> str:
    return _PREFIX.sub("", _NOISE.sub("", line).strip())


def summary(output: str) -> str:
    """The installer's own reason on one line: uv's ``No solution found`` chain, pip's ERROR."""
    lines = [line.rstrip() for line in (output or "").splitlines() if line.strip()]
    keep = [i for i, line in enumerate(lines)
            if re.search(r"(×|error:|ERROR:|No solution found|Because )", line)]
    if not keep:
        return lines[-1].strip() if lines else "installer failed without output"
    parts = [_clean(lines[i]) for i in keep[:2]]
    text = " ".join(p for p in parts if p)
    return text.replace("dependencies ", "dependencies: ", 1) if text.startswith("No solution") else text


def detail(output: str, limit: int = 400) -> str:
    """What a machine failure looked like: the error line and its causes, on one line."""
    lines = [_clean(line) for line in (output or "").splitlines() if line.strip()]
    keep = [line for line in lines if re.search(r"error|cause|Failed|denied|space|Killed|timed out|refused", line,
                                               re.IGNORECASE) and not line.startswith("Using Python")]
    text = " ".join(dict.fromkeys(keep or lines[-1:])) or "no output"
    return text if len(text) <= limit else text[: limit - 1] + "…"
