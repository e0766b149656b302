import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from ftcompat.env import disk, inodes

ROOT = Path(__file__).resolve().parents[2]


def _file(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    return path


def _blocks(*paths: Path) -> int:
    return sum(os.lstat(p).st_blocks * 512 for p in paths)


def _matrix(*ids):
    return SimpleNamespace(combos=[SimpleNamespace(id=i) for i in ids], source="/somewhere/ftcompat.yaml")


@pytest.fixture
def tree(tmp_path):
    """A project with envs of every kind, files hard-linked from a fake uv cache, and a fake uv cache."""
    root, cache = tmp_path / "proj", tmp_path / "uv-cache"
    wheel = _file(cache / "wheels" / "torch.so", 50_000)
    _file(root / "results" / "cells" / "keep.json", 10)
    # Two envs link the same cached file, as uv does; each also has a file of its own.
    for name in ("tf4-57-6-bnb0-50", "old-combo"):
        env = root / ".nox" / name
        _file(env / "pyvenv.cfg", 100)
        (env / "lib").mkdir(parents=True)
        os.link(wheel, env / "lib" / "torch.so")
    own = _file(root / ".nox" / "tf4-57-6-bnb0-50" / "lib" / "own.py", 20_000)
    # A file the two nox envs share with each other but not with the cache.
    between = _file(root / ".nox" / "old-combo" / "lib" / "between.py", 30_000)
    os.link(between, root / ".nox" / "tf4-57-6-bnb0-50" / "lib" / "between.py")
    _file(root / ".nox" / "CACHEDIR.TAG", 10)
    _file(root / ".nox" / ".cache" / "x", 10)
    _file(root / ".ftcompat" / "adhoc" / "adhoc-trl0.19.1" / "venv" / "bin" / "python", 10)
    _file(root / ".ftcompat" / "adhoc" / "adhoc-trl0.19.1" / "cells" / "x.json", 10)
    old = _file(root / ".ftcompat" / "bisect" / "20260101-000000" / "01" / "log.txt", 10)
    stamp = time.time() - 3 * 3600
    os.utime(old, (stamp, stamp))
    for p in (old.parent, old.parent.parent):
        os.utime(p, (stamp, stamp))
    _file(root / ".ftcompat" / "bisect" / "20260102-000000" / "01" / "log.txt", 10)
    _file(root / ".ftcompat" / "work" / "tf4.57.6-bnb0.50" / "models" / "m.bin", 1000)
    _file(root / ".ftcompat" / "work" / "gone" / "models" / "m.bin", 1000)
    _file(root / ".ftcompat" / "plans" / "gone.json", 10)
    _file(root / ".ftcompat" / "plans" / "gone.ini", 10)
    _file(root / ".ftcompat" / "plans" / "tf4.57.6-bnb0.50.json", 10)
    return SimpleNamespace(root=root, cache=cache, wheel=wheel, own=own, between=between)


def _by_path(envs, root):
    return {str(e.path.relative_to(root)): e for e in envs}


def test_nox_dirname_follows_nox_itself():
    from nox.sessions import _normalize_path

    for name in ("tf4.57.6-bnb0.50", "torch2.13-cpu", "floor-trl1.16", "asof-2025-09-15", "Ünïcode name!",
                 "x" * 120, "a__b", "--lead-trail--"):
        assert disk.nox_dirname(name) == Path(_normalize_path(".nox", name)).name, name
    assert disk.nox_dirname("tf4.57.6-bnb0.50") == "tf4-57-6-bnb0-50"


def test_envs_are_found_and_marked_used_or_orphan(tree):
    envs = _by_path(disk.usage(tree.root, _matrix("tf4.57.6-bnb0.50"), uv_cache=tree.cache), tree.root)
    assert set(envs) == {
        ".nox/tf4-57-6-bnb0-50", ".nox/old-combo", ".ftcompat/adhoc/adhoc-trl0.19.1/venv",
        ".ftcompat/bisect/20260101-000000", ".ftcompat/bisect/20260102-000000",
        ".ftcompat/work/tf4.57.6-bnb0.50", ".ftcompat/work/gone"}
    assert envs[".nox/tf4-57-6-bnb0-50"].used_by == "tf4.57.6-bnb0.50"
    assert envs[".ftcompat/work/tf4.57.6-bnb0.50"].used_by == "tf4.57.6-bnb0.50"
    orphans = {p for p, e in envs.items() if e.orphan}
    assert orphans == {".nox/old-combo", ".ftcompat/adhoc/adhoc-trl0.19.1/venv", ".ftcompat/bisect/20260101-000000",
                       ".ftcompat/work/gone"}
    assert "in progress" in envs[".ftcompat/bisect/20260102-000000"].note
    assert envs[".nox/old-combo"].note == "no combo in ftcompat.yaml has this nox session"  # the user's file
    # A stale work dir takes its combo's plan files with it.
    assert {p.name for p in envs[".ftcompat/work/gone"].paths} == {"gone", "gone.json", "gone.ini"}


def test_sizes_count_hard_links_once_and_split_own_from_shared(tree):
    rep = disk.report(tree.root, _matrix("tf4.57.6-bnb0.50"), uv_cache=tree.cache)
    env = _by_path(rep.envs, tree.root)[".nox/tf4-57-6-bnb0-50"]
    s = env.sizes
    assert s.shared_uv == _blocks(tree.wheel)
    assert s.shared_other == _blocks(tree.between)  # also linked from old-combo, not from the cache
    assert s.own >= _blocks(tree.own) and s.own < _blocks(tree.own) + 4 * 4096 + 4096  # + pyvenv.cfg + dirs
    assert s.disk == s.own + s.shared_uv + s.shared_other
    assert s.apparent >= 50_000 + 20_000 + 30_000 + 100
    # In the total, the file the two envs share is theirs alone (counted once, as own); the wheel stays shared.
    assert rep.total.shared_other == 0
    assert rep.total.shared_uv == _blocks(tree.wheel)
    assert rep.total.disk < sum(e.sizes.disk for e in rep.envs)
    assert rep.total.apparent == sum(e.sizes.apparent for e in rep.envs)
    assert rep.uv_cache_sizes.disk == _blocks(tree.wheel, tree.wheel.parent, tree.cache)


def test_without_the_uv_cache_nothing_is_called_shared_with_it(tree):
    rep = disk.report(tree.root, _matrix("tf4.57.6-bnb0.50"), uv_cache=None)
    env = _by_path(rep.envs, tree.root)[".nox/tf4-57-6-bnb0-50"]
    assert env.sizes.shared_uv == 0 and rep.uv_cache_sizes is None
    assert env.sizes.shared_other >= _blocks(tree.wheel)  # still not counted as own: other links exist


def test_clean_dry_run_removes_nothing(tree):
    lines = []
    chosen, total = disk.clean(tree.root, ["tf4.57.6-bnb0.50"], dry_run=True, uv_cache=tree.cache, echo=lines.append)
    assert len(chosen) == 4 and total.own > 0
    assert all(p.exists() for e in chosen for p in e.paths)
    assert any(line.startswith("would remove .nox/old-combo") for line in lines)
    assert lines[-1].startswith("would free ")


def test_clean_removes_orphans_only_and_never_results_or_the_cache(tree):
    lines = []
    chosen, total = disk.clean(tree.root, ["tf4.57.6-bnb0.50"], uv_cache=tree.cache, echo=lines.append)
    root = tree.root
    for gone in (".nox/old-combo", ".ftcompat/adhoc/adhoc-trl0.19.1/venv", ".ftcompat/bisect/20260101-000000",
                 ".ftcompat/work/gone", ".ftcompat/plans/gone.json", ".ftcompat/plans/gone.ini"):
        assert not (root / gone).exists(), gone
    for kept in (".nox/tf4-57-6-bnb0-50/lib/torch.so", ".nox/tf4-57-6-bnb0-50/lib/between.py",
                 ".ftcompat/work/tf4.57.6-bnb0.50/models/m.bin", ".ftcompat/plans/tf4.57.6-bnb0.50.json",
                 ".ftcompat/bisect/20260102-000000/01/log.txt", ".ftcompat/adhoc/adhoc-trl0.19.1/cells/x.json",
                 "results/cells/keep.json", ".nox/CACHEDIR.TAG"):
        assert (root / kept).exists(), kept
    assert tree.wheel.exists() and tree.wheel.stat().st_nlink == 2  # the cache keeps it; one env still links it
    # The file old-combo shared with the kept env was not freed: removing old-combo only drops a link.
    assert total.shared_other == _blocks(root / ".nox" / "tf4-57-6-bnb0-50" / "lib" / "between.py")
    assert any("kept .ftcompat/bisect/20260102-000000" in line for line in lines)
    assert lines[-1].startswith("freed ")


def test_clean_all_removes_every_env_but_a_running_bisection(tree):
    disk.clean(tree.root, ["tf4.57.6-bnb0.50"], everything=True, uv_cache=tree.cache, echo=lambda _: None)
    left = _by_path(disk.find_envs(tree.root, ["tf4.57.6-bnb0.50"]), tree.root)
    assert set(left) == {".ftcompat/bisect/20260102-000000"}
    assert (tree.root / "results" / "cells" / "keep.json").exists() and tree.wheel.exists()


def test_clean_with_nothing_orphaned_says_so(tmp_path):
    _file(tmp_path / ".nox" / "a" / "pyvenv.cfg", 10)
    lines = []
    assert disk.clean(tmp_path, ["a"], uv_cache=None, echo=lines.append,
                      config="ftcompat.yaml") == ([], inodes.Sizes())
    assert lines == ["nothing to remove: every environment is used by a combo in ftcompat.yaml"]
    assert (tmp_path / ".nox" / "a" / "pyvenv.cfg").exists()


def test_a_symlinked_env_is_unlinked_never_followed(tmp_path):
    root, outside = tmp_path / "proj", tmp_path / "elsewhere"
    precious = _file(outside / "keep.txt", 10)
    (root / ".nox").mkdir(parents=True)
    (root / ".nox" / "evil").symlink_to(outside, target_is_directory=True)
    chosen, _ = disk.clean(root, [], uv_cache=None, echo=lambda _: None)
    assert [e.path.name for e in chosen] == ["evil"]
    assert not (root / ".nox" / "evil").is_symlink() and precious.exists()


def test_a_folder_leading_out_of_the_project_is_refused_and_nothing_is_deleted(tmp_path):
    root, outside = tmp_path / "proj", tmp_path / "elsewhere"
    precious = _file(outside / "stale" / "models" / "m.bin", 10)
    _file(root / ".nox" / "orphan" / "pyvenv.cfg", 10)
    (root / ".ftcompat").mkdir(parents=True)
    (root / ".ftcompat" / "work").symlink_to(outside, target_is_directory=True)
    with pytest.raises(disk.DiskError, match=r"leads out of .*\.ftcompat through a symlink"):
        disk.clean(root, [], uv_cache=None, echo=lambda _: None)
    assert precious.exists() and (root / ".nox" / "orphan" / "pyvenv.cfg").exists()


def test_a_symlinked_nox_folder_is_refused(tmp_path):
    root, outside = tmp_path / "proj", tmp_path / "bigdisk"
    precious = _file(outside / "orphan" / "pyvenv.cfg", 10)
    root.mkdir()
    (root / ".nox").symlink_to(outside, target_is_directory=True)
    with pytest.raises(disk.DiskError, match=r"\.nox is a symlink .*remove what it points to by hand"):
        disk.clean(root, [], uv_cache=None, echo=lambda _: None)
    assert precious.exists()


@pytest.mark.parametrize("rel", ["results", ".nox", ".ftcompat", ".nox/../results", "../elsewhere", "src/x"])
def test_check_removable_refuses_anything_outside_nox_and_ftcompat(tmp_path, rel):
    (tmp_path / ".nox").mkdir()
    (tmp_path / ".ftcompat").mkdir()
    with pytest.raises(disk.DiskError, match="refusing to delete"):
        disk.check_removable(tmp_path, tmp_path / rel)
    disk.check_removable(tmp_path, tmp_path / ".nox" / "env")  # inside: fine


def test_cli_disk_and_clean(tree, capsys, monkeypatch):
    from ftcompat.cli import main

    (tree.root / "matrix.yaml").write_text("unused\n")
    monkeypatch.setattr(disk, "uv_cache_dir", lambda: tree.cache)
    monkeypatch.setattr("ftcompat.cli.run_cmds.load", lambda path: _matrix("tf4.57.6-bnb0.50"))
    assert main(["--matrix", str(tree.root / "matrix.yaml"), "disk"]) == 0
    out = capsys.readouterr().out
    assert ".nox/old-combo" in out and "orphan" in out and "total (hard links counted once)" in out
    assert f"uv cache: {tree.cache}" in out
    assert main(["--matrix", str(tree.root / "matrix.yaml"), "clean", "--dry-run"]) == 0
    assert "would remove .nox/old-combo" in capsys.readouterr().out
    assert (tree.root / ".nox" / "old-combo").exists()


def test_real_nox_folder_maps_onto_the_matrix_read_only():
    """Every env nox built in this checkout is named the way disk.py expects for its combo."""
    from ftcompat.config.matrix import load

    nox_dir = ROOT / ".nox"
    if not nox_dir.is_dir():
        pytest.skip("no .nox in this checkout")
    before = sorted(p.name for p in nox_dir.iterdir())
    matrix = load(ROOT / "matrix.yaml")
    envs = [e for e in disk.find_envs(ROOT, [c.id for c in matrix.combos]) if e.kind == "nox"]
    used = {e.used_by for e in envs if not e.orphan}
    built = {c.id for c in matrix.combos if (nox_dir / disk.nox_dirname(c.id)).is_dir()}
    assert built and used == built
    assert sorted(p.name for p in nox_dir.iterdir()) == before
