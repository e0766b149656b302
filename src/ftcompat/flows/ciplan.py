"""The nightly workflow's job matrix, made from nox's own session list so the matrix is typed once.

``nox -l --json -t combo`` lists one session per combo in matrix.yaml (the noxfile registers them);
``plan`` turns that list into a GitHub Actions ``{"include": [...]}`` matrix: GPU combos on the
self-hosted runner labels, the rest on a hosted runner, and an ad-hoc entry for pins given by hand.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from ftcompat.core import selector
from ftcompat.core.errors import InputError
from ftcompat.flows.adhoc import adhoc_id, parse_pins

COMBO_TAG = "combo"  # the noxfile tags every matrix combo's session with it; render/tests lack it
GPU_TAG = "gpu"
DEFAULT_GPU_RUNNER = ["self-hosted", "gpu"]
DEFAULT_CPU_RUNNER = "ubuntu-latest"
ADHOC_PYTHON = "3.11"


class PlanError(InputError):
    """A selector, pin or runner setting that cannot make a plan."""


def split_words(text: str | list[str] | None) -> list[str]:
    """Split selectors or pins given as one string (a workflow input) or as several arguments."""
    if text is None:
        return []
    items = [text] if isinstance(text, str) else text
    return [w for item in items for w in re.split(r"[\s,]+", item) if w]


def matches(session: dict, pattern: str) -> bool:
    """True when a session's name (or, for ``tag:GLOB``, one of its tags) matches the glob."""
    if pattern.startswith("tag:"):
        return any(selector.match(pattern[4:], tag) for tag in session.get("tags") or [])
    return selector.match(pattern, session["session"])


def combo_sessions(sessions: list[dict]) -> list[dict]:
    """The sessions that run a matrix combo (tagged ``combo``), in nox's order."""
    return [s for s in sessions if COMBO_TAG in (s.get("tags") or [])]


def is_gpu(session: dict) -> bool:
    """True for a combo tagged ``gpu``: it runs on the self-hosted GPU runner."""
    return GPU_TAG in (session.get("tags") or [])


def runnable(sessions: list[dict], gpu_runner: list[str]) -> list[dict]:
    """The combo sessions this repository can run: GPU ones only where a GPU runner is configured."""
    return [s for s in combo_sessions(sessions) if gpu_runner or not is_gpu(s)]


def _entry(session: dict, gpu_runner: list[str], cpu_runner: str) -> dict:
    tags = [t for t in session.get("tags") or [] if t != COMBO_TAG]
    gpu = is_gpu(session)
    return {"combo": session["session"], "kind": "combo", "gpu": gpu,
            "runner": list(gpu_runner) if gpu else cpu_runner,
            "python": session.get("python"), "tags": tags}


def adhoc_entry(pins: list[str], cpu_runner: str) -> dict:
    """The job entry that runs ``ftcompat adhoc PINS`` (same id as the results file it writes)."""
    try:
        parsed = parse_pins(pins)
    except ValueError as exc:
        raise PlanError(str(exc)) from None
    return {"combo": adhoc_id(parsed, False, None), "kind": "adhoc", "gpu": False, "runner": cpu_runner,
            "python": ADHOC_PYTHON, "tags": ["adhoc"], "pins": " ".join(pins)}


def plan(sessions: list[dict], gpu_runner: list[str], cpu_runner: str, select: str | None,
         pins: list[str] | None = None) -> dict:
    """Return the ``{"include": [...]}`` job matrix for the selected combo sessions (and ad-hoc pins).

    ``select`` holds glob selectors over combo ids (``tag:GLOB`` selects by tag), separated by commas
    or spaces. Empty means every combo, or none when ``pins`` are given: a dispatch with pins asks
    about those pins, and names combos too only when it wants them as well. An empty ``gpu_runner``
    (the setting ``none``) leaves GPU combos out, so a repository without a GPU runner does not queue
    a job that no runner will ever take.
    """
    combos = runnable(sessions, gpu_runner)
    pins = split_words(pins)  # an empty workflow input arrives as [""]
    patterns = split_words(select) or ([] if pins else ["*"])
    unknown = [p for p in patterns if not any(matches(s, p) for s in combos)]
    if unknown:
        names = ", ".join(s["session"] for s in combos)
        raise PlanError(f"selector(s) {', '.join(map(repr, unknown))} match no combo; combos: {names}")
    include = [_entry(s, gpu_runner, cpu_runner) for s in combos if any(matches(s, p) for p in patterns)]
    if pins:
        include.append(adhoc_entry(pins, cpu_runner))
    return {"include": include}


def outputs(matrix: dict, sessions: list[dict], gpu_runner: list[str]) -> dict[str, str]:
    """Step outputs for the workflow: one matrix per job kind, whether each is empty, and completeness."""
    include = matrix["include"]
    groups = {
        "cpu": [e for e in include if e["kind"] == "combo" and not e["gpu"]],
        "gpu": [e for e in include if e["kind"] == "combo" and e["gpu"]],
        "adhoc": [e for e in include if e["kind"] == "adhoc"],
    }
    planned = {e["combo"] for e in include if e["kind"] == "combo"}
    every = {s["session"] for s in runnable(sessions, gpu_runner)}
    out = {"matrix": json.dumps(matrix, separators=(",", ":"))}
    for name, entries in groups.items():
        out[name] = json.dumps({"include": entries}, separators=(",", ":"))
        out[f"any_{name}"] = "true" if entries else "false"
    # Only a run of every combo is a grid worth publishing, recording in history and filing issues from.
    out["complete"] = "true" if planned and planned == every else "false"
    out["combos"] = " ".join(sorted(planned))
    return out


def gpu_runner_labels(text: str | None) -> list[str]:
    """Parse the GPU runner setting: a JSON list of labels, empty for the default, ``none`` for no GPU runner."""
    if not text or not text.strip():
        return list(DEFAULT_GPU_RUNNER)
    if text.strip().lower() in ("none", "[]"):
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = text.strip()  # a bare label such as gpu-runner is forgiven
    labels = [value] if isinstance(value, str) else value
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        raise PlanError(f'GPU runner must be a JSON list of runner labels, e.g. ["self-hosted","gpu"]; got {text!r}')
    return labels


def nox_sessions(noxfile: Path, env: dict | None = None) -> list[dict]:
    """Run ``nox -l --json -t combo`` on ``noxfile`` and return its session list.

    ``-t combo`` matters: a bare ``nox -l --json`` lists only the default sessions (the CPU grid), so
    combos outside it (``gpu-latest``) would silently drop out of the plan.
    """
    cmd = [sys.executable, "-m", "nox", "-f", str(noxfile), "-l", "--json", "-t", COMBO_TAG]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(noxfile).parent, env=env)
    if proc.returncode != 0:
        raise PlanError(f"{' '.join(cmd)} failed:\n{proc.stderr.strip()}")
    return json.loads(proc.stdout)
