"""Reading uv's cache: what is unpacked there, and what `uv cache prune` would free."""

import os
import subprocess
import sys

import pytest

from ftcompat.core.domain import Combo, frozen_map
from ftcompat.env import build, uvcache


def fake_cache(root):
    archive = root / "archive-v0"
    for name in ("live", "dangling"):
        (archive / name).mkdir(parents=True)
        (archive / name / "mod.py").write_bytes(b"x" * 1000)
    wheels = root / "wheels-v8" / "pypi" / "torch"
    wheels.mkdir(parents=True)
    os.symlink("../../../archive-v0/live", wheels / "2.8.0-cp311-cp311-manylinux_2_28_x86_64")
    (wheels / "2.9.1-cp311-cp311-manylinux_2_28_x86_64.msgpack").write_text("metadata only")
    old = root / "wheels-v5" / "pypi" / "x"
    old.mkdir(parents=True)
    (old / "f").write_bytes(b"y" * 500)
    return root


def test_a_wheel_counts_as_cached_only_when_its_unpacked_archive_is_there(tmp_path):
    cache = fake_cache(tmp_path)
    assert uvcache.has_wheel(cache, "torch", "2.8.0")
    assert not uvcache.has_wheel(cache, "torch", "2.9.1")  # metadata alone is not the wheel
    assert not uvcache.has_wheel(cache, "Torch", "2.8")
    assert not uvcache.has_wheel(None, "torch", "2.8.0")


def test_prunable_counts_dangling_archives_and_old_buckets(tmp_path):
    assert uvcache.prunable(fake_cache(tmp_path)) == (1500, 2)


@pytest.mark.e2e
def test_upgrade_refetches_wheels_and_a_locked_sync_does_not(tmp_path, monkeypatch):
    """Real uv, real index: why build.py never uses --upgrade (astral-sh/uv#5943)."""
    uv = build.find_uv()
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "cache"))

    def venv(name):
        subprocess.run([uv, "venv", "-q", "-p", f"{sys.version_info.major}.{sys.version_info.minor}",
                        str(tmp_path / name)], check=True)
        return tmp_path / name

    def archives():
        return len(list((tmp_path / "cache" / "archive-v0").iterdir()))

    for name in ("a", "b"):
        subprocess.run([uv, "pip", "install", "-q", "--python", str(venv(name) / "bin" / "python"), "--upgrade",
                        "six", "tabulate"], check=True)
    assert archives() == 4  # the second --upgrade unpacked both wheels again
    combo = Combo("t", "3.11", frozen_map({"six": None, "tabulate": None}))  # tracks the newest: --refresh
    seen = []
    for name in ("c", "d"):
        v = venv(name)
        lock = build.resolve(v, combo, dict(os.environ), uv, log=lambda *_: None)
        build.sync(v, lock, dict(os.environ), uv, log=lambda *_: None)
        seen.append(archives())
    # c adds the harness's own tools once; d, resolved fresh and synced from the cache, fetches nothing again
    assert seen[0] > 4 and seen[1] == seen[0]
    size, entries = uvcache.prunable(tmp_path / "cache")
    assert entries >= 2 and size > 0
