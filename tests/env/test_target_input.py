"""`here --python` given something that is not a working interpreter: exit 2 with what is wrong, never a traceback."""

import pytest

from ftcompat.cli import main
from ftcompat.env import target


def _script(tmp_path, body, mode=0o755):
    path = tmp_path / "python"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("make, why", [
    (lambda t: _script(t, "exit 0\n"), "ran but did not answer like a Python interpreter"),
    (lambda t: _script(t, "echo hello\n"), "printed 'hello'"),
    (lambda t: _script(t, "exit 0\n", mode=0o644), "cannot be run: Permission denied"),
    (lambda t: t, "cannot be run:"),
    (lambda t: _script(t, "sleep 30\n"), "did not answer within 1 s"),
])
def test_a_bad_interpreter_is_exit_2(tmp_path, monkeypatch, capsys, make, why):
    monkeypatch.setattr(target, "ANSWER_S", 1.0)
    monkeypatch.chdir(tmp_path)
    path = make(tmp_path)
    assert main(["here", "--python", str(path), "--out", str(tmp_path / "g.json")]) == 2
    assert why in capsys.readouterr().err
    assert not (tmp_path / "g.json").exists()
