"""`ftcompat run`: the combos selected, and nox driven with the packaged noxfile at the user's work folder."""

import re

import pytest
from conftest import ROOT

from ftcompat.config.matrix import load
from ftcompat.core.errors import InputError
from ftcompat.flows import noxdrive
from ftcompat.noxsessions import default_combos


@pytest.fixture(scope="module")
def matrix():
    return load(ROOT / "matrix.yaml")


def test_default_is_every_combo_that_needs_no_gpu_and_not_upstream_main(matrix):
    chosen = noxdrive.select(matrix, None)
    assert chosen == default_combos(matrix)
    assert "latest" in chosen and "gpu-latest" not in chosen and not any(c.startswith("device-") for c in chosen)
    # the repository tags exactly these cpu; the upstream-main lane runs only when named (it needs GitHub)
    assert chosen == [c.id for c in matrix.combos if "cpu" in c.tags and "main" not in c.tags]
    assert "main-trl" not in chosen and noxdrive.select(matrix, ["tag:main"]) == ["main-trl", "main-peft-accelerate"]


def test_globs_and_tags_select(matrix):
    assert noxdrive.select(matrix, ["tag:gpu"]) == ["gpu-latest"]
    assert noxdrive.select(matrix, ["tf4.5*-trl0.1*"]) == [c.id for c in matrix.combos  # matrix order
                                                        if re.fullmatch(r"tf4\.5.*-trl0\.1.*", c.id)]
    assert {"tf4.50-trl0.15", "tf4.51-trl0.16", "tf4.53-trl0.19"} <= set(noxdrive.select(matrix, ["tf4.5*-trl0.1*"]))
    assert noxdrive.select(matrix, ["latest,tf5.0"]) == ["tf5.0", "latest"]  # matrix order


def test_a_selector_that_selects_nothing_is_refused_with_the_ids(matrix):
    with pytest.raises(InputError, match=r"--combos: 'lates' selects no combo of .*matrix.yaml; did you mean 'latest'"):
        noxdrive.select(matrix, ["lates"])


def test_command_runs_the_library_noxfile_with_envs_under_the_work_folder(tmp_path):
    cmd = noxdrive.command(tmp_path, ["prod"], extra=["--no-color"])
    assert cmd[1:4] == ["-m", "nox", "-f"] and cmd[4] == str(ROOT / "noxfile.py")
    assert cmd[5:7] == ["--envdir", str(tmp_path.resolve() / ".nox")]
    assert cmd[7:] == ["-s", "prod", "render", "--no-color"]
    assert noxdrive.command(tmp_path, ["prod"], render=False)[-2:] == ["-s", "prod"]


def test_environment_points_nox_at_the_config_and_work_folder(tmp_path):
    env = noxdrive.environment(tmp_path / "ftcompat.yaml", tmp_path, ["api_*", "mine"])
    assert env["FTCOMPAT_CONFIG"] == str((tmp_path / "ftcompat.yaml").resolve())
    assert env["FTCOMPAT_WORK"] == str(tmp_path.resolve())
    assert env["FTCOMPAT_CASES"] == "api_*,mine"


def test_nox_lists_a_projects_combos_through_the_packaged_noxfile(tmp_path):
    import json
    import os
    import subprocess
    import sys

    from helpers import project

    path = project(tmp_path)
    env = noxdrive.environment(path, tmp_path, None)
    proc = subprocess.run([sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), "-l", "--json"],
                          capture_output=True, text=True, env={**os.environ, **env}, check=False)
    assert proc.returncode == 0, proc.stderr
    names = [s["session"] for s in json.loads(proc.stdout)]
    assert names[:2] == ["prod", "render"] and "latest" not in names


def test_a_bad_project_file_stops_nox_with_exit_2_and_its_name(tmp_path):
    import os
    import subprocess
    import sys

    from helpers import project

    path = project(tmp_path, builtin_cases=["nope"])
    env = noxdrive.environment(path, tmp_path, None)
    proc = subprocess.run([sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), "-l"],
                          capture_output=True, text=True, env={**os.environ, **env}, check=False)
    assert proc.returncode == 2
    assert f"{path}: builtin_cases[0]: 'nope' selects no built-in case" in proc.stderr


def test_run_in_a_folder_without_a_project_builds_nothing_and_says_what_it_would(tmp_path, monkeypatch, capsys):
    from ftcompat.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert "there is no project file here (ftcompat.yaml), so this is the built-in matrix:" in err
    assert re.search(r": \d+ combos and \d+ handoff pairs \(two each\) would build environments", err)
    assert "Pass --all to run them all, --combos GLOB for some, or `ftcompat init`" in err
    assert not any(tmp_path.iterdir())  # not a venv, not a folder
