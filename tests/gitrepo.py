"""A small git history made by a test: a pure-Python package whose commits break and fix one function."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
       "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z", "HOME": "/tmp", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity and date; return its output."""
    return subprocess.run(["git", *args], cwd=repo, env=ENV, capture_output=True, text=True, check=True).stdout.strip()


def write(repo: Path, value: int, name: str = "peft", version: str = "0.99.0.dev0") -> None:
    """The package's files: ``answer()`` returns ``value``."""
    (repo / "src" / name).mkdir(parents=True, exist_ok=True)
    (repo / "pyproject.toml").write_text(
        f'[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\n[tool.setuptools.packages.find]\nwhere = ["src"]\n')
    (repo / "src" / name / "__init__.py").write_text(f"def answer():\n    return {value}\n")


def commit(repo: Path, subject: str, value: int | None = None, touch: str | None = None) -> str:
    """Commit (the answer changed to ``value``, or a file touched); return the commit id."""
    if value is not None:
        write(repo, value)
    if touch:
        (repo / touch).write_text(subject + "\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", subject)
    return git(repo, "rev-parse", "HEAD")


def history(repo: Path) -> dict[str, str]:
    """A package ``peft`` whose ``answer()`` is 1 until the break and 2 after, fixed back to 1 later.

    main:      c0 (v0.1.0) - c1 - c2 - c3 BREAK (#3) - c4 - m5 (merge of feature) - c6 (v0.2.0)
               - c7 FIX (#7) - c8 (v0.3.0) - m9 (merge of wide) - c10 (v0.4.0)
    release:   c1 - r1 (v0.1.1, a patch release on its own branch)
    feature:   c4 - f1 - f2 (merged as m5; touches docs only)
    wide:      c8 - w1 BREAK AGAIN (merged as m9, "Merge pull request #9")
    """
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    ids = {"c0": commit(repo, "Release: 0.1.0", 1)}
    git(repo, "tag", "v0.1.0")
    ids["c1"] = commit(repo, "Add docs (#1)", touch="README.md")
    git(repo, "branch", "release-0.1")
    ids["c2"] = commit(repo, "Refactor the answer (#2)", touch="NOTES.md")
    ids["c3"] = commit(repo, "Change the answer (#3)", 2)
    ids["c4"] = commit(repo, "Tidy (#4)", touch="TIDY.md")
    git(repo, "checkout", "-q", "-b", "feature")
    ids["f1"] = commit(repo, "feature: part one", touch="F1.md")
    ids["f2"] = commit(repo, "feature: part two", touch="F2.md")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "feature", "-m", "Merge pull request #5 from someone/feature")
    ids["m5"] = git(repo, "rev-parse", "HEAD")
    ids["c6"] = commit(repo, "Release: 0.2.0", touch="VERSION")
    git(repo, "tag", "v0.2.0")
    ids["c7"] = commit(repo, "Fix the answer (#7)", 1)
    ids["c8"] = commit(repo, "Release: 0.3.0", touch="VERSION2")
    git(repo, "tag", "v0.3.0")
    git(repo, "checkout", "-q", "release-0.1")
    ids["r1"] = commit(repo, "Release: 0.1.1", touch="PATCH")
    git(repo, "tag", "v0.1.1")
    git(repo, "checkout", "-q", "-b", "wide", "main")
    ids["w1"] = commit(repo, "Answer two again", 2)
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "wide", "-m", "Merge pull request #9 from someone/wide")
    ids["m9"] = git(repo, "rev-parse", "HEAD")
    ids["c10"] = commit(repo, "After the merge (#10)", touch="AFTER")
    git(repo, "tag", "v0.4.0")
    return ids
