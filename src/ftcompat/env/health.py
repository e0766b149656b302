"""Run the health probe in a prepared environment (controller side), reusing its answer for an unchanged one.

The probe imports torch, transformers, peft and trl (about 20 s on a 2-core machine), so its answer
is kept under ``.ftcompat/health/`` by the environment's fingerprint (its exact lock), the modules
asked for and the probe's own source: an environment reused as it is is not probed again. One whose
content is unknown (someone else's, ``here``) is probed every time, and nothing is written inside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from ftcompat.core.cellfile import atomic_write, dumps
from ftcompat.core.health import Health
from ftcompat.core.imports import file_of
from ftcompat.core.outcome import without_env_paths
from ftcompat.env.base import Built

HOME = Path(".ftcompat") / "health"
TIMEOUT = 600.0  # an import that hangs (a driver probe, a lock) must not hold the run forever
_SOURCES = ("ftcompat.harness.health", "ftcompat.core.health", "ftcompat.core.outcome")


def command(python: str, out: str, modules: Iterable[str] = (), only: bool = False, every: bool = False) -> list[str]:
    """The probe's command line in the environment's interpreter."""
    cmd = [python, "-m", "ftcompat.harness.health", out]
    for m in modules:
        cmd += ["--module", m]
    return cmd + (["--only"] if only else []) + (["--all"] if every else [])


def _key(fingerprint: str, modules: tuple[str, ...]) -> str:
    h = hashlib.sha256(fingerprint.encode() + b"\0" + "\0".join(modules).encode())
    for name in _SOURCES:
        path = file_of(name)
        h.update(path.read_bytes() if path else name.encode())
    return h.hexdigest()[:24]


def probe(built: Built, modules: Iterable[str] = (), only: bool = False, every: bool = False,
          environ: Mapping[str, str] | None = None, timeout: float = TIMEOUT) -> Health:
    """Run the probe in the environment and read its answer; a probe that cannot run says why in ``error``."""
    env = {**(os.environ if environ is None else environ), **built.env, "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory(prefix="ftcompat-health-") as tmp:
        out = Path(tmp) / "health.json"
        try:
            proc = subprocess.run(command(built.python, str(out), modules, only, every), env=env, timeout=timeout,
                                  capture_output=True, text=True, check=False)
        except subprocess.TimeoutExpired:
            return Health(error=f"the health probe ran past {timeout:g} s (an import hangs)")
        except OSError as exc:
            return Health(error=f"the interpreter could not be started: {exc.strerror or exc}")
        try:
            return Health.from_json(json.loads(out.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            tail = without_env_paths((proc.stderr or proc.stdout or "").strip()[-600:])
            return Health(error=f"the health probe exited {proc.returncode} without an answer: {tail or 'no output'}")


def check(root: Path, built: Built, modules: Iterable[str] = (), log=print) -> Health:
    """The environment's health, probed or (for an unchanged environment) as probed before; logged when broken."""
    modules = tuple(sorted(set(modules)))
    path = Path(root) / HOME / f"{_key(built.fingerprint, modules)}.json" if built.fingerprint else None
    if path is not None and path.is_file():
        try:
            return Health.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            pass  # damaged: probe again
    found = probe(built, modules)
    if path is not None and found.error is None:
        atomic_write(path, dumps(found.to_json()))
    for line in describe(found):
        log(line)
    return found


def describe(found: Health) -> list[str]:
    """What a broken environment's log says: one line per root cause."""
    if found.error:
        return [f"environment health: the probe failed: {found.error}"]
    return [f"environment broken: {d.summary()}" for d in found.roots()]
