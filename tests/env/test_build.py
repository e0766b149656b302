"""Installing pins: resolve to a lock, sync exactly, reuse, and tell a verdict from a machine failure."""

import dataclasses
import json
from pathlib import Path

import pytest
from packaging.version import Version

from ftcompat.core.domain import Combo, frozen_map
from ftcompat.core.errors import MachineError, NotInstallable
from ftcompat.env import build, space


def test_pip_settings_are_passed_to_uv(fixture_matrix):
    env = {"PIP_FIND_LINKS": "/opt/wheels /more", "PIP_EXTRA_INDEX_URL": "https://x/simple",
           "UV_FIND_LINKS": "/ignored-by-us"}
    assert build.index_args(env, "uv") == ["--find-links", "/opt/wheels", "--find-links", "/more",
                                             "--extra-index-url", "https://x/simple"]
    assert build.index_args(env, "pip") == ["--find-links", "/ignored-by-us"]


def test_requirements_pin_exactly_and_leave_canaries_open(fixture_matrix):
    assert build.requirements(fixture_matrix.combo("old"))[:2] == ["accelerate==1.2.1",
                                                                     "bitsandbytes==0.45.0"]
    canary = build.requirements(fixture_matrix.combo("canary"))
    assert "torch" in canary and "datasets==3.6.0" in canary and "pytest" in canary


def _fake_env(tmp_path: Path, combo, environ):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").write_text("")
    (tmp_path / build.STAMP).write_text(json.dumps(build.stamp_for(combo, environ)))


def test_reuse_only_when_pins_match(tmp_path, fixture_matrix):
    old = fixture_matrix.combo("old")
    _fake_env(tmp_path, old, {})
    assert build.can_reuse(tmp_path, old, {})
    assert not build.can_reuse(tmp_path, old, {"PIP_FIND_LINKS": "/other"})
    changed = type(old)(old.id, old.python, {**old.pins, "trl": "0.14.0"}, old.tags)
    assert not build.can_reuse(tmp_path, changed, {})


def test_canary_is_not_reused_without_asking_the_index(tmp_path, fixture_matrix):
    canary = fixture_matrix.combo("canary")
    _fake_env(tmp_path, canary, {})
    assert not build.can_reuse(tmp_path, canary, {})


def test_uv_resolver_failure_summary():
    out = """Using Python 3.11.7
  × No solution found when resolving dependencies:
  ╰─▶ Because trl==0.22.2 depends on transformers>=4.56.1 and you require transformers==4.47.1, we
      can conclude that your requirements are unsatisfiable.
"""
    got = build.failure_summary(out)
    assert got.startswith("No solution found when resolving dependencies: Because trl==0.22.2 depends")


def test_pip_failure_summary():
    out = "Collecting x\nERROR: Could not find a version that satisfies the requirement torch==9.9\n"
    assert build.failure_summary(out).startswith("ERROR: Could not find a version")


# ---------------------------------------------------------------------------------------------
# The install flow against a uv stand-in that behaves and fails the way uv does


TRACKING = Combo("latest", "3.11", frozen_map({"torch": None, "trl": None}))
PINNED = Combo("pinned", "3.11", frozen_map({"torch": "2.13.0", "trl": "0.19.1"}))


@pytest.fixture
def venv(tmp_path):
    v = tmp_path / "venv"
    (v / "bin").mkdir(parents=True)
    (v / "bin" / "python").write_text("")
    return v


@pytest.fixture(autouse=True)
def no_index(monkeypatch):
    """The space check asks the index for wheel sizes; here every wheel is 1 MB."""
    monkeypatch.setattr(space, "sizes", lambda pkgs, *a, **k: {n: 1_000_000 for n, _ in pkgs})


def commands(calls):
    return [c[:2] if c[0] == "pip" else c[:1] for c in calls()]


def test_newest_is_resolved_from_fresh_metadata_without_upgrade_or_refetching_wheels(venv, tmp_path, fake_uv,
                                                                                     monkeypatch):
    result = build.install(venv, TRACKING, tmp_path, log=lambda *_: None)
    calls = fake_uv()
    compile_, sync = [c for c in calls if c[:2] == ["pip", "compile"]], [c for c in calls if c[:2] == ["pip", "sync"]]
    assert "--refresh" in compile_[0]  # index metadata is refreshed ...
    flat = [a for c in calls for a in c]
    # ... but never with --upgrade / --reinstall, which in uv re-download and re-unpack every wheel
    assert not {"--upgrade", "-U", "--reinstall", "--refresh-package"} & set(flat)
    assert len(sync) == 1 and result.lock == ("pytest==1.0", "pytest-xdist==1.0", "setuptools==1.0", "torch==1.0",
                                              "trl==1.0")
    stamp = build.read_stamp(venv)
    assert stamp["lock"] == list(result.lock) and stamp["resolved"]["trl"] == "1.0"
    # The newest releases did not move: resolved again, and reused without touching the environment.
    again = build.install(venv, TRACKING, tmp_path, log=lambda *_: None)
    assert again.reused and again.output == build.REUSED_NEWEST
    assert [c[:2] for c in fake_uv()[len(calls):]] == [["pip", "compile"]]
    # They moved: the environment is synced to the new lock.
    monkeypatch.setenv("FAKE_UV_NEWEST", "2.0")
    moved = build.install(venv, TRACKING, tmp_path, log=lambda *_: None)
    assert not moved.reused and "trl==2.0" in moved.lock
    assert build.read_stamp(venv)["resolved"]["trl"] == "2.0"


def test_pinned_combo_reuse_asks_nobody(venv, tmp_path, fake_uv):
    build.install(venv, PINNED, tmp_path, log=lambda *_: None)
    n = len(fake_uv())
    assert "--refresh" not in fake_uv()[0]  # exact pins: the cached index pages are good enough
    assert build.install(venv, PINNED, tmp_path, log=lambda *_: None).reused
    assert len(fake_uv()) == n


def test_a_broken_reused_environment_reinstalls_only_the_broken_package(venv, tmp_path, fake_uv):
    build.install(venv, PINNED, tmp_path, log=lambda *_: None)
    (venv / "lib" / "python3.11" / "site-packages" / "trl-0.19.1.dist-info" / "METADATA").unlink()
    (venv / "lib" / "python3.11" / "site-packages" / "trl-0.19.1.dist-info").rmdir()
    notes = []
    result = build.install(venv, PINNED, tmp_path, log=notes.append)
    sync = [c for c in fake_uv() if c[:2] == ["pip", "sync"]][-1]
    assert not result.reused and sync[-2:] == ["--reinstall-package", "trl"]
    assert any("changed since it was built (trl 0.19.1 is not installed any more)" in n for n in notes)


@pytest.mark.parametrize("fail, kind, words", [
    ("sync:nospace", MachineError, "no space left on device"),
    ("sync:cache", MachineError, "uv's cache could not be used"),
    ("sync:killed", MachineError, "the installer was killed"),
    ("compile:network", MachineError, "the package index could not be reached"),
    ("compile:notfound", NotInstallable, "there is no version of transformers==99.0.0"),
])
def test_failures_are_verdicts_only_when_the_versions_are_to_blame(venv, tmp_path, fake_uv, monkeypatch, fail, kind,
                                                                   words):
    monkeypatch.setenv("FAKE_UV_FAIL", fail)
    with pytest.raises(kind) as err:
        build.install(venv, PINNED, tmp_path, log=lambda *_: None)
    assert words in str(err.value) and type(err.value) is kind
    assert not (venv / build.STAMP).exists()  # a half-built environment is never reused
    if kind is MachineError:
        assert err.value.return_code == 4
    else:
        assert err.value.return_code == 3


def test_a_network_error_is_retried_a_bounded_number_of_times(venv, tmp_path, fake_uv, monkeypatch):
    monkeypatch.setenv("FAKE_UV_FAIL", "compile:network-once")
    notes = []
    assert not build.install(venv, PINNED, tmp_path, log=notes.append).reused
    assert sum(c[:2] == ["pip", "compile"] for c in fake_uv()) == 2
    assert any("trying again in 0 s (retry 1 of 2)" in n for n in notes)
    monkeypatch.setenv("FAKE_UV_FAIL", "compile:network")
    (venv / build.STAMP).unlink()
    before = len(fake_uv())
    with pytest.raises(MachineError):
        build.install(venv, PINNED, tmp_path, log=lambda *_: None)
    assert sum(c[:2] == ["pip", "compile"] for c in fake_uv()[before:]) == 3  # once, then 2 retries
    monkeypatch.setenv("FAKE_UV_FAIL", "sync:nospace")
    before = len(fake_uv())
    with pytest.raises(MachineError):
        build.install(venv, PINNED, tmp_path, log=lambda *_: None)
    assert sum(c[:2] == ["pip", "sync"] for c in fake_uv()[before:]) == 1  # a full disk is not retried


def test_not_enough_space_is_refused_before_anything_is_installed(venv, tmp_path, fake_uv, monkeypatch):
    monkeypatch.setattr(space, "sizes", lambda pkgs, *a, **k: {n: 3_000_000_000 for n, _ in pkgs})
    monkeypatch.setattr(space.shutil, "disk_usage", lambda p: type("U", (), {"free": 400_000_000, "total": 0})())
    with pytest.raises(MachineError) as err:
        build.install(venv, PINNED, tmp_path, log=lambda *_: None)
    text = str(err.value)
    assert text.startswith("no space left on device: this environment needs about 30.0 GB")
    assert "0.4 GB free" in text and "ftcompat clean" in text and "venv/" in text
    assert not [c for c in fake_uv() if c[:2] == ["pip", "sync"]]


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 8 MiB tmpfs for uv's cache and the environment (root only)."""
    import os
    import shutil
    import subprocess

    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


@pytest.mark.e2e
@pytest.mark.parametrize("precheck", [True, False])
def test_a_real_full_disk_is_a_machine_error_never_not_installable(tiny_disk, tmp_path, monkeypatch, precheck):
    """numpy (16 MB wheel, ~40 MB unpacked) on an 8 MiB disk: refused up front, or uv's own ENOSPC classified."""
    import subprocess
    import sys

    monkeypatch.setenv("UV_CACHE_DIR", str(tiny_disk / "cache"))
    monkeypatch.setenv("FTCOMPAT_INSTALL_RETRIES", "0")
    if not precheck:
        monkeypatch.setattr(space, "sizes", lambda pkgs, *a, **k: {})
    venv = tiny_disk / "venv"
    subprocess.run([build.find_uv(), "venv", "-q", "-p", f"{sys.version_info.major}.{sys.version_info.minor}",
                    str(venv)], check=True)
    combo = Combo("numpy", "3.11", frozen_map({"numpy": "2.2.6"}))
    with pytest.raises(MachineError) as err:
        build.install(venv, combo, tmp_path, log=lambda *_: None)
    text = str(err.value)
    assert text.startswith("no space left on device"), text
    if precheck:
        assert "this environment needs about" in text and "numpy 2.2.6" in text
    else:
        assert "os error 28" in text


def test_prerelease_lane_pins_only_the_named_packages_that_have_one():
    reqs = ["numpy", "torch==2.13.0", "transformers", "trl", "pytest"]
    newest = ("numpy==2.5.0rc1", "torch==2.13.0", "transformers==5.0.0rc3", "trl==0.27.0", "pytest==9.0")
    said = []
    assert build.with_prereleases(reqs, newest, ("transformers", "trl"), said.append) == [
        "numpy", "torch==2.13.0", "transformers==5.0.0rc3", "trl", "pytest"]  # numpy's rc is not the stack's
    assert said == ["pre-release lane: transformers==5.0.0rc3"]
    assert build.with_prereleases(reqs, ("transformers==5.0.0",), ("transformers",), said.append) == reqs
    assert said[-1] == "pre-release lane: no pre-release newer than the newest release of transformers"


@pytest.mark.e2e
def test_prerelease_lane_resolves_the_rc_of_its_day_from_the_real_index(tmp_path):
    """As of 2026-01-20 transformers 5.0.0rc3 was on PyPI and 4.57.6 its newest release (5.0.0 came on the 26th)."""
    import os
    import subprocess

    uv = build.find_uv()
    if not uv:
        pytest.skip("uv is not installed")
    subprocess.run([uv, "venv", "-q", "-p", "3.11", str(tmp_path / "v")], check=True)
    pins = frozen_map({"torch": None, "transformers": None, "trl": "0.27.0", "peft": "0.18.1",
                       "bitsandbytes": "0.49.1", "accelerate": "1.12.0"})
    lane = Combo("pre", "3.11", pins, exclude_newer="2026-01-20", prerelease=("transformers",))
    release = Combo("rel", "3.11", pins, exclude_newer="2026-01-20")
    env = {k: v for k, v in os.environ.items() if k != "PIP_FIND_LINKS"}
    said = []
    lock = dict(line.split("==") for line in build.resolve(tmp_path / "v", lane, env, uv, said.append))
    assert lock["transformers"] == "5.0.0rc3"
    assert "pre-release lane: transformers==5.0.0rc3" in said
    assert not any(Version(v).is_prerelease for name, v in lock.items() if name != "transformers")
    plain = dict(line.split("==") for line in build.resolve(tmp_path / "v", release, env, uv, lambda *_: None))
    assert plain["transformers"] == "4.57.6"


@pytest.mark.e2e
def test_overrides_resolve_the_skew_a_no_deps_install_leaves(tmp_path):
    """trl 0.12.0 declares transformers>=4.46.0; the override forces 4.45.2 beside it, as --no-deps would."""
    import os
    import subprocess

    uv = build.find_uv()
    if not uv:
        pytest.skip("uv is not installed")
    subprocess.run([uv, "venv", "-q", "-p", "3.11", str(tmp_path / "v")], check=True)
    pins = frozen_map({"torch": "2.13.0", "transformers": "4.45.2", "trl": "0.12.0", "peft": "0.13.2",
                       "bitsandbytes": "0.46.1", "accelerate": "1.0.1"})
    skew = Combo("skew", "3.11", pins, overrides=frozen_map({"transformers": "4.45.2"}))
    env = dict(os.environ)
    lock = dict(line.split("==") for line in build.resolve(tmp_path / "v", skew, env, uv, lambda *_: None))
    assert (lock["transformers"], lock["trl"]) == ("4.45.2", "0.12.0")
    with pytest.raises(NotInstallable, match="transformers"):
        build.resolve(tmp_path / "v", Combo("plain", "3.11", pins), env, uv, lambda *_: None)


def test_a_torch_backend_reaches_uv_in_the_resolve_and_the_sync_and_is_part_of_the_inputs(venv, tmp_path, fake_uv):
    cpu = dataclasses.replace(PINNED, torch_backend="cpu")
    build.install(venv, cpu, tmp_path, log=lambda *_: None)
    calls = [c for c in fake_uv() if c[:2] in (["pip", "compile"], ["pip", "sync"])]
    assert len(calls) == 2
    for call in calls:  # torch resolved and installed from the same PyTorch index, or the lock's +cpu is not found
        assert call[call.index("--torch-backend") + 1] == "cpu", call
    assert build.read_stamp(venv)["torch_backend"] == "cpu"
    assert build.install(venv, cpu, tmp_path, log=lambda *_: None).reused
    before = len(fake_uv())
    assert not build.install(venv, PINNED, tmp_path, log=lambda *_: None).reused  # PyPI's torch: another env
    after = [c[:2] for c in fake_uv()[before:] if "--torch-backend" not in c]
    assert ["pip", "compile"] in after and ["pip", "sync"] in after


def test_a_torch_backend_makes_the_real_uv_ask_pytorchs_index_for_torch_only(tmp_path):
    """Other packages still come from PyPI; torch from download.pytorch.org/whl/cpu (or a network error naming it)."""
    import os
    import subprocess

    uv = build.find_uv()
    if not uv:
        pytest.skip("uv is not installed")
    subprocess.run([uv, "venv", "-q", "-p", "3.11", str(tmp_path / "v")], check=True)
    cpu = Combo("cpu", "3.11", frozen_map({}), torch_backend="cpu")
    env = {**os.environ, "FTCOMPAT_INSTALL_RETRIES": "0"}
    assert build._compile(tmp_path / "v", cpu, ["packaging==24.1"], env, uv, lambda *_: None, "highest") == (
        "packaging==24.1",)
    try:
        lock = build._compile(tmp_path / "v", cpu, ["torch==2.6.0"], env, uv, lambda *_: None, "highest")
    except (MachineError, NotInstallable) as err:  # this machine cannot reach PyTorch's index
        assert "PyTorch's index could not be reached" in str(err) and "download.pytorch.org/whl/cpu" in str(err)
    else:
        assert "torch==2.6.0+cpu" in lock
