"""Open or update one GitHub issue per new regression, from ``ftcompat diff --issues`` payloads, with ``gh``.

An open issue labelled ``ftcompat-regression`` whose title contains the cell id is that cell's issue:
it gets a comment; otherwise one is opened. One listing is matched here rather than through GitHub's
issue search, which tokenizes titles, and cell ids are full of ``:``, ``[`` and ``@``. Titles and
bodies go to ``gh`` as arguments and files, never through a shell.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from ftcompat.core.errors import MachineError

LABEL = "ftcompat-regression"
LABEL_HELP = "A cell that passed in the previous grid and fails now"


def _gh(run: Callable, *args: str) -> str:
    proc = run(["gh", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0 and args[:2] != ("label", "create"):  # an existing label is fine
        why = (proc.stderr or "").strip()
        raise MachineError(f"gh {' '.join(args[:2])} failed with status {proc.returncode}: {why}")
    return proc.stdout or ""


def file_issues(payloads: list[dict], run_url: str = "", run: Callable = subprocess.run) -> list[str]:
    """Comment on each regressed cell's open issue, or open one; return what was done, one line each."""
    if not payloads:
        return ["No new regressions."]
    for label in sorted({label for p in payloads for label in p.get("labels", [LABEL])}):
        _gh(run, "label", "create", label, "--color", "B60205", "--description", LABEL_HELP)
    listed = json.loads(_gh(run, "issue", "list", "--label", LABEL, "--state", "open", "--limit", "1000",
                            "--json", "number,title") or "[]")
    done = []
    with tempfile.TemporaryDirectory(prefix="ftcompat-issue-") as tmp:
        body = Path(tmp) / "body.md"
        for p in payloads:
            body.write_text(p["body"] + (f"\n\n_Seen in run {run_url}._\n" if run_url else "\n"), encoding="utf-8")
            number = next((i["number"] for i in listed if p["cell"] in i["title"]), None)
            if number is not None:
                _gh(run, "issue", "comment", str(number), "--body-file", str(body))
                done.append(f"commented on #{number}: {p['cell']}")
            else:
                _gh(run, "issue", "create", "--title", p["title"], "--body-file", str(body),
                    "--label", ",".join(p.get("labels", [LABEL])))
                done.append(f"opened: {p['cell']}")
    return done
