"""trust_remote_code runs only for local models of the run and hub models pinned to a commit in matrix.yaml."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest
from conftest import FIXTURES, ROOT

from ftcompat.harness.remote_code import Policy, RemoteCodeRefused, guard

SHA = "0123456789abcdef0123456789abcdef01234567"
MODELS = {"fake": {"kind": "hub", "repo": "someone/fake-probe", "revision": SHA},
          "branch": {"kind": "hub", "repo": "someone/moving", "revision": "main"},
          "tiny": {"kind": "tiny", "arch": "llama"}}


@pytest.fixture
def policy(tmp_path):
    (tmp_path / "work" / "models" / "tiny").mkdir(parents=True)
    (tmp_path / "pytest-tmp" / "case0").mkdir(parents=True)
    return Policy.from_plan(tmp_path / "work", MODELS, [tmp_path / "pytest-tmp"])


def test_only_hub_models_pinned_to_a_commit_count_as_pinned(policy):
    assert dict(policy.pinned) == {"someone/fake-probe": SHA}


def test_local_folders_of_the_run_are_allowed(policy, tmp_path):
    policy.check(tmp_path / "work" / "models" / "tiny")
    policy.check(str(tmp_path / "pytest-tmp" / "case0"), revision=None)


def test_a_folder_outside_the_run_is_refused(policy, tmp_path):
    (tmp_path / "downloads" / "model").mkdir(parents=True)
    with pytest.raises(RemoteCodeRefused, match=r"refused for the local directory .*downloads/model: only models "):
        policy.check(tmp_path / "downloads" / "model")


def test_a_symlink_into_the_run_does_not_let_an_outside_folder_in(policy, tmp_path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "work" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(RemoteCodeRefused):
        policy.check(tmp_path / "work" / "link")


@pytest.mark.parametrize("revision", [None, "main", "v1.0", SHA[:7]])
def test_hub_id_without_a_full_commit_is_refused(policy, revision):
    with pytest.raises(RemoteCodeRefused) as err:
        policy.check("someone/fake-probe", revision)
    assert str(err.value).startswith(f"trust_remote_code refused for someone/fake-probe@{revision or 'main'}: "
                                     "pin a full commit revision in the config's models")


def test_hub_id_at_its_pinned_commit_is_allowed(policy):
    policy.check("someone/fake-probe", SHA)


def test_a_commit_other_than_the_pinned_one_is_refused(policy):
    with pytest.raises(RemoteCodeRefused, match=f"the config pins someone/fake-probe at {SHA}"):
        policy.check("someone/fake-probe", "f" * 40)


def test_a_repo_not_in_the_matrix_is_refused_even_at_a_commit(policy):
    with pytest.raises(RemoteCodeRefused, match="other/repo is not a hub model of the config"):
        policy.check("other/repo", SHA)


def test_hub_snapshot_folder_is_judged_by_its_repo_and_commit(policy, tmp_path):
    cache = tmp_path / "hub"
    pinned = cache / "models--someone--fake-probe" / "snapshots" / SHA
    other = cache / "models--someone--fake-probe" / "snapshots" / ("f" * 40)
    pinned.mkdir(parents=True)
    other.mkdir(parents=True)
    policy.check(pinned)
    with pytest.raises(RemoteCodeRefused, match="the Hub snapshot"):
        policy.check(other)


def test_a_hub_snapshot_inside_the_work_dir_still_needs_its_pin(policy, tmp_path):
    snap = tmp_path / "work" / "hf" / "models--someone--moving" / "snapshots" / SHA
    snap.mkdir(parents=True)
    with pytest.raises(RemoteCodeRefused, match="someone/moving is not a hub model of the config"):
        policy.check(snap)


def test_guard_is_a_no_op_without_transformers(tmp_path):
    if importlib.util.find_spec("transformers") is not None:
        pytest.skip("transformers is installed here; the real-environment tests below cover guard()")
    assert guard(tmp_path, MODELS) is False


def _probe(combo: str, tmp_path, *flags) -> dict:
    python = ROOT / ".nox" / combo.replace(".", "-") / "bin" / "python"  # nox's folder for the session
    if not python.exists():
        pytest.skip(f"no built environment {python} (run `nox -s {combo}` once)")
    proc = subprocess.run([str(python), str(FIXTURES / "remote_code_probe.py"), str(tmp_path), *flags],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# The oldest and newest transformers in the grid, and the first 5.x.
@pytest.mark.parametrize("env", ["tf4.47", "tf5.0", "latest"])
def test_real_transformers_runs_local_and_pinned_code_and_refuses_the_rest(env, tmp_path):
    got = _probe(env, tmp_path, *(["--import-generation-first"] if env == "latest" else []))
    assert got["installed"] is True
    for allowed in ("local_under_work", "hub_pinned", "snapshot_pinned"):
        assert got[allowed] == "ok", (got["transformers"], allowed, got[allowed])
    assert got["local_elsewhere"].startswith("RemoteCodeRefused: trust_remote_code refused for the local directory")
    for refused in ("hub_no_revision", "hub_branch"):
        assert got[refused].startswith("RemoteCodeRefused: trust_remote_code refused for someone/fake-probe@main: "
                                       "pin a full commit revision in the config's models"), got[refused]
    assert "other/repo is not a hub model of the config" in got["unpinned_repo"]
    if env == "latest":  # generation.utils imported the function by name before the guard went in
        assert got["generation_bound_guarded"] is True


def test_without_the_guard_the_same_loads_all_succeed(tmp_path):
    """Control: the refusals above come from the guard, not from a broken fixture."""
    got = _probe("tf4.47", tmp_path, "--no-guard")
    assert got["installed"] is False
    assert {k: v for k, v in got.items() if k not in ("installed", "transformers")} == {
        k: "ok" for k in ("local_under_work", "local_elsewhere", "hub_no_revision", "hub_branch", "hub_pinned",
                          "snapshot_pinned", "unpinned_repo")}


def test_the_guard_never_touches_lazy_attributes(monkeypatch):
    """transformers 5.4's lazy module imports an image processor (needing Pillow) on attribute access."""
    import types

    def lazy(name):
        raise ImportError(f"lazy import of {name} triggered")

    package = types.ModuleType("transformers")
    package.__path__ = []  # a package, as the real one is
    package.__getattr__ = lazy
    dmu = types.ModuleType("transformers.dynamic_module_utils")

    def get_cached_module_file(pretrained_model_name_or_path, module_file, revision=None, **kwargs):
        return "ok"

    dmu.get_cached_module_file = get_cached_module_file
    package.dynamic_module_utils = dmu
    monkeypatch.setitem(sys.modules, "transformers", package)
    monkeypatch.setitem(sys.modules, "transformers.dynamic_module_utils", dmu)
    assert guard("/tmp/work", {}, []) is True
    assert getattr(dmu.get_cached_module_file, "_ftcompat_guard", False)
