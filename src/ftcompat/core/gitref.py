"""A package pinned at a git ref instead of a release: ``trl: "@main"``, ``trl@v0.17.0`` on a command line.

A pin whose value starts with ``@`` names a branch, a tag or a commit of the package's git history.
The history is the package's public repository unless a source says where else (a local clone or a
mirror: ``sources:`` in the config, ``--source PKG=PATH_OR_URL``). The ref is resolved to a commit
when the environment is built (``env.gitsource``), and what ran is recorded as the package's own
version with the commit as its local label: ``0.17.0.dev0+g294f35b``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MARK = "@"
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
# A ref as git allows it on a command line, without what would end or escape a requirement string.
REF_RE = re.compile(r"^(?![-./])[A-Za-z0-9._/+-]{1,200}(?<![./])$")
# The packages whose history is public and pure Python: a commit's checkout builds with no compiler.
PUBLIC = {
    "transformers": "https://github.com/huggingface/transformers",
    "trl": "https://github.com/huggingface/trl",
    "peft": "https://github.com/huggingface/peft",
    "accelerate": "https://github.com/huggingface/accelerate",
    "datasets": "https://github.com/huggingface/datasets",
    "huggingface_hub": "https://github.com/huggingface/huggingface_hub",
}
# Packages whose build compiles (C++, CUDA, Rust): a commit of theirs is not built here, only a release.
COMPILED = frozenset({"torch", "bitsandbytes", "tokenizers", "safetensors", "triton", "numpy", "deepspeed",
                      "flash-attn", "flash_attn", "xformers", "torchvision", "torchaudio", "vllm"})
# A subject's pull request: a squash merge ends it in ``(#1234)``, a merge commit says ``Merge pull request #1234``.
PR_RE = re.compile(r"\(#(\d+)\)\s*$|^Merge pull request #(\d+)\b")


def ref_of(value: Any) -> str | None:
    """The git ref a pin names (``"@main"`` -> ``main``), or None for a release pin."""
    if isinstance(value, str) and value.startswith(MARK):
        return value[len(MARK):]
    return None


def pin(ref: str) -> str:
    """The pin value for a ref (``main`` -> ``"@main"``)."""
    return MARK + ref


def is_commit(ref: str | None) -> bool:
    """True for a full 40-character commit id, which never moves (a branch or tag can)."""
    return bool(ref) and bool(SHA_RE.match(str(ref)))


def ref_problem(ref: str) -> str | None:
    """Why ``ref`` cannot be a git ref in a pin, or None."""
    if REF_RE.match(ref) and ".." not in ref and "@{" not in ref:
        return None
    return f"{ref!r} is not a git ref (a branch, a tag or a 40-character commit, e.g. main, v0.17.0)"


def pin_problem(pkg: str, ref: str) -> str | None:
    """Why ``pkg`` cannot be pinned at ``ref``, or None."""
    if pkg in COMPILED:
        return (f"{pkg} is not pure Python: a commit of it needs a compiler and its build toolchain; pin a "
                f"release of {pkg} (only pure-Python packages such as {', '.join(sorted(PUBLIC))} take a git ref)")
    return ref_problem(ref)


def source_of(pkg: str, sources: Mapping[str, str]) -> str | None:
    """Where ``pkg``'s history is: the source given for it, else its public repository, else None."""
    return sources.get(pkg) or PUBLIC.get(pkg)


def is_url(source: str) -> bool:
    """True for a remote repository's address; anything else is a folder on this machine."""
    return bool(re.match(r"^[a-z][a-z0-9+.-]*://", source)) or bool(re.match(r"^[\w.-]+@[\w.-]+:", source))


def url_of(source: str) -> str:
    """The address uv and git fetch from: a folder as ``file://`` with its absolute path, a URL as is."""
    return source if is_url(source) else Path(source).resolve().as_uri()


def requirement(pkg: str, ref: str, source: str) -> str:
    """The requirement uv installs a package at a ref from: ``trl @ git+https://...@<ref>``."""
    return f"{pkg} @ git+{url_of(source)}@{ref}"


def commit_version(version: str, commit: str) -> str:
    """The package's own version with the commit as its local label: ``0.17.0.dev0+g294f35b``."""
    label = f"g{commit[:7]}"
    return f"{version}.{label}" if "+" in version else f"{version}+{label}"


def commit_of(version: str | None) -> str | None:
    """The short commit a recorded version carries (``0.17.0.dev0+g294f35b`` -> ``294f35b``), or None."""
    m = re.search(r"[+.]g([0-9a-f]{7,40})$", version or "")
    return m.group(1) if m else None


def pinned_requirement(pkg: str, version: str) -> str:
    """The requirement that installs what a recorded version ran: ``pkg==X``, or the commit it was built from."""
    commit = commit_of(version)
    if commit and pkg in PUBLIC:
        return requirement(pkg, commit, PUBLIC[pkg])
    return f"{pkg}=={version.split('+', 1)[0]}"


def direct_commit(direct_url: str | None) -> str | None:
    """The commit a PEP 610 ``direct_url.json`` says a distribution was installed from, or None."""
    try:
        info = json.loads(direct_url or "")
    except ValueError:
        return None
    vcs = info.get("vcs_info") if isinstance(info, dict) else None
    commit = vcs.get("commit_id") if isinstance(vcs, dict) and vcs.get("vcs") == "git" else None
    return commit if isinstance(commit, str) and SHA_RE.match(commit) else None


def dist_version(dist) -> str:
    """An installed distribution's version, with its commit where it was installed from git."""
    commit = direct_commit(dist.read_text("direct_url.json"))
    return commit_version(dist.version, commit) if commit else dist.version


def pr_number(subject: str) -> int | None:
    """The pull request a commit subject names (``Fix x (#4081)``, ``Merge pull request #12 ...``), or None."""
    m = PR_RE.search(subject.strip())
    return int(m.group(1) or m.group(2)) if m else None


def web_of(source: str) -> str | None:
    """A GitHub repository's web address for a source that is one, else None (a local clone has none)."""
    m = re.match(r"^(?:https://github\.com/|git@github\.com:)([\w.-]+/[\w.-]+?)(?:\.git)?/?$", source)
    return f"https://github.com/{m.group(1)}" if m else None


def commit_link(source: str, sha: str) -> str | None:
    """A link to the commit on GitHub, or None for a source that is not a GitHub repository."""
    web = web_of(source)
    return f"{web}/commit/{sha}" if web else None


def pr_link(source: str, number: int | None) -> str | None:
    """A link to the pull request on GitHub, or None."""
    web = web_of(source)
    return f"{web}/pull/{number}" if web and number else None
