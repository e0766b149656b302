"""Bad input caught before anything is installed or written: versions and packages not on the index,
pins that cannot resolve together, an unwritable results folder and a disk that fills up."""

import dataclasses
import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
from pathlib import Path

import pytest
from conftest import ROOT, record

from ftcompat.config.checks import Problem
from ftcompat.core import cellfile
from ftcompat.core.domain import Combo, frozen_map
from ftcompat.env import pkgindex, preflight

INDEX = {
    "transformers": ["4.53.3", "4.56.1", "4.56.2", "4.57.5", "4.57.6", "5.0.0rc1", "5.0.0"],
    "trl": ["0.19.1", "0.23.0"],
    "torch": ["2.12.1", "2.13.0+cpu", "2.14.0"],
    "peft": ["0.16.0"], "bitsandbytes": ["0.46.1"], "accelerate": ["1.9.0"],
}


class FakeLister:
    """An index in a dict; counts the questions so the per-run cache can be checked."""

    where = "https://index.example/simple"

    def __init__(self, index=INDEX, down=()):
        self.index, self.down, self.calls = index, set(down), []

    def __call__(self, package):
        self.calls.append(package)
        if package in self.down:
            raise pkgindex.ListingError("URLError: <urlopen error [Errno -3] Temporary failure in name resolution>")
        if package not in self.index:
            raise pkgindex.NotOnIndex(package)
        return list(self.index[package])


def combo(cid="c", **pins):
    base = {"torch": "2.13.0", "transformers": "4.53.3", "trl": "0.19.1", "peft": "0.16.0",
            "bitsandbytes": "0.46.1", "accelerate": "1.9.0"}
    return Combo(cid, "3.11", frozen_map({**base, **pins}))


def matrix_of(*combos):
    from ftcompat.core.domain import Matrix

    return Matrix(tuple(combos), frozen_map({}), frozen_map({}), "matrix.yaml")


def rendered(problems):
    return [p.render("matrix.yaml") for p in problems]


# ---- versions and packages on the index -------------------------------------------------------------


def test_a_version_not_on_the_index_names_the_nearest_ones():
    got = rendered(preflight.check_versions(matrix_of(combo(), combo("b", transformers="4.99.0")), FakeLister()))
    assert got == ["matrix.yaml: combos[1].pins.transformers: transformers 4.99.0 is not on "
                   "https://index.example/simple; nearest: 4.57.6, 4.57.5, 5.0.0, 4.56.2"]


def test_a_transposed_version_suggests_its_look_alike_first():
    got = preflight.nearest("4.5.62", INDEX["transformers"])
    assert got[0] == "4.56.2"


def test_a_local_build_satisfies_a_plain_pin_but_not_the_other_way_round():
    assert preflight.is_listed("2.13.0", INDEX["torch"])
    assert preflight.is_listed("2.13.0+cpu", INDEX["torch"])
    assert not preflight.is_listed("2.13.0+cu121", INDEX["torch"])
    assert not preflight.is_listed("2.13.1", INDEX["torch"])


def test_an_unknown_package_is_named_with_the_closest_known_one():
    got = rendered(preflight.check_versions(matrix_of(combo(datasetz="3.6.0"), combo("b", flashattnx=None)),
                                            FakeLister()))
    assert "matrix.yaml: combos[0].pins.datasetz: no package 'datasetz' on https://index.example/simple; " \
           "did you mean 'datasets'?" in got
    assert "matrix.yaml: combos[1].pins.flashattnx: no package 'flashattnx' on https://index.example/simple" in got


def test_a_good_matrix_has_no_problems_and_each_package_is_listed_once():
    lister = pkgindex.IndexLister(environ={}, fetch=lambda pkg, index: _page(INDEX[pkg]))
    calls = []
    original = lister._list
    lister._list = lambda pkg: calls.append(pkg) or original(pkg)
    combos = [combo(str(i)) for i in range(5)] + [combo("newest", transformers=None)]
    assert preflight.check_versions(matrix_of(*combos), lister) == []
    assert sorted(calls) == sorted(INDEX)


def test_an_unreachable_index_is_reported_as_unchecked_not_as_a_wrong_pin():
    got = preflight.check_combo(combo(), FakeLister(down={"trl"}))
    assert len(got) == 1 and isinstance(got[0], preflight.Unchecked)
    assert got[0].render("matrix.yaml").startswith("matrix.yaml: pins.trl: could not check trl on "
                                                   "https://index.example/simple: URLError")


def _page(versions, yanked=()):
    return {"files": [{"filename": f"pkg-{v}-py3-none-any.whl", "yanked": v in yanked} for v in versions]}


def test_index_lister_reads_every_source_and_caches_per_package(tmp_path):
    (tmp_path / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")
    (tmp_path / "other-1.0-py3-none-any.whl").write_bytes(b"")
    fetched = []

    def fetch(package, index):
        fetched.append((package, index))
        if package == "torch":
            return _page(["2.12.1"])
        if package == "trl":
            return _page(["0.19.1", "0.19.0"], yanked={"0.19.0"})
        raise urllib.error.HTTPError(f"{index}/{package}/", 404, "Not Found", None, None)

    lister = pkgindex.IndexLister(environ={"PIP_INDEX_URL": "https://a.example/simple",
                                            "UV_EXTRA_INDEX_URL": "https://b.example/simple/",
                                            "PIP_FIND_LINKS": str(tmp_path)}, fetch=fetch)
    assert lister("torch") == ["2.12.1", "2.13.0+cpu"]
    assert lister("Torch") == ["2.12.1", "2.13.0+cpu"]
    assert lister("trl") == ["0.19.0", "0.19.1"]  # a yanked release still installs when pinned exactly
    with pytest.raises(pkgindex.NotOnIndex):
        lister("nope")
    with pytest.raises(pkgindex.NotOnIndex):
        lister("nope")
    assert fetched.count(("torch", "https://a.example/simple")) == 1
    assert fetched.count(("torch", "https://b.example/simple")) == 1
    assert fetched.count(("nope", "https://a.example/simple")) == 1
    assert lister.where == f"https://a.example/simple + https://b.example/simple + {tmp_path}"


def test_index_lister_says_unchecked_when_the_index_errors():
    def fetch(package, index):
        raise urllib.error.URLError("timed out")

    with pytest.raises(pkgindex.ListingError, match="https://pypi.org/simple: URLError"):
        pkgindex.IndexLister(environ={}, fetch=fetch)("trl")


# ---- pins that cannot resolve together -----------------------------------------------------------------


def test_uv_reason_is_one_line_in_both_of_uvs_styles():
    old = ("  × No solution found when resolving dependencies:\n"
           "  ╰─▶ Because trl==0.23.0 depends on transformers>=4.56.1 and you require transformers==4.53.3, we\n"
           "      can conclude that your requirements are unsatisfiable.\n")
    new = ("error: No solution found when resolving dependencies\n"
           "  cause: Because trl==0.23.0 depends on transformers>=4.56.1 and you require transformers==4.53.3, "
           "we can conclude that your requirements are unsatisfiable.\n")
    for text in (old, new):
        got = preflight.uv_reason(text)
        assert got.startswith("No solution found when resolving dependencies: Because trl==0.23.0 depends on "
                              "transformers>=4.56.1 and you require transformers==4.53.3, we")
        assert got.endswith("your requirements are unsatisfiable.")


def test_validate_online_reports_each_problem_once_and_exits_2(capsys):
    m = matrix_of(combo("ok"), combo("typo", transformers="4.99.0"), combo("clash", trl="0.23.0"))
    asked = []

    def resolve(c):
        asked.append(c.id)
        return "Because trl==0.23.0 depends on transformers>=4.56.1 ..." if c.id == "clash" else None

    lines = []
    assert preflight.validate_online(m, FakeLister(), resolve, log=lines.append) == 2
    assert sorted(asked) == ["clash", "ok"]  # the combo with a missing version is not resolved as well
    assert lines[0].startswith("matrix.yaml: combos[1].pins.transformers: transformers 4.99.0 is not on")
    assert lines[1] == ("matrix.yaml: combos[2].pins: the pins of 'clash' cannot be installed together: "
                        "Because trl==0.23.0 depends on transformers>=4.56.1 ...")
    assert len(lines) == 2


def test_validate_online_without_network_exits_4_a_machine_failure():
    lines = []
    assert preflight.validate_online(matrix_of(combo()), FakeLister(down=set(INDEX)), lambda c: None,
                                     log=lines.append) == 4
    assert all("could not check" in line for line in lines)


@pytest.mark.e2e
def test_uv_explains_conflicting_pins_without_installing(tmp_path):
    clash = combo("clash", trl="0.23.0")  # trl 0.23.0 needs transformers >= 4.56.1
    reason = preflight.resolve_check(clash)
    assert reason and "trl==0.23.0 depends on transformers>=4.56.1" in reason
    assert preflight.resolve_check(combo("fine")) is None


@pytest.mark.e2e
def test_real_index_names_a_typod_version():
    got = preflight.check_combo(combo(transformers="4.99.0"), pkgindex.IndexLister())
    assert len(got) == 1 and "transformers 4.99.0 is not on" in got[0].message
    assert "nearest: 4.57.6" in got[0].message


# ---- the results folder -------------------------------------------------------------------------------


def test_results_folder_that_is_a_file_is_refused_before_anything_runs(tmp_path):
    (tmp_path / "results").write_text("not a folder")
    with pytest.raises(preflight.NotWritable) as err:
        preflight.check_writable(tmp_path / "results" / "cells")
    assert str(err.value).startswith(f"{tmp_path / 'results' / 'cells'} is not writable (")
    assert str(err.value).endswith("fix its permissions or pass --results to write the results elsewhere")
    assert (tmp_path / "results").read_text() == "not a folder"


def test_writable_folder_is_created_and_left_as_it_was(tmp_path):
    cells = tmp_path / "results" / "cells"
    preflight.check_writable(cells)
    (cells / "a.json").write_text("{}")
    preflight.check_writable(cells)
    assert [p.name for p in cells.iterdir()] == ["a.json"]


def _as_unprivileged(code: str):
    """Run ``code`` in a Python that an unprivileged user can run: root ignores file modes."""
    if os.geteuid() != 0:
        return subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(ROOT / "src")},
                              capture_output=True, text=True)
    for python in (sys.executable, "/usr/bin/python3"):
        try:
            proc = subprocess.run([python, "-c", "import ftcompat.env.preflight"], user=65534, group=65534,
                                  env={"PYTHONPATH": str(ROOT / "src")}, capture_output=True, text=True, cwd="/")
        except (PermissionError, OSError):
            continue
        if proc.returncode == 0:
            return subprocess.run([python, "-c", code], user=65534, group=65534, cwd="/",
                                  env={"PYTHONPATH": str(ROOT / "src")}, capture_output=True, text=True)
    pytest.skip("running as root, and no Python that user 65534 may run to see a read-only folder as a user does")


@pytest.fixture
def open_dir():
    """A folder other users can reach (pytest's own tmp folders are private to their owner)."""
    path = Path(tempfile.mkdtemp(prefix="ftcompat-ro-"))
    path.chmod(0o755)
    yield path
    for sub in path.rglob("*"):
        if sub.is_dir():
            sub.chmod(0o755)
    shutil.rmtree(path)


def test_read_only_results_folder_is_refused_and_nothing_in_it_changes(open_dir):
    cells = open_dir / "cells"
    cells.mkdir()
    (cells / "old.json").write_text('{"cells": []}\n')
    cells.chmod(0o555)
    try:
        proc = _as_unprivileged(f"import ftcompat.env.preflight as p; p.check_writable({str(cells)!r})")
    finally:
        cells.chmod(0o755)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ftcompat.env.preflight.NotWritable: {cells} is not writable (PermissionError: ")
    assert last.endswith("fix its permissions or pass --results to write the results elsewhere")
    assert [p.name for p in cells.iterdir()] == ["old.json"]
    assert (cells / "old.json").read_text() == '{"cells": []}\n'


# ---- a disk that fills up -----------------------------------------------------------------------------


class _FullDisk:
    """A file object whose writes (or fsync) fail the way a full disk does."""

    def __init__(self, real, where="write"):
        self.real, self.where = real, where

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.real.close()

    def write(self, text):
        if self.where == "write":
            self.real.write(text[: len(text) // 2])  # half of it got out before the disk filled
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.real.write(text)

    def flush(self):
        self.real.flush()

    def fileno(self):
        return self.real.fileno()


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_full_disk_leaves_the_previous_cell_file_whole(tmp_path, monkeypatch, where):
    path = tmp_path / "cells" / "c.json"
    cellfile.write_cells(path, "c", [record("c::a[x]")])
    before = path.read_bytes()
    real_fdopen, real_fsync = os.fdopen, os.fsync
    if where == "write":
        monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: _FullDisk(real_fdopen(fd, *a, **k)))
    else:
        def fsync(fd):
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(cellfile.WriteFailed) as err:
        cellfile.write_cells(path, "c", [record("c::a[x]", "fail"), record("c::b[x]")])
    monkeypatch.setattr(os, "fdopen", real_fdopen)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert str(err.value).startswith(f"no space left on device while writing {path}; the previous {path} is "
                                     "unchanged; free some space")
    assert err.value.errno == errno.ENOSPC
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["c.json"]  # no temporary file left behind


def test_full_disk_while_saving_the_grid_keeps_the_old_grid(tmp_path, monkeypatch):
    from ftcompat.results import grid as grid_mod

    path = tmp_path / "grid.json"
    old = grid_mod.Grid((), (), ("a",), "2025-01-01T00:00:00Z")
    grid_mod.save(old, path)
    before = path.read_bytes()
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: _FullDisk(real_fdopen(fd, *a, **k)))
    new = dataclasses.replace(old, columns=("a", "b"), generated_at="2025-01-02T00:00:00Z")
    with pytest.raises(OSError, match=f"no space left on device while writing {path}; the previous"):
        grid_mod.save(new, path)
    assert path.read_bytes() == before and json.loads(before)["columns"] == ["a"]


def test_a_file_that_never_existed_says_it_was_not_created(tmp_path, monkeypatch):
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: _FullDisk(real_fdopen(fd, *a, **k)))
    with pytest.raises(cellfile.WriteFailed, match="was not created"):
        cellfile.atomic_write(tmp_path / "new.json", "{}\n")
    assert list(tmp_path.iterdir()) == []


def test_a_really_full_filesystem(tmp_path):
    """A 64 KiB tmpfs filled to the brim: the kernel's own ENOSPC, no monkeypatching."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        path = mnt / "c.json"
        cellfile.write_cells(path, "c", [record("c::a[x]")])
        before = path.read_bytes()
        with open(mnt / "filler", "wb", buffering=0) as fh:  # take every block that is left
            with pytest.raises(OSError) as full:
                while True:
                    fh.write(b"\0" * 4096)
        assert full.value.errno == errno.ENOSPC
        big = [record(f"c::a[{i}]", log="x" * 200) for i in range(200)]
        with pytest.raises(cellfile.WriteFailed, match="no space left on device while writing"):
            cellfile.write_cells(path, "c", big)
        assert path.read_bytes() == before
        assert sorted(p.name for p in mnt.iterdir()) == ["c.json", "filler"]
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_problems_keep_the_matrix_problem_shape():
    p = preflight.Unchecked("combos[0].pins.trl", "could not check")
    assert isinstance(p, Problem) and p.render("m.yaml") == "m.yaml: combos[0].pins.trl: could not check"


def test_pins_problem_is_one_line_for_a_not_installable_cell_and_ignores_an_unreachable_index():
    lister = FakeLister(down={"peft"})
    assert preflight.pins_problem(combo(), lister) is None
    got = preflight.pins_problem(combo(transformers="4.99.0", flashattnx="1.0"), lister)
    assert got == ("pins.flashattnx: no package 'flashattnx' on https://index.example/simple; "
                   "pins.transformers: transformers 4.99.0 is not on https://index.example/simple; "
                   "nearest: 4.57.6, 4.57.5, 5.0.0, 4.56.2")


def test_the_not_installable_reason_is_the_preflight_line():
    from ftcompat.env import build

    line = preflight.pins_problem(combo(transformers="4.99.0"), FakeLister())
    assert build.failure_summary(line) == line


def test_atomic_write_keeps_a_file_readable_like_an_ordinary_write(tmp_path):
    path = tmp_path / "REPORT.md"
    cellfile.atomic_write(path, "a\n")
    assert path.stat().st_mode & 0o777 == 0o644
    path.chmod(0o640)
    cellfile.atomic_write(path, "b\n")
    assert path.stat().st_mode & 0o777 == 0o640 and path.read_text() == "b\n"
