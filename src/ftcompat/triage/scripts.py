"""Running a generated repro script as someone without ftcompat would, and reading what it printed."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

from ftcompat.core.errors import InputError
from ftcompat.core.outcome import without_env_paths
from ftcompat.env.build import find_uv


def run_script(path: Path, timeout: int = 1800, before: Path | None = None) -> tuple[int, str]:
    """Run a generated script with ``uv run`` from an empty folder, as someone without ftcompat would; a
    handoff's ``before`` (produce.py) runs there first, and when it cannot make the artifact, its run is the answer."""
    uv = find_uv()
    if not uv:
        raise InputError("uv is needed to run the script (pip install uv)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env["PYTHONUNBUFFERED"] = "1"  # one stream in the order it was written
    if os.environ.get("PIP_FIND_LINKS") and not os.environ.get("UV_FIND_LINKS"):
        env["UV_FIND_LINKS"] = os.environ["PIP_FIND_LINKS"]  # uv does not read pip's settings
    with tempfile.TemporaryDirectory(prefix="ftcompat-repro-run-") as empty:
        for source in (before, Path(path)):
            if source is None:
                continue
            script = Path(empty) / source.name
            script.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
            proc = subprocess.run([uv, "run", "--no-project", "-q", str(script)], cwd=empty, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
            if source is before and proc.returncode != 0:
                break
    return proc.returncode, proc.stdout


def verdict(rc: int, output: str) -> str:
    """What a run of repro.py showed; exit 1 alone could also be the script itself crashing."""
    if rc == 1 and "\nREPRODUCED:" in output:
        return "REPRODUCED"
    if rc == 0 and "NOT REPRODUCED" in output:
        return "did NOT reproduce (the case passed)"
    return f"could not run it (exit {rc}); see the output"


def run_traceback(output: str) -> str | None:
    """The traceback a reproduced run printed, without the machine's paths."""
    start = output.find("Traceback (most recent call last):")
    end = output.find("\nfailed", start)
    if start < 0 or end < 0:
        return None
    return clean(output[start:end])


def clean(output: str) -> str:
    """Output without the machine's folders: the temporary run folder and the env's prefix."""
    return without_env_paths(re.sub(r"/\S*?/ftcompat-repro-[\w-]+/", "", output))


def tail(text: str, lines: int) -> str:
    """The last ``lines`` lines of ``text`` (with an ellipsis line when some were cut)."""
    kept = text.rstrip().splitlines()
    return "\n".join(kept if len(kept) <= lines else ["…", *kept[-lines:]])
