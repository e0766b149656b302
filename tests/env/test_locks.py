"""The combo lock: one run per combo, a busy combo said as such, and never written through a link."""

import os

import pytest

from ftcompat.core.errors import Busy, MachineError
from ftcompat.env import locks


def test_a_second_run_of_the_same_combo_is_busy(tmp_path):
    with locks.combo_lock(tmp_path, "c", log=lambda *_: None):
        with pytest.raises(Busy, match="combo 'c' is being run by pid"):
            with locks.combo_lock(tmp_path, "c", log=lambda *_: None, wait=0):
                pass


def test_the_lock_is_never_followed_through_a_symbolic_link(tmp_path):
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    path = locks.lock_path(tmp_path, "c")
    path.parent.mkdir(parents=True)
    os.symlink(victim, path)
    with pytest.raises(MachineError, match="is a symbolic link"):
        with locks.combo_lock(tmp_path, "c", log=lambda *_: None):
            pass
    assert victim.read_text() == "keep me"


@pytest.mark.e2e
def test_ftcompat_run_on_a_busy_combo_exits_with_busys_code(tmp_path, monkeypatch, capsys):
    from helpers import project

    from ftcompat.cli import main

    monkeypatch.chdir(tmp_path)
    config = project(tmp_path)
    monkeypatch.setenv("FTCOMPAT_LOCK_WAIT", "0")
    with locks.combo_lock(tmp_path, "prod", log=lambda *_: None):
        assert main(["--config", str(config), "run", "--combos", "prod", "--no-render"]) == 5
    assert "combo 'prod' is being run by pid" in capsys.readouterr().err
    assert not locks.busy_marker(tmp_path, "prod").exists()
