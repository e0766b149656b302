"""Bad input gets one clear message and its documented exit code, from ftcompat and from nox alike."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from conftest import FIXTURES, ROOT

from ftcompat import cli
from ftcompat.core import errors

GRID = ROOT / "results" / "grid.json"


def run_cli(*args, capsys):
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_message(err: str, command: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"ftcompat {command}: "), err
    assert "Traceback" not in err
    return lines[0]


def test_the_codes_are_distinct_per_kind():
    codes = [errors.NoAnswer, errors.InputError, errors.NotInstallable, errors.MachineError, errors.Busy]
    assert [c.return_code for c in codes] == [1, 2, 3, 4, 5]
    assert issubclass(errors.InputError, ValueError) and issubclass(errors.MachineError, OSError)


# ---- grid files that are not grids ---------------------------------------------------------------

BROKEN = {
    "missing": None,
    "truncated": GRID.read_text()[:5000],
    "not-utf8": b"\xff\xfe\x00\x01",
    "a-list": "[1, 2]",
    "empty-object": "{}",
    "empty": "",
}


@pytest.fixture(params=sorted(BROKEN))
def broken_grid(request, tmp_path):
    path = tmp_path / "grid.json"
    content = BROKEN[request.param]
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    return path


@pytest.mark.parametrize("command", ["show", "diff", "pins", "report", "bisect", "history-add", "page"])
def test_a_broken_grid_file_is_one_message_and_exit_2(broken_grid, command, capsys, tmp_path):
    args = {
        "show": ["show", str(broken_grid)],
        "diff": ["diff", str(GRID), str(broken_grid)],
        "pins": ["pins", "--grid", str(broken_grid), "--out", str(tmp_path / "pins")],
        "report": ["report", "a::b[c]", "--grid", str(broken_grid), "--out", str(tmp_path / "r")],
        "bisect": ["bisect", "phi3_generate[native@*]", "--good-combo", "tf4.47", "--bad-combo", "latest",
                   "--grid", str(broken_grid)],
        "history-add": ["history", "add", str(broken_grid), "--history", str(tmp_path / "h")],
        "page": ["page", "--grid", str(broken_grid), "--out", str(tmp_path / "x.html")],
    }[command]
    code, _, err = run_cli("--matrix", str(ROOT / "matrix.yaml"), *args, capsys=capsys)
    assert code == 2, err
    line = one_message(err, args[0])
    assert str(broken_grid) in line
    assert not (tmp_path / "pins").exists() and not (tmp_path / "h").exists() and not (tmp_path / "x.html").exists()


# ---- matrix.yaml -------------------------------------------------------------------------------------


def project(tmp_path, matrix_text=None, matrix_bytes=None):
    shutil.copytree(FIXTURES / "cases", tmp_path / "cases")
    shutil.copy(ROOT / "noxfile.py", tmp_path / "noxfile.py")
    if matrix_bytes is not None:
        (tmp_path / "matrix.yaml").write_bytes(matrix_bytes)
    else:
        (tmp_path / "matrix.yaml").write_text(matrix_text if matrix_text is not None
                                              else (FIXTURES / "matrix.yaml").read_text())
    return tmp_path


def nox(root, *args, env=None):
    proc = subprocess.run([sys.executable, "-m", "nox", "-f", str(root / "noxfile.py"), *args], cwd=root,
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})})
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("name, content, words", [
    ("not-utf8", b"\xff\xfe\x00\x01", "is not UTF-8 text (byte 0xff at offset 0)"),
    ("empty", b"", "the file is empty"),
    ("top-level-list", b"- a\n- b\n", "the top level must be a mapping"),
    ("reserved-id", None, "'render' is reserved"),
    ("misspelt-when", None, "unknown package 'trll'; did you mean 'trl'?"),
])
def test_the_same_bad_matrix_is_one_message_and_exit_2_from_validate_and_from_nox(tmp_path, capsys, name, content,
                                                                                   words):
    text = (FIXTURES / "matrix.yaml").read_text()
    if name == "reserved-id":
        content = text.replace("- id: old\n", "- id: render\n").encode()
    elif name == "misspelt-when":
        content = text.replace('when: {trl: ">=9"}', 'when: {trll: ">=9"}').encode()
    root = project(tmp_path, matrix_bytes=content)
    code, _, err = run_cli("--matrix", str(root / "matrix.yaml"), "validate", capsys=capsys)
    assert code == 2 and words in one_message(err, "validate")
    for args in (["-l"], ["-s", "old"]):
        ncode, out = nox(root, *args)
        assert ncode == 2 and words in out and "Traceback" not in out, out
        assert len([line for line in out.splitlines() if line.strip()]) == 1, out


def test_a_huge_matrix_is_refused_at_once(tmp_path, capsys):
    root = project(tmp_path)
    with open(root / "matrix.yaml", "a") as fh:
        fh.write("# padding\n" * 600_000)  # 6 MB of valid YAML
    code, _, err = run_cli("--matrix", str(root / "matrix.yaml"), "validate", capsys=capsys)
    assert code == 2 and "is 6.0 MB; a matrix is a few hundred KB at most" in one_message(err, "validate")


def test_a_case_selector_that_selects_nothing_stops_nox_with_exit_2(tmp_path):
    root = project(tmp_path)
    code, out = nox(root, "-s", "old", env={"FTCOMPAT_CASES": "nosuchcase"})
    assert code == 2 and "'nosuchcase' selects no case" in out, out
    code, out = nox(root, "-s", "old", env={"FTCOMPAT_CASES": "gne"})
    assert code == 2 and "did you mean 'gen'?" in out, out
    assert not (root / "results").exists() and not (root / ".nox").exists()  # nothing was built or written


# ---- the commands' own arguments --------------------------------------------------------------------


def test_render_with_a_mistyped_results_folder_creates_nothing(tmp_path, capsys):
    root = project(tmp_path)
    (root / "results" / "cells").mkdir(parents=True)
    code, _, err = run_cli("--matrix", str(root / "matrix.yaml"), "render", "--results", str(root / "resluts"),
                           capsys=capsys)
    assert code == 2 and "did you mean 'results'?" in one_message(err, "render")
    assert not (root / "resluts").exists()


def test_adhoc_refuses_a_package_pinned_twice_before_building_anything(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("--matrix", str(ROOT / "matrix.yaml"), "adhoc", "trl==0.19.1", "trl==0.20.0",
                           capsys=capsys)
    assert code == 2 and "trl is pinned twice (0.19.1 and 0.20.0)" in one_message(err, "adhoc")
    assert not (ROOT / ".ftcompat" / "adhoc" / "adhoc-trl0.20.0").exists()


def test_pins_refuses_an_unknown_case_and_leaves_the_folder_as_it_was(tmp_path, capsys):
    out = tmp_path / "pins"
    assert cli.main(["pins", "--grid", str(GRID), "--out", str(out), "--cases", "qlora_sft_trainable"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    code, _, err = run_cli("pins", "--grid", str(GRID), "--out", str(out), "--cases", "nosuchcase", capsys=capsys)
    assert code == 2 and "'nosuchcase' selects no cell" in one_message(err, "pins")
    code, _, err = run_cli("pins", "--grid", str(GRID), "--out", str(out), "--cases", "qlora_sft_trainabel",
                           capsys=capsys)
    assert code == 2 and "did you mean 'qlora_sft_trainable'?" in err
    # No answer (every case: nothing qualifies): exit 1, and the earlier answer stays whole.
    code, _, err = run_cli("pins", "--grid", str(GRID), "--out", str(out), capsys=capsys)
    assert code == 1 and "no combo qualifies" in one_message(err, "pins")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_history_latest_with_nothing_kept_is_no_answer(tmp_path, capsys):
    code, _, err = run_cli("history", "latest", "--history", str(tmp_path / "none"), capsys=capsys)
    assert code == 1 and "no grid kept" in one_message(err, "history")


ADHOC_CASE = textwrap.dedent('''
    """Fixture case."""


    def test_x():
        """Passes."""
''')


@pytest.mark.parametrize("fail, code, words", [
    ("compile:notfound", 3, "there is no version of transformers==99.0.0"),
    ("compile:network", 4, "the package index could not be reached"),
    ("sync:nospace", 4, "no space left on device"),
])
def test_adhoc_exit_codes_tell_a_verdict_from_the_machine(tmp_path, capsys, monkeypatch, fake_uv, fail, code, words):
    from ftcompat.env import preflight, space

    monkeypatch.setattr(preflight, "pins_problem", lambda combo: None)
    monkeypatch.setattr(space, "sizes", lambda pkgs, *a, **k: {})
    monkeypatch.setenv("FTCOMPAT_ENV_CAP", "0")
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "x.py").write_text(ADHOC_CASE)
    (tmp_path / "matrix.yaml").write_text("version: 1\ncombos: []\nmodels: {}\ncases:\n  x: {}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FAKE_UV_FAIL", fail)
    got, out, err = run_cli("--matrix", str(tmp_path / "matrix.yaml"), "adhoc", "transformers==99.0.0",
                            capsys=capsys)
    assert got == code and words in one_message(err, "adhoc"), out + err
    grid_file = tmp_path / "results" / "adhoc" / "adhoc-transformers99.0.0.json"
    if code == 3:  # a verdict: the grid says not-installable
        cells = json.loads(grid_file.read_text())["cells"]
        assert {c["status"] for c in cells} == {"not-installable"}
    else:  # the machine: no verdict written
        assert not grid_file.exists()


@pytest.mark.e2e
@pytest.mark.parametrize("pin, code", [("transformers==99.0.0", 3), ("notapkg==1.0", 2)])
def test_adhoc_on_pins_that_do_not_exist_against_the_real_index(tmp_path, pin, code):
    """A release the index does not have is not installable (3, the grid says why); a package it does not have
    at all is a misspelling (2, nothing written)."""
    proc = subprocess.run([sys.executable, "-m", "ftcompat.cli", "--matrix", str(ROOT / "matrix.yaml"), "adhoc", pin,
                           "--cases", "api_surface", "--out", str(tmp_path / "g.json")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == code, proc.stdout + proc.stderr
    if code == 3:
        assert "not-installable" in proc.stdout
    else:
        assert "no package 'notapkg'" in proc.stderr and not (tmp_path / "g.json").exists()


def test_version_prints_the_package_version_and_exits_0(capsys):
    from ftcompat import __version__

    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"ftcompat {__version__}"
