"""ftcompat as users get it: the wheel built, installed into a fresh venv outside the checkout, run from an
empty folder with no repository on sys.path: init, validate, one cheap combo (one built-in case and one
of the project's own), the grid, pins; ad-hoc pins from another empty folder; and `here --venv` on a
training environment it must leave unchanged.

Needs PyPI (ftcompat's dependencies, the stack's wheels; torch 2.13.0 from the machine's find-links)
and a few minutes.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from conftest import ROOT
from helpers import fingerprint

pytestmark = pytest.mark.e2e

# The pins `ftcompat init` writes for its `prod` combo.
PINS = ["torch==2.13.0", "transformers==5.23.0", "trl==1.16.0", "peft==0.21.2", "bitsandbytes==0.50.2",
        "accelerate==1.15.0"]


def clean_env(**extra):
    """The caller's environment without anything that could put the checkout on sys.path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, "HF_HUB_OFFLINE": "1", **extra}


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    uv = shutil.which("uv")
    if not uv:
        pytest.skip("uv is not installed")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([uv, "build", "-q", "--wheel", "--sdist", "--out-dir", str(out), str(ROOT)], check=True,
                   env=clean_env())
    return out


@pytest.fixture(scope="module")
def installed(dist, tmp_path_factory):
    """A fresh venv with ftcompat installed from the wheel alone; returns its bin folder."""
    venv = tmp_path_factory.mktemp("user") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    wheel = next(dist.glob("ftcompat-*.whl"))
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    str(wheel)], check=True, env=clean_env())
    return venv / "bin"


def ftcompat(bindir, *args, cwd):
    # Only the venv's ftcompat command, as pipx gives it: its bin folder is not on PATH.
    proc = subprocess.run([str(bindir / "ftcompat"), *args], cwd=cwd, capture_output=True, text=True,
                          env=clean_env(), check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_the_wheel_and_sdist_carry_the_case_library_and_the_default_matrix(dist):
    names = zipfile.ZipFile(next(dist.glob("*.whl"))).namelist()
    for name in ("matrix.yaml", "noxfile.py", "cases/api_surface.py", "cases/phi3_generate.py"):
        assert f"ftcompat/library/{name}" in names
    assert "ftcompat/templates/ftcompat.yaml" in names and "ftcompat/harness/plugin.py" in names
    packaged = [n for n in names if n.startswith("ftcompat/library/cases/")]
    assert len(packaged) == len(list((ROOT / "cases").glob("*.py")))
    import tarfile

    members = tarfile.open(next(dist.glob("*.tar.gz"))).getnames()
    assert any(m.endswith("/cases/api_surface.py") for m in members)
    assert any(m.endswith("/matrix.yaml") for m in members)


def test_installed_ftcompat_runs_from_its_venv_not_the_checkout(installed, tmp_path):
    out = subprocess.run([str(installed / "python"), "-c", "import ftcompat, sys; print(ftcompat.__file__)"],
                         cwd=tmp_path, capture_output=True, text=True, env=clean_env(), check=True).stdout
    assert "site-packages" in out and not out.startswith(str(ROOT))
    code, text = ftcompat(installed, "--version", cwd=tmp_path)
    assert code == 0 and text.startswith("ftcompat ")
    code, text = ftcompat(installed, "validate", cwd=tmp_path)  # no config here: the built-in matrix
    assert code == 0 and "combos" in text and "ok" in text, text
    assert not any(tmp_path.iterdir())


@pytest.fixture(scope="module")
def project(installed, tmp_path_factory):
    """init, validate and run the `prod` combo in an empty folder; returns the folder and the run's output."""
    folder = tmp_path_factory.mktemp("project")
    log = []
    for args in (["init"], ["validate"], ["run", "--combos", "prod"]):
        code, text = ftcompat(installed, *args, cwd=folder)
        log.append(text)
        assert code == 0, "\n".join(log)
    return folder, "\n".join(log)


def test_a_project_runs_a_builtin_case_and_its_own_case(project):
    folder, log = project
    grid = json.loads((folder / "results" / "grid.json").read_text())
    cells = {c["id"]: c for c in grid["cells"]}
    assert cells["prod::my_lora_step[adapter_moves@tiny-llama]"]["status"] == "pass", log
    assert cells["prod::api_surface[trainer_train_one_step@tiny-llama]"]["status"] == "pass", log
    # A real verdict from the built-in case, with the real exception and the known issue it is
    removed = cells["prod::api_surface[sftconfig_max_seq_length]"]
    assert removed["status"] == "fail" and "unexpected keyword argument 'max_seq_length'" in removed["message"]
    assert removed["known_issue"]["id"] == "trl-sftconfig-max-seq-length-removed"
    assert removed["origin"]["file"] == "cases/api_surface.py"  # not the installed package's path
    assert grid["combos"][0]["resolved"]["transformers"] == "5.23.0"
    assert (folder / ".nox" / "prod" / "bin" / "python").exists()  # nox built it, in the user's folder
    assert "prod" in (folder / "results" / "GRID.md").read_text()
    site = next((folder / ".nox" / "prod" / "lib").glob("python3*/site-packages"))
    assert not list(site.glob("ftcompat*")) and (site / "_ftcompat_harness.pth").is_file()  # harness, not installed


def test_pins_from_the_projects_grid(installed, project):
    folder, _ = project
    code, text = ftcompat(installed, "pins", "--cases", "my_lora_step", cwd=folder)
    assert code == 0, text
    assert "transformers==5.23.0" in (folder / "results" / "pins" / "constraints.txt").read_text()


def test_adhoc_from_an_empty_folder_writes_there(installed, project, tmp_path):
    code, text = ftcompat(installed, "adhoc", *PINS, "--cases", "api_surface", cwd=tmp_path)
    assert code == 0, text
    grid = json.loads(next((tmp_path / "results" / "adhoc").glob("adhoc-*.json")).read_text())
    statuses = {c["variant"]: c["status"] for c in grid["cells"]}
    assert statuses["trainer_train_one_step"] == "pass" and statuses["sftconfig_max_seq_length"] == "fail"
    library = installed.parent / "lib"
    assert not list(library.rglob("ftcompat/library/results")) and not list(library.rglob("ftcompat/library/.ftcompat"))


def test_here_on_a_training_env_without_pytest_agrees_with_the_run_and_changes_nothing(installed, project, tmp_path):
    folder, _ = project
    uv = shutil.which("uv")
    train = tmp_path / "train"
    subprocess.run([uv, "venv", "-q", "-p", "3.11", str(train)], check=True)
    find_links = [a for v in os.environ.get("PIP_FIND_LINKS", "").split() for a in ("--find-links", v)]
    subprocess.run([uv, "pip", "install", "-q", "--python", str(train / "bin" / "python"), *find_links, *PINS],
                   check=True)
    before = fingerprint(train)
    assert "pytest" not in before[1]
    code, text = ftcompat(installed, "here", "--venv", str(train), "--out", "here.json", cwd=folder)
    assert code == 0, text
    assert fingerprint(train) == before
    def statuses(path):
        return {c["id"].split("::")[1]: c["status"] for c in json.loads(path.read_text())["cells"]}

    here, ran = statuses(folder / "here.json"), statuses(folder / "results" / "grid.json")
    assert here == ran  # the same versions give the same verdicts, in an env ftcompat did not build


def _snapshot(folder):
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and ".nox" not in p.parts
            and ".ftcompat" not in p.parts}


@pytest.mark.parametrize("args, code, said", [
    (["adhoc", "trl==1.16.0", "--cases", "my_lora_stpe"], 2, "selects no case"),  # a typo in a case
    (["adhoc", "trl=1.16.0"], 2, "is not a pin; write PACKAGE==VERSION"),  # wrong pin syntax
    (["adhoc", "torhc==2.13.0"], 2, "no package 'torhc'"),  # a misspelt package
    (["adhoc", "trl==1.16.0", "--python", "3.8"], 2, "Python 3.8 is not supported"),  # an unsupported Python
    (["run", "--cases", "my_lora_stpe"], 2, "--cases: 'my_lora_stpe' selects no case"),
    (["pins", "--keep", "trl=0.20"], 2, "write trl==0.20"),
    (["adhoc", "trl==1.16.0", "--torch-backend", "cuda"], 2, "'cuda' is not a PyTorch build"),  # cu126, not cuda
    (["adhoc", "torch@main"], 2, "torch is not pure Python"),  # a compiled package at a git ref
])
def test_a_newcomers_mistakes_get_their_documented_exit_code_and_overwrite_nothing(installed, project, args, code,
                                                                                      said):
    folder, _ = project
    before = _snapshot(folder)
    got, text = ftcompat(installed, *args, cwd=folder)
    assert got == code and said in text, text[-2000:]
    assert _snapshot(folder) == before


def test_without_a_project_file_run_says_what_it_would_build_and_builds_nothing(installed, tmp_path):
    code, text = ftcompat(installed, "run", cwd=tmp_path)
    assert code == 2 and "there is no project file here (ftcompat.yaml)" in text and "--all" in text
    assert not any(tmp_path.iterdir())
