"""Checks that run before anything is installed or written, so bad input fails in seconds with one line.

- ``check_versions``: every pinned version exists on the index the installer will use (and every
  package exists), with the nearest real versions when one does not; pure, given a release lister.
- ``resolve_check``: the pins resolve together, asked of uv without installing anything.
- ``check_writable``: the results folder takes a file before hours of cases are spent on it.

``ftcompat validate --online`` runs the first two over the whole matrix (``validate_online``).
"""

from __future__ import annotations

import difflib
import errno
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ftcompat.config.checks import Problem
from ftcompat.config.matrix import KNOWN_PACKAGES
from ftcompat.core.domain import Combo, Matrix
from ftcompat.core.errors import MachineError
from ftcompat.env import build
from ftcompat.env.pkgindex import IndexLister, ListingError, NotOnIndex, default_lister

Lister = Callable[[str], list[str]]


@dataclass(frozen=True)
class Unchecked(Problem):
    """A check that could not be made; not evidence that the input is wrong."""


class NotWritable(MachineError):
    """The results folder cannot take a file."""


# ---- versions on the index -------------------------------------------------------------------------


def check_versions(matrix: Matrix, lister: Lister) -> list[Problem]:
    """Every combo's pins checked against the index: packages that are not there, versions that are not."""
    problems: list[Problem] = []
    for i, combo in enumerate(matrix.environments):  # a pair's row has its consumer's pins, checked there
        problems += check_combo(combo, lister, f"combos[{i}].pins")
    return problems


def check_combo(combo: Combo, lister: Lister, path: str = "pins") -> list[Problem]:
    """One combo's pins checked against the index (``path`` prefixes each problem's location)."""
    problems: list[Problem] = []
    where = getattr(lister, "where", "the package index")
    for pkg, version in sorted(combo.pins.items()):
        key = f"{path}.{pkg}"
        if pkg in combo.git_pins:
            continue  # built from its git history, not taken from the index (env.gitsource checks the ref)
        try:
            known = lister(pkg)
        except NotOnIndex:
            problems.append(Problem(key, f"no package {pkg!r} on {where}{_close_packages(pkg)}"))
            continue
        except ListingError as exc:
            problems.append(Unchecked(key, f"could not check {pkg} on {where}: {exc}"))
            continue
        if version is not None and not is_listed(version, known):
            problems.append(Problem(key, f"{pkg} {version} is not on {where}; nearest: "
                                         f"{', '.join(nearest(version, known)) or 'no releases at all'}"))
    return problems


def unknown_packages(combo: Combo, lister: Lister | None = None) -> list[str]:
    """The pinned packages the index does not have at all (a misspelt name), each with the closest names."""
    lister = lister or default_lister()
    where = getattr(lister, "where", "the package index")
    out = []
    for pkg, version in sorted(combo.pins.items()):
        if version is None or pkg in combo.git_pins:
            continue  # the stack's own names, left to resolve; a git pin's history is checked by env.gitsource
        try:
            lister(pkg)
        except NotOnIndex:
            out.append(f"no package {pkg!r} on {where}{_close_packages(pkg)}")
        except ListingError:
            continue  # the installer will say what it finds
    return out


def is_listed(version: str, known: Iterable[str]) -> bool:
    """True when ``==version`` can match a listed release (``2.13.0`` matches ``2.13.0+cpu``)."""
    from packaging.version import InvalidVersion, Version

    try:
        want = Version(version)
    except InvalidVersion:
        return False
    for text in known:
        try:
            got = Version(text)
        except InvalidVersion:
            continue
        if got == want or (not want.local and Version(got.public) == want):
            return True
    return False


def nearest(version: str, known: Iterable[str], n: int = 4) -> list[str]:
    """The releases closest to ``version``: a look-alike, the newest ones below it, and one above."""
    from packaging.version import InvalidVersion, Version

    want = Version(version)
    parsed = {}
    for text in known:
        try:
            v = Version(text)
        except InvalidVersion:
            continue
        if v.is_prerelease and not want.is_prerelease:
            continue  # a final pin is never near an rc
        if not want.local:  # 2.13.0 and 2.13.0+cpu are one release to someone pinning 2.13.0
            v = Version(v.public)
        parsed[str(v)] = v
    below = sorted((t for t, v in parsed.items() if v < want), key=parsed.__getitem__, reverse=True)
    above = sorted((t for t, v in parsed.items() if v > want), key=parsed.__getitem__)
    # A typo such as 4.5.62 sits far from 4.56.2 in version order; its digits give it away.
    digits = re.sub(r"\D", "", version)
    typo = [t for t in parsed if re.sub(r"\D", "", t) == digits]
    return list(dict.fromkeys([*typo, *below[:2], *above[:1], *below[2:]]))[:n]


def _close_packages(name: str) -> str:
    close = difflib.get_close_matches(name, KNOWN_PACKAGES, n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close and close[0] != name else ""


def pins_problem(combo: Combo, lister: Lister | None = None) -> str | None:
    """One line naming the pins that are not on the index, for a not-installable cell; else None.

    Meant for just before a fresh install: it turns a resolver dump about a typo into
    ``transformers 4.99.0 is not on <index>; nearest: 4.57.6, ...``. An index that cannot be asked
    is not a reason to stop: the installer has its cache and will say what it finds.
    """
    found = [p for p in check_combo(combo, lister or default_lister()) if not isinstance(p, Unchecked)]
    return "; ".join(f"{p.path}: {p.message}" for p in found) or None


# ---- pins that cannot resolve together --------------------------------------------------------------


def resolve_check(combo: Combo, environ: Mapping[str, str] | None = None, uv: str | None = None,
                  timeout: float = 300.0) -> str | None:
    """None when the combo's pins resolve together, else uv's own reason; nothing is installed."""
    environ = dict(os.environ if environ is None else environ)
    uv = uv or build.find_uv()
    if not uv:
        raise RuntimeError("uv is needed to check that pins resolve together (pip install uv)")
    cmd = [uv, "pip", "compile", "-", "--python-version", combo.python, "--no-header", "--quiet",
           "--output-file", os.devnull]
    if combo.resolution != "highest":
        cmd += ["--resolution", combo.resolution]
    if combo.exclude_newer:
        cmd += ["--exclude-newer", combo.exclude_newer]
    cmd += build.index_args(environ, "uv")
    with tempfile.TemporaryDirectory(prefix="ftcompat-check-") as tmp:
        if combo.overrides:
            path = Path(tmp) / "overrides.txt"
            path.write_text("".join(f"{p}=={v}\n" for p, v in sorted(combo.overrides.items())))
            cmd += ["--override", str(path)]
        proc = subprocess.run(cmd, input="\n".join(build.requirements(combo)) + "\n", capture_output=True,
                              text=True, env=environ, timeout=timeout)
    if proc.returncode == 0:
        return None
    return uv_reason(proc.stdout + proc.stderr)


_BOX = re.compile(r"^[\s×╰─▶│|]+")


def uv_reason(output: str) -> str:
    """uv's explanation on one line: ``No solution found ...: Because trl==0.23.0 depends on ...``."""
    lines = [_BOX.sub("", line).strip() for line in output.splitlines() if line.strip()]
    lines = [re.sub(r"^(error|Error|cause|hint):\s*", "", line) for line in lines]
    text = " ".join(lines)
    return text.replace("dependencies ", "dependencies: ", 1) if text.startswith("No solution") else text


# ---- the results folder -----------------------------------------------------------------------------


def check_writable(folder: Path | str, hint: str = "pass --results to write the results elsewhere") -> None:
    """Raise NotWritable unless a file can be created in ``folder`` (made if missing); nothing else changes."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".ftcompat-write-probe-")
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            Path(probe).unlink(missing_ok=True)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # not a permission problem: say what it is
            what = "no space left on device" if exc.errno == errno.ENOSPC else "disk quota exceeded"
            raise NotWritable(f"{folder}: {what}; free some space or {hint}") from exc
        raise NotWritable(f"{folder} is not writable ({type(exc).__name__}: {exc}): fix its permissions "
                          f"or {hint}") from exc


# ---- ftcompat validate --online ---------------------------------------------------------------------


def _ask(resolve, i: int, combo: Combo) -> Problem | None:
    path = f"combos[{i}].pins"
    try:
        reason = resolve(combo)
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        return Unchecked(path, f"could not ask the resolver: {exc}")
    return Problem(path, f"the pins of {combo.id!r} cannot be installed together: {reason}") if reason else None


def validate_online(matrix: Matrix, lister: Lister | None = None, resolve=resolve_check, log=print) -> int:
    """Check every combo on the index and with the resolver; print each problem; 0 when all is well.

    Returns 2 when a pin is wrong (the exit status of an invalid matrix), 4 when only the checks
    themselves could not be made (no network: a machine failure, errors.MachineError's code).
    """
    lister = lister or IndexLister()
    problems = check_versions(matrix, lister)
    bad_pins = {p.path.rsplit(".pins", 1)[0] for p in problems if not isinstance(p, Unchecked)}
    # A missing version already explains why a combo cannot resolve; the rest ask uv, a few at a
    # time (each is mostly waiting on the index), in matrix order for the report.
    todo = [(i, c) for i, c in enumerate(matrix.environments) if f"combos[{i}]" not in bad_pins]
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda item: _ask(resolve, *item), todo))
    problems += [p for p in answers if p]
    for problem in problems:
        log(problem.render(matrix.source))
    if not problems:
        where = getattr(lister, "where", "the index")
        log(f"{matrix.source}: every pin of {len(matrix.environments)} combos is on {where} and each combo resolves")
        return 0
    return 4 if all(isinstance(p, Unchecked) for p in problems) else 2
