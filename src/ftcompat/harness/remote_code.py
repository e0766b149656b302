"""Allow ``trust_remote_code`` only for code ftcompat can vouch for, inside the pinned environments.

A model's own code runs with the user's rights, and at a branch it can change between two runs of
the same grid. So remote code may run only from a local directory the run made itself (a tiny
model built under its work directory, or a case's copy of one in pytest's temporary folder), or
from a hub model pinned in matrix.yaml to a full 40-character commit, loaded at that commit.
Everything else raises ``RemoteCodeRefused`` before any of the model's code is fetched or run.

Every transformers release from 4.47 to 5.x fetches remote code through
``transformers.dynamic_module_utils.get_cached_module_file`` (the auto classes, pipelines and
``generate(custom_generate=...)`` alike) and that function sees the repo and the revision, so the
guard wraps it, there and wherever a transformers module imported it by name.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

TARGET = "get_cached_module_file"
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
# huggingface_hub's cache layout: <cache>/models--<org>--<name>/snapshots/<commit>
SNAPSHOT_RE = re.compile(r"(?:^|/)models--(?P<repo>[^/]+)/snapshots/(?P<rev>[^/]+)/?$")


class RemoteCodeRefused(PermissionError):
    """trust_remote_code was asked for code that is neither local to the run nor pinned to a commit."""


@dataclass(frozen=True)
class Policy:
    """Where remote code may come from: local roots, and hub repos pinned to a commit."""

    roots: tuple[Path, ...]
    pinned: Mapping[str, str]

    @classmethod
    def from_plan(cls, work_dir, models: Mapping[str, Mapping], roots: Iterable = ()) -> Policy:
        """The policy for a run: its work dir and extra roots, and the plan's hub models with a commit."""
        local = tuple(Path(p).resolve() for p in (work_dir, *roots) if p)
        pinned = {m["repo"]: m["revision"] for m in models.values()
                  if m.get("kind") == "hub" and m.get("repo") and SHA_RE.match(str(m.get("revision") or ""))}
        return cls(local, pinned)

    def check(self, name_or_path, revision: str | None = None) -> None:
        """Return when remote code from ``name_or_path`` at ``revision`` may run; else raise RemoteCodeRefused."""
        text = os.fspath(name_or_path)
        if os.path.isdir(text):
            real = Path(text).resolve()
            snapshot = SNAPSHOT_RE.search(real.as_posix())
            if snapshot:  # a Hub download, wherever its cache lives: judged as the repo it came from
                self._hub(snapshot["repo"].replace("--", "/"), snapshot["rev"], f" (the Hub snapshot {text})")
                return
            if any(real == root or root in real.parents for root in self.roots):
                return
            where = ", ".join(str(r) for r in self.roots) or "(none)"
            raise RemoteCodeRefused(
                f"trust_remote_code refused for the local directory {text}: only models the run built itself "
                f"(under {where}) and hub models the config (ftcompat.yaml or matrix.yaml) pins to a commit may "
                "run their own code")
        self._hub(text, revision)

    def _hub(self, repo: str, revision: str | None, where: str = "") -> None:
        shown = f"{repo}@{revision or 'main'}{where}"
        if not revision or not SHA_RE.match(revision):
            raise RemoteCodeRefused(
                f"trust_remote_code refused for {shown}: pin a full commit revision in the config's models "
                f"(ftcompat.yaml or matrix.yaml; models.<name>: {{kind: hub, repo: {repo}, "
                "revision: <40-character commit>}) and load it at that revision; a branch or tag can run different "
                "code tomorrow")
        pinned = self.pinned.get(repo)
        if pinned is None:
            raise RemoteCodeRefused(
                f"trust_remote_code refused for {shown}: {repo} is not a hub model of the config; pin a full "
                f"commit revision in its models (models.<name>: {{kind: hub, repo: {repo}, revision: {revision}}})")
        if pinned != revision:
            raise RemoteCodeRefused(
                f"trust_remote_code refused for {shown}: the config pins {repo} at {pinned}; load that "
                "revision, or pin another full commit revision in the config")


_policy: Policy | None = None


def guard(work_dir, models: Mapping[str, Mapping], roots: Iterable = ()) -> bool:
    """Install (or refresh) the guard for this process; False where no transformers can be guarded.

    Cheap after the first call, so the plugin calls it before every case: it also re-wraps the
    function in transformers modules imported since.
    """
    global _policy
    _policy = Policy.from_plan(work_dir, models, roots)
    if "transformers.dynamic_module_utils" not in sys.modules and importlib.util.find_spec("transformers") is None:
        return False
    try:
        from transformers import dynamic_module_utils as dmu
    except Exception:  # noqa: BLE001 - a broken transformers cannot load remote code either; its cells say why
        return False
    current = getattr(dmu, TARGET, None)
    if current is None:
        return False  # a transformers without the function has no remote-code path this guard knows
    original = getattr(current, "__wrapped__", current)
    wrapped = current if getattr(current, "_ftcompat_guard", False) else _wrap(original)
    for name, module in list(sys.modules.items()):
        # vars(), not getattr(): transformers' lazy modules import a submodule on attribute access,
        # and on 5.4 that pulls in an image processor that needs Pillow (an import error in every cell).
        if (name == "transformers" or name.startswith("transformers.")) and module is not None \
                and vars(module).get(TARGET) is original:
            setattr(module, TARGET, wrapped)
    return True


def _wrap(original):
    """``original`` with the policy checked on the repo (or folder) and revision it is asked for."""
    try:
        signature = inspect.signature(original)
    except (TypeError, ValueError):
        signature = None

    @functools.wraps(original)
    def guarded(*args, **kwargs):
        try:
            bound = signature.bind_partial(*args, **kwargs).arguments if signature else {}
        except TypeError:
            bound = {}
        target = bound.get("pretrained_model_name_or_path", args[0] if args else None)
        revision = bound.get("revision", kwargs.get("revision"))
        if _policy is not None and target is not None:
            _policy.check(target, revision)
        return original(*args, **kwargs)

    guarded._ftcompat_guard = True
    return guarded
