"""The cap on ftcompat's environments: least recently used ad-hoc and bisection envs go first."""

import os
import time

import pytest

from ftcompat.core.errors import InputError
from ftcompat.env import evict


def env(root, rel, mb, age_s):
    path = root / rel
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").write_text("")
    (path / "blob").write_bytes(os.urandom(mb << 20))
    then = time.time() - age_s
    (path / evict.LAST_USED).write_text("x")
    os.utime(path / evict.LAST_USED, (then, then))
    return path


@pytest.mark.parametrize("text, value", [("80G", 80 << 30), ("500M", 500 << 20), ("1.5GiB", int(1.5 * (1 << 30))),
                                         ("1024", 1024), ("0", 0)])
def test_sizes_are_read_the_way_people_write_them(text, value):
    assert evict.parse_size(text) == value


def test_a_bad_cap_is_refused_with_an_example():
    with pytest.raises(InputError, match="write e.g. 80G"):
        evict.parse_size("lots")


def test_the_least_recently_used_adhoc_env_goes_first_and_combo_envs_never(tmp_path, monkeypatch):
    monkeypatch.setattr("ftcompat.env.disk.uv_cache_dir", lambda: None)
    old = env(tmp_path, ".ftcompat/adhoc/adhoc-trl0.19.1/venv", 2, 3 * 86400)
    new = env(tmp_path, ".ftcompat/adhoc/adhoc-trl0.20.0/venv", 2, 60)
    combo = env(tmp_path, ".nox/tf4-47", 2, 10 * 86400)  # oldest of all, but a combo of the matrix uses it
    lines = []
    removed = evict.enforce(tmp_path, ["tf4.47"], log=lines.append, environ={"FTCOMPAT_ENV_CAP": "5M"})
    assert [e.path for e in removed] == [old]
    assert not old.exists() and new.exists() and combo.exists()
    assert lines[0].startswith("ftcompat's environments hold 6.0 MiB of their own, over the 5.0 MiB cap")
    assert lines[1].startswith("removed .ftcompat/adhoc/adhoc-trl0.19.1/venv (adhoc, ad-hoc env (ftcompat adhoc), "
                               "last used ") and "freed 2.0 MiB; now 4.0 MiB of 5.0 MiB" in lines[1]


def test_the_env_being_built_is_kept_and_what_cannot_go_is_said(tmp_path, monkeypatch):
    monkeypatch.setattr("ftcompat.env.disk.uv_cache_dir", lambda: None)
    building = env(tmp_path, ".ftcompat/adhoc/adhoc-x/venv", 2, 86400)
    env(tmp_path, ".nox/tf4-47", 2, 86400)
    lines = []
    assert evict.enforce(tmp_path, ["tf4.47"], keep=building, log=lines.append,
                          environ={"FTCOMPAT_ENV_CAP": "1M"}) == []
    assert building.exists() and "what is left belongs to the matrix's combos" in lines[-1]


def test_no_cap_and_under_the_cap_do_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr("ftcompat.env.disk.uv_cache_dir", lambda: None)
    env(tmp_path, ".ftcompat/adhoc/adhoc-x/venv", 1, 86400)
    assert evict.enforce(tmp_path, [], environ={"FTCOMPAT_ENV_CAP": "0"}) == []
    assert evict.enforce(tmp_path, [], environ={"FTCOMPAT_ENV_CAP": "10G"}) == []
    assert evict.cap(tmp_path, {}) <= evict.DEFAULT_MAX


def test_files_hard_linked_from_uvs_cache_do_not_count_against_the_cap(tmp_path, monkeypatch):
    cache = tmp_path / "uv-cache" / "archive-v0" / "a"
    cache.mkdir(parents=True)
    (cache / "libtorch.so").write_bytes(os.urandom(4 << 20))
    venv = env(tmp_path, ".ftcompat/adhoc/adhoc-x/venv", 0, 86400)
    os.link(cache / "libtorch.so", venv / "libtorch.so")
    monkeypatch.setattr("ftcompat.env.disk.uv_cache_dir", lambda: tmp_path / "uv-cache")
    assert evict.enforce(tmp_path, [], environ={"FTCOMPAT_ENV_CAP": "1M"}) == []
