"""Install a combo's pins into its environment, and tell when that can be skipped.

With uv, in three steps:

1. **resolve** the pins to exact versions with ``uv pip compile`` (a combo that tracks the newest
   releases refreshes the index metadata, which is small; never ``--upgrade``, which in uv also
   re-downloads and re-unpacks every wheel: astral-sh/uv#5943);
2. **check the space** the wheels that are not cached yet will take;
3. **sync** the environment to exactly that lock: wheels uv already holds are hard-linked, so an
   environment that differs from a cached one in a single package costs seconds.

A pre-release combo (``prerelease:``) first asks which of its unpinned packages have a pre-release
newer than their newest release, and pins exactly those, so only the named packages take an rc or
dev release; everything else resolves as usual.

An environment built from the same inputs (and, for a tracking combo, resolving to the same lock)
is reused. Failures come out as ``NotInstallable`` (a verdict) or ``MachineError`` (not one).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ftcompat.core.domain import Combo
from ftcompat.core.errors import InputError, MachineError, NotInstallable
from ftcompat.core.redact import redact
from ftcompat.env import gitsource, installer, overlay, resolved, space, uvcache
from ftcompat.env.diagnose import summary as failure_summary  # noqa: F401 - the installer's one-line reason
from ftcompat.env.installer import find_uv, index_args  # noqa: F401 - part of this module's interface

# Packages the harness itself needs inside every pinned env; none of them touches the stack's pins.
# setuptools too: a pip-made venv on Python <= 3.11 has it and users' code relies on that without
# knowing (triton 3.1, torch 2.5's, imports it), while uv's venvs start without it.
HARNESS_REQUIREMENTS = ("pytest", "pytest-xdist", "setuptools")
STAMP = "ftcompat-stamp.json"
REUSED = "pins unchanged: reusing the environment"
REUSED_NEWEST = "the newest releases have not moved since this environment was built: reusing it"


@dataclass(frozen=True)
class InstallResult:
    """What the install did: the installer's output, whether the env was reused, the exact lock."""

    output: str
    reused: bool = False
    lock: tuple[str, ...] = ()
    ok: bool = True  # failures are exceptions; kept so callers read the same either way


def requirements(combo: Combo) -> list[str]:
    """Return everything to install in one resolve: the pins plus the harness's test runner.

    A floor combo resolves its direct requirements to their lowest allowed versions, which must
    not drag the harness's own tools back a decade, so those resolve in a second, ordinary step.
    """
    if combo.resolution != "highest":
        return combo.requirements()
    return combo.requirements() + list(HARNESS_REQUIREMENTS)


def stamp_for(combo: Combo, environ: dict, root: Path | str = "") -> dict:
    """What the environment was built from; the same stamp means the env can be reused as is."""
    return {"python": combo.python, "requirements": requirements(combo), "harness": "pth",
            "index": index_args(environ, "uv"), "resolution": combo.resolution,
            "exclude_newer": combo.exclude_newer, "harness_tools": list(HARNESS_REQUIREMENTS),
            **({"prerelease": list(combo.prerelease)} if combo.prerelease else {}),
            **({"overrides": dict(combo.overrides)} if combo.overrides else {}),
            **({"torch_backend": combo.torch_backend} if combo.torch_backend else {})}


def fingerprint(python: str, lock: tuple[str, ...]) -> str:
    """What an environment holds, as a short hash: its Python and its exact lock."""
    return hashlib.sha256("\n".join([python, *sorted(lock)]).encode()).hexdigest()[:24]


def read_stamp(venv: Path) -> dict:
    """The stamp an install left, or {} when there is none (or it is unreadable)."""
    try:
        return json.loads((venv / STAMP).read_text())
    except (OSError, ValueError):
        return {}


def same_inputs(venv: Path, combo: Combo, environ: dict, root: Path | str = "") -> bool:
    """True when the env exists and was built from exactly these pins, sources and harness."""
    if not (venv / "bin" / "python").exists():
        return False
    stamp = read_stamp(venv)
    for key in ("resolved", "lock"):
        stamp.pop(key, None)
    return stamp == stamp_for(combo, environ, root)


def can_reuse(venv: Path, combo: Combo, environ: dict, root: Path | str = "") -> bool:
    """True when the env can be reused without asking the index: same inputs, nothing tracks the newest."""
    return not combo.tracks_newest and same_inputs(venv, combo, environ, root)


def install(venv: Path, combo: Combo, root: Path, environ: dict | None = None, log=print,
            ask: Callable[[space.Estimate], None] | None = None) -> InstallResult:
    """Resolve, check the space, sync the env to the lock (or reuse it), then point it at the harness.

    The harness is this ftcompat's (``run/overlay``), also in a reused env built by an older one.
    ``ask`` sees what the install will download before anything is, and may refuse it (InputError).
    A package pinned at a git ref is pinned at the commit the ref names now, so the stamp says which.
    """
    result = _install(venv, at_commits(combo, root, log), root, environ, log, ask)
    overlay.attach(venv, root)
    return result


def at_commits(combo: Combo, root: Path, log=print) -> Combo:
    """The combo with its git refs resolved to commits; a ref that names none makes the pins not installable."""
    if not combo.git_pins:
        return combo
    try:
        pinned = gitsource.pin_commits(combo, root)
    except InputError as exc:
        raise NotInstallable(exc.message) from None
    for pkg, ref in combo.git_pins.items():
        if ref != pinned.git_pins[pkg]:
            log(f"{pkg}@{ref} is commit {pinned.git_pins[pkg]}")
    return pinned


def _install(venv: Path, combo: Combo, root: Path, environ: dict | None, log,
             ask: Callable[[space.Estimate], None] | None = None) -> InstallResult:
    environ = dict(os.environ if environ is None else environ)
    uv = find_uv()
    stamp = read_stamp(venv)
    inputs = same_inputs(venv, combo, environ, root)
    broken: dict[str, str] = {}
    if inputs and not combo.tracks_newest:
        broken = resolved.broken(venv, stamp.get("resolved") or {})
        if not broken:
            return InstallResult(REUSED, reused=True, lock=tuple(stamp.get("lock") or ()))
    if not uv:
        return _install_with_pip(venv, combo, root, environ, log)
    lock = resolve(venv, combo, environ, uv, log)
    if inputs and combo.tracks_newest and tuple(stamp.get("lock") or ()) == lock:
        broken = resolved.broken(venv, stamp.get("resolved") or {})
        if not broken:
            return InstallResult(REUSED_NEWEST, reused=True, lock=lock)
    if broken:
        log(f"the environment was changed since it was built ({'; '.join(broken.values())}): reinstalling "
            f"{', '.join(sorted(broken))}")
    cache = uvcache.cache_dir()
    est = space.estimate(lock, venv, combo.python, environ, cache)
    if est.needed:
        log(f"about {est.needed / space.GB:.1f} GB to download and unpack ({est.names()})")
    if ask is not None:
        ask(est)
    space.check(est, venv, cache, _shown(venv, root))
    (venv / STAMP).unlink(missing_ok=True)
    output = sync(venv, lock, environ, uv, log, reinstall=sorted(broken), backend=backend_args(combo))
    stamp = {**stamp_for(combo, environ, root), "lock": list(lock), "resolved": resolved.resolved(venv)}
    _write_stamp(venv, stamp)
    return InstallResult(output, lock=lock)


def resolve(venv: Path, combo: Combo, environ: dict, uv: str, log=print) -> tuple[str, ...]:
    """The exact versions the pins resolve to for this env's Python, as ``name==version`` lines."""
    reqs = requirements(combo)
    if combo.prerelease:
        newest = _compile(venv, combo, reqs, environ, uv, log, combo.resolution, prerelease="allow")
        reqs = with_prereleases(reqs, newest, combo.prerelease, log)
    stack = _compile(venv, combo, reqs, environ, uv, log, combo.resolution)
    if combo.resolution == "highest":
        return stack
    # The harness's tools at their newest, held to the stack's floor versions.
    tools = _compile(venv, combo, list(HARNESS_REQUIREMENTS), environ, uv, log, "highest", constraints=stack)
    return tuple(sorted(set(stack) | set(tools), key=str.lower))


def with_prereleases(reqs: list[str], newest: tuple[str, ...], packages: tuple[str, ...], log=print) -> list[str]:
    """``reqs`` with each of ``packages`` pinned to the pre-release ``newest`` (a lock allowing them) took, if any."""
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

    wanted = {canonicalize_name(p) for p in packages}
    picked = {}
    for line in newest:
        name, _, version = line.partition("==")
        try:
            if canonicalize_name(name) in wanted and Version(version).is_prerelease:
                picked[canonicalize_name(name)] = f"{name}=={version}"
        except InvalidVersion:
            continue
    log("pre-release lane: " + (", ".join(sorted(picked.values())) if picked else
                                f"no pre-release newer than the newest release of {', '.join(sorted(packages))}"))
    return [picked.get(canonicalize_name(r.split("=")[0]), r) for r in reqs]


def _compile(venv: Path, combo: Combo, reqs: list[str], environ: dict, uv: str, log, resolution: str,
             constraints: tuple[str, ...] = (), prerelease: str | None = None) -> tuple[str, ...]:
    cmd = [uv, "pip", "compile", "-", "--python", str(venv / "bin" / "python"), "--no-header", "--no-annotate",
           "--quiet"]
    if combo.tracks_newest:
        cmd.append("--refresh")  # index metadata only: wheels already cached are not fetched again
    if resolution != "highest":
        cmd += ["--resolution", resolution]
    if combo.exclude_newer:
        cmd += ["--exclude-newer", combo.exclude_newer]
    if prerelease:
        cmd += ["--prerelease", prerelease]
    cmd += backend_args(combo)
    with tempfile.TemporaryDirectory(prefix="ftcompat-lock-") as tmp:
        if constraints:
            path = Path(tmp) / "constraints.txt"
            path.write_text("\n".join(constraints) + "\n")
            cmd += ["-c", str(path)]
        if combo.overrides:  # what the other packages declare about these is ignored, as --no-deps would
            path = Path(tmp) / "overrides.txt"
            path.write_text("".join(f"{p}=={v}\n" for p, v in sorted(combo.overrides.items())))
            cmd += ["--override", str(path)]
        cmd += index_args(environ, "uv")
        log(redact(" ".join(cmd)) + "  < " + " ".join(reqs))
        proc = installer.run(cmd, environ, log, input="\n".join(reqs) + "\n")
    return tuple(line.strip() for line in proc.stdout.splitlines()
                 if line.strip() and not line.lstrip().startswith(("#", "-")))


def backend_args(combo: Combo) -> list[str]:
    """uv's flag for the combo's PyTorch build; the lock then names ``torch==X+cpu`` and sync must ask there too."""
    return ["--torch-backend", combo.torch_backend] if combo.torch_backend else []


def sync(venv: Path, lock: tuple[str, ...], environ: dict, uv: str, log=print, reinstall=(),
         backend: list[str] | None = None) -> str:
    """Make the env hold exactly ``lock``: install what is missing, remove what is not in it."""
    with tempfile.TemporaryDirectory(prefix="ftcompat-lock-") as tmp:
        path = Path(tmp) / "lock.txt"
        path.write_text("\n".join(lock) + "\n")
        cmd = [uv, "pip", "sync", "--python", str(venv / "bin" / "python"), str(path), *index_args(environ, "uv"),
               *(backend or [])]
        for name in reinstall:  # only what was broken is fetched again
            cmd += ["--reinstall-package", name]
        log(redact(" ".join(cmd)))
        proc = installer.run(cmd, environ, log)
    return (proc.stdout or "") + (proc.stderr or "")


def _install_with_pip(venv: Path, combo: Combo, root: Path, environ: dict, log) -> InstallResult:
    """Without uv: one pip install of the pins (pip reuses its own cache of downloads)."""
    if (combo.resolution != "highest" or combo.exclude_newer or combo.prerelease or combo.overrides
            or combo.torch_backend):
        raise MachineError("floor (resolution: lowest-direct), as-of (exclude_newer), pre-release (prerelease), "
                           "override (overrides) and torch_backend combos need uv; pip install uv")
    python = str(venv / "bin" / "python")
    cmd = [python, "-m", "pip", "install", "--disable-pip-version-check",
           *(["--upgrade"] if combo.tracks_newest else []), *index_args(environ, "pip"), *requirements(combo)]
    log(redact(" ".join(cmd)))
    proc = installer.run(cmd, environ, log)
    _write_stamp(venv, {**stamp_for(combo, environ, root), "resolved": resolved.resolved(venv)})
    return InstallResult((proc.stdout or "") + (proc.stderr or ""))


def _write_stamp(venv: Path, stamp: dict) -> None:
    (venv / STAMP).write_text(json.dumps(stamp, indent=2, sort_keys=True))


def _shown(venv: Path, root: Path) -> str:
    try:
        return str(Path(venv).resolve().relative_to(Path(root).resolve())) + "/"
    except ValueError:
        return "the environment's folder"
