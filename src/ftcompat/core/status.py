"""What a cell can say: its status and triage, the named sets of statuses, and how each is shown.

Every stage that asks "is this cell failing?" asks one of the sets below, and each set says why it
differs from the others. No other module spells a status as a string.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(str, enum.Enum):
    """What one cell of the grid says; the values are the lowercase words written to JSON."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"
    NOT_INSTALLABLE = "not-installable"
    FLAKY = "flaky"
    CRASH = "crash"
    TIMEOUT = "timeout"

    def __str__(self) -> str:
        return self.value


class Triage(str, enum.Enum):
    """What the merge makes of a cell against the registry of known issues."""

    KNOWN = "known"  # fails, and a registered known issue explains it
    NEW = "new"  # fails, and nothing registered explains it: a finding
    FIXED = "fixed?"  # a known issue covers it, but it passes: the entry may be stale

    def __str__(self) -> str:
        return self.value


S = Status

# The checked behaviour did not hold: failing-since dates, new failures in a diff, bug reports.
FAILING = frozenset({S.FAIL, S.ERROR, S.CRASH, S.TIMEOUT})
# What a reader looking for trouble wants to see (the page's "failing" filter): the failing ones and
# the flaky ones, which passed only on the automatic rerun.
NEEDS_ATTENTION = FAILING | {S.FLAKY}
# Matched against known issues: an exception the versions raise. A crash or a timeout has no
# exception of the versions to match a known issue's signature against; it stands on its own.
TRIAGED = frozenset({S.FAIL, S.ERROR})
# Run once more when their text looks transient (out of memory, network, killed). A timeout is not:
# a hang would cost its whole limit again.
RERUN_IF_TRANSIENT = frozenset({S.FAIL, S.ERROR, S.CRASH})
# Results of the versions themselves, reusable by the result cache (an error only with a real
# exception, decided in run/cache). A crash, a timeout or a missing result is an accident of the run.
REUSABLE = frozenset({S.PASS, S.FAIL, S.SKIP, S.FLAKY})
# Nothing was checked: such a cell neither qualifies a combo for pins nor is compared with another.
NOT_CHECKED = frozenset({S.SKIP, S.NOT_INSTALLABLE})


@dataclass(frozen=True)
class Look:
    """How a status or triage is shown: GRID.md's emoji label, the page's symbol and CSS class, the word."""

    emoji: str
    symbol: str
    css: str
    word: str
    legend: str


# Page symbols are plain Unicode (DejaVu/Liberation), not emoji: a CI runner's headless Chromium has no
# colour-emoji font. GRID.md keeps the emoji.
LOOK = {
    S.PASS: Look("✅", "✓", "pass", "pass", "the checked behaviour works in this combo"),
    S.FAIL: Look("❌", "✗", "fail", "fail",
                 "the checked behaviour is broken; the cell shows the exception or failed assertion"),
    S.ERROR: Look("💥", "!", "error", "error", "the case could not set itself up, so nothing was checked"),
    S.SKIP: Look("⏭️", "–", "skip", "skip",
                 "the case cannot run here (no CUDA, no network, no 4-bit on this device); reason given"),
    S.NOT_INSTALLABLE: Look("🚫", "⊘", "not-installable", "not installable",
                            "the combo's pins do not resolve or install; no case ran"),
    S.FLAKY: Look("🔀", "≈", "flaky", "flaky",
                  "failed with a transient error (out of memory, timeout, killed worker), then passed on the "
                  "automatic rerun with the same versions; the first failure is shown"),
    S.CRASH: Look("☠️", "†", "crash", "crash",
                  "the case's process died (segfault, abort, killed for memory); the last lines of its output "
                  "are kept; the rest of the combo still ran"),
    S.TIMEOUT: Look("⏱️", "◷", "timeout", "timeout",
                    "the case ran past its time limit (the config's `cases.<id>.timeout`) and was stopped; "
                    "the rest of the combo still ran"),
}
TRIAGE_LOOK = {
    Triage.KNOWN: Look("📌", "⚑", "known", "known issue",
                       "fails, and a registered known issue (the config's `known_issues`) explains it; see its link"),
    Triage.FIXED: Look("❓", "✓?", "fixed", "fixed?",
                       "a known issue covers this cell but it passes: the entry may be stale"),
}
