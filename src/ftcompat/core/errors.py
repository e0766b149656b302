"""One error type per exit code: the command line prints the message and exits with the type's code.

Modelled on cibuildwheel's ``errors.py``. Each class says what kind of thing went wrong, so a
script or a CI job can tell "your input is wrong" from "these versions cannot be installed" from
"the machine got in the way, try again" without reading the text. Subclasses keep a standard
library base where callers already catch one (``ValueError``, ``OSError``).

Outcomes inside the harness (a refused ``trust_remote_code``, a case's setup error) are cell
results, never exits, and are not here.

| code | type | meaning |
|---|---|---|
| 0 | | done |
| 1 | ``NoAnswer`` | the command worked and the answer is no (no combo qualifies, nothing found) |
| 2 | ``InputError`` | bad input: arguments, matrix.yaml, a grid or result file; nothing was run |
| 3 | ``NotInstallable`` | the pins asked for cannot be installed (no solution, no such version) |
| 4 | ``MachineError`` | the machine failed: disk full, network or index down, installer killed |
| 5 | ``Busy`` | another run holds the combo's lock and did not finish in time |
| 130 | | interrupted (Ctrl-C); finished cells are kept |
"""

from __future__ import annotations


class FtcompatError(Exception):
    """Base of every error the command line turns into one message and an exit code."""

    return_code = 1

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.message = message
        self.detail = detail  # e.g. the installer's full output, for the log; never the one-line message

    def __str__(self) -> str:
        return self.message


class NoAnswer(FtcompatError):
    """The command ran and found no answer: no combo qualifies, no grid kept yet."""

    return_code = 1


class InputError(FtcompatError, ValueError):
    """Bad input, named with where it is and what is wrong; nothing was run or written."""

    return_code = 2


class NotInstallable(FtcompatError):
    """The pins cannot be installed together, or a pinned release does not exist: a verdict."""

    return_code = 3


class MachineError(FtcompatError, OSError):
    """The machine got in the way (no space, no network, a killed process); never a verdict.

    Earlier results are kept; the message says what failed and what to do.
    """

    return_code = 4

    def __init__(self, message: str, detail: str = "", errno: int | None = None):
        FtcompatError.__init__(self, message, detail)
        self.errno = errno


class Busy(FtcompatError):
    """Another ftcompat run holds this combo and did not let go in time."""

    return_code = 5


INTERRUPTED = 130  # the shell's own code for Ctrl-C
