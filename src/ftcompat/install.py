"""Install a combo's pins into its environment with uv (or pip), and tell when that can be skipped."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ftcompat import envcheck
from ftcompat.domain import Combo
from ftcompat.redact import redact

# Packages the harness itself needs inside every pinned env; none of them touches the stack's pins.
# setuptools too: a pip-made venv on Python <= 3.11 has it and users' code relies on that without
# knowing (triton 3.1, torch 2.5's, imports it), while uv's venvs start without it.
HARNESS_REQUIREMENTS = ("pytest", "pytest-xdist", "setuptools")
STAMP = "ftcompat-stamp.json"


@dataclass(frozen=True)
class InstallResult:
    """Whether the pins installed, and what the installer said."""

    ok: bool
    output: str
    reused: bool = False


def requirements(combo: Combo) -> list[str]:
    """Return everything to install in one resolve: the pins plus the harness's test runner.

    A floor combo resolves its direct requirements to their lowest allowed versions, which must
    not drag the harness's own tools back a decade, so those go in a second, ordinary step there.
    """
    if combo.resolution != "highest":
        return combo.requirements()
    return combo.requirements() + list(HARNESS_REQUIREMENTS)


def index_args(environ: dict, installer: str) -> list[str]:
    """Pass the machine's wheel sources on to the installer that does not read them itself.

    uv does not read pip's PIP_* settings and pip does not read UV_*, and a machine's own torch
    wheel usually lives behind exactly one of them.
    """
    prefix = "PIP_" if installer == "uv" else "UV_"
    flags = {"FIND_LINKS": "--find-links", "INDEX_URL": "--index-url",
             "EXTRA_INDEX_URL": "--extra-index-url"}
    args = []
    for var, flag in flags.items():
        for value in environ.get(prefix + var, "").split():
            args += [flag, value]
    return args


def find_uv() -> str | None:
    """Return the uv binary next to this interpreter, on PATH, or None."""
    local = Path(sys.executable).parent / "uv"
    if local.exists():
        return str(local)
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except Exception:  # noqa: BLE001 - no uv package: fall back to PATH, then pip
        return shutil.which("uv")


def install_command(venv: Path, reqs: list[str], environ: dict, upgrade: bool,
                    uv: str | None, resolution: str = "highest",
                    exclude_newer: str | None = None) -> list[str]:
    """Return the command that installs ``reqs`` into ``venv`` in one resolve."""
    python = str(venv / "bin" / "python")
    if uv:
        cmd = [uv, "pip", "install", "--python", python]
        installer = "uv"
    else:
        if resolution != "highest" or exclude_newer:
            raise RuntimeError("floor (resolution: lowest-direct) and as-of (exclude_newer) combos need uv")
        cmd = [python, "-m", "pip", "install", "--disable-pip-version-check"]
        installer = "pip"
    if upgrade:
        cmd.append("--upgrade")
    if resolution != "highest":
        cmd += ["--resolution", resolution]
    if exclude_newer:
        cmd += ["--exclude-newer", exclude_newer]
    return cmd + index_args(environ, installer) + reqs


def stamp_for(combo: Combo, environ: dict, root: Path | str = "") -> dict:
    """What the environment was built from; the same stamp means the env can be reused as is."""
    return {"python": combo.python, "requirements": requirements(combo), "harness_root": str(root),
            "index": index_args(environ, "uv"), "resolution": combo.resolution,
            "exclude_newer": combo.exclude_newer, "harness": list(HARNESS_REQUIREMENTS)}


def read_stamp(venv: Path) -> dict:
    """The stamp an install left, or {} when there is none (or it is unreadable)."""
    try:
        return json.loads((venv / STAMP).read_text())
    except (OSError, ValueError):
        return {}


def can_reuse(venv: Path, combo: Combo, environ: dict, root: Path | str = "") -> bool:
    """True when the env was built from identical pins and none of them tracks the newest release."""
    if combo.tracks_newest or not (venv / "bin" / "python").exists():
        return False
    stamp = read_stamp(venv)
    stamp.pop("resolved", None)
    return stamp == stamp_for(combo, environ, root)


def install(venv: Path, combo: Combo, root: Path, environ: dict | None = None,
            log=print) -> InstallResult:
    """Install the pins, then the harness without dependencies so it can never move a pin."""
    environ = dict(os.environ if environ is None else environ)
    repair = False
    if can_reuse(venv, combo, environ, root):
        broken = envcheck.problems(venv, read_stamp(venv).get("resolved") or {})
        if not broken:
            return InstallResult(True, "pins unchanged: reusing the environment", reused=True)
        log(f"the environment was changed since it was built ({'; '.join(broken)}): reinstalling")
        repair = True
    (venv / STAMP).unlink(missing_ok=True)
    uv = find_uv()
    cmd = install_command(venv, requirements(combo), environ, combo.tracks_newest, uv,
                          combo.resolution, combo.exclude_newer)
    if repair:
        cmd.append("--reinstall" if uv else "--force-reinstall")
    log(redact(" ".join(cmd)))  # an index URL may carry a password
    proc = subprocess.run(cmd, capture_output=True, text=True, env=environ)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        return InstallResult(False, output)
    if combo.resolution != "highest":
        tools = install_command(venv, list(HARNESS_REQUIREMENTS), environ, False, uv)
        log(" ".join(tools))
        subprocess.run(tools, check=True, capture_output=True, text=True, env=environ)
    harness = install_command(venv, ["--no-deps", "-e", str(root)], environ, False, uv)
    log(" ".join(harness))
    subprocess.run(harness, check=True, capture_output=True, text=True, env=environ)
    stamp = {**stamp_for(combo, environ, root), "resolved": envcheck.resolved(venv)}
    (venv / STAMP).write_text(json.dumps(stamp, indent=2, sort_keys=True))
    return InstallResult(True, output)


_NOISE = re.compile(r"^[\s×╰─▶│|]+")


def failure_summary(output: str) -> str:
    """Return the installer's own one-line reason: uv's ``No solution found`` chain, pip's ERROR."""
    lines = [line.rstrip() for line in output.splitlines() if line.strip()]
    keep = [i for i, line in enumerate(lines)
            if re.search(r"(×|error:|ERROR:|No solution found|Because )", line)]
    if not keep:
        return lines[-1].strip() if lines else "installer failed without output"
    parts = [_NOISE.sub("", lines[i]).strip() for i in keep[:2]]
    return " ".join(p for p in parts if p)
