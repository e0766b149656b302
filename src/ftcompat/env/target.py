"""Run the harness in someone else's environment (``ftcompat here --python``) without changing it.

Nothing is installed into the target and nothing is written inside it. The harness and its test
runner reach the interpreter from outside, the way tools that drive other environments do:

- the harness is ftcompat's own package, copied under the work folder (``run/overlay``);
- the test runner (pytest, pytest-xdist and what they need) is installed by uv with ``--target``
  into a folder of its own under the work folder, resolved for the target's Python;
- both go on ``PYTHONPATH`` of the harness's process only, and ``PYTHONDONTWRITEBYTECODE=1`` stops
  Python writing ``__pycache__`` into the target's site-packages.

What the target already has wins: a runner dependency it can import itself (``packaging``,
``pygments``) is removed from the runner's folder, so the stack under test sees its own versions.
Only the runner (pytest, pluggy, iniconfig, xdist, execnet) is always ftcompat's.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ftcompat.core.errors import InputError, MachineError
from ftcompat.env import installer, overlay

TOOLS = ("pytest>=8", "pytest-xdist>=3.5")
ALWAYS_OURS = frozenset({"pytest", "_pytest", "py", "pluggy", "iniconfig", "xdist", "execnet"})
HOME = Path(".ftcompat") / "tools"


def interpreter(python: str | None, venv: str | None) -> Path:
    """The target interpreter from ``--python PATH`` or ``--venv DIR``, checked to exist and run."""
    if venv:
        found = [p for p in (Path(venv) / "bin" / "python", Path(venv) / "Scripts" / "python.exe") if p.exists()]
        if not found:
            raise InputError(f"--venv {venv}: no bin/python in it; give the folder of a virtual environment")
        path = found[0]
    elif python is None:
        raise InputError("say which environment: --python PATH or --venv DIR")
    else:
        path = Path(python)
        if not path.exists():
            on_path = shutil.which(python)
            if not on_path:
                raise InputError(f"--python {python}: no such interpreter")
            path = Path(on_path)
    return path.absolute()  # not resolved: a venv's python is a link to the base interpreter


ANSWER_S = 120.0  # an interpreter that does not answer a one-line question in this long is not usable


def _python(path: Path, code: str, env: dict | None = None) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    try:
        proc = subprocess.run([str(path), "-c", code], capture_output=True, text=True, check=False,
                              env={**clean, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})}, timeout=ANSWER_S)
    except subprocess.TimeoutExpired:
        raise InputError(f"{path} did not answer within {ANSWER_S:g} s; is it a Python interpreter?") from None
    except OSError as exc:  # not executable, a folder, a binary for another machine
        raise InputError(f"{path} cannot be run: {exc.strerror or exc}; give a Python interpreter") from None
    if proc.returncode != 0:
        raise InputError(f"{path} does not run as a Python interpreter: {(proc.stderr or proc.stdout).strip()[-300:]}")
    return proc.stdout


def describe(path: Path, work: Path) -> dict:
    """The target's Python version, prefix and installed stack versions, read through the harness."""
    code = ("import json, sys; from ftcompat.harness.envinfo import versions; "
            "print(json.dumps({'python': '%d.%d' % sys.version_info[:2], 'prefix': sys.prefix, "
            "'versions': versions()}))")
    out = _python(path, code, {"PYTHONPATH": str(overlay.harness_dir(work))})
    try:
        found = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
    except ValueError:
        found = None
    if not isinstance(found, dict) or not {"python", "prefix", "versions"} <= set(found):
        raise InputError(f"{path} ran but did not answer like a Python interpreter (it printed "
                         f"{out.strip()[-200:]!r}); give the environment's python")
    return found


def _top_level(folder: Path) -> set[str]:
    names = set()
    for entry in folder.iterdir():
        if entry.name.endswith((".dist-info", ".data")) or entry.name.startswith(("_virtualenv", ".")):
            continue
        if entry.is_dir() or entry.suffix == ".py":
            names.add(entry.stem)
    return names


def tools_dir(path: Path, work: Path, python: str) -> Path:
    """The folder with the test runner for this target (made once per interpreter), minus what it has."""
    key = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    target = Path(work) / HOME / f"py{python}-{key}"
    if (target / "pytest").is_dir() or (target / "_pytest").is_dir():
        return target
    uv = installer.find_uv()
    if not uv:
        raise MachineError("ftcompat here --python needs uv to fetch the test runner; pip install uv")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tools-", dir=target.parent))
    cmd = [uv, "pip", "install", "--quiet", "--python", str(path), "--target", str(tmp), *TOOLS,
           *installer.index_args(dict(os.environ), "uv")]
    installer.run(cmd, dict(os.environ), log=lambda *_: None)
    names = sorted(_top_level(tmp) - ALWAYS_OURS)
    probe = f"import importlib.util, json; print(json.dumps([n for n in {names!r} if importlib.util.find_spec(n)]))"
    for name in json.loads(_python(path, probe)):  # the target's own copy is the one its stack expects
        for entry in (tmp / name, tmp / f"{name}.py"):
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
    try:
        os.rename(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def environment(path: Path, work: Path, python: str) -> dict[str, str]:
    """The variables under which the target runs the harness: our folders first on its path, no bytecode."""
    folders = [str(overlay.harness_dir(work)), str(tools_dir(path, work, python))]
    if os.environ.get("PYTHONPATH"):
        folders.append(os.environ["PYTHONPATH"])
    return {"PYTHONPATH": os.pathsep.join(folders), "PYTHONDONTWRITEBYTECODE": "1"}
