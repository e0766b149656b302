"""A package's git history on this machine: refs resolved to commits, ranges listed, a commit's files read.

Pins at a git ref (``core.gitref``) are resolved here, when an environment is built, so the
environment's stamp names the commit and a moved branch rebuilds it. A source is a folder (a clone
or a bare mirror, read in place) or a URL (cloned once, bare, under ``.ftcompat/git/``).
Every problem with what was asked (no such ref, not a repository) is ``InputError``; git itself
missing or a remote out of reach is the machine's (``MachineError``).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ftcompat.core import gitref
from ftcompat.core.domain import Combo, frozen_map
from ftcompat.core.errors import InputError, MachineError

CLONES = Path(".ftcompat") / "git"
# A file in a commit's tree that means the package compiles when built from it (C, C++, CUDA, Cython, Rust).
COMPILED_RE = re.compile(r"(\.(c|cc|cpp|cxx|cu|cuh|pyx|rs)$|(^|/)(CMakeLists\.txt|Cargo\.toml)$)")
NETWORK_HINTS = ("Could not resolve host", "unable to access", "Connection refused", "timed out",
                 "Network is unreachable")


def _git(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    git = shutil.which("git")
    if git is None:
        raise MachineError("git is not installed: a pin at a git ref needs it (apt-get install git)")
    # The caller's environment (proxies, credentials helpers' HOME), less any GIT_DIR-like variable a hook or
    # a shell left set, which would point every command at another repository; never a password prompt.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    try:
        return subprocess.run([git, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
                              env={**env, "GIT_TERMINAL_PROMPT": "0"})
    except subprocess.TimeoutExpired:
        raise MachineError(f"git {' '.join(args[:1])} took over {timeout:.0f} s (a remote out of reach?)") from None


def _out(proc: subprocess.CompletedProcess) -> str:
    return (proc.stdout or "").strip()


@dataclass(frozen=True)
class Repo:
    """One package's history, readable with git on this machine."""

    pkg: str
    source: str  # as given: a folder or a URL (for links and messages)
    path: Path  # the git directory git reads (the folder itself, or ftcompat's bare clone of a URL)

    def git(self, *args: str) -> subprocess.CompletedProcess:
        """Run git on this repository."""
        return _git("--git-dir", str(self.path), *args) if self.bare else _git("-C", str(self.path), *args)

    @property
    def bare(self) -> bool:
        """True when ``path`` is a git directory itself (a mirror), not a work tree."""
        return (self.path / "HEAD").is_file() and (self.path / "objects").is_dir()

    def commit(self, ref: str) -> str:
        """The 40-character commit ``ref`` names here; InputError naming the package when it names none."""
        problem = gitref.ref_problem(ref)
        if problem:
            raise InputError(f"{self.pkg}@{ref}: {problem}")
        for candidate in (ref, f"refs/tags/{ref}", f"refs/remotes/origin/{ref}"):
            proc = self.git("rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}")
            if proc.returncode == 0 and gitref.is_commit(_out(proc)):
                return _out(proc)
        raise InputError(f"{self.pkg}@{ref}: no branch, tag or commit {ref!r} in {self.shown}"
                         f"{_near(ref, self.refs())}")

    def refs(self) -> list[str]:
        """Branch and tag names, for a near-miss hint."""
        proc = self.git("for-each-ref", "--format=%(refname:short)", "refs/heads", "refs/tags", "refs/remotes")
        return _out(proc).splitlines()

    @property
    def shown(self) -> str:
        """The source as a message names it: a URL as is, a folder by its name (no machine path)."""
        return self.source if gitref.is_url(self.source) else f"the git repository {Path(self.source).name!r}"

    @property
    def shown_source(self) -> str:
        """The source as a result file names it: a URL as is, a folder by its name only."""
        return self.source if gitref.is_url(self.source) else f"a local clone ({Path(self.source).name})"

    def is_ancestor(self, older: str, newer: str) -> bool:
        """True when ``older`` is in ``newer``'s history."""
        return self.git("merge-base", "--is-ancestor", older, newer).returncode == 0

    def merge_base(self, a: str, b: str) -> str | None:
        """The best common ancestor of two commits, or None for histories that never meet."""
        proc = self.git("merge-base", a, b)
        return _out(proc) if proc.returncode == 0 and _out(proc) else None

    def first_parent_path(self, base: str, tip: str) -> list[str]:
        """The commits from ``base`` (excluded) to ``tip`` (included) along first parents, oldest first.

        First parents are the branch ``tip`` is on: a merged pull request is one step, its merge
        commit, tested as such (a squash-merged one is a single commit anyway).
        """
        proc = self.git("rev-list", "--first-parent", "--reverse", "--ancestry-path", f"{base}..{tip}")
        found = _out(proc).splitlines()
        if not found or found[-1] != tip:  # base is not on tip's first-parent line: take every path's commits
            proc = self.git("rev-list", "--topo-order", "--reverse", "--ancestry-path", f"{base}..{tip}")
            found = _out(proc).splitlines()
        return found

    def info(self, sha: str) -> dict:
        """A commit's subject, author date and number of parents."""
        proc = self.git("show", "-s", "--format=%s%x00%cI%x00%P", sha)
        subject, date, parents = (_out(proc).split("\x00") + ["", "", ""])[:3]
        return {"sha": sha, "subject": subject, "date": date, "parents": len(parents.split())}

    def compiled_files(self, sha: str) -> list[str]:
        """Files in the commit's tree that a build would compile; none for a pure-Python package."""
        proc = self.git("ls-tree", "-r", "--name-only", sha)
        return [f for f in _out(proc).splitlines() if COMPILED_RE.search(f) and not f.startswith(("tests/", "docs/",
                                                                                                  "examples/"))]

    def tag_for(self, version: str) -> str | None:
        """The tag a release was made from (``v0.20.0`` or ``0.20.0``), or None."""
        for tag in (f"v{version}", version):
            if self.git("rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}").returncode == 0:
                return tag
        return None


def _near(ref: str, refs: list[str]) -> str:
    # Not core.hints.suggest: with no close match it lists every choice, and a history has thousands of branches.
    close = difflib.get_close_matches(ref, refs, n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""


def open_repo(pkg: str, source: str, root: Path) -> Repo:
    """The repository a source names, cloned (bare) under ``.ftcompat/git`` first when it is a URL."""
    if not gitref.is_url(source):
        folder = Path(source).expanduser()
        if not folder.is_dir():
            raise InputError(f"the source of {pkg}, {source}: no such folder")
        proc = _git("-C", str(folder), "rev-parse", "--git-dir")
        if proc.returncode != 0:
            raise InputError(f"the source of {pkg}, {Path(source).name}: not a git repository "
                             "(give a clone or a mirror of the package's history, or its URL)")
        return Repo(pkg, source, folder.resolve())
    clone = root / CLONES / f"{pkg}.git"
    if (clone / "HEAD").is_file():
        proc = _git("--git-dir", str(clone), "fetch", "--quiet", "--tags", "--force", "origin",
                    "+refs/heads/*:refs/heads/*")
    else:
        clone.parent.mkdir(parents=True, exist_ok=True)
        proc = _git("clone", "--quiet", "--bare", source, str(clone))
    if proc.returncode != 0:
        err = (proc.stderr or "").strip().splitlines()
        line = err[-1] if err else f"git exited {proc.returncode}"
        if any(h in (proc.stderr or "") for h in NETWORK_HINTS):
            raise MachineError(f"cannot reach {source} for {pkg}'s history: {line}")
        raise InputError(f"--source {pkg}={source}: {line}")
    return Repo(pkg, source, clone.resolve())


def remote_commit(pkg: str, source: str, ref: str) -> str:
    """Resolve a ref of a remote repository with ``git ls-remote`` (no clone); a commit is its own answer."""
    if gitref.is_commit(ref):
        return ref
    proc = _git("ls-remote", source, ref, f"refs/tags/{ref}^{{}}", timeout=120)
    if proc.returncode != 0:
        line = ((proc.stderr or "").strip().splitlines() or [f"git exited {proc.returncode}"])[-1]
        if any(h in (proc.stderr or "") for h in NETWORK_HINTS):
            raise MachineError(f"cannot reach {source} to resolve {pkg}@{ref}: {line}")
        raise InputError(f"{pkg}@{ref}: {source}: {line}")
    lines = [line.split("\t") for line in _out(proc).splitlines() if "\t" in line]
    # An annotated tag's peeled line (^{}) names the commit; prefer it over the tag object itself.
    peeled = [sha for sha, name in lines if name.endswith("^{}")]
    if peeled or lines:
        return (peeled or [lines[0][0]])[0]
    raise InputError(f"{pkg}@{ref}: no branch or tag {ref!r} in {source}")


def resolve(pkg: str, ref: str, source: str, root: Path) -> str:
    """The commit ``ref`` names in ``source``: read in place for a folder, asked of the remote for a URL."""
    problem = gitref.ref_problem(ref)
    if problem:
        raise InputError(f"{pkg}@{ref}: {problem}")
    if gitref.is_url(source):
        return remote_commit(pkg, source, ref)
    return open_repo(pkg, source, root).commit(ref)


def check_pure(repo: Repo, sha: str) -> None:
    """InputError when the commit's tree compiles on build (torch, bitsandbytes): a step would need a toolchain."""
    compiled = repo.compiled_files(sha)
    if compiled:
        raise InputError(f"{repo.pkg} at {sha[:12]} is not pure Python ({len(compiled)} files to compile, e.g. "
                         f"{compiled[0]}): ftcompat builds a commit's checkout with no compiler; pin a release "
                         "of it instead")


def pin_commits(combo: Combo, root: Path) -> Combo:
    """The combo with every git ref resolved to its commit (``"@main"`` -> ``"@<sha>"``); the rest unchanged."""
    refs = combo.git_pins
    if not refs:
        return combo
    pins = dict(combo.pins)
    for pkg, ref in refs.items():
        source = gitref.source_of(pkg, combo.sources)
        if source is None:
            raise InputError(f"{combo.id}: {pkg} is pinned at {ref} but no source says where its history is "
                             f"(sources: {{{pkg}: PATH_OR_URL}} or --source {pkg}=PATH_OR_URL)")
        pins[pkg] = gitref.pin(resolve(pkg, ref, source, root))
    return dataclasses.replace(combo, pins=frozen_map(pins))
