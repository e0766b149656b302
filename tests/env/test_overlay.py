"""The harness reaches an env through a copied package on its path, never by installing ftcompat into it."""

import subprocess
import sys

from conftest import ROOT

from ftcompat.config.cases import read_case
from ftcompat.env import overlay
from ftcompat.runner.cells import staged


def test_the_harness_copy_is_made_once_per_version_and_excludes_the_library(tmp_path):
    where = overlay.harness_dir(tmp_path)
    assert where.parent == tmp_path / ".ftcompat" / "harness" and where.name == overlay.digest()
    assert (where / "ftcompat" / "harness" / "plugin.py").is_file()
    assert not (where / "ftcompat" / "library").exists() and not list(where.rglob("__pycache__"))
    stamp = (where / "ftcompat" / "__init__.py").stat().st_mtime_ns
    assert overlay.harness_dir(tmp_path) == where
    assert (where / "ftcompat" / "__init__.py").stat().st_mtime_ns == stamp  # not copied again


def test_the_digest_follows_the_source(tmp_path):
    pkg = tmp_path / "ftcompat"
    pkg.mkdir()
    (pkg / "a.py").write_text("x = 1\n")
    first = overlay.digest(pkg)
    (pkg / "a.py").write_text("x = 2\n")
    assert overlay.digest(pkg) != first


def test_attach_writes_one_pth_and_the_env_imports_the_harness_from_it(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    where = overlay.attach(venv, tmp_path)
    pth = overlay.site_packages(venv) / overlay.PTH
    assert pth.read_text() == f"{where.resolve()}\n"
    out = subprocess.run([str(venv / "bin" / "python"), "-c", "import ftcompat.harness.api as a; print(a.__file__)"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith(str(where.resolve()))


def test_cases_outside_the_work_folder_run_from_a_copy_under_it(tmp_path):
    builtin = read_case(ROOT / "cases" / "api_surface.py")
    mine = tmp_path / "my_cases" / "mine.py"
    mine.parent.mkdir()
    mine.write_text('"""Mine."""\n\n\ndef test_x():\n    pass\n')
    out = staged(tmp_path, {"api_surface": builtin, "mine": read_case(mine)})
    assert out["mine"].path == mine  # already under the work folder: untouched
    copy = out["api_surface"].path
    assert copy == tmp_path / ".ftcompat" / "cases" / "api_surface.py"
    assert copy.read_bytes() == (ROOT / "cases" / "api_surface.py").read_bytes()
    assert out["api_surface"].variants == builtin.variants


def test_a_staged_case_reads_as_cases_in_results():
    from ftcompat.core.paths import Portable

    text = Portable("/w").text("/w/.ftcompat/cases/api_surface.py:61: TypeError")
    assert text == "cases/api_surface.py:61: TypeError"
